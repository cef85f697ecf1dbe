-- How far the index is known to be on disk. The service commits instance rows without waiting
-- for the disk (SQLite `synchronous = NORMAL`): a crash of the process loses none of them, a
-- crash of the machine may lose the last few. A flush marks the time before which every
-- acknowledged object's row is durable, so after a machine crash only objects stored since the
-- mark are looked for in the store and indexed again.
CREATE TABLE durable_marks (
    name TEXT   NOT NULL PRIMARY KEY,
    at   BIGINT NOT NULL
);
