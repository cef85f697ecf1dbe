-- Clocks and facts the quality indicators need that the workflow did not keep yet.

-- T1: when the examination was done, the latest acquisition or content time (a recording's
-- start plus its duration) of the objects the clinic sent; NULL while none said.
ALTER TABLE studies ADD COLUMN examined_at BIGINT;

-- A case withdrawn (the referral cancelled, the study sent in error): it leaves the worklist and
-- every indicator, and is counted as excluded. Who did it and why stay with it.
ALTER TABLE cases ADD COLUMN cancelled_at BIGINT;
ALTER TABLE cases ADD COLUMN cancelled_by TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN cancel_reason TEXT NOT NULL DEFAULT '';
-- The status the case had when it was cancelled.
ALTER TABLE cases ADD COLUMN cancelled_from TEXT NOT NULL DEFAULT '';

-- The reader found the study non-diagnostic and asked for a repeat (indicator TC-07).
ALTER TABLE reports ADD COLUMN non_diagnostic BIGINT NOT NULL DEFAULT 0;

-- Indicator TC-05 asks, for every study received in a period, whether linking it needed a
-- person: found by study.
CREATE INDEX link_exceptions_study ON link_exceptions (study_uid);

-- Indicator reports as generated and kept: immutable, versioned per period. The report (JSON)
-- and its FHIR Bundle are frozen in the object store under their SHA-256; recomputing a period
-- makes a new version only when something changed, and says what.
CREATE TABLE indicator_reports (
    id                  TEXT   NOT NULL PRIMARY KEY,
    period              TEXT   NOT NULL,
    version             BIGINT NOT NULL,
    generated_at        BIGINT NOT NULL,
    generated_by        TEXT   NOT NULL,
    definitions_version TEXT   NOT NULL,
    content_key         TEXT   NOT NULL,
    content_sha256      TEXT   NOT NULL,
    bundle_key          TEXT   NOT NULL,
    bundle_sha256       TEXT   NOT NULL,
    -- What differs from the version before ('' for the first), one change a line.
    changes             TEXT   NOT NULL
);
CREATE UNIQUE INDEX indicator_reports_version ON indicator_reports (period, version);
