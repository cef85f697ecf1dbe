//! Patient maintenance rows (HL7 v2 ADT from the clinics' HIS): demographics updates and
//! merges. A clinic maintains only its own patient records (every record belongs to one
//! clinic); stored objects are never touched, only the index that answers queries. What the
//! HIS sends is merged by the rules of [`demographics`]: it is the authority for a record once
//! it has spoken, but it never degrades a name either.

use sqlx::{Any, Row, Transaction};

use super::demographics::{self, Held, Source};
use super::instances::{held_at, set_demographics, PatientKey};
use super::referrals::insert_journal;
use super::{now_micros, Index, IndexError, JournalEntry};

/// New demographics for one clinic's patient; empty values leave what the index has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demographics {
    pub clinic_id: String,
    pub patient_id: String,
    /// DICOM PN form, `Family^Given`.
    pub name: String,
    pub name_search: String,
    pub birth_date: String,
    pub sex: String,
}

/// ADT^A40: the clinic's records under `prior_id` belong to `survivor` from now on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merge {
    pub id: String,
    pub prior_id: String,
    pub survivor: Demographics,
    pub actor: String,
    pub message_id: String,
}

/// What a merge changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    pub studies: u64,
}

impl Index {
    /// Merges the HIS's demographics into the clinic's records of `d.patient_id`; returns how
    /// many records the clinic has under that identifier (0: none, nothing changed).
    pub async fn update_demographics(
        &self,
        d: &Demographics,
        journal: &JournalEntry,
    ) -> Result<u64, IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin demographics"))?;
        let found = maintain(&mut tx, d, &d.patient_id).await?;
        if found > 0 {
            insert_journal(&mut tx, journal).await?;
        }
        tx.commit()
            .await
            .map_err(IndexError::query("commit demographics"))?;
        Ok(found)
    }

    /// Records a merge and moves the clinic's studies of the prior patient to the survivor,
    /// in one transaction with its journal entry.
    pub async fn merge_patients(
        &self,
        m: &Merge,
        journal: &JournalEntry,
    ) -> Result<Merged, IndexError> {
        let clinic = &m.survivor.clinic_id;
        // A survivor that was itself merged away since: the records go where it went.
        let mut survivor_id = m.survivor.patient_id.clone();
        for _ in 0..16 {
            let next: Option<String> = sqlx::query(
                "SELECT survivor_id FROM patient_merges WHERE clinic_id = $1 AND prior_id = $2
                 ORDER BY merged_at DESC LIMIT 1",
            )
            .bind(clinic)
            .bind(&survivor_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("survivor chain"))?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(IndexError::query("read survivor"))?;
            match next {
                Some(next) if next != survivor_id && next != m.prior_id => survivor_id = next,
                _ => break,
            }
        }
        let survivor_id = &survivor_id;
        let now = now_micros();
        // What the merge needs to know is read before its transaction, which then starts with
        // a write: on SQLite a transaction that reads first fails busy under concurrent writers
        // instead of waiting. The issuer the clinic's studies use for each identifier:
        let prior_issuers: Vec<String> = sqlx::query(
            "SELECT DISTINCT issuer FROM studies WHERE patient_id = $1 AND clinic_id = $2",
        )
        .bind(&m.prior_id)
        .bind(clinic)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("prior patient issuers"))?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(IndexError::query("read issuer"))?;
        let survivor_issuer: String = sqlx::query(
            "SELECT issuer FROM studies WHERE patient_id = $1 AND clinic_id = $2 LIMIT 1",
        )
        .bind(survivor_id)
        .bind(clinic)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query("survivor issuer"))?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(IndexError::query("read issuer"))?
        .or_else(|| prior_issuers.first().cloned())
        .unwrap_or_default();
        // The survivor's row, if it has none yet: the prior patient's demographics as this
        // clinic knew them (the message's new ones are merged in after the move).
        let prior = sqlx::query(
            "SELECT name, name_search, birth_date, sex FROM patients
             WHERE patient_id = $1 AND clinic_id = $2
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(&m.prior_id)
        .bind(clinic)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query("prior patient"))?;
        let text = |i: usize| -> String {
            prior
                .as_ref()
                .and_then(|r| r.try_get::<String, _>(i).ok())
                .unwrap_or_default()
        };
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin merge"))?;
        sqlx::query(
            "INSERT INTO patients (clinic_id, patient_id, issuer, name, name_search, birth_date,
               sex, other_ids, updated_at, maintained_by)
             VALUES ($8, $1, $2, $3, $4, $5, $6, '', $7, '')
             ON CONFLICT (clinic_id, patient_id, issuer) DO NOTHING",
        )
        .bind(survivor_id)
        .bind(&survivor_issuer)
        .bind(text(0))
        .bind(text(1))
        .bind(text(2))
        .bind(text(3))
        .bind(now)
        .bind(clinic)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("survivor patient"))?;
        // Patient records before study rows, the order ingest takes them in, so a C-STORE
        // for the prior patient meanwhile waits instead of deadlocking.
        sqlx::query(
            "UPDATE patients SET updated_at = updated_at
             WHERE clinic_id = $1 AND (patient_id = $2 OR patient_id = $3)",
        )
        .bind(clinic)
        .bind(survivor_id)
        .bind(&m.prior_id)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("lock merged patients"))?;
        // The survivor's studies now include the prior's: its name must not be a worse copy
        // of the one the prior's studies answered with.
        let survivor_key = PatientKey {
            clinic_id: clinic,
            patient_id: survivor_id,
            issuer: &survivor_issuer,
        };
        witness(&mut tx, &survivor_key, &text(0)).await?;
        let studies = sqlx::query(
            "UPDATE studies SET patient_id = $1, issuer = $2
             WHERE patient_id = $3 AND clinic_id = $4",
        )
        .bind(survivor_id)
        .bind(&survivor_issuer)
        .bind(&m.prior_id)
        .bind(clinic)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("move studies"))?
        .rows_affected();
        maintain(&mut tx, &m.survivor, survivor_id).await?;
        let issuers = if prior_issuers.is_empty() {
            vec![String::new()]
        } else {
            prior_issuers
        };
        for issuer in &issuers {
            // The prior identifier stays findable as one of the survivor's other ids (once: a
            // resent merge adds nothing).
            let added = sqlx::query(
                "INSERT INTO patient_other_ids (clinic_id, patient_id, issuer, other_id,
                   other_issuer)
                 VALUES ($5, $1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(survivor_id)
            .bind(&survivor_issuer)
            .bind(&m.prior_id)
            .bind(issuer)
            .bind(clinic)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("prior id as other id"))?
            .rows_affected()
                == 1;
            let item = format!("{}^^^{issuer}", m.prior_id);
            if added {
                sqlx::query(
                    "UPDATE patients SET other_ids = CASE WHEN other_ids = '' THEN $3
                   ELSE other_ids || '\\' || $3 END
                 WHERE patient_id = $1 AND issuer = $2 AND clinic_id = $4",
                )
                .bind(survivor_id)
                .bind(&survivor_issuer)
                .bind(&item)
                .bind(clinic)
                .execute(&mut *tx)
                .await
                .map_err(IndexError::query("other ids text"))?;
            }
            // The clinic's prior record, left without studies, is gone from the index.
            sqlx::query(
                "DELETE FROM patients WHERE patient_id = $1 AND issuer = $2 AND clinic_id = $3
                   AND NOT EXISTS (SELECT 1 FROM studies s WHERE s.clinic_id = $3
                                   AND s.patient_id = $1 AND s.issuer = $2)",
            )
            .bind(&m.prior_id)
            .bind(issuer)
            .bind(clinic)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("remove merged patient"))?;
            sqlx::query(
                "INSERT INTO patient_merges (id, clinic_id, prior_id, prior_issuer, survivor_id,
                   survivor_issuer, merged_at, actor, message_id)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
                 WHERE NOT EXISTS (SELECT 1 FROM patient_merges x
                                   WHERE x.clinic_id = $2 AND x.prior_id = $3
                                     AND x.prior_issuer = $4 AND x.survivor_id = $5)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(clinic)
            .bind(&m.prior_id)
            .bind(issuer)
            .bind(survivor_id)
            .bind(&survivor_issuer)
            .bind(now)
            .bind(&m.actor)
            .bind(&m.message_id)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("record merge"))?;
        }
        // Earlier merges into the prior patient now end at the survivor.
        sqlx::query(
            "UPDATE patient_merges SET survivor_id = $1, survivor_issuer = $2
             WHERE survivor_id = $3 AND clinic_id = $4",
        )
        .bind(survivor_id)
        .bind(&survivor_issuer)
        .bind(&m.prior_id)
        .bind(clinic)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("follow merges"))?;
        insert_journal(&mut tx, journal).await?;
        tx.commit()
            .await
            .map_err(IndexError::query("commit merge"))?;
        Ok(Merged { studies })
    }

    /// The (clinic, patient id) pairs `patient_id` was merged into, by any clinic in `clinics`
    /// (all when `None`): each survivor stands for the prior identifier in its clinic only.
    pub async fn merged_into(
        &self,
        patient_id: &str,
        clinics: Option<&[String]>,
    ) -> Result<Vec<(String, String)>, IndexError> {
        let rows = sqlx::query(
            "SELECT DISTINCT survivor_id, clinic_id FROM patient_merges WHERE prior_id = $1",
        )
        .bind(patient_id)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("merged into"))?;
        let mut out = Vec::new();
        for r in rows {
            let survivor: String = r.try_get(0).map_err(IndexError::query("read merge"))?;
            let clinic: String = r.try_get(1).map_err(IndexError::query("read merge"))?;
            let pair = (clinic, survivor);
            if clinics.is_none_or(|list| list.contains(&pair.0)) && !out.contains(&pair) {
                out.push(pair);
            }
        }
        Ok(out)
    }
}

/// The survivor (id, issuer) the clinic `$1` merged patient `$2` of issuer `$3` into, if any:
/// a merge of the same issuer first, then one that named no issuer, the latest first. A macro
/// so [`Index::precheck`](super::Index::precheck) can put the same text in its own query.
macro_rules! survivor_query {
    () => {
        "SELECT survivor_id, survivor_issuer FROM patient_merges
         WHERE clinic_id = $1 AND prior_id = $2 AND (prior_issuer = $3 OR prior_issuer = '')
         ORDER BY CASE WHEN prior_issuer = $3 THEN 0 ELSE 1 END, merged_at DESC LIMIT 1"
    };
}
pub(super) use survivor_query;

impl Index {
    /// The survivor a record's patient was merged into by its clinic, if any.
    pub(super) async fn survivor_of(
        &self,
        clinic_id: &str,
        patient_id: &str,
        issuer: &str,
    ) -> Result<Option<(String, String)>, IndexError> {
        let row = sqlx::query(survivor_query!())
            .bind(clinic_id)
            .bind(patient_id)
            .bind(issuer)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("survivor of"))?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
            .map_err(IndexError::query("read survivor"))
    }
}

/// Merges what the HIS says into each of the clinic's records under `patient_id`; answers how
/// many records it has under it.
async fn maintain(
    tx: &mut Transaction<'_, Any>,
    d: &Demographics,
    patient_id: &str,
) -> Result<u64, IndexError> {
    // A no-op write first: it locks the records and keeps SQLite from failing busy on a
    // transaction that read before it wrote.
    let rows = sqlx::query(
        "UPDATE patients SET updated_at = updated_at WHERE clinic_id = $1 AND patient_id = $2
         RETURNING issuer, name, name_search, birth_date, sex, maintained_by",
    )
    .bind(&d.clinic_id)
    .bind(patient_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(IndexError::query("patient records"))?;
    let incoming = Held {
        name: d.name.clone(),
        name_search: d.name_search.clone(),
        birth_date: d.birth_date.clone(),
        sex: d.sex.clone(),
        maintained_by: String::new(),
    };
    let now = now_micros();
    for row in &rows {
        let (issuer, held): (String, Held) = (|| Ok((row.try_get(0)?, held_at(row, 1)?)))()
            .map_err(IndexError::query("read patient record"))?;
        if let Some(next) = demographics::merge(&held, &incoming, Source::His) {
            let key = PatientKey {
                clinic_id: &d.clinic_id,
                patient_id,
                issuer: &issuer,
            };
            set_demographics(tx, &key, &next, now).await?;
        }
    }
    Ok(rows.len() as u64)
}

/// Restores letters the study's patient record lost, from the referral just linked to the
/// study (its name is written in UTF-8 by the clinic's information system).
pub(super) async fn restore_from_referral(
    tx: &mut Transaction<'_, Any>,
    referral_id: &str,
    study_uid: &str,
) -> Result<(), IndexError> {
    let referral = sqlx::query("SELECT family_name, given_names FROM referrals WHERE id = $1")
        .bind(referral_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(IndexError::query("referral name"))?;
    let Some(referral) = referral else {
        return Ok(());
    };
    let (family, given): (String, String) = (|| Ok((referral.try_get(0)?, referral.try_get(1)?)))()
        .map_err(IndexError::query("read referral name"))?;
    let name = if given.is_empty() {
        family
    } else {
        format!("{family}^{given}")
    };
    let row = sqlx::query("SELECT clinic_id, patient_id, issuer FROM studies WHERE study_uid = $1")
        .bind(study_uid)
        .fetch_optional(&mut **tx)
        .await
        .map_err(IndexError::query("patient of study"))?;
    let Some(row) = row else {
        return Ok(());
    };
    let [clinic_id, patient_id, issuer]: [String; 3] =
        (|| Ok([row.try_get(0)?, row.try_get(1)?, row.try_get(2)?]))()
            .map_err(IndexError::query("read patient of study"))?;
    let key = PatientKey {
        clinic_id: &clinic_id,
        patient_id: &patient_id,
        issuer: &issuer,
    };
    witness(tx, &key, &name).await
}

/// Restores letters the record `key` lost, from `name` as a witness gives it (nothing else of
/// the record changes). The record is read under its lock, so no concurrent write is undone.
async fn witness(
    tx: &mut Transaction<'_, Any>,
    key: &PatientKey<'_>,
    name: &str,
) -> Result<(), IndexError> {
    let row = sqlx::query(
        "UPDATE patients SET updated_at = updated_at
         WHERE clinic_id = $1 AND patient_id = $2 AND issuer = $3
         RETURNING name, name_search, birth_date, sex, maintained_by",
    )
    .bind(key.clinic_id)
    .bind(key.patient_id)
    .bind(key.issuer)
    .fetch_optional(&mut **tx)
    .await
    .map_err(IndexError::query("patient record"))?;
    let Some(row) = row else {
        return Ok(());
    };
    let held = held_at(&row, 0).map_err(IndexError::query("read patient record"))?;
    let incoming = Held {
        name_search: demographics::search_form(name),
        name: name.to_owned(),
        ..Held::default()
    };
    if let Some(next) = demographics::merge(&held, &incoming, Source::Witness) {
        set_demographics(tx, key, &next, now_micros()).await?;
    }
    Ok(())
}

/// A patient record whose demographics the migration to per-clinic records could not tell
/// apart, and the clinic's newest object of the patient to read them from again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleRecord {
    pub clinic_id: String,
    pub patient_id: String,
    pub issuer: String,
    /// '' when the clinic has no object of the patient.
    pub object_key: String,
}

impl Index {
    /// Up to `limit` records marked stale.
    pub async fn stale_patients(&self, limit: i64) -> Result<Vec<StaleRecord>, IndexError> {
        let rows = sqlx::query(
            "SELECT p.clinic_id, p.patient_id, p.issuer,
               COALESCE((SELECT i.object_key FROM instances i
                           JOIN studies s ON s.study_uid = i.study_uid
                          WHERE s.clinic_id = p.clinic_id AND s.patient_id = p.patient_id
                            AND s.issuer = p.issuer AND i.shadowed = 0
                          ORDER BY i.received_at DESC, i.object_key LIMIT 1), '')
             FROM patients p WHERE p.stale = 1 ORDER BY p.clinic_id, p.patient_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("stale patients"))?;
        rows.iter()
            .map(|r| {
                Ok(StaleRecord {
                    clinic_id: r.try_get(0)?,
                    patient_id: r.try_get(1)?,
                    issuer: r.try_get(2)?,
                    object_key: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read stale patient"))
    }

    /// Sets a stale record's demographics as its clinic's own object gives them (`None`: keep
    /// them, there is nothing to read), unless something wrote the record since.
    pub async fn refresh_stale(
        &self,
        r: &StaleRecord,
        read: Option<&Held>,
    ) -> Result<(), IndexError> {
        let sql = match read {
            None => {
                "UPDATE patients SET stale = 0
                 WHERE clinic_id = $1 AND patient_id = $2 AND issuer = $3 AND stale = 1"
            }
            Some(_) => {
                "UPDATE patients SET name = $4, name_search = $5, birth_date = $6, sex = $7,
                   stale = 0, updated_at = $8
                 WHERE clinic_id = $1 AND patient_id = $2 AND issuer = $3 AND stale = 1"
            }
        };
        let mut query = sqlx::query(sql)
            .bind(&r.clinic_id)
            .bind(&r.patient_id)
            .bind(&r.issuer);
        if let Some(d) = read {
            query = query
                .bind(&d.name)
                .bind(&d.name_search)
                .bind(&d.birth_date)
                .bind(&d.sex)
                .bind(now_micros());
        }
        query
            .execute(&self.pool)
            .await
            .map_err(IndexError::query("refresh stale patient"))?;
        Ok(())
    }
}
