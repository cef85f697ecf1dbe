//! Recording a stored object: patient, study, series and instance rows in one transaction.
//!
//! Rows are locked in one order (patient, study, series, instance) so concurrent associations
//! writing to the same study serialise on the study row instead of deadlocking, and the
//! study-level aggregates (counts, bytes, modalities) stay exact.

use sqlx::{Any, Row, Transaction};

use super::{now_micros, Index, IndexError};

/// Everything the index keeps about one stored object.
#[derive(Debug, Clone, Default)]
pub struct InstanceRecord {
    pub object_key: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub transfer_syntax: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub dataset_sha256: String,
    pub clinic_id: String,
    pub calling_ae: String,
    /// Made by the service (a report object), not received: no `data_received` entry.
    pub made_here: bool,
    pub patient_id: String,
    pub patient_issuer: String,
    pub patient_name: String,
    pub patient_name_search: String,
    pub birth_date: String,
    pub sex: String,
    pub other_patient_ids: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub accession_issuer: String,
    pub study_id: String,
    pub study_description: String,
    pub referring_physician: String,
    /// The referring physician's name in [`InstanceRecord::patient_name_search`]'s form.
    pub referring_physician_search: String,
    pub modality: String,
    pub series_number: Option<i64>,
    pub series_description: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
}

/// What recording found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new instance row; `new_series` when it is the first of its series.
    New { new_series: bool },
    /// The same object was already indexed (an identical resend).
    Duplicate,
    /// New row, but other content was already stored under this SOP Instance UID.
    Conflict { existing_key: String },
}

impl Index {
    pub async fn record_instance(&self, rec: &InstanceRecord) -> Result<Recorded, IndexError> {
        // A patient the clinic merged into another (ADT^A40) is filed under the survivor,
        // whose demographics the object does not overwrite. Looked up before the transaction:
        // on SQLite a transaction that reads first cannot wait for the write lock (it fails
        // busy at once under concurrent associations); this one's first statement writes.
        let merged = self
            .survivor_of(&rec.clinic_id, &rec.patient_id, &rec.patient_issuer)
            .await?
            .map(|(patient_id, patient_issuer)| InstanceRecord {
                patient_id,
                patient_issuer,
                ..rec.clone()
            });
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin"))?;
        let now = now_micros();
        let rec = match &merged {
            Some(redirected) => {
                // The survivor keeps its demographics; its row is made only if it has none.
                sqlx::query(
                    "INSERT INTO patients (patient_id, issuer, name, name_search, birth_date, sex,
                       other_ids, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, '', $7)
                     ON CONFLICT (patient_id, issuer) DO NOTHING",
                )
                .bind(&redirected.patient_id)
                .bind(&redirected.patient_issuer)
                .bind(&redirected.patient_name)
                .bind(&redirected.patient_name_search)
                .bind(&redirected.birth_date)
                .bind(&redirected.sex)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(IndexError::query("survivor patient"))?;
                redirected
            }
            None => {
                upsert_patient(&mut tx, rec, now).await?;
                rec
            }
        };
        upsert_study(&mut tx, rec, now).await?;
        // Under the study lock: what this SOP Instance UID already has.
        let existing = keys_of_instance(&mut tx, &rec.sop_instance_uid).await?;
        if existing.contains(&rec.object_key) {
            tx.commit().await.map_err(IndexError::query("commit"))?;
            return Ok(Recorded::Duplicate);
        }
        let new_series = count_in_series(&mut tx, rec, now).await? == 1;
        insert_instance(&mut tx, rec, !existing.is_empty(), now).await?;
        update_study(&mut tx, rec, new_series, now).await?;
        let outcome = match existing.into_iter().next() {
            Some(existing_key) => {
                insert_conflict(&mut tx, rec, &existing_key, now).await?;
                Recorded::Conflict { existing_key }
            }
            None => Recorded::New { new_series },
        };
        if new_series && !rec.made_here {
            journal_series(&mut tx, rec, now).await?;
        }
        tx.commit().await.map_err(IndexError::query("commit"))?;
        Ok(outcome)
    }

    /// Records many objects in one transaction, with the same rows and aggregates as
    /// [`Index::record_instance`] one at a time. For loading benchmark indexes quickly.
    pub async fn record_batch(&self, records: &[InstanceRecord]) -> Result<(), IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin"))?;
        let now = now_micros();
        for rec in records {
            upsert_patient(&mut tx, rec, now).await?;
            upsert_study(&mut tx, rec, now).await?;
            let new_series = count_in_series(&mut tx, rec, now).await? == 1;
            insert_instance(&mut tx, rec, false, now).await?;
            update_study(&mut tx, rec, new_series, now).await?;
        }
        tx.commit().await.map_err(IndexError::query("commit"))?;
        Ok(())
    }

    /// Whether an object key is indexed (used to repair a crash between store and index).
    pub async fn has_object(&self, object_key: &str) -> Result<bool, IndexError> {
        let row = sqlx::query("SELECT 1 FROM instances WHERE object_key = $1")
            .bind(object_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select instance by key"))?;
        Ok(row.is_some())
    }
}

/// The registration journal's `data_received` entry for a new series, in the instance's own
/// transaction (no extra commit on the receive path), filed under the study's referral if it
/// has one already.
async fn journal_series(
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

async fn upsert_patient(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    now: i64,
) -> Result<(), IndexError> {
    sqlx::query(
        "INSERT INTO patients (patient_id, issuer, name, name_search, birth_date, sex, other_ids, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (patient_id, issuer) DO UPDATE SET
           name = CASE WHEN patients.maintained_by = '' THEN excluded.name ELSE patients.name END,
           name_search = CASE WHEN patients.maintained_by = '' THEN excluded.name_search
                              ELSE patients.name_search END,
           birth_date = CASE WHEN patients.maintained_by = '' THEN excluded.birth_date
                             ELSE patients.birth_date END,
           sex = CASE WHEN patients.maintained_by = '' THEN excluded.sex ELSE patients.sex END,
           other_ids = CASE WHEN excluded.other_ids = '' THEN patients.other_ids
                            ELSE excluded.other_ids END,
           updated_at = excluded.updated_at",
    )
    .bind(&rec.patient_id)
    .bind(&rec.patient_issuer)
    .bind(&rec.patient_name)
    .bind(&rec.patient_name_search)
    .bind(&rec.birth_date)
    .bind(&rec.sex)
    .bind(&rec.other_patient_ids)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("upsert patient"))?;
    // An object without Other Patient IDs says nothing about them: the known ones stay (and
    // the common case costs no statement). An object that lists them replaces them.
    if rec.other_patient_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM patient_other_ids WHERE patient_id = $1 AND issuer = $2")
        .bind(&rec.patient_id)
        .bind(&rec.patient_issuer)
        .execute(&mut **tx)
        .await
        .map_err(IndexError::query("replace other patient ids"))?;
    for (other_id, other_issuer) in other_ids(&rec.other_patient_ids) {
        sqlx::query(
            "INSERT INTO patient_other_ids (patient_id, issuer, other_id, other_issuer)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&rec.patient_id)
        .bind(&rec.patient_issuer)
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

async fn upsert_study(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    now: i64,
) -> Result<(), IndexError> {
    // The DO UPDATE takes the study row lock that serialises writers of one study.
    sqlx::query(
        "INSERT INTO studies (study_uid, patient_id, issuer, study_date, study_time,
           accession_number, accession_issuer, study_id, description, referring_physician,
           referring_search, modalities, clinic_id, num_series, num_instances, total_bytes,
           first_received_at, last_received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $13, '', $11, 0, 0, 0, $12, $12)
         ON CONFLICT (study_uid) DO UPDATE SET last_received_at = excluded.last_received_at",
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
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("upsert study"))?;
    Ok(())
}

/// Adds the instance to its series (creating it) and returns the series' new count.
async fn count_in_series(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    now: i64,
) -> Result<i64, IndexError> {
    let row = sqlx::query(
        "INSERT INTO series (series_uid, study_uid, modality, series_number, description,
           num_instances, first_received_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6)
         ON CONFLICT (series_uid) DO UPDATE SET num_instances = series.num_instances + 1
         RETURNING num_instances",
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
    row.try_get(0)
        .map_err(IndexError::query("decode series count"))
}

async fn keys_of_instance(
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

async fn insert_instance(
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
async fn update_study(
    tx: &mut Transaction<'_, Any>,
    rec: &InstanceRecord,
    new_series: bool,
    now: i64,
) -> Result<(), IndexError> {
    let modalities = if new_series {
        let rows = sqlx::query(
            "SELECT DISTINCT modality FROM series WHERE study_uid = $1 ORDER BY modality",
        )
        .bind(&rec.study_uid)
        .fetch_all(&mut **tx)
        .await
        .map_err(IndexError::query("study modalities"))?;
        let list: Vec<String> = rows
            .iter()
            .filter_map(|row| row.try_get::<String, _>(0).ok())
            .filter(|m| !m.is_empty())
            .collect();
        Some(list.join("\\"))
    } else {
        None
    };
    sqlx::query(
        "UPDATE studies SET
           num_instances = num_instances + 1,
           total_bytes = total_bytes + $2,
           num_series = num_series + $3,
           modalities = COALESCE($4, modalities),
           last_received_at = $5
         WHERE study_uid = $1",
    )
    .bind(&rec.study_uid)
    .bind(rec.size_bytes)
    .bind(i64::from(new_series))
    .bind(modalities)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("update study aggregates"))?;
    Ok(())
}

async fn insert_conflict(
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
