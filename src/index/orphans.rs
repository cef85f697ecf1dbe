//! Leftovers `verify --all` names and what an administrator decided about them.

use sqlx::Row;

use super::{Index, IndexError};

/// A report object no signed report version names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrphanReport {
    pub key: String,
    pub study_uid: String,
    pub sha256: String,
    pub received_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrphanDecision {
    pub object_key: String,
    /// unindexed or report_object.
    pub kind: String,
    /// adopt or quarantine.
    pub decision: String,
    pub quarantine_key: String,
    pub sha256: String,
    pub reason: String,
    pub decided_by: String,
    pub decided_at: i64,
}

impl Index {
    /// Encapsulated PDF objects this service made (`own_ae` as their source) received before
    /// `before`, that no signed report version names and no decision settled.
    pub async fn orphan_reports(
        &self,
        own_ae: &str,
        pdf_class: &str,
        before: i64,
    ) -> Result<Vec<OrphanReport>, IndexError> {
        let what = "orphan report objects";
        let rows = sqlx::query(
            "SELECT i.object_key, i.study_uid, i.sha256, i.received_at FROM instances i
             WHERE i.calling_ae = $1 AND i.sop_class_uid = $2 AND i.received_at < $3
               AND NOT EXISTS (SELECT 1 FROM reports r
                               WHERE r.document_key = i.object_key AND r.status = 'signed')
               AND NOT EXISTS (SELECT 1 FROM orphan_decisions d
                               WHERE d.object_key = i.object_key)
             ORDER BY i.object_key",
        )
        .bind(own_ae)
        .bind(pdf_class)
        .bind(before)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        rows.iter()
            .map(|r| {
                Ok(OrphanReport {
                    key: r.try_get(0)?,
                    study_uid: r.try_get(1)?,
                    sha256: r.try_get(2)?,
                    received_at: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query(what))
    }

    pub async fn record_orphan_decision(&self, d: &OrphanDecision) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO orphan_decisions (object_key, kind, decision, quarantine_key, sha256,
               reason, decided_by, decided_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (object_key) DO UPDATE SET kind = excluded.kind,
               decision = excluded.decision, quarantine_key = excluded.quarantine_key,
               sha256 = excluded.sha256, reason = excluded.reason,
               decided_by = excluded.decided_by, decided_at = excluded.decided_at",
        )
        .bind(&d.object_key)
        .bind(&d.kind)
        .bind(&d.decision)
        .bind(&d.quarantine_key)
        .bind(&d.sha256)
        .bind(&d.reason)
        .bind(&d.decided_by)
        .bind(d.decided_at)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("record orphan decision"))?;
        Ok(())
    }

    /// Whether an index row names the object (an instance, a referral document or order, a
    /// Holter original, a report content or answer).
    pub async fn names_object(&self, key: &str) -> Result<bool, IndexError> {
        let n: i64 = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM instances WHERE object_key = $1)
                  + (SELECT COUNT(*) FROM referrals
                     WHERE document_key = $1 OR order_message_key = $1)
                  + (SELECT COUNT(*) FROM reports WHERE content_key = $1 OR answer_key = $1)
                  + (SELECT COUNT(*) FROM holter_originals WHERE object_key = $1)",
        )
        .bind(key)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(IndexError::query("names object"))?;
        Ok(n > 0)
    }

    /// Takes one instance's row out of the index, with its series' and study's counts (a
    /// series or study left empty goes too); `false` when no row names the key.
    pub async fn withdraw_instance(&self, key: &str) -> Result<bool, IndexError> {
        let what = "withdraw instance";
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        let Some(row) = sqlx::query(
            "SELECT series_uid, study_uid, size_bytes, sop_instance_uid FROM instances
             WHERE object_key = $1",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(IndexError::query(what))?
        else {
            return Ok(false);
        };
        let read = || -> Result<(String, String, i64, String), sqlx::Error> {
            Ok((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            ))
        };
        let (series, study, size, sop) = read().map_err(IndexError::query(what))?;
        // The study row first: the lock every change to the study takes.
        sqlx::query("UPDATE studies SET study_uid = study_uid WHERE study_uid = $1")
            .bind(&study)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
        for (sql, value) in [
            ("DELETE FROM instances WHERE object_key = $1", key),
            ("DELETE FROM fixity_checks WHERE object_key = $1", key),
            (
                "DELETE FROM instance_owners WHERE sop_instance_uid = $1
                 AND NOT EXISTS (SELECT 1 FROM instances WHERE sop_instance_uid = $1)",
                sop.as_str(),
            ),
            (
                "UPDATE series SET num_instances = num_instances - 1 WHERE series_uid = $1",
                series.as_str(),
            ),
        ] {
            sqlx::query(sql)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(IndexError::query(what))?;
        }
        let emptied = sqlx::query("DELETE FROM series WHERE series_uid = $1 AND num_instances <= 0")
            .bind(&series)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?
            .rows_affected() as i64;
        let modalities: Vec<String> = sqlx::query(
            "SELECT DISTINCT modality FROM series WHERE study_uid = $1 ORDER BY modality",
        )
        .bind(&study)
        .fetch_all(&mut *tx)
        .await
        .map_err(IndexError::query(what))?
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .filter(|m| !m.is_empty())
        .collect();
        sqlx::query(
            "UPDATE studies SET num_instances = num_instances - 1, total_bytes = total_bytes - $2,
               num_series = num_series - $3, modalities = $4
             WHERE study_uid = $1",
        )
        .bind(&study)
        .bind(size)
        .bind(emptied)
        .bind(modalities.join("\\"))
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query(what))?;
        sqlx::query("DELETE FROM studies WHERE study_uid = $1 AND num_instances <= 0")
            .bind(&study)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
        tx.commit().await.map_err(IndexError::query(what))?;
        Ok(true)
    }
}
