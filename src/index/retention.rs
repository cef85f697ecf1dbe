//! What retention keeps in the index: the longest retention configured per kind, extensions,
//! legal holds, deletion requests and the tombstones deletions leave, and the one transaction
//! that removes an expired study's rows.

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
                         SELECT COUNT(*) FROM reports WHERE content_key = $1 OR answer_key = $1",
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
async fn lock_study(
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
