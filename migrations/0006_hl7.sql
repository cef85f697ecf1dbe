-- HL7 v2 orders and patient maintenance.

-- The HL7 v2 order message a referral was made from ('' for referrals that came as CDA). It
-- stays when a later CDA for the same order becomes the referral's document.
ALTER TABLE referrals ADD COLUMN order_message_key TEXT NOT NULL DEFAULT '';

-- Patient merges (ADT^A40): a clinic's records under the prior identifier now belong to the
-- survivor. Queries for the prior identifier answer the survivor; objects arriving later with
-- the prior identifier are indexed under the survivor. Append-only.
CREATE TABLE patient_merges (
    id              TEXT   NOT NULL PRIMARY KEY,
    clinic_id       TEXT   NOT NULL,
    prior_id        TEXT   NOT NULL,
    prior_issuer    TEXT   NOT NULL,
    survivor_id     TEXT   NOT NULL,
    survivor_issuer TEXT   NOT NULL,
    merged_at       BIGINT NOT NULL,
    actor           TEXT   NOT NULL,
    message_id      TEXT   NOT NULL
);
CREATE INDEX patient_merges_prior ON patient_merges (prior_id, prior_issuer);
CREATE INDEX patient_merges_survivor ON patient_merges (survivor_id, survivor_issuer);

-- Who keeps a patient's demographics: '' while objects do (the latest object's name, birth
-- date and sex), 'hl7' once the clinic's HIS has sent them (ADT^A08/A40): the HIS is then the
-- authority and objects no longer overwrite them.
ALTER TABLE patients ADD COLUMN maintained_by TEXT NOT NULL DEFAULT '';

CREATE INDEX journal_at ON journal (at);
