//! Case rows of the reading workflow: routing candidates, cases, claims and readers' load and
//! availability. Deciding where a case goes lives in `routing`.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::referrals::journal_if;
use super::{now_micros, Index, IndexError, JournalEntry};

/// A linked referral whose study has stopped receiving objects, and no case yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    pub referral_id: String,
    pub study_uid: String,
    pub clinic_id: String,
    pub examination: String,
    pub urgency: String,
    pub patient_id: String,
    pub patient_name: String,
    pub birth_date: String,
    pub referral_written: String,
    pub referral_at: i64,
    pub linked_at: i64,
    pub data_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaseRow {
    pub id: String,
    pub referral_id: String,
    pub study_uid: String,
    pub clinic_id: String,
    pub centre_id: String,
    pub reader: String,
    pub status: String,
    pub examination: String,
    pub urgency: String,
    pub patient_id: String,
    pub patient_name: String,
    pub birth_date: String,
    pub rule: String,
    pub claimed_by: String,
    pub claim_expires_at: Option<i64>,
    pub referral_written: String,
    pub referral_at: Option<i64>,
    pub data_at: i64,
    pub ready_at: i64,
    pub routed_at: Option<i64>,
    pub claimed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Withdrawn: when, by whom and why.
    pub cancelled_at: Option<i64>,
    pub cancelled_by: String,
    pub cancel_reason: String,
}

const COLUMNS: &str = "id, referral_id, study_uid, clinic_id, centre_id, reader, status,
    examination, urgency, patient_id, patient_name, birth_date, rule, claimed_by,
    claim_expires_at, referral_written, referral_at, data_at, ready_at, routed_at, claimed_at,
    created_at, updated_at, cancelled_at, cancelled_by, cancel_reason";

fn case_row(r: &AnyRow) -> Result<CaseRow, sqlx::Error> {
    Ok(CaseRow {
        id: r.try_get(0)?,
        referral_id: r.try_get(1)?,
        study_uid: r.try_get(2)?,
        clinic_id: r.try_get(3)?,
        centre_id: r.try_get(4)?,
        reader: r.try_get(5)?,
        status: r.try_get(6)?,
        examination: r.try_get(7)?,
        urgency: r.try_get(8)?,
        patient_id: r.try_get(9)?,
        patient_name: r.try_get(10)?,
        birth_date: r.try_get(11)?,
        rule: r.try_get(12)?,
        claimed_by: r.try_get(13)?,
        claim_expires_at: r.try_get(14)?,
        referral_written: r.try_get(15)?,
        referral_at: r.try_get(16)?,
        data_at: r.try_get(17)?,
        ready_at: r.try_get(18)?,
        routed_at: r.try_get(19)?,
        claimed_at: r.try_get(20)?,
        created_at: r.try_get(21)?,
        updated_at: r.try_get(22)?,
        cancelled_at: r.try_get(23)?,
        cancelled_by: r.try_get(24)?,
        cancel_reason: r.try_get(25)?,
    })
}

/// Which cases a worklist shows.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only these centres' cases (`None`: any).
    pub centres: Option<Vec<String>>,
    /// Only these clinics' cases (`None`: any).
    pub clinics: Option<Vec<String>>,
    pub statuses: Vec<String>,
    pub urgency: Option<String>,
    pub examination: Option<String>,
    /// Assigned to or claimed by this reader.
    pub reader: Option<String>,
    /// Only cases whose referral names the same national personal code as this referral's
    /// (never the referral's own case).
    pub same_person_as: Option<String>,
    pub limit: i64,
    /// Rows skipped first, in the list's order.
    pub offset: i64,
}

impl Index {
    /// Linked referrals without a case whose study received nothing since `stable_before`.
    pub async fn routing_candidates(
        &self,
        stable_before: i64,
        limit: i64,
    ) -> Result<Vec<Candidate>, IndexError> {
        let rows = sqlx::query(
            "SELECT r.id, r.study_uid, r.clinic_id, r.examination, r.urgency, s.patient_id,
               COALESCE(p.name, ''), r.birth_date, r.effective_time, r.received_at,
               r.updated_at, s.last_received_at
             FROM referrals r
             JOIN studies s ON s.study_uid = r.study_uid
             LEFT JOIN patients p ON p.clinic_id = s.clinic_id AND p.patient_id = s.patient_id
               AND p.issuer = s.issuer
             WHERE r.status = 'linked' AND s.last_received_at <= $1
               AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.study_uid = r.study_uid)
             ORDER BY s.last_received_at, r.id LIMIT $2",
        )
        .bind(stable_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("routing candidates"))?;
        rows.iter()
            .map(|r| {
                Ok(Candidate {
                    referral_id: r.try_get(0)?,
                    study_uid: r.try_get(1)?,
                    clinic_id: r.try_get(2)?,
                    examination: r.try_get(3)?,
                    urgency: r.try_get(4)?,
                    patient_id: r.try_get(5)?,
                    patient_name: r.try_get(6)?,
                    birth_date: r.try_get(7)?,
                    referral_written: r.try_get(8)?,
                    referral_at: r.try_get(9)?,
                    linked_at: r.try_get(10)?,
                    data_at: r.try_get(11)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read candidate"))
    }

    /// A study without a case, as a candidate an administrator routes without a referral.
    pub async fn study_candidate(&self, study_uid: &str) -> Result<Option<Candidate>, IndexError> {
        let row = sqlx::query(
            "SELECT s.study_uid, s.clinic_id, s.patient_id, COALESCE(p.name, ''),
               COALESCE(p.birth_date, ''), s.last_received_at
             FROM studies s
             LEFT JOIN patients p ON p.clinic_id = s.clinic_id AND p.patient_id = s.patient_id
               AND p.issuer = s.issuer
             WHERE s.study_uid = $1",
        )
        .bind(study_uid)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query("study candidate"))?;
        row.map(|r| {
            Ok(Candidate {
                study_uid: r.try_get(0)?,
                clinic_id: r.try_get(1)?,
                patient_id: r.try_get(2)?,
                patient_name: r.try_get(3)?,
                birth_date: r.try_get(4)?,
                data_at: r.try_get(5)?,
                examination: "other".into(),
                urgency: "routine".into(),
                ..Candidate::default()
            })
        })
        .transpose()
        .map_err(IndexError::query("read study candidate"))
    }

    /// Files a case with its journal entry; `false` when the study already has one.
    pub async fn insert_case(
        &self,
        c: &CaseRow,
        journal: Option<&JournalEntry>,
    ) -> Result<bool, IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin case"))?;
        let inserted = insert_case_row(&mut tx, c).await?;
        journal_if(tx, inserted, journal).await
    }

    pub async fn case(&self, id: &str) -> Result<Option<CaseRow>, IndexError> {
        let sql = format!("SELECT {COLUMNS} FROM cases WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select case"))?;
        row.map(|r| case_row(&r))
            .transpose()
            .map_err(IndexError::query("read case"))
    }

    /// Cases for a worklist, most urgent and longest waiting first.
    pub async fn cases(&self, f: &CaseFilter) -> Result<Vec<CaseRow>, IndexError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let list = |column: &str, values: &[String], args: &mut Vec<String>| {
            if values.is_empty() {
                return "1 = 0".to_owned();
            }
            let marks: Vec<String> = values
                .iter()
                .map(|v| {
                    args.push(v.clone());
                    format!("${}", args.len())
                })
                .collect();
            format!("{column} IN ({})", marks.join(", "))
        };
        if let Some(centres) = &f.centres {
            conditions.push(list("centre_id", centres, &mut args));
        }
        if let Some(clinics) = &f.clinics {
            conditions.push(list("clinic_id", clinics, &mut args));
        }
        if !f.statuses.is_empty() {
            conditions.push(list("status", &f.statuses, &mut args));
        }
        if let Some(u) = &f.urgency {
            conditions.push(list("urgency", std::slice::from_ref(u), &mut args));
        }
        if let Some(e) = &f.examination {
            conditions.push(list("examination", std::slice::from_ref(e), &mut args));
        }
        if let Some(reader) = &f.reader {
            args.push(reader.clone());
            conditions.push(format!(
                "(reader = ${n} OR claimed_by = ${n})",
                n = args.len()
            ));
        }
        if let Some(referral) = &f.same_person_as {
            args.push(referral.clone());
            conditions.push(format!(
                "referral_id IN (SELECT o.id FROM referrals o JOIN referrals me
                   ON me.personal_code = o.personal_code
                   WHERE me.id = ${n} AND me.personal_code <> '' AND o.id <> me.id)",
                n = args.len()
            ));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        // Only constant text and numbered placeholders are formatted in; values are bound.
        let sql = format!(
            "SELECT {COLUMNS} FROM cases{filter}
             ORDER BY CASE urgency WHEN 'emergency' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END,
               ready_at, id
             LIMIT {} OFFSET {}",
            f.limit.clamp(1, 10_000),
            f.offset.max(0)
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::fetch_all_text(&self.pool, sql, &args, "select cases", case_row).await
    }

    /// Open cases (new or in progress) assigned to each of `readers`.
    pub async fn open_load(&self, readers: &[String]) -> Result<Vec<(String, i64)>, IndexError> {
        let rows = sqlx::query(
            "SELECT reader, COUNT(*) FROM cases
             WHERE status IN ('new', 'in_progress') AND reader <> ''
             GROUP BY reader",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("open load"))?;
        let mut load = Vec::new();
        for r in rows {
            let name: String = r.try_get(0).map_err(IndexError::query("read load"))?;
            let count: i64 = r.try_get(1).map_err(IndexError::query("read load"))?;
            if readers.contains(&name) {
                load.push((name, count));
            }
        }
        Ok(load)
    }

    /// Enabled cardiologists of a centre, by name; without those marked away unless
    /// `with_away`.
    pub async fn centre_readers(
        &self,
        centre: &str,
        with_away: bool,
    ) -> Result<Vec<String>, IndexError> {
        let rows = sqlx::query(
            "SELECT u.name FROM users u
             WHERE u.role = 'cardiologist' AND u.institution = $1 AND u.disabled_at IS NULL
               AND ($2 = 1 OR NOT EXISTS (SELECT 1 FROM reader_availability a
                                          WHERE a.name = u.name AND a.away = 1))
             ORDER BY u.name",
        )
        .bind(centre)
        .bind(i64::from(with_away))
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("available readers"))?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("read reader"))
    }

    pub async fn set_away(&self, name: &str, away: bool, by: &str) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO reader_availability (name, away, updated_by, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET away = excluded.away,
               updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(i64::from(away))
        .bind(by)
        .bind(now_micros())
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("set away"))?;
        Ok(())
    }

    /// Gives the case to `reader` until `expires_at`, unless someone else holds an unexpired
    /// claim or the case is no longer open; journaled when the reader did not hold it already.
    pub async fn claim(
        &self,
        id: &str,
        reader: &str,
        expires_at: i64,
        journal: Option<&JournalEntry>,
    ) -> Result<bool, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin claim"))?;
        let claimed = sqlx::query(
            "UPDATE cases SET claimed_by = $2, claim_expires_at = $3, status = 'in_progress',
               claimed_at = COALESCE(claimed_at, $4), updated_at = $4
             WHERE id = $1 AND status IN ('new', 'in_progress')
               AND (reader = '' OR reader = $2)
               AND (claimed_by = '' OR claimed_by = $2 OR claim_expires_at < $4)",
        )
        .bind(id)
        .bind(reader)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("claim case"))?
        .rows_affected()
            == 1;
        journal_if(tx, claimed, journal).await
    }

    /// Gives a claimed case back to the worklist; `false` unless `reader` held it.
    pub async fn release(
        &self,
        id: &str,
        reader: &str,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin release"))?;
        let released = sqlx::query(
            "UPDATE cases SET claimed_by = '', claim_expires_at = NULL, status = 'new',
               updated_at = $3
             WHERE id = $1 AND claimed_by = $2 AND status = 'in_progress'",
        )
        .bind(id)
        .bind(reader)
        .bind(now_micros())
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("release case"))?
        .rows_affected()
            == 1;
        journal_if(tx, released, Some(journal)).await
    }

    /// An administrator's routing of an open case to `centre` (and `reader`, or the pool).
    pub async fn reroute(
        &self,
        id: &str,
        centre: &str,
        reader: &str,
        rule: &str,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin reroute"))?;
        let changed = sqlx::query(
            "UPDATE cases SET centre_id = $2, reader = $3, rule = $4, status = 'new',
               claimed_by = '', claim_expires_at = NULL, routed_at = $5, updated_at = $5
             WHERE id = $1 AND status IN ('unrouted', 'new', 'in_progress')",
        )
        .bind(id)
        .bind(centre)
        .bind(reader)
        .bind(rule)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("reroute case"))?
        .rows_affected()
            == 1;
        journal_if(tx, changed, Some(journal)).await
    }
}

impl Index {
    /// Cancels a case not yet reported; `false` when it is reported, delivered or cancelled.
    pub async fn cancel_case(
        &self,
        id: &str,
        by: &str,
        reason: &str,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin cancel"))?;
        let changed = sqlx::query(
            "UPDATE cases SET cancelled_from = status, status = 'cancelled', cancelled_at = $2,
               cancelled_by = $3, cancel_reason = $4, claimed_by = '', claim_expires_at = NULL,
               updated_at = $2
             WHERE id = $1 AND status IN ('unrouted', 'new', 'in_progress')",
        )
        .bind(id)
        .bind(now)
        .bind(by)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("cancel case"))?
        .rows_affected()
            == 1;
        journal_if(tx, changed, Some(journal)).await
    }
}

/// The case row in `tx`; `false` when its id or its study has a case already.
pub(super) async fn insert_case_row(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    c: &CaseRow,
) -> Result<bool, IndexError> {
    Ok(sqlx::query(
        "INSERT INTO cases (id, referral_id, study_uid, clinic_id, centre_id, reader, status,
           examination, urgency, patient_id, patient_name, birth_date, rule, claimed_by,
           claim_expires_at, referral_written, referral_at, data_at, ready_at, routed_at,
           claimed_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', NULL, $14, $15,
           $16, $17, $18, NULL, $19, $19)
         ON CONFLICT DO NOTHING",
    )
    .bind(&c.id)
    .bind(&c.referral_id)
    .bind(&c.study_uid)
    .bind(&c.clinic_id)
    .bind(&c.centre_id)
    .bind(&c.reader)
    .bind(&c.status)
    .bind(&c.examination)
    .bind(&c.urgency)
    .bind(&c.patient_id)
    .bind(&c.patient_name)
    .bind(&c.birth_date)
    .bind(&c.rule)
    .bind(&c.referral_written)
    .bind(c.referral_at)
    .bind(c.data_at)
    .bind(c.ready_at)
    .bind(c.routed_at)
    .bind(c.created_at)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("insert case"))?
    .rows_affected()
        == 1)
}
