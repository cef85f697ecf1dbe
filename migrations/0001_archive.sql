-- The archive index: one schema for SQLite and PostgreSQL (portable types only; times are
-- microseconds since the Unix epoch, UTC; empty strings, not NULLs, for absent text keys).

CREATE TABLE patients (
    patient_id      TEXT   NOT NULL,
    issuer          TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    name_search     TEXT   NOT NULL,
    birth_date      TEXT   NOT NULL,
    sex             TEXT   NOT NULL,
    other_ids       TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (patient_id, issuer)
);
CREATE INDEX patients_name_search ON patients (name_search);

CREATE TABLE studies (
    study_uid           TEXT   NOT NULL PRIMARY KEY,
    patient_id          TEXT   NOT NULL,
    issuer              TEXT   NOT NULL,
    study_date          TEXT   NOT NULL,
    study_time          TEXT   NOT NULL,
    accession_number    TEXT   NOT NULL,
    accession_issuer    TEXT   NOT NULL,
    study_id            TEXT   NOT NULL,
    description         TEXT   NOT NULL,
    referring_physician TEXT   NOT NULL,
    modalities          TEXT   NOT NULL,
    clinic_id           TEXT   NOT NULL,
    num_series          BIGINT NOT NULL,
    num_instances       BIGINT NOT NULL,
    total_bytes         BIGINT NOT NULL,
    first_received_at   BIGINT NOT NULL,
    last_received_at    BIGINT NOT NULL
);
CREATE INDEX studies_patient ON studies (patient_id, issuer);
CREATE INDEX studies_date ON studies (study_date);
CREATE INDEX studies_accession ON studies (accession_number);
CREATE INDEX studies_clinic ON studies (clinic_id, last_received_at);
CREATE INDEX studies_received ON studies (last_received_at);

CREATE TABLE series (
    series_uid      TEXT   NOT NULL PRIMARY KEY,
    study_uid       TEXT   NOT NULL REFERENCES studies (study_uid),
    modality        TEXT   NOT NULL,
    series_number   BIGINT,
    description     TEXT   NOT NULL,
    num_instances   BIGINT NOT NULL,
    first_received_at BIGINT NOT NULL
);
CREATE INDEX series_study ON series (study_uid);

CREATE TABLE instances (
    object_key        TEXT   NOT NULL PRIMARY KEY,
    sop_instance_uid  TEXT   NOT NULL,
    sop_class_uid     TEXT   NOT NULL,
    series_uid        TEXT   NOT NULL REFERENCES series (series_uid),
    study_uid         TEXT   NOT NULL REFERENCES studies (study_uid),
    instance_number   BIGINT,
    number_of_frames  BIGINT,
    transfer_syntax   TEXT   NOT NULL,
    size_bytes        BIGINT NOT NULL,
    sha256            TEXT   NOT NULL,
    dataset_sha256    TEXT   NOT NULL,
    clinic_id         TEXT   NOT NULL,
    calling_ae        TEXT   NOT NULL,
    received_at       BIGINT NOT NULL
);
CREATE INDEX instances_sop ON instances (sop_instance_uid);
CREATE INDEX instances_series ON instances (series_uid);
CREATE INDEX instances_study ON instances (study_uid);

-- The same SOP Instance UID arrived with different content: both objects are kept.
CREATE TABLE instance_conflicts (
    id                TEXT   NOT NULL PRIMARY KEY,
    sop_instance_uid  TEXT   NOT NULL,
    existing_key      TEXT   NOT NULL,
    new_key           TEXT   NOT NULL,
    clinic_id         TEXT   NOT NULL,
    calling_ae        TEXT   NOT NULL,
    detected_at       BIGINT NOT NULL
);
CREATE INDEX instance_conflicts_sop ON instance_conflicts (sop_instance_uid);

-- Append-only record of security-relevant events (rejected associations now; data access later).
CREATE TABLE audit_events (
    id           TEXT   NOT NULL PRIMARY KEY,
    at           BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    actor        TEXT   NOT NULL,
    institution  TEXT   NOT NULL,
    address      TEXT   NOT NULL,
    outcome      TEXT   NOT NULL,
    detail       TEXT   NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
