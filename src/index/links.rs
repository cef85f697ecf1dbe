//! Rows for linking referrals to studies: the candidates on each side, the link itself (made
//! once, under a guard, with its journal entry) and the exceptions left for an administrator.
//! Which pairs agree is decided in `referral::links`.

use serde::Serialize;
use sqlx::Row;

use super::patients::restore_from_referral;
use super::referrals::{insert_journal, journal_if, JournalEntry, ReferralRow};
use super::{now_micros, Index, IndexError, Scope};

/// What a study says about its patient and order, for matching with referrals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StudyForLink {
    pub study_uid: String,
    pub clinic_id: String,
    pub accession_number: String,
    pub patient_id: String,
    pub patient_name: String,
    pub birth_date: String,
    /// `id^^^issuer` items joined by `\`.
    pub other_ids: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkException {
    pub id: String,
    pub kind: String,
    pub clinic_id: String,
    pub referral_id: String,
    pub study_uid: String,
    pub reason: String,
    pub status: String,
    pub resolution: String,
    pub resolved_by: String,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
}

const STUDY_COLUMNS: &str = "s.study_uid, s.clinic_id, s.accession_number, p.patient_id, p.name,
    p.birth_date, p.other_ids";

fn study(r: &sqlx::any::AnyRow) -> Result<StudyForLink, sqlx::Error> {
    Ok(StudyForLink {
        study_uid: r.try_get(0)?,
        clinic_id: r.try_get(1)?,
        accession_number: r.try_get(2)?,
        patient_id: r.try_get(3)?,
        patient_name: r.try_get(4)?,
        birth_date: r.try_get(5)?,
        other_ids: r.try_get(6)?,
    })
}

impl Index {
    /// The study `study_uid`, for linking.
    pub async fn study_for_link(
        &self,
        study_uid: &str,
    ) -> Result<Option<StudyForLink>, IndexError> {
        let sql = format!(
            "SELECT {STUDY_COLUMNS} FROM studies s
             JOIN patients p ON p.clinic_id = s.clinic_id AND p.patient_id = s.patient_id
               AND p.issuer = s.issuer
             WHERE s.study_uid = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(study_uid)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select study for link"))?;
        row.map(|r| study(&r))
            .transpose()
            .map_err(IndexError::query("read study for link"))
    }

    /// A clinic's studies carrying `accession` as their accession number.
    pub async fn studies_with_accession(
        &self,
        clinic_id: &str,
        accession: &str,
    ) -> Result<Vec<StudyForLink>, IndexError> {
        let sql = format!(
            "SELECT {STUDY_COLUMNS} FROM studies s
             JOIN patients p ON p.clinic_id = s.clinic_id AND p.patient_id = s.patient_id
               AND p.issuer = s.issuer
             WHERE s.clinic_id = $1 AND s.accession_number = $2 ORDER BY s.study_uid"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(clinic_id)
            .bind(accession)
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("select studies by accession"))?;
        rows.iter()
            .map(study)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("read studies by accession"))
    }

    /// The referral linked to `study_uid`, if any.
    pub async fn referral_of_study(
        &self,
        study_uid: &str,
    ) -> Result<Option<ReferralRow>, IndexError> {
        let found = self.referrals_where("study_uid = $1", &[study_uid]).await?;
        Ok(found.into_iter().next())
    }

    /// A clinic's referrals with order number `order`.
    pub async fn referrals_with_order(
        &self,
        clinic_id: &str,
        order: &str,
    ) -> Result<Vec<ReferralRow>, IndexError> {
        self.referrals_where("clinic_id = $1 AND order_number = $2", &[clinic_id, order])
            .await
    }

    /// Links a waiting referral to a study no other referral holds, with its journal entry.
    /// `false` when either side was taken meanwhile (nothing changed).
    pub async fn link(
        &self,
        referral_id: &str,
        study_uid: &str,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin link"))?;
        // A referral is linked only to a study of its own clinic, whoever asks.
        let changed = sqlx::query(
            "UPDATE referrals SET status = 'linked', study_uid = $1, updated_at = $2
             WHERE id = $3 AND status = 'awaiting_examination'
               AND NOT EXISTS (SELECT 1 FROM referrals o WHERE o.study_uid = $1)
               AND EXISTS (SELECT 1 FROM studies s WHERE s.study_uid = $1
                           AND s.clinic_id = referrals.clinic_id)",
        )
        .bind(study_uid)
        .bind(now_micros())
        .bind(referral_id)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("link referral"))?
        .rows_affected()
            == 1;
        if changed {
            restore_from_referral(&mut tx, referral_id, study_uid).await?;
        }
        journal_if(tx, changed, Some(journal)).await
    }

    pub async fn link_exception(&self, id: &str) -> Result<Option<LinkException>, IndexError> {
        let row = sqlx::query(
            "SELECT id, kind, clinic_id, referral_id, study_uid, reason, status, resolution,
               resolved_by, created_at, resolved_at
             FROM link_exceptions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query("select link exception"))?;
        row.map(|r| exception(&r))
            .transpose()
            .map_err(IndexError::query("read link exception"))
    }

    /// Closes an open exception as `resolution` by `by`; with `link`, links its referral and
    /// study in the same transaction (journaled). The outcome says what stood in the way.
    pub async fn resolve_exception(
        &self,
        id: &str,
        resolution: &str,
        by: &str,
        link: Option<&JournalEntry>,
    ) -> Result<Resolved, IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin resolve"))?;
        if let Some(journal) = link {
            let linked = sqlx::query(
                "UPDATE referrals SET status = 'linked', study_uid = $1, updated_at = $2
                 WHERE id = $3 AND status = 'awaiting_examination'
                   AND NOT EXISTS (SELECT 1 FROM referrals o WHERE o.study_uid = $1)
                   AND EXISTS (SELECT 1 FROM studies s WHERE s.study_uid = $1
                               AND s.clinic_id = referrals.clinic_id)",
            )
            .bind(&journal.study_uid)
            .bind(now_micros())
            .bind(&journal.referral_id)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("link on resolve"))?
            .rows_affected()
                == 1;
            if !linked {
                tx.rollback()
                    .await
                    .map_err(IndexError::query("rollback resolve"))?;
                return Ok(Resolved::Taken);
            }
            insert_journal(&mut tx, journal).await?;
            restore_from_referral(&mut tx, &journal.referral_id, &journal.study_uid).await?;
        }
        let closed = sqlx::query(
            "UPDATE link_exceptions SET status = 'resolved', resolution = $1, resolved_by = $2,
               resolved_at = $3
             WHERE id = $4 AND status = 'open'",
        )
        .bind(resolution)
        .bind(by)
        .bind(now_micros())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("resolve link exception"))?
        .rows_affected()
            == 1;
        if !closed {
            tx.rollback()
                .await
                .map_err(IndexError::query("rollback resolve"))?;
            return Ok(Resolved::NotOpen);
        }
        tx.commit()
            .await
            .map_err(IndexError::query("commit resolve"))?;
        Ok(Resolved::Done)
    }

    /// Undoes a referral's link (journaled); `false` when it was not linked.
    pub async fn unlink(
        &self,
        referral_id: &str,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin unlink"))?;
        let changed = sqlx::query(
            "UPDATE referrals SET status = 'awaiting_examination', study_uid = '', updated_at = $1
             WHERE id = $2 AND status = 'linked'",
        )
        .bind(now_micros())
        .bind(referral_id)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("unlink referral"))?
        .rows_affected()
            == 1;
        journal_if(tx, changed, Some(journal)).await
    }

    /// Records an exception unless the same one is already open.
    pub async fn add_link_exception(&self, e: &LinkException) -> Result<bool, IndexError> {
        let inserted = sqlx::query(
            "INSERT INTO link_exceptions (id, kind, clinic_id, referral_id, study_uid, reason,
               status, resolution, resolved_by, created_at, resolved_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'open', '', '', $7, NULL)
             ON CONFLICT DO NOTHING",
        )
        .bind(&e.id)
        .bind(&e.kind)
        .bind(&e.clinic_id)
        .bind(&e.referral_id)
        .bind(&e.study_uid)
        .bind(&e.reason)
        .bind(now_micros())
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("insert link exception"))?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Exceptions within `scope` with `status` (open or resolved), oldest first.
    pub async fn link_exceptions(
        &self,
        scope: &Scope,
        status: &str,
    ) -> Result<Vec<LinkException>, IndexError> {
        let mut args = vec![status.to_owned()];
        let clinics = clinic_filter("clinic_id", scope, &mut args);
        let sql = format!(
            "SELECT id, kind, clinic_id, referral_id, study_uid, reason, status, resolution,
               resolved_by, created_at, resolved_at
             FROM link_exceptions WHERE status = $1{clinics} ORDER BY created_at, id"
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::fetch_all_text(&self.pool, sql, &args, "select link exceptions", exception).await
    }

    /// Studies within `scope` with no referral linked, newest first.
    pub async fn unlinked_studies(
        &self,
        scope: &Scope,
        limit: i64,
    ) -> Result<Vec<StudyForLink>, IndexError> {
        let mut args = Vec::new();
        let clinics = clinic_filter("s.clinic_id", scope, &mut args);
        let sql = format!(
            "SELECT {STUDY_COLUMNS} FROM studies s
             JOIN patients p ON p.clinic_id = s.clinic_id AND p.patient_id = s.patient_id
               AND p.issuer = s.issuer
             WHERE NOT EXISTS (SELECT 1 FROM referrals r WHERE r.study_uid = s.study_uid){clinics}
             ORDER BY s.last_received_at DESC, s.study_uid LIMIT {}",
            limit.clamp(1, 10_000)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in args {
            query = query.bind(a);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("select unlinked studies"))?;
        rows.iter()
            .map(study)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("read unlinked studies"))
    }
}

/// What resolving an exception found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Done,
    /// The exception was not open (already resolved, or no such exception).
    NotOpen,
    /// The referral is no longer waiting, or the study is held by another referral.
    Taken,
}

fn exception(r: &sqlx::any::AnyRow) -> Result<LinkException, sqlx::Error> {
    Ok(LinkException {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        clinic_id: r.try_get(2)?,
        referral_id: r.try_get(3)?,
        study_uid: r.try_get(4)?,
        reason: r.try_get(5)?,
        status: r.try_get(6)?,
        resolution: r.try_get(7)?,
        resolved_by: r.try_get(8)?,
        created_at: r.try_get(9)?,
        resolved_at: r.try_get(10)?,
    })
}

/// ` AND {column} IN (...)` for a scope of clinics (nothing for everything), its values
/// appended to `args` as numbered placeholders.
fn clinic_filter(column: &str, scope: &Scope, args: &mut Vec<String>) -> String {
    match scope {
        Scope::Everything => String::new(),
        Scope::Clinics(clinics) if clinics.is_empty() => " AND 1 = 0".into(),
        Scope::Clinics(clinics) => {
            let list: Vec<String> = clinics
                .iter()
                .map(|c| {
                    args.push(c.clone());
                    format!("${}", args.len())
                })
                .collect();
            format!(" AND {column} IN ({})", list.join(", "))
        }
    }
}
