-- Referrals (form 027) and the patient registration journal (point 13.2 of the order).

-- One row per referral. `document_key` is the original document in the object store, kept
-- byte for byte; the other columns are what was read from it. `status` is
-- awaiting_examination or linked; `study_uid` the linked study ('' until linked).
CREATE TABLE referrals (
    id                  TEXT   NOT NULL PRIMARY KEY,
    document_id         TEXT   NOT NULL,
    set_id              TEXT   NOT NULL,
    version             BIGINT NOT NULL,
    effective_time      TEXT   NOT NULL,
    personal_code       TEXT   NOT NULL,
    insured_code        TEXT   NOT NULL,
    statistical_card    TEXT   NOT NULL,
    family_name         TEXT   NOT NULL,
    given_names         TEXT   NOT NULL,
    sex                 TEXT   NOT NULL,
    birth_date          TEXT   NOT NULL,
    author_id           TEXT   NOT NULL,
    author_name         TEXT   NOT NULL,
    author_organisation TEXT   NOT NULL,
    custodian           TEXT   NOT NULL,
    clinic_id           TEXT   NOT NULL,
    order_number        TEXT   NOT NULL,
    examination         TEXT   NOT NULL,
    examination_codes   TEXT   NOT NULL,
    urgency             TEXT   NOT NULL,
    reason              TEXT   NOT NULL,
    warnings            TEXT   NOT NULL,
    source              TEXT   NOT NULL,
    document_key        TEXT   NOT NULL,
    document_sha256     TEXT   NOT NULL,
    status              TEXT   NOT NULL,
    study_uid           TEXT   NOT NULL,
    received_by         TEXT   NOT NULL,
    received_at         BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
-- A document is one referral: a resend of the same document id answers the same row.
CREATE UNIQUE INDEX referrals_document ON referrals (document_id);
CREATE INDEX referrals_order ON referrals (clinic_id, order_number);
CREATE INDEX referrals_personal_code ON referrals (personal_code);
CREATE INDEX referrals_status ON referrals (status, received_at);

-- The patient registration journal: append-only entries of each case's life.
CREATE TABLE journal (
    id              TEXT   NOT NULL PRIMARY KEY,
    at              BIGINT NOT NULL,
    kind            TEXT   NOT NULL,
    clinic_id       TEXT   NOT NULL,
    institution     TEXT   NOT NULL,
    actor           TEXT   NOT NULL,
    patient_id      TEXT   NOT NULL,
    referral_id     TEXT   NOT NULL,
    study_uid       TEXT   NOT NULL,
    report_id       TEXT   NOT NULL,
    detail          TEXT   NOT NULL
);
CREATE INDEX journal_patient ON journal (patient_id, at);
CREATE INDEX journal_referral ON journal (referral_id, at);
CREATE INDEX journal_study ON journal (study_uid, at);
