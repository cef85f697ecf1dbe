-- What an administrator decided about each leftover `verify --all` named: an object in the
-- store no index row names (an index commit that failed after the object became durable), or a
-- report object no signed report version names (a node that stopped in the middle of a
-- signature). adopt: indexed, or kept as the study's instance; quarantine: moved under
-- quarantine/ (and its index row, if any, withdrawn). Nothing is deleted.
CREATE TABLE orphan_decisions (
    object_key      TEXT   NOT NULL PRIMARY KEY,
    kind            TEXT   NOT NULL,
    decision        TEXT   NOT NULL,
    quarantine_key  TEXT   NOT NULL,
    sha256          TEXT   NOT NULL,
    reason          TEXT   NOT NULL,
    decided_by      TEXT   NOT NULL,
    decided_at      BIGINT NOT NULL
);
