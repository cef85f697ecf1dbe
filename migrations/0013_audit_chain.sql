-- The tamper-evident audit trail. Every event takes the next number of one chain (`seq`, one
-- total order across every node on the database) and stores the SHA-256 of the previous
-- event's record (`prev_hash`) and of its own canonical form, which includes `prev_hash`
-- (`hash`); editing, removing, reordering or inserting an event then breaks the chain at that
-- event. `audit_chain` is the chain's head: its one row is locked by each append, which is
-- what serialises appends from several nodes. Events recorded before the chain existed are
-- chained, in time order, the first time the index is opened after this migration (once).
ALTER TABLE audit_events ADD COLUMN seq BIGINT;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);

CREATE TABLE audit_chain (
    id          INTEGER NOT NULL PRIMARY KEY,
    seq         BIGINT  NOT NULL,
    hash        TEXT    NOT NULL,
    -- 1 once the events from before the chain were chained: that happens once, so an event
    -- slipped in later without a place in the chain is never chained in for it.
    backfilled  INTEGER NOT NULL
);
INSERT INTO audit_chain (id, seq, hash, backfilled) VALUES (1, 0, '', 0);

-- The chain head as signed (Ed25519) each day, and whenever an administrator asks: the signed
-- record itself is kept in the object store (`audit/heads/…`), where `audit verify` reads it,
-- so that rewriting the database alone cannot hide a rewritten trail.
CREATE TABLE audit_heads (
    object_key  TEXT   NOT NULL PRIMARY KEY,
    day         TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    hash        TEXT   NOT NULL,
    signed_at   BIGINT NOT NULL
);
CREATE INDEX audit_heads_day ON audit_heads (day);
