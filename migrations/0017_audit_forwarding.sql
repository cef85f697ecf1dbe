-- How far the audit trail has been sent to the hospital's audit repository (syslog over TLS):
-- the chain position of the last event the repository's connection took. Sending is at least
-- once: after a failure the events from here on are sent again.
CREATE TABLE audit_forwarding (
    id          INTEGER NOT NULL PRIMARY KEY,
    seq         BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
INSERT INTO audit_forwarding (id, seq, updated_at) VALUES (1, 0, 0);
