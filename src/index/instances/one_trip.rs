//! SQLite: the usual object's rows in one hand-off to the connection's thread.
//!
//! sqlx runs each SQLite statement on the connection's own thread, and every hand-off there and
//! back wakes two threads: on the virtual machines measured, 0.2–0.6 ms a statement, more than
//! SQLite spends on it. The careful path ([`super::Index::prepare_instance`]) takes eight
//! statements per object. Nearly every object is the usual one: a new instance in a study and
//! series of its own clinic, nothing else stored under its SOP Instance UID. One batch of
//! statements writes its rows as if it were, and answers what it found; when it was not (a
//! foreign owner, a resend, a conflict, a series filed under another study) the caller rolls the
//! batch back and takes the careful path, whose rules stay the only rules.

use sqlx::{Any, Row, Transaction};

use super::super::demographics::Source;
use super::super::IndexError;
use super::rows::{held_at, journal_series, merge_patient, study_modalities};
use super::{InstanceRecord, Recorded};

/// Every row of the usual object, tagged by what it answers (first column). The statements
/// and their order are the careful path's; the instance row goes in only when nothing is under
/// its SOP Instance UID, so a resend leaves no error behind, only a `key` row to roll back on.
const BATCH: &str = "
INSERT INTO patients (clinic_id, patient_id, issuer, name, name_search, birth_date, sex,
  other_ids, updated_at, maintained_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, '')
ON CONFLICT (clinic_id, patient_id, issuer) DO UPDATE SET updated_at = patients.updated_at
RETURNING 'patient', name, name_search, birth_date, sex, maintained_by, other_ids;
INSERT INTO studies (study_uid, patient_id, issuer, study_date, study_time,
  accession_number, accession_issuer, study_id, description, referring_physician,
  referring_search, modalities, clinic_id, num_series, num_instances, total_bytes,
  first_received_at, last_received_at)
VALUES ($9, $2, $3, $10, $11, $12, $13, $14, $15, $16, $17, '', $1, 0, 0, 0, $8, $8)
ON CONFLICT (study_uid) DO UPDATE SET last_received_at = excluded.last_received_at
RETURNING 'study', clinic_id;
INSERT INTO instance_owners (sop_instance_uid, clinic_id) VALUES ($18, $1)
ON CONFLICT (sop_instance_uid) DO UPDATE SET clinic_id = instance_owners.clinic_id
RETURNING 'owner', clinic_id;
SELECT 'key', object_key FROM instances WHERE sop_instance_uid = $18;
INSERT INTO series (series_uid, study_uid, modality, series_number, description,
  num_instances, first_received_at)
VALUES ($19, $9, $20, $21, $22, 1, $8)
ON CONFLICT (series_uid) DO UPDATE SET num_instances = series.num_instances + 1
RETURNING 'series', num_instances, study_uid;
INSERT INTO instances (object_key, sop_instance_uid, sop_class_uid, series_uid, study_uid,
  instance_number, number_of_frames, transfer_syntax, size_bytes, sha256, dataset_sha256,
  clinic_id, calling_ae, received_at, shadowed)
SELECT $23, $18, $24, $19, $9, $25, $26, $27, $28, $29, $30, $1, $31, $8, 0
WHERE NOT EXISTS (SELECT 1 FROM instances WHERE sop_instance_uid = $18);
UPDATE studies SET
  num_instances = num_instances + 1,
  total_bytes = total_bytes + $28,
  last_received_at = $8,
  examined_at = CASE WHEN COALESCE(examined_at, -1) < COALESCE($32, -1) THEN $32
                ELSE examined_at END
WHERE study_uid = $9";

/// What the batch found, row by row.
#[derive(Default)]
struct Found {
    held: Option<(super::super::demographics::Held, String)>,
    study_owner: Option<String>,
    instance_owner: Option<String>,
    keys: usize,
    series: Option<(i64, String)>,
}

/// Writes the object's rows in `tx` if it is the usual one and answers what that records;
/// `None` when it is not, and `tx` must then be rolled back.
pub(super) async fn write(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    source: Source,
    now: i64,
) -> Result<Option<Recorded>, IndexError> {
    let rows = sqlx::query(BATCH)
        .bind(&rec.clinic_id)
        .bind(&rec.patient_id)
        .bind(&rec.patient_issuer)
        .bind(&rec.patient_name)
        .bind(&rec.patient_name_search)
        .bind(&rec.birth_date)
        .bind(&rec.sex)
        .bind(now)
        .bind(&rec.study_uid)
        .bind(&rec.study_date)
        .bind(&rec.study_time)
        .bind(&rec.accession_number)
        .bind(&rec.accession_issuer)
        .bind(&rec.study_id)
        .bind(&rec.study_description)
        .bind(&rec.referring_physician)
        .bind(&rec.referring_physician_search)
        .bind(&rec.sop_instance_uid)
        .bind(&rec.series_uid)
        .bind(&rec.modality)
        .bind(rec.series_number)
        .bind(&rec.series_description)
        .bind(&rec.object_key)
        .bind(&rec.sop_class_uid)
        .bind(rec.instance_number)
        .bind(rec.number_of_frames)
        .bind(&rec.transfer_syntax)
        .bind(rec.size_bytes)
        .bind(&rec.sha256)
        .bind(&rec.dataset_sha256)
        .bind(&rec.calling_ae)
        .bind(rec.examined_at)
        .fetch_all(&mut **tx)
        .await
        .map_err(IndexError::query("instance rows in one batch"))?;
    let found = read(&rows).map_err(IndexError::query("read the batch's answers"))?;
    let (Some(held), Some(study_owner), Some(instance_owner), Some((count, series_study))) = (
        found.held,
        found.study_owner,
        found.instance_owner,
        found.series,
    ) else {
        return Ok(None);
    };
    let usual = study_owner == rec.clinic_id
        && instance_owner == rec.clinic_id
        && found.keys == 0
        && series_study == rec.study_uid;
    if !usual {
        return Ok(None);
    }
    merge_patient(tx, rec, source, held, now).await?;
    let new_series = count == 1;
    if new_series {
        add_series(tx, rec).await?;
        if !rec.made_here {
            journal_series(tx, rec, now).await?;
        }
    }
    Ok(Some(Recorded::New { new_series }))
}

fn read(rows: &[sqlx::any::AnyRow]) -> Result<Found, sqlx::Error> {
    let mut found = Found::default();
    for row in rows {
        match row.try_get::<String, _>(0)?.as_str() {
            "patient" => found.held = Some((held_at(row, 1)?, row.try_get(6)?)),
            "study" => found.study_owner = Some(row.try_get(1)?),
            "owner" => found.instance_owner = Some(row.try_get(1)?),
            "key" => found.keys += 1,
            "series" => found.series = Some((row.try_get(1)?, row.try_get(2)?)),
            _ => {}
        }
    }
    Ok(found)
}

/// The study's series count and modality list, once its new series' first instance is in.
async fn add_series(tx: &mut Transaction<'_, Any>, rec: &InstanceRecord) -> Result<(), IndexError> {
    let modalities = study_modalities(tx, &rec.study_uid).await?;
    sqlx::query(
        "UPDATE studies SET num_series = num_series + 1, modalities = $2 WHERE study_uid = $1",
    )
    .bind(&rec.study_uid)
    .bind(modalities)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("add series to study"))?;
    Ok(())
}
