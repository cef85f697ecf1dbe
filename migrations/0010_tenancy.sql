-- Tenancy: every patient record belongs to one clinic, and writes into another clinic's data
-- are refused and kept on record.

-- A patient record is keyed by the clinic whose objects and messages made it, then by the
-- identifier and its issuer: clinic A's `MRN-123` and clinic B's `MRN-123` are two records, and
-- even one national personal code at two clinics is two records, each with its own clinic's
-- demographics. Existing shared rows become one row per clinic that has studies of the patient;
-- a row no study names is kept under clinic ''. Where studies of several clinics shared a row,
-- its demographics came from whichever clinic wrote last: each clinic's copy is marked `stale`
-- (and no longer HIS-maintained) until the service has read them again from that clinic's own
-- newest object, at start-up.
CREATE TABLE patients_by_clinic (
    clinic_id       TEXT   NOT NULL,
    patient_id      TEXT   NOT NULL,
    issuer          TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    name_search     TEXT   NOT NULL,
    birth_date      TEXT   NOT NULL,
    sex             TEXT   NOT NULL,
    other_ids       TEXT   NOT NULL,
    updated_at      BIGINT NOT NULL,
    maintained_by   TEXT   NOT NULL,
    stale           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (clinic_id, patient_id, issuer)
);
INSERT INTO patients_by_clinic (clinic_id, patient_id, issuer, name, name_search, birth_date,
    sex, other_ids, updated_at, maintained_by)
SELECT DISTINCT s.clinic_id, p.patient_id, p.issuer, p.name, p.name_search, p.birth_date,
    p.sex, p.other_ids, p.updated_at, p.maintained_by
FROM patients p JOIN studies s ON s.patient_id = p.patient_id AND s.issuer = p.issuer;
INSERT INTO patients_by_clinic (clinic_id, patient_id, issuer, name, name_search, birth_date,
    sex, other_ids, updated_at, maintained_by)
SELECT '', p.patient_id, p.issuer, p.name, p.name_search, p.birth_date, p.sex, p.other_ids,
    p.updated_at, p.maintained_by
FROM patients p
WHERE NOT EXISTS (SELECT 1 FROM studies s WHERE s.patient_id = p.patient_id
                  AND s.issuer = p.issuer);
UPDATE patients_by_clinic SET stale = 1, maintained_by = ''
WHERE (SELECT COUNT(DISTINCT s.clinic_id) FROM studies s
       WHERE s.patient_id = patients_by_clinic.patient_id
         AND s.issuer = patients_by_clinic.issuer) > 1;
DROP TABLE patients;
ALTER TABLE patients_by_clinic RENAME TO patients;
CREATE INDEX patients_stale ON patients (stale);
CREATE INDEX patients_name_search ON patients (name_search);
CREATE INDEX patients_birth_date ON patients (birth_date);
CREATE INDEX patients_id ON patients (patient_id);

CREATE TABLE patient_other_ids_by_clinic (
    clinic_id       TEXT   NOT NULL,
    patient_id      TEXT   NOT NULL,
    issuer          TEXT   NOT NULL,
    other_id        TEXT   NOT NULL,
    other_issuer    TEXT   NOT NULL,
    PRIMARY KEY (clinic_id, patient_id, issuer, other_id, other_issuer)
);
INSERT INTO patient_other_ids_by_clinic (clinic_id, patient_id, issuer, other_id, other_issuer)
SELECT p.clinic_id, o.patient_id, o.issuer, o.other_id, o.other_issuer
FROM patient_other_ids o JOIN patients p ON p.patient_id = o.patient_id AND p.issuer = o.issuer;
DROP TABLE patient_other_ids;
ALTER TABLE patient_other_ids_by_clinic RENAME TO patient_other_ids;
CREATE INDEX patient_other_ids_other ON patient_other_ids (other_id);

-- The studies of one clinic's patient, found from the patient side.
CREATE INDEX studies_clinic_patient ON studies (clinic_id, patient_id, issuer);

-- Who holds each SOP Instance UID: the clinic that stored it first. Ingest takes this row
-- under its lock before it files an instance, so two clinics sending one SOP Instance UID at
-- once cannot both keep it.
CREATE TABLE instance_owners (
    sop_instance_uid TEXT   NOT NULL PRIMARY KEY,
    clinic_id        TEXT   NOT NULL
);
INSERT INTO instance_owners (sop_instance_uid, clinic_id)
SELECT sop_instance_uid, clinic_id FROM instances WHERE 1 = 1 ORDER BY received_at
ON CONFLICT (sop_instance_uid) DO NOTHING;

-- Objects refused because they named a study, series or SOP instance another clinic owns: what
-- was tried, by whom, through which door, and whose data it named. Nothing of the object was
-- stored. Append-only; administrators list it.
CREATE TABLE ownership_refusals (
    id              TEXT   NOT NULL PRIMARY KEY,
    at              BIGINT NOT NULL,
    clinic_id       TEXT   NOT NULL,
    owner_id        TEXT   NOT NULL,
    what            TEXT   NOT NULL,
    uid             TEXT   NOT NULL,
    sop_instance_uid TEXT  NOT NULL,
    door            TEXT   NOT NULL,
    actor           TEXT   NOT NULL,
    address         TEXT   NOT NULL
);
CREATE INDEX ownership_refusals_at ON ownership_refusals (at);
