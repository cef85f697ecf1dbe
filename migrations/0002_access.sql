-- Retrieval and access: people and machines who may read, their sessions and tokens, a
-- fuller access audit, and what matching by name and modality needs.

-- Local accounts. `role` is clinic, cardiologist, auditor or admin; `institution` the clinic
-- or centre id the account speaks for ('' for auditors and admins). An empty password hash
-- means the account signs in with API tokens only (machines).
CREATE TABLE users (
    name            TEXT   NOT NULL PRIMARY KEY,
    role            TEXT   NOT NULL,
    institution     TEXT   NOT NULL,
    password_hash   TEXT   NOT NULL,
    pixel_access    BIGINT NOT NULL,
    disabled_at     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Bearer tokens: only a SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id              TEXT   NOT NULL PRIMARY KEY,
    user_name       TEXT   NOT NULL REFERENCES users (name),
    label           TEXT   NOT NULL,
    secret_sha256   TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    revoked_at      BIGINT,
    last_used_at    BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);

-- Browser sessions: the cookie carries a random secret; only its SHA-256 is kept.
CREATE TABLE sessions (
    secret_sha256   TEXT   NOT NULL PRIMARY KEY,
    user_name       TEXT   NOT NULL REFERENCES users (name),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);

ALTER TABLE audit_events ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN patient_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN study_uid TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_study ON audit_events (study_uid);
CREATE INDEX audit_events_patient ON audit_events (patient_id);

-- Referring physician matched like patient names: without case and diacritics.
ALTER TABLE studies ADD COLUMN referring_search TEXT NOT NULL DEFAULT '';
UPDATE studies SET referring_search = lower(referring_physician);
CREATE INDEX studies_study_id ON studies (study_id);

-- Later content under an already stored SOP Instance UID is kept but not served: queries and
-- retrievals see the first object (the conflict table says where the other one is).
ALTER TABLE instances ADD COLUMN shadowed BIGINT NOT NULL DEFAULT 0;
UPDATE instances SET shadowed = 1 WHERE object_key IN (SELECT new_key FROM instance_conflicts);

CREATE INDEX series_modality ON series (modality, study_uid);
CREATE INDEX patients_birth_date ON patients (birth_date);
