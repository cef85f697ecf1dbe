-- Reports: a cardiologist's description of a case, drafted, then signed (point 13.1 of the
-- order: the description identifies who wrote it). A signed version is frozen: its text is
-- kept in the object store under its SHA-256; a correction is a new version that amends it.

-- The signer's identity as it goes on a report.
ALTER TABLE users ADD COLUMN full_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN licence TEXT NOT NULL DEFAULT '';

CREATE TABLE reports (
    id                TEXT   NOT NULL PRIMARY KEY,
    case_id           TEXT   NOT NULL,
    version           BIGINT NOT NULL,
    -- draft or signed.
    status            TEXT   NOT NULL,
    findings          TEXT   NOT NULL,
    conclusion        TEXT   NOT NULL,
    recommendations   TEXT   NOT NULL,
    free_text         TEXT   NOT NULL,
    author            TEXT   NOT NULL,
    -- The signed version this one corrects ('' for the first), and why.
    amends            TEXT   NOT NULL,
    amendment_reason  TEXT   NOT NULL,
    signer            TEXT   NOT NULL,
    signer_name       TEXT   NOT NULL,
    signer_licence    TEXT   NOT NULL,
    signer_centre     TEXT   NOT NULL,
    signed_at         BIGINT,
    content_key       TEXT   NOT NULL,
    content_sha256    TEXT   NOT NULL,
    -- The answer document (form 027 answer, HL7 CDA) made at signing.
    answer_key        TEXT   NOT NULL,
    answer_sha256     TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX reports_version ON reports (case_id, version);
-- One draft at a time per case.
CREATE UNIQUE INDEX reports_draft ON reports (case_id) WHERE status = 'draft';

-- T5: when the case's first report was signed.
ALTER TABLE cases ADD COLUMN signed_at BIGINT;

-- Delivery of signed report versions to the clinic, one row per version and channel (pull: the
-- clinic fetched the answer; push channels come with the delivery queue). The case is delivered
-- when its latest version is; T6 is its first delivery, as T5 is its first signature.
CREATE TABLE deliveries (
    id              TEXT   NOT NULL PRIMARY KEY,
    report_id       TEXT   NOT NULL,
    case_id         TEXT   NOT NULL,
    clinic_id       TEXT   NOT NULL,
    channel         TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    attempts        BIGINT NOT NULL,
    last_error      TEXT   NOT NULL,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX deliveries_report_channel ON deliveries (report_id, channel);
CREATE INDEX deliveries_clinic ON deliveries (clinic_id, status);

ALTER TABLE cases ADD COLUMN delivered_at BIGINT;
-- The latest signed version: only its delivery makes the case delivered.
ALTER TABLE cases ADD COLUMN report_version BIGINT;
