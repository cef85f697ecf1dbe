//! Storage of audit events: append-only, never updated or deleted by the service (appending
//! is in [`super::audit_chain`]).

use serde::Serialize;
use sqlx::Row;

use super::{now_micros, Index, IndexError};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: i64,
    /// What happened, e.g. `association_rejected`.
    pub kind: String,
    /// Who: an AE title or a user name.
    pub actor: String,
    /// The institution the actor speaks for, when known.
    pub institution: String,
    /// Network address of the peer.
    pub address: String,
    pub outcome: String,
    pub detail: String,
    /// The actor's role (clinic, cardiologist, auditor, admin), when known.
    pub role: String,
    /// The patient whose data was touched, when one is known.
    pub patient_id: String,
    /// The study touched, when one is known.
    pub study_uid: String,
}

impl AuditEvent {
    pub fn now(kind: &str, actor: &str, institution: &str, address: &str) -> AuditEvent {
        AuditEvent {
            at: now_micros(),
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            institution: institution.to_owned(),
            address: address.to_owned(),
            outcome: String::new(),
            detail: String::new(),
            role: String::new(),
            patient_id: String::new(),
            study_uid: String::new(),
        }
    }
}

impl Index {
    /// The most recent audit events of one kind, newest first.
    pub async fn audit_events(
        &self,
        kind: &str,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, IndexError> {
        let rows = sqlx::query(
            "SELECT at, kind, actor, institution, address, outcome, detail, role, patient_id,
               study_uid FROM audit_events
             WHERE kind = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(kind)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("select audit events"))?;
        rows.iter()
            .map(decode_event)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("decode audit event"))
    }
}

/// What an auditor looks for in the trail; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    pub actor: String,
    pub patient_id: String,
    pub study_uid: String,
    /// From this time (microseconds, inclusive); 0: from the first event.
    pub from: i64,
    /// Before this time (microseconds); 0: up to now.
    pub to: i64,
    /// Only refused accesses (`Some(true)`), only allowed ones (`Some(false)`), or both.
    pub refused: Option<bool>,
    pub limit: i64,
}

/// An outcome that says the access did not happen: refused, denied, rejected, or answered as
/// not found because the data lie outside the caller's scope.
const REFUSED: &str = "(outcome LIKE 'refused%' OR outcome LIKE 'denied%' \
     OR outcome LIKE 'rejected%' OR outcome LIKE 'not found%')";

/// Objects, bytes and studies one clinic sent in a period.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ArchiveTally {
    pub clinic_id: String,
    pub studies: i64,
    pub objects: i64,
    pub bytes: i64,
}

impl Index {
    /// Audit events matching `s`, newest first.
    pub async fn audit_search(&self, s: &AuditSearch) -> Result<Vec<AuditEvent>, IndexError> {
        let mut clauses = Vec::new();
        let mut texts = Vec::new();
        for (column, value) in [
            ("actor", &s.actor),
            ("patient_id", &s.patient_id),
            ("study_uid", &s.study_uid),
        ] {
            if !value.is_empty() {
                texts.push(value.clone());
                clauses.push(format!("{column} = ${}", texts.len()));
            }
        }
        let mut numbers = Vec::new();
        for (op, value) in [(">=", s.from), ("<", s.to)] {
            if value > 0 {
                numbers.push(value);
                clauses.push(format!("at {op} ${}", texts.len() + numbers.len()));
            }
        }
        match s.refused {
            Some(true) => clauses.push(REFUSED.to_owned()),
            Some(false) => clauses.push(format!("NOT {REFUSED}")),
            None => {}
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT at, kind, actor, institution, address, outcome, detail, role, patient_id,
               study_uid FROM audit_events {filter}
             ORDER BY at DESC, id DESC LIMIT ${}",
            texts.len() + numbers.len() + 1
        );
        // Only column names and placeholders are formatted in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for text in &texts {
            query = query.bind(text);
        }
        for number in &numbers {
            query = query.bind(number);
        }
        let rows = query
            .bind(s.limit.clamp(1, 100_000))
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("search audit events"))?;
        rows.iter()
            .map(decode_event)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("decode audit event"))
    }

    /// Per clinic: the studies, objects and bytes received in `[from, to)`.
    pub async fn archive_tally(&self, from: i64, to: i64) -> Result<Vec<ArchiveTally>, IndexError> {
        let rows = sqlx::query(
            "SELECT clinic_id, COUNT(DISTINCT study_uid), COUNT(*),
               CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT)
             FROM instances WHERE received_at >= $1 AND received_at < $2
             GROUP BY clinic_id ORDER BY clinic_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("tally the archive"))?;
        rows.iter()
            .map(|r| {
                Ok(ArchiveTally {
                    clinic_id: r.try_get(0)?,
                    studies: r.try_get(1)?,
                    objects: r.try_get(2)?,
                    bytes: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("decode archive tally"))
    }
}

fn decode_event(r: &sqlx::any::AnyRow) -> Result<AuditEvent, sqlx::Error> {
    Ok(AuditEvent {
        at: r.try_get(0)?,
        kind: r.try_get(1)?,
        actor: r.try_get(2)?,
        institution: r.try_get(3)?,
        address: r.try_get(4)?,
        outcome: r.try_get(5)?,
        detail: r.try_get(6)?,
        role: r.try_get(7)?,
        patient_id: r.try_get(8)?,
        study_uid: r.try_get(9)?,
    })
}
