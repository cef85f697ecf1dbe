//! The audit trail as a hash chain: how an event is appended to it, its canonical form, and
//! what checking the chain and signing its head need of the index.
//!
//! The canonical form of an event is the text an auditor can recompute with any SHA-256 tool:
//! each field, in the order of [`canonical_form`], written as its length in bytes (decimal),
//! `:`, its UTF-8 bytes and a newline. The first field is the previous event's hash, so each
//! hash covers the whole trail before it.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::audit::AuditEvent;
use super::{Index, IndexError};

/// An event as the chain holds it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct ChainedEvent {
    pub seq: i64,
    pub id: String,
    pub prev_hash: String,
    pub hash: String,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// A signed chain head as the index remembers it (the signed record itself is in the store).
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct HeadRow {
    pub day: String,
    pub seq: i64,
    pub hash: String,
    pub signed_at: i64,
    pub object_key: String,
}

/// The bytes whose SHA-256 is an event's hash.
pub fn canonical_form(prev_hash: &str, id: &str, event: &AuditEvent) -> Vec<u8> {
    let at = event.at.to_string();
    let fields: [&str; 12] = [
        prev_hash,
        id,
        &at,
        &event.kind,
        &event.actor,
        &event.institution,
        &event.address,
        &event.role,
        &event.patient_id,
        &event.study_uid,
        &event.outcome,
        &event.detail,
    ];
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 8).sum());
    for field in fields {
        out.extend_from_slice(field.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
    }
    out
}

/// An event's hash: lower-case hex SHA-256 of its canonical form.
pub fn event_hash(prev_hash: &str, id: &str, event: &AuditEvent) -> String {
    hex::encode(Sha256::digest(canonical_form(prev_hash, id, event)))
}

const EVENT_COLUMNS: &str = "seq, id, prev_hash, hash, at, kind, actor, institution, address, \
     outcome, detail, role, patient_id, study_uid";

fn decode_chained(r: &sqlx::any::AnyRow) -> Result<ChainedEvent, sqlx::Error> {
    Ok(ChainedEvent {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        prev_hash: r.try_get(2)?,
        hash: r.try_get(3)?,
        event: AuditEvent {
            at: r.try_get(4)?,
            kind: r.try_get(5)?,
            actor: r.try_get(6)?,
            institution: r.try_get(7)?,
            address: r.try_get(8)?,
            outcome: r.try_get(9)?,
            detail: r.try_get(10)?,
            role: r.try_get(11)?,
            patient_id: r.try_get(12)?,
            study_uid: r.try_get(13)?,
        },
    })
}

impl Index {
    /// Appends `event` to the chain in one transaction: the head row is updated first, so the
    /// transaction holds the write lock (SQLite) or the row lock (PostgreSQL) before it reads
    /// the previous hash, and concurrent appenders, on this node or another, queue behind it.
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<(), IndexError> {
        self.append_audit_batch(std::slice::from_ref(event)).await
    }

    /// Appends several events in order in one transaction.
    pub async fn append_audit_batch(&self, events: &[AuditEvent]) -> Result<(), IndexError> {
        if events.is_empty() {
            return Ok(());
        }
        let what = "append audit event";
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let head =
            sqlx::query("UPDATE audit_chain SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash")
                .bind(count)
                .fetch_one(&mut *tx)
                .await
                .map_err(IndexError::query(what))?;
        let last: i64 = head.try_get(0).map_err(IndexError::query(what))?;
        let mut prev: String = head.try_get(1).map_err(IndexError::query(what))?;
        let mut seq = last - count;
        for event in events {
            seq += 1;
            let id = uuid::Uuid::now_v7().to_string();
            let hash = event_hash(&prev, &id, event);
            sqlx::query(
                "INSERT INTO audit_events (id, at, kind, actor, institution, address, outcome,
                   detail, role, patient_id, study_uid, seq, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&id)
            .bind(event.at)
            .bind(&event.kind)
            .bind(&event.actor)
            .bind(&event.institution)
            .bind(&event.address)
            .bind(&event.outcome)
            .bind(&event.detail)
            .bind(&event.role)
            .bind(&event.patient_id)
            .bind(&event.study_uid)
            .bind(seq)
            .bind(&prev)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("insert audit event"))?;
            prev = hash;
        }
        sqlx::query("UPDATE audit_chain SET hash = $1 WHERE id = 1")
            .bind(&prev)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
        tx.commit().await.map_err(IndexError::query(what))
    }

    /// Chains, in time order, events recorded before the chain existed; answers how many. Run
    /// when the index opens, and does its work once: later, an event without a place in the
    /// chain was slipped in behind the service's back, and `audit verify` names it.
    pub(super) async fn chain_unchained(&self) -> Result<u64, IndexError> {
        let what = "chain earlier audit events";
        let done: i64 =
            sqlx::query("SELECT CAST(backfilled AS BIGINT) FROM audit_chain WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(IndexError::query(what))?;
        if done != 0 {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        // Taking the head row first holds off appenders (and other nodes doing the same);
        // no row means the backfill was done before.
        let Some(head) = sqlx::query(
            "UPDATE audit_chain SET backfilled = 1 WHERE id = 1 AND backfilled = 0
             RETURNING seq, hash",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(IndexError::query(what))?
        else {
            tx.rollback().await.map_err(IndexError::query(what))?;
            return Ok(0);
        };
        let mut seq: i64 = head.try_get(0).map_err(IndexError::query(what))?;
        let mut prev: String = head.try_get(1).map_err(IndexError::query(what))?;
        let rows = sqlx::query(
            "SELECT id, at, kind, actor, institution, address, outcome, detail, role,
               patient_id, study_uid FROM audit_events WHERE seq IS NULL ORDER BY at, id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(IndexError::query(what))?;
        let mut chained = 0;
        for r in &rows {
            let id: String = r.try_get(0).map_err(IndexError::query(what))?;
            let event = AuditEvent {
                at: r.try_get(1).map_err(IndexError::query(what))?,
                kind: r.try_get(2).map_err(IndexError::query(what))?,
                actor: r.try_get(3).map_err(IndexError::query(what))?,
                institution: r.try_get(4).map_err(IndexError::query(what))?,
                address: r.try_get(5).map_err(IndexError::query(what))?,
                outcome: r.try_get(6).map_err(IndexError::query(what))?,
                detail: r.try_get(7).map_err(IndexError::query(what))?,
                role: r.try_get(8).map_err(IndexError::query(what))?,
                patient_id: r.try_get(9).map_err(IndexError::query(what))?,
                study_uid: r.try_get(10).map_err(IndexError::query(what))?,
            };
            seq += 1;
            let hash = event_hash(&prev, &id, &event);
            sqlx::query(
                "UPDATE audit_events SET seq = $1, prev_hash = $2, hash = $3 WHERE id = $4",
            )
            .bind(seq)
            .bind(&prev)
            .bind(&hash)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
            prev = hash;
            chained += 1;
        }
        sqlx::query("UPDATE audit_chain SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(&prev)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
        tx.commit().await.map_err(IndexError::query(what))?;
        Ok(chained)
    }

    /// Events in chain order after `after_seq`, at most `limit`.
    pub async fn audit_chain_after(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ChainedEvent>, IndexError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("read the audit chain"))?;
        rows.iter()
            .map(decode_chained)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("decode audit chain"))
    }

    /// The chain position the audit repository has taken up to.
    pub async fn audit_forwarded(&self) -> Result<i64, IndexError> {
        sqlx::query("SELECT seq FROM audit_forwarding WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(IndexError::query("audit forwarding position"))
    }

    /// Moves the forwarding position from `from` to `to`; `false` when another node moved it
    /// first (its events were sent by that node).
    pub async fn advance_audit_forwarded(&self, from: i64, to: i64) -> Result<bool, IndexError> {
        let done = sqlx::query(
            "UPDATE audit_forwarding SET seq = $2, updated_at = $3 WHERE id = 1 AND seq = $1",
        )
        .bind(from)
        .bind(to)
        .bind(super::now_micros())
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("advance audit forwarding"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Events in the trail that carry no place in the chain (inserted behind the service's
    /// back after the chain existed).
    pub async fn audit_unchained_count(&self) -> Result<i64, IndexError> {
        sqlx::query("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(IndexError::query("count unchained audit events"))
    }

    /// The number of the event whose hash is `hash`, if one has it.
    pub async fn audit_seq_of_hash(&self, hash: &str) -> Result<Option<i64>, IndexError> {
        let row = sqlx::query("SELECT seq FROM audit_events WHERE hash = $1 ORDER BY seq LIMIT 1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("find audit event by hash"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(IndexError::query("find audit event by hash"))
    }

    /// The chain's head: the last number given and its event's hash.
    pub async fn audit_chain_head(&self) -> Result<(i64, String), IndexError> {
        let what = "read the audit chain head";
        let r = sqlx::query("SELECT seq, hash FROM audit_chain WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(IndexError::query(what))?;
        Ok((
            r.try_get(0).map_err(IndexError::query(what))?,
            r.try_get(1).map_err(IndexError::query(what))?,
        ))
    }

    /// Remembers a signed head (whose record is already in the store).
    pub async fn record_audit_head(&self, head: &HeadRow) -> Result<bool, IndexError> {
        let done = sqlx::query(
            "INSERT INTO audit_heads (day, seq, hash, signed_at, object_key)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (object_key) DO NOTHING",
        )
        .bind(&head.day)
        .bind(head.seq)
        .bind(&head.hash)
        .bind(head.signed_at)
        .bind(&head.object_key)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("record signed audit head"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The most recent day whose head was signed, if any.
    pub async fn last_signed_day(&self) -> Result<Option<String>, IndexError> {
        let row = sqlx::query("SELECT day FROM audit_heads ORDER BY day DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("read signed audit heads"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(IndexError::query("read signed audit heads"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_is_length_prefixed() {
        let mut e = AuditEvent::now("k", "a:b", "", "1.2.3.4");
        e.at = 7;
        let text = String::from_utf8(canonical_form("", "id", &e)).unwrap_or_default();
        assert_eq!(
            text,
            "0:\n2:id\n1:7\n1:k\n3:a:b\n0:\n7:1.2.3.4\n0:\n0:\n0:\n0:\n0:\n"
        );
        // A field cannot bleed into the next: moving a character across changes the hash.
        let mut f = e.clone();
        f.kind = "k\n1:".into();
        assert_ne!(event_hash("", "id", &e), event_hash("", "id", &f));
    }
}
