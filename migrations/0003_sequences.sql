-- Sequence matching (PS3.4 C.2.2.2.6) on Other Patient IDs: one row per item, so that an item's
-- ID and issuer are matched together. Kept in step with patients.other_ids by ingest.
CREATE TABLE patient_other_ids (
    patient_id      TEXT   NOT NULL,
    issuer          TEXT   NOT NULL,
    other_id        TEXT   NOT NULL,
    other_issuer    TEXT   NOT NULL,
    PRIMARY KEY (patient_id, issuer, other_id, other_issuer)
);
CREATE INDEX patient_other_ids_other ON patient_other_ids (other_id);
