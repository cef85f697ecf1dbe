//! What retention keeps in the index: the longest retention configured per kind, extensions,
//! legal holds and the daily list of expiring studies (deletions: `deletion.rs`).

use sqlx::Row;

use super::{Index, IndexError};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HoldRow {
    pub id: String,
    pub study_uid: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: i64,
    pub released_by: String,
    pub released_at: Option<i64>,
    pub release_reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExtensionRow {
    pub id: String,
    pub study_uid: String,
    /// `YYYY-MM-DD`: kept to the end of that day.
    pub until_day: String,
    pub reason: String,
    pub set_by: String,
    pub set_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoticeRow {
    pub day: String,
    pub study_uid: String,
    pub retain_until: String,
    pub objects: i64,
    /// Open legal holds on the study (it will not be deleted while any stands).
    pub held: i64,
}

/// The latest receipt of one kind of object in a study, for the expiry list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyReceipts {
    pub study_uid: String,
    pub kind: String,
    pub latest: i64,
    pub objects: i64,
}

fn hold(r: &sqlx::any::AnyRow) -> Result<HoldRow, sqlx::Error> {
    Ok(HoldRow {
        id: r.try_get("id")?,
        study_uid: r.try_get("study_uid")?,
        reason: r.try_get("reason")?,
        placed_by: r.try_get("placed_by")?,
        placed_at: r.try_get("placed_at")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
        release_reason: r.try_get("release_reason")?,
    })
}

fn extension(r: &sqlx::any::AnyRow) -> Result<ExtensionRow, sqlx::Error> {
    Ok(ExtensionRow {
        id: r.try_get("id")?,
        study_uid: r.try_get("study_uid")?,
        until_day: r.try_get("until_day")?,
        reason: r.try_get("reason")?,
        set_by: r.try_get("set_by")?,
        set_at: r.try_get("set_at")?,
    })
}

impl Index {
    /// The longest retention ever configured per kind.
    pub async fn retention_policy(&self) -> Result<Vec<(String, i64)>, IndexError> {
        let what = "retention policy";
        let rows = sqlx::query("SELECT kind, years FROM retention_policy ORDER BY kind")
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query(what))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query(what))
    }

    /// Records `years` for `kind` unless a longer figure is on record; answers the figure in
    /// force.
    pub async fn raise_retention_policy(
        &self,
        kind: &str,
        years: i64,
        at: i64,
    ) -> Result<i64, IndexError> {
        let what = "raise retention policy";
        let row = sqlx::query(
            "INSERT INTO retention_policy (kind, years, set_at) VALUES ($1, $2, $3)
             ON CONFLICT (kind) DO UPDATE SET
               years = CASE WHEN excluded.years > retention_policy.years
                            THEN excluded.years ELSE retention_policy.years END,
               set_at = CASE WHEN excluded.years > retention_policy.years
                             THEN excluded.set_at ELSE retention_policy.set_at END
             RETURNING years",
        )
        .bind(kind)
        .bind(years)
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        row.try_get(0).map_err(IndexError::query(what))
    }

    /// Keys of the DICOM report objects made when the study's reports were signed.
    pub async fn report_object_keys(&self, study_uid: &str) -> Result<Vec<String>, IndexError> {
        let what = "report object keys";
        let rows = sqlx::query(
            "SELECT r.document_key FROM reports r JOIN cases c ON c.id = r.case_id
             WHERE c.study_uid = $1 AND r.document_key <> ''",
        )
        .bind(study_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query(what))
    }

    /// Per study and kind, the latest receipt and the number of objects: what the expiry list
    /// is computed from without reading every object's row into memory.
    pub async fn study_receipts(&self) -> Result<Vec<StudyReceipts>, IndexError> {
        let what = "study receipts";
        let rows = sqlx::query(
            "SELECT study_uid, 'dicom', MAX(received_at), COUNT(*) FROM instances
               GROUP BY study_uid
             UNION ALL
             SELECT study_uid, 'referral', MAX(received_at), COUNT(*) FROM referrals
               WHERE study_uid <> '' AND document_key <> '' GROUP BY study_uid
             UNION ALL
             SELECT c.study_uid, 'report', MAX(r.created_at), COUNT(*)
               FROM reports r JOIN cases c ON c.id = r.case_id
               WHERE r.content_key <> '' GROUP BY c.study_uid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        rows.iter()
            .map(|r| {
                Ok(StudyReceipts {
                    study_uid: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    latest: r.try_get(2)?,
                    objects: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query(what))
    }

    /// The latest extension day of every extended study.
    pub async fn extension_days(&self) -> Result<Vec<(String, String)>, IndexError> {
        let what = "extension days";
        let rows = sqlx::query(
            "SELECT study_uid, MAX(until_day) FROM retention_extensions GROUP BY study_uid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query(what))
    }

    /// Studies with open legal holds, and how many.
    pub async fn held_studies(&self) -> Result<Vec<(String, i64)>, IndexError> {
        let what = "held studies";
        let rows = sqlx::query(
            "SELECT study_uid, COUNT(*) FROM legal_holds WHERE released_at IS NULL
             GROUP BY study_uid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query(what))
    }

    pub async fn extensions(&self, study_uid: &str) -> Result<Vec<ExtensionRow>, IndexError> {
        let rows = sqlx::query(
            "SELECT * FROM retention_extensions WHERE study_uid = $1 ORDER BY set_at, id",
        )
        .bind(study_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("extensions"))?;
        rows.iter()
            .map(extension)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("extensions"))
    }

    /// Records an extension unless one as late or later is on record; answers whether it
    /// was recorded. The study row is locked first, so a deletion cannot pass between.
    pub async fn add_extension(&self, row: &ExtensionRow) -> Result<Option<bool>, IndexError> {
        let what = "add extension";
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        if !lock_study(&mut tx, &row.study_uid).await? {
            return Ok(None);
        }
        let latest: Option<String> =
            sqlx::query("SELECT MAX(until_day) FROM retention_extensions WHERE study_uid = $1")
                .bind(&row.study_uid)
                .fetch_one(&mut *tx)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(IndexError::query(what))?;
        if latest.is_some_and(|day| day >= row.until_day) {
            return Ok(Some(false));
        }
        sqlx::query(
            "INSERT INTO retention_extensions (id, study_uid, until_day, reason, set_by, set_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.id)
        .bind(&row.study_uid)
        .bind(&row.until_day)
        .bind(&row.reason)
        .bind(&row.set_by)
        .bind(row.set_at)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query(what))?;
        tx.commit().await.map_err(IndexError::query(what))?;
        Ok(Some(true))
    }

    pub async fn holds(&self, study_uid: Option<&str>) -> Result<Vec<HoldRow>, IndexError> {
        let rows = sqlx::query(
            "SELECT * FROM legal_holds WHERE ($1 = '' OR study_uid = $1)
             ORDER BY placed_at, id",
        )
        .bind(study_uid.unwrap_or(""))
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("holds"))?;
        rows.iter()
            .map(hold)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("holds"))
    }

    /// Places a hold on a study in the index (`false`: no such study). The study row is locked
    /// first, so a deletion being approved either sees the hold or is finished before it.
    pub async fn place_hold(&self, row: &HoldRow) -> Result<bool, IndexError> {
        let what = "place hold";
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        if !lock_study(&mut tx, &row.study_uid).await? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO legal_holds (id, study_uid, reason, placed_by, placed_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.id)
        .bind(&row.study_uid)
        .bind(&row.reason)
        .bind(&row.placed_by)
        .bind(row.placed_at)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query(what))?;
        tx.commit().await.map_err(IndexError::query(what))?;
        Ok(true)
    }

    /// Releases an open hold; answers the hold as it now stands (`None`: no such hold).
    pub async fn release_hold(
        &self,
        id: &str,
        by: &str,
        at: i64,
        reason: &str,
    ) -> Result<Option<(HoldRow, bool)>, IndexError> {
        let what = "release hold";
        let released = sqlx::query(
            "UPDATE legal_holds SET released_by = $2, released_at = $3, release_reason = $4
             WHERE id = $1 AND released_at IS NULL",
        )
        .bind(id)
        .bind(by)
        .bind(at)
        .bind(reason)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query(what))?
        .rows_affected()
            == 1;
        let row = sqlx::query("SELECT * FROM legal_holds WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query(what))?;
        row.map(|r| hold(&r).map(|h| (h, released)))
            .transpose()
            .map_err(IndexError::query(what))
    }

    /// Replaces the day's list of expiring studies.
    pub async fn record_notices(&self, day: &str, rows: &[NoticeRow]) -> Result<(), IndexError> {
        let what = "record retention notices";
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        sqlx::query("DELETE FROM retention_notices WHERE day = $1")
            .bind(day)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
        for n in rows {
            sqlx::query(
                "INSERT INTO retention_notices (day, study_uid, retain_until, objects, held)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(day)
            .bind(&n.study_uid)
            .bind(&n.retain_until)
            .bind(n.objects)
            .bind(n.held)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
        }
        tx.commit().await.map_err(IndexError::query(what))
    }

    /// The latest day a list was made, and its rows.
    pub async fn latest_notices(&self) -> Result<Option<(String, Vec<NoticeRow>)>, IndexError> {
        let what = "retention notices";
        let day: Option<String> = sqlx::query("SELECT MAX(day) FROM retention_notices")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(IndexError::query(what))?;
        let Some(day) = day else { return Ok(None) };
        let rows = sqlx::query(
            "SELECT day, study_uid, retain_until, objects, held FROM retention_notices
             WHERE day = $1 ORDER BY retain_until, study_uid",
        )
        .bind(&day)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(NoticeRow {
                    day: r.try_get(0)?,
                    study_uid: r.try_get(1)?,
                    retain_until: r.try_get(2)?,
                    objects: r.try_get(3)?,
                    held: r.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query(what))?;
        Ok(Some((day, rows)))
    }
}

/// Takes the study's row lock (a no-op update: PostgreSQL locks the row, SQLite the database)
/// so holds, extensions and a deletion of one study happen one after another; `false` when
/// the study is not in the index.
pub(super) async fn lock_study(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    study_uid: &str,
) -> Result<bool, IndexError> {
    let result = sqlx::query("UPDATE studies SET study_uid = study_uid WHERE study_uid = $1")
        .bind(study_uid)
        .execute(&mut **tx)
        .await
        .map_err(IndexError::query("lock study"))?;
    Ok(result.rows_affected() == 1)
}
