-- Holter recordings received as files (ISHNE 1.0, EDF, EDF+): the original as the clinic sent
-- it, stored create-only under holter/{clinic}/{sha256}.{ext}, and the DICOM Ambulatory ECG
-- series made from it. One row per copy: the same file for another referral is another copy.
CREATE TABLE holter_originals (
    series_uid   TEXT   NOT NULL PRIMARY KEY,
    object_key   TEXT   NOT NULL,
    sha256       TEXT   NOT NULL,
    size_bytes   BIGINT NOT NULL,
    format       TEXT   NOT NULL,
    file_name    TEXT   NOT NULL,
    clinic_id    TEXT   NOT NULL,
    referral_id  TEXT   NOT NULL,
    study_uid    TEXT   NOT NULL,
    instances    BIGINT NOT NULL,
    channels     BIGINT NOT NULL,
    rate         BIGINT NOT NULL,
    samples      BIGINT NOT NULL,
    started      TEXT   NOT NULL,
    annotations  BIGINT NOT NULL,
    received_by  TEXT   NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX holter_originals_study ON holter_originals (study_uid);
CREATE INDEX holter_originals_key ON holter_originals (object_key);
