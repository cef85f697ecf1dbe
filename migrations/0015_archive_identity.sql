-- Who this archive is: an id made once, when the index is first opened, that every backup
-- carries, so a backup target holding another archive's backup is refused rather than mixed.
CREATE TABLE archive_identity (
    id          INTEGER NOT NULL PRIMARY KEY,
    archive_id  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
