//! What fixity checking needs of the index: every stored object it names, with the SHA-256
//! recorded when the object arrived, and where each check's outcome is kept.

use sqlx::Row;

use super::{Index, IndexError};

/// One object in the store, as the index names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredObject {
    /// dicom, referral, hl7, report or answer.
    pub kind: &'static str,
    pub key: String,
    /// Lower-case hex; for what the index keeps no hash of, taken from the key, which is
    /// named by its content's hash.
    pub sha256: String,
    /// The study it belongs to ('' when none yet).
    pub study_uid: String,
    pub received_at: i64,
}

/// Which objects a check covers.
#[derive(Debug, Clone, Default)]
pub struct FixityScope {
    pub study_uid: Option<String>,
    /// Received at or after (microseconds).
    pub since: Option<i64>,
}

/// One check's outcome, kept per object.
#[derive(Debug, Clone)]
pub struct FixityCheck {
    pub object: StoredObject,
    /// SHA-256 read back ('' when nothing could be read).
    pub found: String,
    /// ok, altered, missing or unreadable.
    pub outcome: &'static str,
    /// Bytes read back.
    pub bytes: u64,
    /// The store's words, for an unreadable object.
    pub detail: String,
    pub checked_at: i64,
}

impl Index {
    /// DICOM objects in key order after `after`, at most `limit` (the caller pages through an
    /// archive of any size without holding it).
    pub async fn dicom_objects_after(
        &self,
        after: &str,
        scope: &FixityScope,
        limit: i64,
    ) -> Result<Vec<StoredObject>, IndexError> {
        let rows = sqlx::query(
            "SELECT object_key, sha256, study_uid, received_at FROM instances
             WHERE object_key > $1 AND ($2 = '' OR study_uid = $2) AND received_at >= $3
             ORDER BY object_key LIMIT $4",
        )
        .bind(after)
        .bind(scope.study_uid.as_deref().unwrap_or(""))
        .bind(scope.since.unwrap_or(i64::MIN))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("dicom objects for fixity"))?;
        rows.iter()
            .map(|r| {
                Ok(StoredObject {
                    kind: "dicom",
                    key: r.try_get(0)?,
                    sha256: r.try_get(1)?,
                    study_uid: r.try_get(2)?,
                    received_at: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("dicom objects for fixity"))
    }

    /// The documents around the images: referral documents and the HL7 orders that carried
    /// them, Holter originals, report contents and answer documents (a few per case: read at once). The same
    /// document named twice (a referral sent again) comes once.
    pub async fn document_objects(
        &self,
        scope: &FixityScope,
    ) -> Result<Vec<StoredObject>, IndexError> {
        let rows = sqlx::query(
            "SELECT 'referral', document_key, document_sha256, study_uid, received_at
               FROM referrals WHERE document_key <> ''
             UNION ALL
             SELECT 'hl7', order_message_key, '', study_uid, received_at
               FROM referrals WHERE order_message_key <> ''
             UNION ALL
             SELECT 'report', r.content_key, r.content_sha256, COALESCE(c.study_uid, ''),
               r.created_at
               FROM reports r LEFT JOIN cases c ON c.id = r.case_id WHERE r.content_key <> ''
             UNION ALL
             SELECT 'answer', r.answer_key, r.answer_sha256, COALESCE(c.study_uid, ''),
               r.created_at
               FROM reports r LEFT JOIN cases c ON c.id = r.case_id WHERE r.answer_key <> ''
             UNION ALL
             SELECT 'holter', object_key, sha256, study_uid, received_at
               FROM holter_originals
             UNION ALL
             SELECT 'indicators', content_key, content_sha256, '', generated_at
               FROM indicator_reports
             UNION ALL
             SELECT 'indicators', bundle_key, bundle_sha256, '', generated_at
               FROM indicator_reports",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("documents for fixity"))?;
        let mut out: Vec<StoredObject> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            let kind: String = r
                .try_get(0)
                .map_err(IndexError::query("documents for fixity"))?;
            let read = || -> Result<StoredObject, sqlx::Error> {
                let key: String = r.try_get(1)?;
                let recorded: String = r.try_get(2)?;
                Ok(StoredObject {
                    kind: match kind.as_str() {
                        "referral" => "referral",
                        "hl7" => "hl7",
                        "report" => "report",
                        "indicators" => "indicators",
                        _ => "answer",
                    },
                    sha256: if recorded.is_empty() {
                        crate::archive::keys::hash_in_key(&key)
                    } else {
                        recorded
                    },
                    key,
                    study_uid: r.try_get(3)?,
                    received_at: r.try_get(4)?,
                })
            };
            let object = read().map_err(IndexError::query("documents for fixity"))?;
            let wanted = scope
                .study_uid
                .as_ref()
                .is_none_or(|s| *s == object.study_uid)
                && scope.since.is_none_or(|t| object.received_at >= t);
            if wanted && seen.insert(object.key.clone()) {
                out.push(object);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Whether a study of that UID is in the index.
    pub async fn has_study(&self, study_uid: &str) -> Result<bool, IndexError> {
        let row = sqlx::query("SELECT COUNT(*) FROM studies WHERE study_uid = $1")
            .bind(study_uid)
            .fetch_one(&self.pool)
            .await
            .map_err(IndexError::query("study exists"))?;
        let n: i64 = row.try_get(0).map_err(IndexError::query("study exists"))?;
        Ok(n > 0)
    }
}
