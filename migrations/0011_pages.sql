-- Pages for people: a browser session also ends after a spell without activity.
-- `last_seen_at` is when the session was last used (refreshed at most once a minute).
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;

-- Auditors search the trail by who, which patient and which study, newest first.
-- (patient_id and study_uid have their indexes since 0002.)
CREATE INDEX audit_events_actor ON audit_events (actor, at);
-- The archive overview counts what each clinic sent in a period.
CREATE INDEX instances_received ON instances (received_at);
