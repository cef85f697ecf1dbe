//! Generated indicator reports, immutable and versioned per period, and their delivery to the
//! quality platform as rows of the same durable queue report deliveries use (channel
//! `platform`).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_micros, DeliveryRow, Index, IndexError};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndicatorReportRow {
    pub id: String,
    pub period: String,
    pub version: i64,
    pub generated_at: i64,
    pub generated_by: String,
    pub definitions_version: String,
    pub content_key: String,
    pub content_sha256: String,
    pub bundle_key: String,
    pub bundle_sha256: String,
    pub changes: String,
}

const COLUMNS: &str = "id, period, version, generated_at, generated_by, definitions_version,
    content_key, content_sha256, bundle_key, bundle_sha256, changes";

fn row(r: &AnyRow) -> Result<IndicatorReportRow, sqlx::Error> {
    Ok(IndicatorReportRow {
        id: r.try_get(0)?,
        period: r.try_get(1)?,
        version: r.try_get(2)?,
        generated_at: r.try_get(3)?,
        generated_by: r.try_get(4)?,
        definitions_version: r.try_get(5)?,
        content_key: r.try_get(6)?,
        content_sha256: r.try_get(7)?,
        bundle_key: r.try_get(8)?,
        bundle_sha256: r.try_get(9)?,
        changes: r.try_get(10)?,
    })
}

impl Index {
    /// Files a new version of a period's report; `false` when another node filed that version
    /// number first (the caller generates again).
    pub async fn insert_indicator_report(
        &self,
        r: &IndicatorReportRow,
    ) -> Result<bool, IndexError> {
        Ok(sqlx::query(
            "INSERT INTO indicator_reports (id, period, version, generated_at, generated_by,
               definitions_version, content_key, content_sha256, bundle_key, bundle_sha256,
               changes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING",
        )
        .bind(&r.id)
        .bind(&r.period)
        .bind(r.version)
        .bind(r.generated_at)
        .bind(&r.generated_by)
        .bind(&r.definitions_version)
        .bind(&r.content_key)
        .bind(&r.content_sha256)
        .bind(&r.bundle_key)
        .bind(&r.bundle_sha256)
        .bind(&r.changes)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("insert indicator report"))?
        .rows_affected()
            == 1)
    }

    /// Every version of a period's report (all periods for `None`), newest first.
    pub async fn indicator_reports(
        &self,
        period: Option<&str>,
    ) -> Result<Vec<IndicatorReportRow>, IndexError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM indicator_reports
             WHERE $1 = '' OR period = $1 ORDER BY period DESC, version DESC"
        )))
        .bind(period.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("indicator reports"))?;
        rows.iter()
            .map(row)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("read indicator report"))
    }

    pub async fn indicator_report(
        &self,
        id: &str,
    ) -> Result<Option<IndicatorReportRow>, IndexError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM indicator_reports WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query("indicator report"))?
        .map(|r| row(&r))
        .transpose()
        .map_err(IndexError::query("read indicator report"))
    }

    /// Queues the report's delivery to the platform endpoint `target`; the delivery row.
    pub async fn queue_platform_delivery(
        &self,
        report_id: &str,
        target: &str,
        requested_by: &str,
    ) -> Result<DeliveryRow, IndexError> {
        let now = now_micros();
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO deliveries (id, report_id, case_id, clinic_id, channel, status, attempts,
               last_error, delivered_at, created_at, updated_at, target, next_attempt_at,
               lease_until, leased_by, requested_by, last_attempt_at)
             VALUES ($1, $2, '', '', 'platform', 'pending', 0, '', NULL, $3, $3, $4, $3, NULL,
               '', $5, NULL)",
        )
        .bind(&id)
        .bind(report_id)
        .bind(now)
        .bind(target)
        .bind(requested_by)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("queue platform delivery"))?;
        self.delivery(&id)
            .await?
            .ok_or_else(|| IndexError::query("read queued delivery")(sqlx::Error::RowNotFound))
    }

    /// The platform deliveries of a report, oldest first.
    pub async fn platform_deliveries(
        &self,
        report_id: &str,
    ) -> Result<Vec<DeliveryRow>, IndexError> {
        let all = self.deliveries_of_report(report_id).await?;
        Ok(all
            .into_iter()
            .filter(|d| d.channel == "platform")
            .collect())
    }
}
