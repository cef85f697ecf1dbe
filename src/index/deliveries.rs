//! The delivery queue: one row per delivery of a signed report version on one channel. What is
//! due is leased by one node at a time; the outcome of each attempt is written back with the
//! lease holder checked, so a node whose lease lapsed cannot overwrite another's result.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::referrals::{insert_journal, journal_if};
use super::{now_micros, Engine, Index, IndexError, JournalEntry};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub report_id: String,
    pub case_id: String,
    pub clinic_id: String,
    /// dicom, hl7 or pull.
    pub channel: String,
    /// Where it went or goes, as configured when it was queued (AE@host:port, host:port).
    pub target: String,
    /// pending, delivered, failed (given up after the last attempt) or superseded (a later
    /// version was signed before this one went out).
    pub status: String,
    pub attempts: i64,
    pub last_error: String,
    pub delivered_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    /// Who asked for it: the signer, or whoever sent it again.
    pub requested_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, report_id, case_id, clinic_id, channel, target, status, attempts,
    last_error, delivered_at, next_attempt_at, last_attempt_at, requested_by, created_at,
    updated_at";

fn delivery_row(r: &AnyRow) -> Result<DeliveryRow, sqlx::Error> {
    Ok(DeliveryRow {
        id: r.try_get(0)?,
        report_id: r.try_get(1)?,
        case_id: r.try_get(2)?,
        clinic_id: r.try_get(3)?,
        channel: r.try_get(4)?,
        target: r.try_get(5)?,
        status: r.try_get(6)?,
        attempts: r.try_get(7)?,
        last_error: r.try_get(8)?,
        delivered_at: r.try_get(9)?,
        next_attempt_at: r.try_get(10)?,
        last_attempt_at: r.try_get(11)?,
        requested_by: r.try_get(12)?,
        created_at: r.try_get(13)?,
        updated_at: r.try_get(14)?,
    })
}

/// A push delivery to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub channel: String,
    pub target: String,
}

/// An older version still waiting on a channel would reach the clinic after a newly signed one
/// and stand as the latest result: it is superseded, in the signature's transaction (one in
/// flight may still arrive first).
pub(super) async fn supersede(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    report_id: &str,
    case_id: &str,
    pushes: &[Push],
    now: i64,
) -> Result<(), IndexError> {
    for push in pushes {
        sqlx::query(
            "UPDATE deliveries SET status = 'superseded', next_attempt_at = NULL,
               last_error = 'a later version of the report was signed', updated_at = $3
             WHERE case_id = $1 AND channel = $2 AND status = 'pending' AND report_id <> $4
               AND (lease_until IS NULL OR lease_until < $3)",
        )
        .bind(case_id)
        .bind(&push.channel)
        .bind(now)
        .bind(report_id)
        .execute(&mut **tx)
        .await
        .map_err(IndexError::query("supersede deliveries"))?;
    }
    Ok(())
}

/// Queues pending push deliveries of a report inside the caller's transaction.
pub(super) async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    report_id: &str,
    case_id: &str,
    clinic_id: &str,
    pushes: &[Push],
    requested_by: &str,
    now: i64,
) -> Result<Vec<String>, IndexError> {
    let mut ids = Vec::new();
    for push in pushes {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO deliveries (id, report_id, case_id, clinic_id, channel, status, attempts,
               last_error, delivered_at, created_at, updated_at, target, next_attempt_at,
               lease_until, leased_by, requested_by, last_attempt_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, '', NULL, $6, $6, $7, $6, NULL, '', $8,
               NULL)",
        )
        .bind(&id)
        .bind(report_id)
        .bind(case_id)
        .bind(clinic_id)
        .bind(&push.channel)
        .bind(now)
        .bind(&push.target)
        .bind(requested_by)
        .execute(&mut **tx)
        .await
        .map_err(IndexError::query("queue delivery"))?;
        ids.push(id);
    }
    Ok(ids)
}

fn read_all(rows: Vec<AnyRow>) -> Result<Vec<DeliveryRow>, IndexError> {
    rows.iter()
        .map(delivery_row)
        .collect::<Result<_, _>>()
        .map_err(IndexError::query("read delivery"))
}

impl Index {
    /// Leases up to `limit` due pending deliveries for `node` until `lease_until`, counting the
    /// attempt. On PostgreSQL rows another node is leasing right now are skipped, not waited
    /// for; SQLite has one writer at a time, which serialises the same statement.
    pub async fn lease_deliveries(
        &self,
        node: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, IndexError> {
        let lock = match self.engine() {
            Engine::Postgres => "FOR UPDATE SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let sql = format!(
            "UPDATE deliveries SET lease_until = $2, leased_by = $3, attempts = attempts + 1,
               last_attempt_at = $1, updated_at = $1
             WHERE id IN (
               SELECT id FROM deliveries
               WHERE status = 'pending' AND next_attempt_at <= $1
                 AND (lease_until IS NULL OR lease_until < $1)
               ORDER BY next_attempt_at, id
               LIMIT $4 {lock})
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(lease_until)
            .bind(node)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("lease deliveries"))?;
        read_all(rows)
    }

    /// Records a delivery made by `node`; the case is delivered (T6 kept from the first time)
    /// when this is its latest signed version. Journaled; `false` if the lease was lost.
    pub async fn delivery_done(
        &self,
        delivery: &DeliveryRow,
        node: &str,
        target: &str,
        journal: Option<&JournalEntry>,
    ) -> Result<bool, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin delivery done"))?;
        let changed = sqlx::query(
            "UPDATE deliveries SET status = 'delivered', delivered_at = $3, last_error = '',
               lease_until = NULL, next_attempt_at = NULL, updated_at = $3, target = $4
             WHERE id = $1 AND leased_by = $2 AND status = 'pending'",
        )
        .bind(&delivery.id)
        .bind(node)
        .bind(now)
        .bind(target)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("delivery done"))?
        .rows_affected()
            == 1;
        if changed {
            sqlx::query(
                "UPDATE cases SET status = 'delivered', delivered_at = COALESCE(delivered_at, $2),
                   updated_at = $2
                 WHERE id = $1 AND status = 'reported'
                   AND report_version = (SELECT version FROM reports WHERE id = $3)",
            )
            .bind(&delivery.case_id)
            .bind(now)
            .bind(&delivery.report_id)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("case delivered"))?;
        }
        journal_if(tx, changed, journal).await
    }

    /// Records a failed attempt: pending again from `retry_at`, or failed for good when
    /// `retry_at` is `None` (journaled then). `false` if the lease was lost.
    pub async fn delivery_attempt_failed(
        &self,
        delivery: &DeliveryRow,
        node: &str,
        target: &str,
        error: &str,
        retry_at: Option<i64>,
        journal: Option<&JournalEntry>,
    ) -> Result<bool, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin delivery failed"))?;
        let status = if retry_at.is_some() {
            "pending"
        } else {
            "failed"
        };
        let changed = sqlx::query(
            "UPDATE deliveries SET status = $3, last_error = $4, next_attempt_at = $5,
               lease_until = NULL, updated_at = $6, target = $7
             WHERE id = $1 AND leased_by = $2 AND status = 'pending'",
        )
        .bind(&delivery.id)
        .bind(node)
        .bind(status)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .bind(target)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("delivery failed"))?
        .rows_affected()
            == 1;
        journal_if(tx, changed, journal.filter(|_| retry_at.is_none())).await
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>, IndexError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries WHERE id = $1"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("delivery"))?;
        Ok(read_all(rows)?.into_iter().next())
    }

    /// Every delivery of the case's reports, oldest first.
    pub async fn deliveries_of_case(&self, case_id: &str) -> Result<Vec<DeliveryRow>, IndexError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries WHERE case_id = $1 ORDER BY created_at, id"
        )))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("deliveries of case"))?;
        read_all(rows)
    }

    /// The deliveries of one report (a signed version or an indicator report), oldest first.
    pub async fn deliveries_of_report(
        &self,
        report_id: &str,
    ) -> Result<Vec<DeliveryRow>, IndexError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries WHERE report_id = $1 ORDER BY created_at, id"
        )))
        .bind(report_id)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("deliveries of report"))?;
        read_all(rows)
    }

    /// Deliveries in a status (any when empty) of one clinic (any when `None`), newest first.
    pub async fn deliveries(
        &self,
        status: &str,
        clinic: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, IndexError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR clinic_id = $2)
             ORDER BY updated_at DESC, id LIMIT $3"
        )))
        .bind(status)
        .bind(clinic.unwrap_or(""))
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("deliveries"))?;
        read_all(rows)
    }

    /// How many deliveries stand in each status (for metrics).
    pub async fn delivery_counts(&self) -> Result<Vec<(String, String, i64)>, IndexError> {
        let rows = sqlx::query(
            "SELECT channel, status, COUNT(*) FROM deliveries GROUP BY channel, status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("delivery counts"))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read delivery counts"))
    }

    /// Puts a failed delivery back in the queue, due now, with its attempts counted afresh.
    /// Journaled; `false` if it was not failed.
    pub async fn retry_delivery(
        &self,
        id: &str,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin retry delivery"))?;
        let changed = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2,
               lease_until = NULL, updated_at = $2
             WHERE id = $1 AND status = 'failed'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("retry delivery"))?
        .rows_affected()
            == 1;
        journal_if(tx, changed, Some(journal)).await
    }

    /// Queues a signed report again on a push channel (the clinic lost it, or the channel was
    /// set up after signing). Journaled; the new delivery's id.
    pub async fn send_again(
        &self,
        report_id: &str,
        case_id: &str,
        clinic_id: &str,
        push: &Push,
        journal: &JournalEntry,
    ) -> Result<String, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin send again"))?;
        let ids = enqueue(
            &mut tx,
            report_id,
            case_id,
            clinic_id,
            std::slice::from_ref(push),
            &journal.actor,
            now,
        )
        .await?;
        insert_journal(&mut tx, journal).await?;
        tx.commit()
            .await
            .map_err(IndexError::query("commit send again"))?;
        Ok(ids.into_iter().next().unwrap_or_default())
    }
}
