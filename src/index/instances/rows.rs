//! The statements that write an object's rows, each in the caller's transaction.

use sqlx::{Any, Row, Transaction};

use super::super::demographics::{self, Held, Source};
use super::super::IndexError;
use super::InstanceRecord;

/// The registration journal's `data_received` entry for a new series, in the instance's own
/// transaction (no extra commit on the receive path), filed under the study's referral if it
/// has one already.
pub(super) async fn journal_series(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    now: i64,
) -> Result<(), IndexError> {
    sqlx::query(
        "INSERT INTO journal (id, at, kind, clinic_id, institution, actor, patient_id,
           referral_id, study_uid, report_id, detail)
         VALUES ($1, $2, 'data_received', $3, $3, $4, $5,
           COALESCE((SELECT r.id FROM referrals r WHERE r.study_uid = $6 LIMIT 1), ''),
           $6, '', $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(now)
    .bind(&rec.clinic_id)
    .bind(&rec.calling_ae)
    .bind(&rec.patient_id)
    .bind(&rec.study_uid)
    .bind(format!("series {} ({})", rec.series_uid, rec.modality))
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("journal new series"))?;
    Ok(())
}

/// Makes sure the clinic's patient record exists and merges the object's demographics into it
/// by the rules of [`demographics`], as `source` may: one statement when they agree with the
/// record, which is nearly always.
pub(super) async fn upsert_patient(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    source: Source,
    now: i64,
) -> Result<(), IndexError> {
    // The no-op update makes the statement answer the row as it stands, and locks it. Other
    // IDs start empty, so a new record's are filed below like a changed list.
    let row = sqlx::query(
        "INSERT INTO patients (clinic_id, patient_id, issuer, name, name_search, birth_date, sex,
           other_ids, updated_at, maintained_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, '')
         ON CONFLICT (clinic_id, patient_id, issuer) DO UPDATE SET updated_at = patients.updated_at
         RETURNING name, name_search, birth_date, sex, maintained_by, other_ids",
    )
    .bind(&rec.clinic_id)
    .bind(&rec.patient_id)
    .bind(&rec.patient_issuer)
    .bind(&rec.patient_name)
    .bind(&rec.patient_name_search)
    .bind(&rec.birth_date)
    .bind(&rec.sex)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(IndexError::query("upsert patient"))?;
    let held = (|| Ok((held_at(&row, 0)?, row.try_get::<String, _>(5)?)))()
        .map_err(IndexError::query("read patient"))?;
    merge_patient(tx, rec, source, held, now).await
}

/// Merges the object's demographics into the record as it stood (`held`, with its Other
/// Patient IDs): nothing to write when they agree, which is nearly always.
pub(super) async fn merge_patient(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    source: Source,
    (held, held_other_ids): (Held, String),
    now: i64,
) -> Result<(), IndexError> {
    let incoming = Held {
        name: rec.patient_name.clone(),
        name_search: rec.patient_name_search.clone(),
        birth_date: rec.birth_date.clone(),
        sex: rec.sex.clone(),
        maintained_by: String::new(),
    };
    let key = PatientKey::of(rec);
    if let Some(next) = demographics::merge(&held, &incoming, source) {
        set_demographics(tx, &key, &next, now).await?;
    }
    // An object without Other Patient IDs says nothing about them: the known ones stay. An
    // object that lists others replaces them.
    let lists = source == Source::Object && !rec.other_patient_ids.is_empty();
    if lists && rec.other_patient_ids != held_other_ids {
        replace_other_ids(tx, &key, &rec.other_patient_ids).await?;
    }
    Ok(())
}

/// A record's demographics from five columns of `row` starting at `first`: name, its search
/// form, birth date, sex, and who maintains it.
pub(in crate::index) fn held_at(
    row: &sqlx::any::AnyRow,
    first: usize,
) -> Result<Held, sqlx::Error> {
    Ok(Held {
        name: row.try_get(first)?,
        name_search: row.try_get(first + 1)?,
        birth_date: row.try_get(first + 2)?,
        sex: row.try_get(first + 3)?,
        maintained_by: row.try_get(first + 4)?,
    })
}

/// One clinic's patient record: who keeps it, the identifier and its issuer.
#[derive(Debug, Clone, Copy)]
pub(in crate::index) struct PatientKey<'a> {
    pub clinic_id: &'a str,
    pub patient_id: &'a str,
    pub issuer: &'a str,
}

impl<'a> PatientKey<'a> {
    pub(super) fn of(rec: &'a InstanceRecord) -> PatientKey<'a> {
        PatientKey {
            clinic_id: &rec.clinic_id,
            patient_id: &rec.patient_id,
            issuer: &rec.patient_issuer,
        }
    }
}

/// Writes a record's merged demographics.
pub(in crate::index) async fn set_demographics(
    tx: &mut Transaction<'_, Any>,
    key: &PatientKey<'_>,
    d: &Held,
    now: i64,
) -> Result<(), IndexError> {
    sqlx::query(
        "UPDATE patients SET name = $4, name_search = $5, birth_date = $6, sex = $7,
           maintained_by = $8, updated_at = $9, stale = 0
         WHERE clinic_id = $1 AND patient_id = $2 AND issuer = $3",
    )
    .bind(key.clinic_id)
    .bind(key.patient_id)
    .bind(key.issuer)
    .bind(&d.name)
    .bind(&d.name_search)
    .bind(&d.birth_date)
    .bind(&d.sex)
    .bind(&d.maintained_by)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("set demographics"))?;
    Ok(())
}

/// Replaces a record's Other Patient IDs (the text form and the rows sequence matching uses).
pub(super) async fn replace_other_ids(
    tx: &mut Transaction<'_, Any>,
    key: &PatientKey<'_>,
    list: &str,
) -> Result<(), IndexError> {
    sqlx::query(
        "UPDATE patients SET other_ids = $4
         WHERE clinic_id = $1 AND patient_id = $2 AND issuer = $3",
    )
    .bind(key.clinic_id)
    .bind(key.patient_id)
    .bind(key.issuer)
    .bind(list)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("set other patient ids"))?;
    sqlx::query(
        "DELETE FROM patient_other_ids WHERE clinic_id = $1 AND patient_id = $2 AND issuer = $3",
    )
    .bind(key.clinic_id)
    .bind(key.patient_id)
    .bind(key.issuer)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("replace other patient ids"))?;
    for (other_id, other_issuer) in other_ids(list) {
        sqlx::query(
            "INSERT INTO patient_other_ids (clinic_id, patient_id, issuer, other_id, other_issuer)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(key.clinic_id)
        .bind(key.patient_id)
        .bind(key.issuer)
        .bind(other_id)
        .bind(other_issuer)
        .execute(&mut **tx)
        .await
        .map_err(IndexError::query("insert other patient id"))?;
    }
    Ok(())
}

/// The items of `patients.other_ids` (`id^^^issuer` joined by `\`) as (id, issuer) pairs.
pub fn other_ids(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split('\\')
        .filter(|item| !item.is_empty())
        .map(|item| item.split_once("^^^").unwrap_or((item, "")))
}

/// Creates the study or takes its row lock; answers the clinic that owns it.
pub(super) async fn upsert_study(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    now: i64,
) -> Result<String, IndexError> {
    // The DO UPDATE takes the study row lock that serialises writers of one study.
    let row = sqlx::query(
        "INSERT INTO studies (study_uid, patient_id, issuer, study_date, study_time,
           accession_number, accession_issuer, study_id, description, referring_physician,
           referring_search, modalities, clinic_id, num_series, num_instances, total_bytes,
           first_received_at, last_received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13, '', $11, 0, 0, 0, $12, $12)
         ON CONFLICT (study_uid) DO UPDATE SET last_received_at = excluded.last_received_at
         RETURNING clinic_id",
    )
    .bind(&rec.study_uid)
    .bind(&rec.patient_id)
    .bind(&rec.patient_issuer)
    .bind(&rec.study_date)
    .bind(&rec.study_time)
    .bind(&rec.accession_number)
    .bind(&rec.accession_issuer)
    .bind(&rec.study_id)
    .bind(&rec.study_description)
    .bind(&rec.referring_physician)
    .bind(&rec.clinic_id)
    .bind(now)
    .bind(&rec.referring_physician_search)
    .fetch_one(&mut **tx)
    .await
    .map_err(IndexError::query("upsert study"))?;
    row.try_get(0)
        .map_err(IndexError::query("read study owner"))
}

/// Adds the instance to its series (creating it); answers the series' new count and the study
/// the series belongs to.
pub(super) async fn count_in_series(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    now: i64,
) -> Result<(i64, String), IndexError> {
    let row = sqlx::query(
        "INSERT INTO series (series_uid, study_uid, modality, series_number, description,
           num_instances, first_received_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6)
         ON CONFLICT (series_uid) DO UPDATE SET num_instances = series.num_instances + 1
         RETURNING num_instances, study_uid",
    )
    .bind(&rec.series_uid)
    .bind(&rec.study_uid)
    .bind(&rec.modality)
    .bind(rec.series_number)
    .bind(&rec.series_description)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(IndexError::query("upsert series"))?;
    (|| Ok((row.try_get(0)?, row.try_get(1)?)))().map_err(IndexError::query("decode series count"))
}

/// Takes the SOP Instance UID for the record's clinic unless a clinic holds it already (the
/// row lock serialises two clinics storing it at once); answers the clinic that holds it.
pub(super) async fn claim_instance(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
) -> Result<String, IndexError> {
    let row = sqlx::query(
        "INSERT INTO instance_owners (sop_instance_uid, clinic_id) VALUES ($1, $2)
         ON CONFLICT (sop_instance_uid) DO UPDATE SET clinic_id = instance_owners.clinic_id
         RETURNING clinic_id",
    )
    .bind(&rec.sop_instance_uid)
    .bind(&rec.clinic_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(IndexError::query("claim instance"))?;
    row.try_get(0)
        .map_err(IndexError::query("read instance owner"))
}

/// The objects already under a SOP Instance UID, oldest first.
pub(super) async fn keys_of_instance(
    tx: &mut Transaction<'_, Any>,
    sop_instance_uid: &str,
) -> Result<Vec<String>, IndexError> {
    let rows = sqlx::query(
        "SELECT object_key FROM instances WHERE sop_instance_uid = $1 ORDER BY received_at",
    )
    .bind(sop_instance_uid)
    .fetch_all(&mut **tx)
    .await
    .map_err(IndexError::query("select instance keys"))?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(IndexError::query("decode instance key"))
}

pub(super) async fn insert_instance(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    shadowed: bool,
    now: i64,
) -> Result<(), IndexError> {
    sqlx::query(
        "INSERT INTO instances (object_key, sop_instance_uid, sop_class_uid, series_uid, study_uid,
           instance_number, number_of_frames, transfer_syntax, size_bytes, sha256, dataset_sha256,
           clinic_id, calling_ae, received_at, shadowed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&rec.object_key)
    .bind(&rec.sop_instance_uid)
    .bind(&rec.sop_class_uid)
    .bind(&rec.series_uid)
    .bind(&rec.study_uid)
    .bind(rec.instance_number)
    .bind(rec.number_of_frames)
    .bind(&rec.transfer_syntax)
    .bind(rec.size_bytes)
    .bind(&rec.sha256)
    .bind(&rec.dataset_sha256)
    .bind(&rec.clinic_id)
    .bind(&rec.calling_ae)
    .bind(now)
    .bind(i64::from(shadowed))
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("insert instance"))?;
    Ok(())
}

/// Study aggregates; the modality list is recomputed only when a series was added.
pub(super) async fn update_study(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    new_series: bool,
    now: i64,
) -> Result<(), IndexError> {
    let modalities = if new_series {
        Some(study_modalities(tx, &rec.study_uid).await?)
    } else {
        None
    };
    sqlx::query(
        "UPDATE studies SET
           num_instances = num_instances + 1,
           total_bytes = total_bytes + $2,
           num_series = num_series + $3,
           modalities = COALESCE($4, modalities),
           last_received_at = $5,
           examined_at = CASE WHEN COALESCE(examined_at, -1) < COALESCE($6, -1) THEN $6
                         ELSE examined_at END
         WHERE study_uid = $1",
    )
    .bind(&rec.study_uid)
    .bind(rec.size_bytes)
    .bind(i64::from(new_series))
    .bind(modalities)
    .bind(now)
    .bind(rec.examined_at)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("update study aggregates"))?;
    Ok(())
}

/// The study's modalities, as its row lists them: each once, in order, `\`-separated.
pub(super) async fn study_modalities(
    tx: &mut Transaction<'_, Any>,
    study_uid: &str,
) -> Result<String, IndexError> {
    let rows =
        sqlx::query("SELECT DISTINCT modality FROM series WHERE study_uid = $1 ORDER BY modality")
            .bind(study_uid)
            .fetch_all(&mut **tx)
            .await
            .map_err(IndexError::query("study modalities"))?;
    let list: Vec<String> = rows
        .iter()
        .filter_map(|row| row.try_get::<String, _>(0).ok())
        .filter(|m| !m.is_empty())
        .collect();
    Ok(list.join("\\"))
}

pub(super) async fn insert_conflict(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    existing_key: &str,
    now: i64,
) -> Result<(), IndexError> {
    sqlx::query(
        "INSERT INTO instance_conflicts (id, sop_instance_uid, existing_key, new_key, clinic_id,
           calling_ae, detected_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&rec.sop_instance_uid)
    .bind(existing_key)
    .bind(&rec.object_key)
    .bind(&rec.clinic_id)
    .bind(&rec.calling_ae)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("insert conflict"))?;
    Ok(())
}
