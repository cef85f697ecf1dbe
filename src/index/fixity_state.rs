//! Where fixity outcomes are kept: the last check of each object, every failure ever found,
//! the daily tally, the background worker's place in its pass, and what the fixity report
//! over a period reads back.

use sqlx::Row;

use super::fixity::FixityCheck;
use super::{Index, IndexError};

/// Where the background pass stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FixityCursor {
    /// Passes begun since the archive was made (0: none yet).
    pub cycle: i64,
    pub cycle_started_at: i64,
    /// `documents` (referrals, HL7 orders, reports, answers), then `dicom`.
    pub phase: String,
    /// The last key checked in this phase.
    pub after_key: String,
    /// Objects, bytes and failures so far in this pass.
    pub objects: i64,
    pub bytes: i64,
    pub failures: i64,
}

/// A failure as kept: the last check of an object that failed it, or one in the history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FixityFailureRow {
    pub key: String,
    pub kind: String,
    pub study_uid: String,
    pub problem: String,
    pub expected_sha256: String,
    pub found_sha256: String,
    pub detail: String,
    pub found_at: i64,
}

/// Objects and bytes checked, and failures found, over a run of days.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FixityTally {
    pub objects: i64,
    pub bytes: i64,
    pub failures: i64,
}

/// The UTC day (`YYYY-MM-DD`) of an index time.
fn day_of(micros: i64) -> String {
    super::rfc3339(micros).chars().take(10).collect()
}

const ALL_OBJECTS: &str = "SELECT object_key AS k, received_at AS t FROM instances
     UNION SELECT document_key, received_at FROM referrals WHERE document_key <> ''
     UNION SELECT order_message_key, received_at FROM referrals WHERE order_message_key <> ''
     UNION SELECT object_key, received_at FROM holter_originals
     UNION SELECT content_key, created_at FROM reports WHERE content_key <> ''
     UNION SELECT answer_key, created_at FROM reports WHERE answer_key <> ''";

impl Index {
    /// Keeps the outcomes of a batch of checks in one transaction: each object's last check,
    /// every failure in the history, and the day's tally.
    pub async fn record_fixity_batch(&self, checks: &[FixityCheck]) -> Result<(), IndexError> {
        let Some(first) = checks.first() else {
            return Ok(());
        };
        let what = "record fixity";
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        for c in checks {
            sqlx::query(
                "INSERT INTO fixity_checks
                   (object_key, kind, study_uid, expected, found, outcome, checked_at, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (object_key) DO UPDATE SET kind = excluded.kind,
                   study_uid = excluded.study_uid, expected = excluded.expected,
                   found = excluded.found, outcome = excluded.outcome,
                   checked_at = excluded.checked_at, bytes = excluded.bytes",
            )
            .bind(&c.object.key)
            .bind(c.object.kind)
            .bind(&c.object.study_uid)
            .bind(&c.object.sha256)
            .bind(&c.found)
            .bind(c.outcome)
            .bind(c.checked_at)
            .bind(i64::try_from(c.bytes).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
            if c.outcome != "ok" {
                sqlx::query(
                    "INSERT INTO fixity_failures (id, object_key, kind, study_uid, problem,
                       expected, found, detail, found_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&c.object.key)
                .bind(c.object.kind)
                .bind(&c.object.study_uid)
                .bind(c.outcome)
                .bind(&c.object.sha256)
                .bind(&c.found)
                .bind(&c.detail)
                .bind(c.checked_at)
                .execute(&mut *tx)
                .await
                .map_err(IndexError::query(what))?;
            }
        }
        let objects = i64::try_from(checks.len()).unwrap_or(i64::MAX);
        let bytes: i64 = checks
            .iter()
            .map(|c| i64::try_from(c.bytes).unwrap_or(0))
            .sum();
        let failures =
            i64::try_from(checks.iter().filter(|c| c.outcome != "ok").count()).unwrap_or(0);
        sqlx::query(
            "INSERT INTO fixity_tally (day, objects, bytes, failures) VALUES ($1, $2, $3, $4)
             ON CONFLICT (day) DO UPDATE SET objects = fixity_tally.objects + excluded.objects,
               bytes = fixity_tally.bytes + excluded.bytes,
               failures = fixity_tally.failures + excluded.failures",
        )
        .bind(day_of(first.checked_at))
        .bind(objects)
        .bind(bytes)
        .bind(failures)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query(what))?;
        tx.commit().await.map_err(IndexError::query(what))
    }

    /// Takes (or keeps) the background worker's lease for `holder` until `lease_until`, and
    /// answers where the pass stands; nothing while another node holds a live lease.
    pub async fn claim_fixity_worker(
        &self,
        holder: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<FixityCursor>, IndexError> {
        let what = "claim the fixity worker";
        let row = sqlx::query(
            "UPDATE fixity_worker SET holder = $1, lease_until = $2
             WHERE id = 1 AND (holder = $1 OR lease_until < $3)
             RETURNING cycle, cycle_started_at, phase, after_key, objects, bytes, failures",
        )
        .bind(holder)
        .bind(lease_until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        let Some(r) = row else { return Ok(None) };
        decode_cursor(&r).map(Some).map_err(IndexError::query(what))
    }

    /// Moves the pass on, if `holder` still holds the lease; answers whether it did.
    pub async fn save_fixity_cursor(
        &self,
        holder: &str,
        cursor: &FixityCursor,
    ) -> Result<bool, IndexError> {
        let done = sqlx::query(
            "UPDATE fixity_worker SET cycle = $1, cycle_started_at = $2, phase = $3,
               after_key = $4, objects = $5, bytes = $6, failures = $7
             WHERE id = 1 AND holder = $8",
        )
        .bind(cursor.cycle)
        .bind(cursor.cycle_started_at)
        .bind(&cursor.phase)
        .bind(&cursor.after_key)
        .bind(cursor.objects)
        .bind(cursor.bytes)
        .bind(cursor.failures)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("save the fixity cursor"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Where the background pass stands, for the report.
    pub async fn fixity_cursor(&self) -> Result<FixityCursor, IndexError> {
        let what = "read the fixity cursor";
        let r = sqlx::query(
            "SELECT cycle, cycle_started_at, phase, after_key, objects, bytes, failures
             FROM fixity_worker WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        decode_cursor(&r).map_err(IndexError::query(what))
    }

    /// Objects whose last check failed and has not been followed by a good one: what
    /// administrators and auditors have to deal with.
    pub async fn fixity_open_failures(
        &self,
        limit: i64,
    ) -> Result<Vec<FixityFailureRow>, IndexError> {
        let rows = sqlx::query(
            "SELECT object_key, kind, study_uid, outcome, expected, found, '', checked_at
             FROM fixity_checks WHERE outcome <> 'ok' ORDER BY checked_at DESC, object_key
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("open fixity failures"))?;
        rows.iter()
            .map(decode_failure)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("open fixity failures"))
    }

    /// How many objects stand failed now (for the metric).
    pub async fn fixity_failure_count(&self) -> Result<i64, IndexError> {
        sqlx::query("SELECT COUNT(*) FROM fixity_checks WHERE outcome <> 'ok'")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(IndexError::query("count fixity failures"))
    }

    /// Every failure found in `[from, to)`, oldest first.
    pub async fn fixity_failures_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<FixityFailureRow>, IndexError> {
        let rows = sqlx::query(
            "SELECT object_key, kind, study_uid, problem, expected, found, detail, found_at
             FROM fixity_failures WHERE found_at >= $1 AND found_at < $2
             ORDER BY found_at, object_key",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("fixity failures of a period"))?;
        rows.iter()
            .map(decode_failure)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("fixity failures of a period"))
    }

    /// Objects and bytes checked, and failures found, on the days `[from, to)` touches (the
    /// tally is kept per UTC day, so a period is widened to whole days).
    pub async fn fixity_tally_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<FixityTally, IndexError> {
        let what = "fixity tally of a period";
        let r = sqlx::query(
            "SELECT CAST(COALESCE(SUM(objects), 0) AS BIGINT),
               CAST(COALESCE(SUM(bytes), 0) AS BIGINT),
               CAST(COALESCE(SUM(failures), 0) AS BIGINT)
             FROM fixity_tally WHERE day >= $1 AND day <= $2",
        )
        .bind(day_of(from))
        .bind(day_of(to - 1))
        .fetch_one(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        Ok(FixityTally {
            objects: r.try_get(0).map_err(IndexError::query(what))?,
            bytes: r.try_get(1).map_err(IndexError::query(what))?,
            failures: r.try_get(2).map_err(IndexError::query(what))?,
        })
    }

    /// Objects stored before `to` whose last check is older than `from` or that were never
    /// checked: how many, and the first `limit` keys.
    pub async fn fixity_unchecked(
        &self,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<(i64, Vec<String>), IndexError> {
        let what = "objects not checked in a period";
        let filter = "FROM (".to_owned()
            + ALL_OBJECTS
            + ") o LEFT JOIN fixity_checks f ON f.object_key = o.k
             WHERE o.t < $1 AND (f.object_key IS NULL OR f.checked_at < $2)";
        let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {filter}")))
            .bind(to)
            .bind(from)
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(IndexError::query(what))?;
        let keys = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT o.k {filter} ORDER BY o.k LIMIT $3"
        )))
        .bind(to)
        .bind(from)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query(what))?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(IndexError::query(what))?;
        Ok((count, keys))
    }

    /// Bytes of DICOM objects in the archive: what one background pass has to read.
    pub async fn archive_bytes(&self) -> Result<i64, IndexError> {
        sqlx::query("SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM instances")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(IndexError::query("archive size"))
    }
}

fn decode_cursor(r: &sqlx::any::AnyRow) -> Result<FixityCursor, sqlx::Error> {
    Ok(FixityCursor {
        cycle: r.try_get(0)?,
        cycle_started_at: r.try_get(1)?,
        phase: r.try_get(2)?,
        after_key: r.try_get(3)?,
        objects: r.try_get(4)?,
        bytes: r.try_get(5)?,
        failures: r.try_get(6)?,
    })
}

fn decode_failure(r: &sqlx::any::AnyRow) -> Result<FixityFailureRow, sqlx::Error> {
    Ok(FixityFailureRow {
        key: r.try_get(0)?,
        kind: r.try_get(1)?,
        study_uid: r.try_get(2)?,
        problem: r.try_get(3)?,
        expected_sha256: r.try_get(4)?,
        found_sha256: r.try_get(5)?,
        detail: r.try_get(6)?,
        found_at: r.try_get(7)?,
    })
}
