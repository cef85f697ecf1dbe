-- The last fixity check of each stored object: the SHA-256 it should have (recorded when it
-- arrived), what reading it back gave ('' when it was missing or unreadable), and the outcome
-- (ok, altered, missing, unreadable). A failure is never repaired here: it stays until an
-- administrator has dealt with it and a later check finds the object whole.
CREATE TABLE fixity_checks (
    object_key   TEXT   NOT NULL PRIMARY KEY,
    kind         TEXT   NOT NULL,
    study_uid    TEXT   NOT NULL,
    expected     TEXT   NOT NULL,
    found        TEXT   NOT NULL,
    outcome      TEXT   NOT NULL,
    checked_at   BIGINT NOT NULL
);
CREATE INDEX fixity_checks_outcome ON fixity_checks (outcome, checked_at);
