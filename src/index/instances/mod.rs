//! Recording a stored object: patient, study, series and instance rows in one transaction.
//!
//! Rows are locked in one order (patient, study, series, instance) so concurrent associations
//! writing to the same study serialise on the study row instead of deadlocking, and the
//! study-level aggregates (counts, bytes, modalities) stay exact.

mod one_trip;
mod rows;

use sqlx::{Any, Row, Transaction};

use super::demographics::Source;
use super::patients::survivor_query;
use super::{now_micros, Engine, Index, IndexError};
pub use rows::other_ids;
use rows::{
    claim_instance, count_in_series, insert_conflict, insert_instance, journal_series,
    keys_of_instance, update_study, upsert_patient, upsert_study,
};
pub(super) use rows::{held_at, set_demographics, PatientKey};

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

/// What [`Index::precheck`] found before the object is stored.
#[derive(Debug, Clone, Default)]
pub struct Precheck {
    /// Why the object may not be recorded, if it may not.
    pub collision: Option<Collision>,
    /// The patient the clinic merged the object's patient into, if any.
    survivor: Option<(String, String)>,
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
    /// What stands in the way of recording `rec` where it says it belongs, and the survivor its
    /// patient was merged into, if any: asked before the object is made durable, so a refused
    /// object is never stored. [`Index::prepare_checked`] asks again under its locks.
    pub async fn precheck(&self, rec: &InstanceRecord) -> Result<Precheck, IndexError> {
        let rows = sqlx::query(concat!(
            "SELECT 'study', clinic_id, study_uid FROM studies WHERE study_uid = $4
             UNION ALL
             SELECT 'series', s.clinic_id, r.study_uid FROM series r
               JOIN studies s ON s.study_uid = r.study_uid WHERE r.series_uid = $5
             UNION ALL
             SELECT 'instance', clinic_id, '' FROM instance_owners WHERE sop_instance_uid = $6
             UNION ALL
             SELECT 'merge', survivor_id, survivor_issuer FROM (",
            survivor_query!(),
            ") m"
        ))
        .bind(&rec.clinic_id)
        .bind(&rec.patient_id)
        .bind(&rec.patient_issuer)
        .bind(&rec.study_uid)
        .bind(&rec.series_uid)
        .bind(&rec.sop_instance_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("ownership of uids"))?;
        let mut found: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read ownership"))?;
        let survivor = found
            .iter()
            .position(|(level, _, _)| level == "merge")
            .map(|at| found.remove(at))
            .map(|(_, id, issuer)| (id, issuer));
        Ok(Precheck {
            collision: collision(&found, rec),
            survivor,
        })
    }

    pub async fn record_instance(&self, rec: &InstanceRecord) -> Result<Recorded, IndexError> {
        self.prepare_instance(rec).await?.commit().await
    }

    /// Writes an object's rows without committing them: the caller commits once the object
    /// is durable in the store (or gives them up if it never is), so both can be on their way
    /// at once. On SQLite, whose writers take turns on the whole database anyway, prepared
    /// instances take turns here, in order, instead of in its busy loop.
    pub async fn prepare_instance(&self, rec: &InstanceRecord) -> Result<Prepared, IndexError> {
        let survivor = self
            .survivor_of(&rec.clinic_id, &rec.patient_id, &rec.patient_issuer)
            .await?;
        self.prepare_filed(rec, survivor).await
    }

    /// Whether an object's rows may be written while its flush runs. On SQLite the prepared
    /// rows hold the writers' turn until they commit, after the flush: with another writer
    /// waiting, that writer would wait for this flush too, so the rows wait for it instead and
    /// the flushes of concurrent associations overlap each other.
    pub fn may_overlap(&self) -> bool {
        match self.engine {
            Engine::Sqlite => self.writers.try_lock().is_ok(),
            Engine::Postgres => true,
        }
    }

    /// [`Index::prepare_instance`] after [`Index::precheck`], whose merge it uses.
    pub async fn prepare_checked(
        &self,
        rec: &InstanceRecord,
        checked: &Precheck,
    ) -> Result<Prepared, IndexError> {
        self.prepare_filed(rec, checked.survivor.clone()).await
    }

    /// `survivor`: the patient the clinic merged the record's patient into (ADT^A40), under whom
    /// the object is filed and whose demographics it does not overwrite. Looked up before the
    /// transaction: on SQLite a transaction that reads first cannot wait for the write lock (it
    /// fails busy at once under concurrent associations); this one's first statement writes.
    async fn prepare_filed(
        &self,
        rec: &InstanceRecord,
        survivor: Option<(String, String)>,
    ) -> Result<Prepared, IndexError> {
        let merged = survivor.map(|(patient_id, patient_issuer)| InstanceRecord {
            patient_id,
            patient_issuer,
            ..rec.clone()
        });
        let turn = match self.engine {
            Engine::Sqlite => Some(self.writers.clone().lock_owned().await),
            Engine::Postgres => None,
        };
        let now = rec.received_at.unwrap_or_else(now_micros);
        // The survivor of a merge keeps its demographics, and so does every patient when the
        // object is one the service made itself: such objects may only restore lost letters.
        let source = if merged.is_none() && !rec.made_here {
            Source::Object
        } else {
            Source::Witness
        };
        let rec = merged.as_ref().unwrap_or(rec);
        if self.engine == Engine::Sqlite {
            let mut tx = self.begin_instance().await?;
            match one_trip::write(&mut tx, rec, source, now).await {
                Ok(Some(outcome)) => return Ok(Prepared::open(tx, turn, outcome)),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "one-batch instance rows failed; the careful path decides")
                }
            }
            if let Err(e) = tx.rollback().await {
                tracing::debug!(error = %e, "rollback of a batch failed; the connection drops it");
            }
        }
        let tx = self.begin_instance().await?;
        careful(tx, rec, source, now, turn).await
    }

    async fn begin_instance(&self) -> Result<Transaction<'static, Any>, IndexError> {
        self.instance_pool
            .begin()
            .await
            .map_err(IndexError::query("begin"))
    }

    /// Records many objects in one transaction, with the same rows and aggregates as
    /// [`Index::record_instance`] one at a time. For loading benchmark indexes quickly.
    pub async fn record_batch(&self, records: &[InstanceRecord]) -> Result<(), IndexError> {
        let mut tx = self.begin_instance().await?;
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

/// The object's rows statement by statement, each rule decided as soon as its row is locked:
/// every object on PostgreSQL, and on SQLite whatever is not the usual one.
async fn careful(
    mut tx: Transaction<'static, Any>,
    rec: &InstanceRecord,
    source: Source,
    now: i64,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
) -> Result<Prepared, IndexError> {
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

/// What the owners found by [`Index::precheck`] (level, owning clinic, the series' study) say
/// against recording `rec`.
fn collision(found: &[(String, String, String)], rec: &InstanceRecord) -> Option<Collision> {
    // The widest thing named first: a foreign study says more than its instance.
    let levels = [
        ("study", &rec.study_uid),
        ("series", &rec.series_uid),
        ("instance", &rec.sop_instance_uid),
    ];
    // Another clinic's anything first: that is the security event, whatever else is wrong.
    for (what, uid) in levels {
        if let Some((_, owner, _)) = found
            .iter()
            .find(|(l, o, _)| l == what && *o != rec.clinic_id)
        {
            return Some(Collision::Foreign {
                what,
                uid: uid.clone(),
                owner: owner.clone(),
            });
        }
    }
    found
        .iter()
        .find(|(level, _, owner_study)| level == "series" && *owner_study != rec.study_uid)
        .map(|(_, _, owner_study)| Collision::SeriesElsewhere {
            series_uid: rec.series_uid.clone(),
            study_uid: owner_study.clone(),
        })
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
