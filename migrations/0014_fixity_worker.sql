-- The background fixity worker and the fixity report over a period.
--
-- `fixity_checks` (the last check of each object) learns the bytes read. `fixity_failures`
-- keeps every failure ever found, append-only, so a report for any period can name them with
-- their hashes after later checks have replaced the object's last check. `fixity_tally` adds
-- up, per day (UTC), the objects and bytes checked, on demand and in the background.
-- `fixity_worker` is where the background pass stands: its one row holds the cycle, the place
-- in it (documents first, then DICOM objects in key order) and the lease of the node that
-- works it, so one node reads at a time and a restart goes on where it stopped.
ALTER TABLE fixity_checks ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;

CREATE TABLE fixity_failures (
    id           TEXT   NOT NULL PRIMARY KEY,
    object_key   TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    study_uid    TEXT   NOT NULL,
    problem      TEXT   NOT NULL,
    expected     TEXT   NOT NULL,
    found        TEXT   NOT NULL,
    detail       TEXT   NOT NULL,
    found_at     BIGINT NOT NULL
);
CREATE INDEX fixity_failures_found_at ON fixity_failures (found_at);

CREATE TABLE fixity_tally (
    day      TEXT   NOT NULL PRIMARY KEY,
    objects  BIGINT NOT NULL,
    bytes    BIGINT NOT NULL,
    failures BIGINT NOT NULL
);

CREATE TABLE fixity_worker (
    id               INTEGER NOT NULL PRIMARY KEY,
    cycle            BIGINT  NOT NULL,
    cycle_started_at BIGINT  NOT NULL,
    phase            TEXT    NOT NULL,
    after_key        TEXT    NOT NULL,
    objects          BIGINT  NOT NULL,
    bytes            BIGINT  NOT NULL,
    failures         BIGINT  NOT NULL,
    holder           TEXT    NOT NULL,
    lease_until      BIGINT  NOT NULL
);
INSERT INTO fixity_worker (id, cycle, cycle_started_at, phase, after_key, objects, bytes,
  failures, holder, lease_until)
VALUES (1, 0, 0, 'documents', '', 0, 0, 0, '', 0);
