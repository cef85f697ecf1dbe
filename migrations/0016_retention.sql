-- Retention (order point 14: 15 years). An object's retention date is the day it was received
-- plus the years configured for its kind; nothing here stores a date per object, so these
-- tables hold only what must outlive a configuration change.

-- The longest retention ever configured per kind: lowering the setting later never shortens a
-- date (the service keeps using this figure and says so at start-up).
CREATE TABLE retention_policy (
    kind        TEXT   NOT NULL PRIMARY KEY,
    years       BIGINT NOT NULL,
    set_at      BIGINT NOT NULL
);

-- A study kept past what its objects' kinds give, by an administrator's decision. Only ever
-- later than every earlier extension of the study.
CREATE TABLE retention_extensions (
    id          TEXT   NOT NULL PRIMARY KEY,
    study_uid   TEXT   NOT NULL,
    until_day   TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    set_by      TEXT   NOT NULL,
    set_at      BIGINT NOT NULL
);
CREATE INDEX retention_extensions_study ON retention_extensions (study_uid);

-- Legal holds: while one is not released, nothing of the study is deleted, whatever the date.
-- Released holds stay, for the record.
CREATE TABLE legal_holds (
    id              TEXT   NOT NULL PRIMARY KEY,
    study_uid       TEXT   NOT NULL,
    reason          TEXT   NOT NULL,
    placed_by       TEXT   NOT NULL,
    placed_at       BIGINT NOT NULL,
    released_by     TEXT   NOT NULL DEFAULT '',
    released_at     BIGINT,
    release_reason  TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX legal_holds_study ON legal_holds (study_uid);

-- Deletion after expiry, by two people: proposed by an administrator, then approved (or
-- rejected) by an auditor. state: proposed, rejected, approved (index rows gone, objects being
-- removed) or done.
CREATE TABLE deletion_requests (
    id              TEXT   NOT NULL PRIMARY KEY,
    study_uid       TEXT   NOT NULL,
    reason          TEXT   NOT NULL,
    proposed_by     TEXT   NOT NULL,
    proposed_at     BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    decided_by      TEXT   NOT NULL DEFAULT '',
    decided_at      BIGINT,
    decision_note   TEXT   NOT NULL DEFAULT '',
    done_at         BIGINT
);
CREATE UNIQUE INDEX deletion_requests_open ON deletion_requests (study_uid)
    WHERE state = 'proposed';
CREATE INDEX deletion_requests_state ON deletion_requests (state, proposed_at);

-- What a deletion removed, kept forever: every object with its hash, and who proposed and
-- approved it, when and why. (The same record is also kept as an object in the store.)
CREATE TABLE tombstones (
    object_key      TEXT   NOT NULL PRIMARY KEY,
    request_id      TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    study_uid       TEXT   NOT NULL,
    sha256          TEXT   NOT NULL,
    bytes           BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    retain_until    TEXT   NOT NULL,
    reason          TEXT   NOT NULL,
    proposed_by     TEXT   NOT NULL,
    proposed_at     BIGINT NOT NULL,
    approved_by     TEXT   NOT NULL,
    approved_at     BIGINT NOT NULL,
    removed_at      BIGINT
);
CREATE INDEX tombstones_study ON tombstones (study_uid);
CREATE INDEX tombstones_request ON tombstones (request_id);

-- The daily list of studies whose retention ends within the notice period (default 90 days).
CREATE TABLE retention_notices (
    day             TEXT   NOT NULL,
    study_uid       TEXT   NOT NULL,
    retain_until    TEXT   NOT NULL,
    objects         BIGINT NOT NULL,
    held            BIGINT NOT NULL,
    PRIMARY KEY (day, study_uid)
);
