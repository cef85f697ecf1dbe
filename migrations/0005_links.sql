-- Links between referrals and studies that could not be made automatically: they wait here,
-- with the reason, for an administrator (never auto-resolved). `status` is open or resolved.
CREATE TABLE link_exceptions (
    id              TEXT   NOT NULL PRIMARY KEY,
    kind            TEXT   NOT NULL,
    clinic_id       TEXT   NOT NULL,
    referral_id     TEXT   NOT NULL,
    study_uid       TEXT   NOT NULL,
    reason          TEXT   NOT NULL,
    status          TEXT   NOT NULL,
    resolution      TEXT   NOT NULL,
    resolved_by     TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    resolved_at     BIGINT
);
-- One open exception per referral, study and kind: a resend does not repeat it.
CREATE UNIQUE INDEX link_exceptions_open ON link_exceptions (referral_id, study_uid, kind)
    WHERE status = 'open';
CREATE INDEX link_exceptions_clinic ON link_exceptions (clinic_id, status);
CREATE INDEX referrals_study ON referrals (study_uid);
