//! Recording a stored object: patient, study, series and instance rows in one transaction.
//!
//! Rows are locked in one order (patient, study, series, instance) so concurrent associations
//! writing to the same study serialise on the study row instead of deadlocking, and the
//! study-level aggregates (counts, bytes, modalities) stay exact.

use sqlx::{Any, Row, Transaction};

use super::demographics::{self, Held, Source};
use super::{now_micros, Engine, Index, IndexError};

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
    /// When it was received, if not now (an index rebuilt from the store).
    pub received_at: Option<i64>,
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
    /// T1, when the object says when its examination was done; `None` for what the service
    /// made itself.
    pub examined_at: Option<i64>,
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
    /// Nothing was recorded: the object names what it may not write into.
    Refused(Collision),
}

/// Why an object may not be recorded where it says it belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collision {
    /// The study, series or SOP instance (`what`) belongs to another clinic, `owner`.
    Foreign {
        what: &'static str,
        uid: String,
        owner: String,
    },
    /// The series already belongs to another study of the same clinic.
    SeriesElsewhere {
        series_uid: String,
        study_uid: String,
    },
}

impl Index {
    /// What stands in the way of recording an object of `clinic_id` under these UIDs, if
    /// anything: asked before the object is made durable, so a refused object is never
    /// stored. [`Index::record_instance`] asks again under its locks.
    pub async fn collision(
        &self,
        clinic_id: &str,
        study_uid: &str,
        series_uid: &str,
        sop_instance_uid: &str,
    ) -> Result<Option<Collision>, IndexError> {
        let rows = sqlx::query(
            "SELECT 'study', clinic_id, study_uid FROM studies WHERE study_uid = $1
             UNION ALL
             SELECT 'series', s.clinic_id, r.study_uid FROM series r
               JOIN studies s ON s.study_uid = r.study_uid WHERE r.series_uid = $2
             UNION ALL
             SELECT 'instance', clinic_id, '' FROM instance_owners WHERE sop_instance_uid = $3",
        )
        .bind(study_uid)
        .bind(series_uid)
        .bind(sop_instance_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("ownership of uids"))?;
        let found: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read ownership"))?;
        // The widest thing named first: a foreign study says more than its instance.
        let levels = [
            ("study", study_uid),
            ("series", series_uid),
            ("instance", sop_instance_uid),
        ];
        // Another clinic's anything first: that is the security event, whatever else is wrong.
        for (what, uid) in levels {
            if let Some((_, owner, _)) = found.iter().find(|(l, o, _)| l == what && o != clinic_id)
            {
                return Ok(Some(Collision::Foreign {
                    what,
                    uid: uid.to_owned(),
                    owner: owner.clone(),
                }));
            }
        }
        Ok(found
            .into_iter()
            .find(|(level, _, owner_study)| level == "series" && owner_study != study_uid)
            .map(|(_, _, owner_study)| Collision::SeriesElsewhere {
                series_uid: series_uid.to_owned(),
                study_uid: owner_study,
            }))
    }

    pub async fn record_instance(&self, rec: &InstanceRecord) -> Result<Recorded, IndexError> {
        self.prepare_instance(rec).await?.commit().await
    }

    /// Writes an object's rows without committing them: the caller commits once the object
    /// is durable in the store (or gives them up if it never is), so both can be on their way
    /// at once. On SQLite, whose writers take turns on the whole database anyway, prepared
    /// instances take turns here, in order, instead of in its busy loop.
    pub async fn prepare_instance(&self, rec: &InstanceRecord) -> Result<Prepared, IndexError> {
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
        let turn = match self.engine {
            Engine::Sqlite => Some(self.writers.clone().lock_owned().await),
            Engine::Postgres => None,
        };
        let mut tx = self
            .instance_pool
            .begin()
            .await
            .map_err(IndexError::query("begin"))?;
        let now = rec.received_at.unwrap_or_else(now_micros);
        // The survivor of a merge keeps its demographics, and so does every patient when the
        // object is one the service made itself: such objects may only restore lost letters.
        let source = if merged.is_none() && !rec.made_here {
            Source::Object
        } else {
            Source::Witness
        };
        let rec = merged.as_ref().unwrap_or(rec);
        upsert_patient(&mut tx, rec, source, now).await?;
        // Under the study lock: who owns the study, and what this SOP Instance UID has.
        let owner = upsert_study(&mut tx, rec, now).await?;
        if owner != rec.clinic_id {
            return refuse(tx, "study", &rec.study_uid, owner).await;
        }
        let owner = claim_instance(&mut tx, rec).await?;
        if owner != rec.clinic_id {
            return refuse(tx, "instance", &rec.sop_instance_uid, owner).await;
        }
        let existing = keys_of_instance(&mut tx, &rec.sop_instance_uid).await?;
        if existing.contains(&rec.object_key) {
            return Ok(Prepared::open(tx, turn, Recorded::Duplicate));
        }
        let (count, series_study) = count_in_series(&mut tx, rec, now).await?;
        if series_study != rec.study_uid {
            let owner = owner_of_study(&mut tx, &series_study).await?;
            if owner != rec.clinic_id {
                return refuse(tx, "series", &rec.series_uid, owner).await;
            }
            tx.rollback().await.map_err(IndexError::query("rollback"))?;
            return Ok(Prepared::refused(Collision::SeriesElsewhere {
                series_uid: rec.series_uid.clone(),
                study_uid: series_study,
            }));
        }
        let new_series = count == 1;
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
        Ok(Prepared::open(tx, turn, outcome))
    }

    /// Records many objects in one transaction, with the same rows and aggregates as
    /// [`Index::record_instance`] one at a time. For loading benchmark indexes quickly.
    pub async fn record_batch(&self, records: &[InstanceRecord]) -> Result<(), IndexError> {
        let mut tx = self
            .instance_pool
            .begin()
            .await
            .map_err(IndexError::query("begin"))?;
        let now = now_micros();
        for rec in records {
            upsert_patient(&mut tx, rec, Source::Object, now).await?;
            upsert_study(&mut tx, rec, now).await?;
            claim_instance(&mut tx, rec).await?;
            let new_series = count_in_series(&mut tx, rec, now).await?.0 == 1;
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

/// An object's rows, written and not yet committed ([`Index::prepare_instance`]).
pub struct Prepared {
    /// `None` once refused: nothing is written.
    tx: Option<Transaction<'static, Any>>,
    outcome: Recorded,
    /// SQLite's turn to write, held until the rows are committed or given up.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Prepared {
    fn open(
        tx: Transaction<'static, Any>,
        turn: Option<tokio::sync::OwnedMutexGuard<()>>,
        outcome: Recorded,
    ) -> Prepared {
        Prepared {
            tx: Some(tx),
            outcome,
            _turn: turn,
        }
    }

    fn refused(collision: Collision) -> Prepared {
        Prepared {
            tx: None,
            outcome: Recorded::Refused(collision),
            _turn: None,
        }
    }

    /// What committing will record.
    pub fn outcome(&self) -> &Recorded {
        &self.outcome
    }

    pub async fn commit(self) -> Result<Recorded, IndexError> {
        if let Some(tx) = self.tx {
            tx.commit().await.map_err(IndexError::query("commit"))?;
        }
        Ok(self.outcome)
    }

    /// Gives the rows up: nothing of the object is recorded.
    pub async fn abandon(self) {
        if let Some(tx) = self.tx {
            if let Err(e) = tx.rollback().await {
                tracing::warn!(error = %e, "rollback of an instance's rows failed; the connection drops them");
            }
        }
    }
}

/// Undoes the transaction: nothing of the object is recorded.
async fn refuse(
    tx: Transaction<'_, Any>,
    what: &'static str,
    uid: &str,
    owner: String,
) -> Result<Prepared, IndexError> {
    tx.rollback().await.map_err(IndexError::query("rollback"))?;
    Ok(Prepared::refused(Collision::Foreign {
        what,
        uid: uid.to_owned(),
        owner,
    }))
}

async fn owner_of_study(
    tx: &mut Transaction<'_, Any>,
    study_uid: &str,
) -> Result<String, IndexError> {
    let row = sqlx::query("SELECT clinic_id FROM studies WHERE study_uid = $1")
        .bind(study_uid)
        .fetch_one(&mut **tx)
        .await
        .map_err(IndexError::query("owner of study"))?;
    row.try_get(0).map_err(IndexError::query("read owner"))
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

/// Makes sure the clinic's patient record exists and merges the object's demographics into it
/// by the rules of [`demographics`], as `source` may: one statement when they agree with the
/// record, which is nearly always.
async fn upsert_patient(
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
    let (held, held_other_ids) = (|| Ok((held_at(&row, 0)?, row.try_get::<String, _>(5)?)))()
        .map_err(IndexError::query("read patient"))?;
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
pub(super) fn held_at(row: &sqlx::any::AnyRow, first: usize) -> Result<Held, sqlx::Error> {
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
pub(super) struct PatientKey<'a> {
    pub clinic_id: &'a str,
    pub patient_id: &'a str,
    pub issuer: &'a str,
}

impl<'a> PatientKey<'a> {
    fn of(rec: &'a InstanceRecord) -> PatientKey<'a> {
        PatientKey {
            clinic_id: &rec.clinic_id,
            patient_id: &rec.patient_id,
            issuer: &rec.patient_issuer,
        }
    }
}

/// Writes a record's merged demographics.
pub(super) async fn set_demographics(
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
async fn replace_other_ids(
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
async fn upsert_study(
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
async fn count_in_series(
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
async fn claim_instance(
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
