//! The audit trail: who did what to which data, from where, with what outcome.
//!
//! Every edge records through here; events go to the index's append-only table. Recording
//! never fails the operation being audited: a failure to record is logged as an error.

use crate::index::{AuditEvent, Index};

#[derive(Clone)]
pub struct AuditTrail {
    index: Index,
}

impl AuditTrail {
    pub fn new(index: Index) -> AuditTrail {
        AuditTrail { index }
    }

    pub async fn record(&self, event: AuditEvent) {
        if let Err(e) = self.index.append_audit(&event).await {
            tracing::error!(kind = %event.kind, actor = %event.actor, error = %e, "audit event not recorded");
        }
    }
}
