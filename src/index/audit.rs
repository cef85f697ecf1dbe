//! Storage of audit events: append-only, never updated or deleted by the service.

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
    pub async fn append_audit(&self, event: &AuditEvent) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO audit_events (id, at, kind, actor, institution, address, outcome, detail,
               role, patient_id, study_uid)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
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
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("insert audit event"))?;
        Ok(())
    }

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
            .map(|r| {
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
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("decode audit event"))
    }
}
