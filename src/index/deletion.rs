//! Deletion requests, the one transaction that replaces an expired study's rows with
//! tombstones, and the tombstones themselves.

use sqlx::Row;

use super::retention::lock_study;
use super::{Index, IndexError};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeletionRequestRow {
    pub id: String,
    pub study_uid: String,
    pub reason: String,
    pub proposed_by: String,
    pub proposed_at: i64,
    /// proposed, rejected, approved (objects being removed) or done.
    pub state: String,
    pub decided_by: String,
    pub decided_at: Option<i64>,
    pub decision_note: String,
    pub done_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TombstoneRow {
    pub object_key: String,
    pub request_id: String,
    pub kind: String,
    pub study_uid: String,
    pub sha256: String,
    pub bytes: i64,
    pub received_at: i64,
    pub retain_until: String,
    pub reason: String,
    pub proposed_by: String,
    pub proposed_at: i64,
    pub approved_by: String,
    pub approved_at: i64,
    pub removed_at: Option<i64>,
}

/// What the deletion transaction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Index rows gone; these tombstones name the objects to remove from the store.
    Approved(Vec<TombstoneRow>),
    /// The request is not waiting for a decision (its state).
    NotProposed(String),
    /// The study is gone from the index.
    NoStudy,
    /// Legal holds stand on the study.
    Held(i64),
    /// Kept until that day by an extension made since the checks.
    Extended(String),
    /// DICOM objects arrived or left since the checks: the list is not the study any more.
    Changed,
}

fn request(r: &sqlx::any::AnyRow) -> Result<DeletionRequestRow, sqlx::Error> {
    Ok(DeletionRequestRow {
        id: r.try_get("id")?,
        study_uid: r.try_get("study_uid")?,
        reason: r.try_get("reason")?,
        proposed_by: r.try_get("proposed_by")?,
        proposed_at: r.try_get("proposed_at")?,
        state: r.try_get("state")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        decision_note: r.try_get("decision_note")?,
        done_at: r.try_get("done_at")?,
    })
}

fn tombstone(r: &sqlx::any::AnyRow) -> Result<TombstoneRow, sqlx::Error> {
    Ok(TombstoneRow {
        object_key: r.try_get("object_key")?,
        request_id: r.try_get("request_id")?,
        kind: r.try_get("kind")?,
        study_uid: r.try_get("study_uid")?,
        sha256: r.try_get("sha256")?,
        bytes: r.try_get("bytes")?,
        received_at: r.try_get("received_at")?,
        retain_until: r.try_get("retain_until")?,
        reason: r.try_get("reason")?,
        proposed_by: r.try_get("proposed_by")?,
        proposed_at: r.try_get("proposed_at")?,
        approved_by: r.try_get("approved_by")?,
        approved_at: r.try_get("approved_at")?,
        removed_at: r.try_get("removed_at")?,
    })
}

const REQUEST_COLUMNS: &str = "id, study_uid, reason, proposed_by, proposed_at, state, \
    decided_by, decided_at, decision_note, done_at";

impl Index {
    /// Records a proposal; `false` when one already waits for the study.
    pub async fn propose_deletion(&self, row: &DeletionRequestRow) -> Result<bool, IndexError> {
        let result = sqlx::query(
            "INSERT INTO deletion_requests (id, study_uid, reason, proposed_by, proposed_at, state)
             VALUES ($1, $2, $3, $4, $5, 'proposed') ON CONFLICT DO NOTHING",
        )
        .bind(&row.id)
        .bind(&row.study_uid)
        .bind(&row.reason)
        .bind(&row.proposed_by)
        .bind(row.proposed_at)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("propose deletion"))?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn deletion_request(
        &self,
        id: &str,
    ) -> Result<Option<DeletionRequestRow>, IndexError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM deletion_requests WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query("deletion request"))?;
        row.map(|r| request(&r))
            .transpose()
            .map_err(IndexError::query("deletion request"))
    }

    /// Requests in one state ('' for all), newest first.
    pub async fn deletion_requests(
        &self,
        state: &str,
    ) -> Result<Vec<DeletionRequestRow>, IndexError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM deletion_requests WHERE ($1 = '' OR state = $1)
             ORDER BY proposed_at DESC, id"
        )))
        .bind(state)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("deletion requests"))?;
        rows.iter()
            .map(request)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("deletion requests"))
    }

    /// An auditor's refusal of a proposal; `false` when it was not waiting.
    pub async fn reject_deletion(
        &self,
        id: &str,
        by: &str,
        at: i64,
        note: &str,
    ) -> Result<bool, IndexError> {
        let result = sqlx::query(
            "UPDATE deletion_requests SET state = 'rejected', decided_by = $2, decided_at = $3,
               decision_note = $4
             WHERE id = $1 AND state = 'proposed'",
        )
        .bind(id)
        .bind(by)
        .bind(at)
        .bind(note)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("reject deletion"))?;
        Ok(result.rows_affected() == 1)
    }

    /// The approval: in one transaction, with the study row locked, checks again that no hold
    /// stands, no extension reaches past `today` and the study's DICOM objects are those the
    /// tombstones name; then writes the tombstones (leaving out documents another study's rows
    /// still name), removes the study's rows and marks the request approved. The objects are
    /// removed from the store afterwards, named by the tombstones.
    pub async fn approve_deletion(
        &self,
        request_id: &str,
        today: &str,
        tombstones: &[TombstoneRow],
        note: &str,
    ) -> Result<Removal, IndexError> {
        let what = "approve deletion";
        let Some(first) = tombstones.first() else {
            return Ok(Removal::Changed);
        };
        let study = first.study_uid.clone();
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        if !lock_study(&mut tx, &study).await? {
            return Ok(Removal::NoStudy);
        }
        let state: Option<String> =
            sqlx::query("SELECT state FROM deletion_requests WHERE id = $1")
                .bind(request_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(IndexError::query(what))?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(IndexError::query(what))?;
        match state.as_deref() {
            Some("proposed") => {}
            other => return Ok(Removal::NotProposed(other.unwrap_or("").to_owned())),
        }
        let held: i64 = sqlx::query(
            "SELECT COUNT(*) FROM legal_holds WHERE study_uid = $1 AND released_at IS NULL",
        )
        .bind(&study)
        .fetch_one(&mut *tx)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(IndexError::query(what))?;
        if held > 0 {
            return Ok(Removal::Held(held));
        }
        let extended: Option<String> =
            sqlx::query("SELECT MAX(until_day) FROM retention_extensions WHERE study_uid = $1")
                .bind(&study)
                .fetch_one(&mut *tx)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(IndexError::query(what))?;
        if let Some(day) = extended.filter(|day| day.as_str() >= today) {
            return Ok(Removal::Extended(day));
        }
        let mut stored: Vec<String> =
            sqlx::query("SELECT object_key FROM instances WHERE study_uid = $1")
                .bind(&study)
                .fetch_all(&mut *tx)
                .await
                .map_err(IndexError::query(what))?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(IndexError::query(what))?;
        stored.sort();
        let mut named: Vec<String> = tombstones
            .iter()
            .filter(|t| t.kind == "dicom" || t.kind == "report_object")
            .map(|t| t.object_key.clone())
            .collect();
        named.sort();
        if stored != named {
            return Ok(Removal::Changed);
        }
        for sql in [
            "DELETE FROM deliveries WHERE case_id IN (SELECT id FROM cases WHERE study_uid = $1)",
            "DELETE FROM reports WHERE case_id IN (SELECT id FROM cases WHERE study_uid = $1)",
            "DELETE FROM cases WHERE study_uid = $1",
            "DELETE FROM link_exceptions WHERE study_uid = $1",
            "DELETE FROM referrals WHERE study_uid = $1",
            "DELETE FROM fixity_checks WHERE study_uid = $1",
            "DELETE FROM holter_originals WHERE study_uid = $1",
            "DELETE FROM instances WHERE study_uid = $1",
            "DELETE FROM series WHERE study_uid = $1",
            "DELETE FROM studies WHERE study_uid = $1",
        ] {
            sqlx::query(sql)
                .bind(&study)
                .execute(&mut *tx)
                .await
                .map_err(IndexError::query(what))?;
        }
        let mut kept = Vec::new();
        for t in tombstones {
            let shared = match t.kind.as_str() {
                "dicom" | "report_object" => false,
                _ => {
                    let n: i64 = sqlx::query(
                        "SELECT COUNT(*) FROM referrals
                           WHERE document_key = $1 OR order_message_key = $1
                         UNION ALL
                         SELECT COUNT(*) FROM reports WHERE content_key = $1 OR answer_key = $1
                         UNION ALL
                         SELECT COUNT(*) FROM holter_originals WHERE object_key = $1",
                    )
                    .bind(&t.object_key)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(IndexError::query(what))?
                    .iter()
                    .map(|r| r.try_get::<i64, _>(0))
                    .sum::<Result<i64, _>>()
                    .map_err(IndexError::query(what))?;
                    n > 0
                }
            };
            if shared {
                continue;
            }
            sqlx::query(
                "INSERT INTO tombstones (object_key, request_id, kind, study_uid, sha256, bytes,
                   received_at, retain_until, reason, proposed_by, proposed_at, approved_by,
                   approved_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(&t.object_key)
            .bind(&t.request_id)
            .bind(&t.kind)
            .bind(&t.study_uid)
            .bind(&t.sha256)
            .bind(t.bytes)
            .bind(t.received_at)
            .bind(&t.retain_until)
            .bind(&t.reason)
            .bind(&t.proposed_by)
            .bind(t.proposed_at)
            .bind(&t.approved_by)
            .bind(t.approved_at)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
            kept.push(t.clone());
        }
        sqlx::query(
            "UPDATE deletion_requests SET state = 'approved', decided_by = $2, decided_at = $3,
               decision_note = $4
             WHERE id = $1",
        )
        .bind(request_id)
        .bind(&first.approved_by)
        .bind(first.approved_at)
        .bind(note)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query(what))?;
        tx.commit().await.map_err(IndexError::query(what))?;
        Ok(Removal::Approved(kept))
    }

    /// Marks one tombstoned object as removed from the store.
    pub async fn tombstone_removed(&self, key: &str, at: i64) -> Result<(), IndexError> {
        sqlx::query(
            "UPDATE tombstones SET removed_at = $2 WHERE object_key = $1 AND removed_at IS NULL",
        )
        .bind(key)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("tombstone removed"))?;
        Ok(())
    }

    /// Keys of approved deletions the store still holds (it refused, or a node stopped).
    pub async fn awaiting_removal(&self) -> Result<Vec<String>, IndexError> {
        let rows = sqlx::query("SELECT object_key FROM tombstones WHERE removed_at IS NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("awaiting removal"))?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("awaiting removal"))
    }

    /// Marks an approved request done once every object it names is removed.
    pub async fn deletion_done(&self, request_id: &str, at: i64) -> Result<bool, IndexError> {
        let result = sqlx::query(
            "UPDATE deletion_requests SET state = 'done', done_at = $2
             WHERE id = $1 AND state = 'approved' AND NOT EXISTS
               (SELECT 1 FROM tombstones WHERE request_id = $1 AND removed_at IS NULL)",
        )
        .bind(request_id)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("deletion done"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Tombstones of a request, a study, or all ('' for either: no restriction).
    pub async fn tombstones(
        &self,
        request_id: &str,
        study_uid: &str,
    ) -> Result<Vec<TombstoneRow>, IndexError> {
        let rows = sqlx::query(
            "SELECT * FROM tombstones WHERE ($1 = '' OR request_id = $1)
               AND ($2 = '' OR study_uid = $2)
             ORDER BY approved_at, object_key",
        )
        .bind(request_id)
        .bind(study_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("tombstones"))?;
        rows.iter()
            .map(tombstone)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("tombstones"))
    }
}
