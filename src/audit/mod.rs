//! The audit trail: who did what to which data, from where, with what outcome.
//!
//! Every edge records through here; events go to the index's append-only table. Security
//! events ([`AuditTrail::record`]) never fail the operation being audited (a failure to record
//! is logged as an error); access to patient data ([`AuditTrail::record_required`]) is refused
//! when it cannot be recorded. [`watched`] tells an edge whether a request left any record, so
//! the edge can record the ones the domain did not (one safety net, not one per handler).

pub mod chain;
pub mod export;
pub mod syslog;

use std::cell::Cell;
use std::future::Future;

use crate::access::Principal;
use crate::index::{AuditEvent, Index, IndexError};

tokio::task_local! {
    /// Events recorded by the request being watched.
    static RECORDED: Cell<u32>;
}

/// Runs `work` and answers, with its output, whether it recorded anything in the audit trail.
pub async fn watched<F: Future>(work: F) -> (F::Output, bool) {
    RECORDED
        .scope(Cell::new(0), async {
            let output = work.await;
            let recorded = RECORDED.with(Cell::get) > 0;
            (output, recorded)
        })
        .await
}

fn note_recorded() {
    // Outside a watched request (DICOM, HL7, background work) there is nothing to tell.
    let _ = RECORDED.try_with(|n| n.set(n.get() + 1));
}

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
        })?;
        note_recorded();
        Ok(())
    }

    pub async fn record(&self, event: AuditEvent) {
        match self.index.append_audit(&event).await {
            Ok(()) => note_recorded(),
            Err(e) => {
                tracing::error!(kind = %event.kind, actor = %event.actor, error = %e, "audit event not recorded")
            }
        }
    }

    /// Records `who`'s attempt at `kind` if `result` refused it, and hands the result back:
    /// for operations that audit what they do when it is allowed.
    pub async fn refusal<T, E: std::fmt::Display>(
        &self,
        who: &Principal,
        kind: &str,
        detail: String,
        result: Result<T, E>,
    ) -> Result<T, E> {
        if let Err(e) = &result {
            let mut event = AuditEvent::now(kind, &who.name, &who.institution, &who.address);
            event.role = who.role.as_str().to_owned();
            event.detail = detail;
            event.outcome = format!("refused: {e}");
            self.record(event).await;
        }
        result
    }
}
