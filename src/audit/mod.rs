//! The audit trail: who did what to which data, from where, with what outcome.
//!
//! Every edge records through here; events go to the index's append-only table. Security
//! events ([`AuditTrail::record`]) never fail the operation being audited (a failure to record
//! is logged as an error); access to patient data ([`AuditTrail::record_required`]) is refused
//! when it cannot be recorded.

use crate::index::{AuditEvent, Index, IndexError};

#[derive(Clone)]
pub struct AuditTrail {
    index: Index,
}

impl AuditTrail {
    pub fn new(index: Index) -> AuditTrail {
        AuditTrail { index }
    }

    /// Records an access that must not happen unaudited: the caller refuses the access when
    /// this fails.
    pub async fn record_required(&self, event: AuditEvent) -> Result<(), IndexError> {
        self.index.append_audit(&event).await.inspect_err(|e| {
            tracing::error!(kind = %event.kind, actor = %event.actor, error = %e, "audit event not recorded; access refused");
        })
    }

    pub async fn record(&self, event: AuditEvent) {
        if let Err(e) = self.index.append_audit(&event).await {
            tracing::error!(kind = %event.kind, actor = %event.actor, error = %e, "audit event not recorded");
        }
    }
}
