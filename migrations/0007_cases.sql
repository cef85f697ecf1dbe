-- The reading workflow: one case per study to be read, routed to a consulting centre (and
-- perhaps a reader), claimed, reported, delivered. Clocks are microseconds since the epoch (UTC);
-- NULL until they happen.
CREATE TABLE cases (
    id                TEXT   NOT NULL PRIMARY KEY,
    -- '' for a study an administrator routed without a referral.
    referral_id       TEXT   NOT NULL,
    study_uid         TEXT   NOT NULL,
    clinic_id         TEXT   NOT NULL,
    -- '' while no routing rule matched (status unrouted).
    centre_id         TEXT   NOT NULL,
    -- The reader the case was assigned to; '' for the centre's shared worklist.
    reader            TEXT   NOT NULL,
    -- unrouted, new, in_progress, reported, delivered.
    status            TEXT   NOT NULL,
    examination       TEXT   NOT NULL,
    urgency           TEXT   NOT NULL,
    patient_id        TEXT   NOT NULL,
    patient_name      TEXT   NOT NULL,
    birth_date        TEXT   NOT NULL,
    -- The rule that routed the case (its name), or why none did.
    rule              TEXT   NOT NULL,
    claimed_by        TEXT   NOT NULL,
    claim_expires_at  BIGINT,
    -- T0 referral written, its receipt, T2 data received, T3 ready (data and referral linked),
    -- routed, T4 first claimed; signing and delivery come with reports.
    referral_written  TEXT   NOT NULL,
    referral_at       BIGINT,
    data_at           BIGINT NOT NULL,
    ready_at          BIGINT NOT NULL,
    routed_at         BIGINT,
    claimed_at        BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
-- A study is read once: one case per study, however it came to be routed.
CREATE UNIQUE INDEX cases_study ON cases (study_uid);
CREATE INDEX cases_centre ON cases (centre_id, status, ready_at);
CREATE INDEX cases_reader ON cases (reader, status);

-- Readers marked away are skipped by automatic assignment.
CREATE TABLE reader_availability (
    name        TEXT   NOT NULL PRIMARY KEY,
    away        BIGINT NOT NULL,
    updated_by  TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);
