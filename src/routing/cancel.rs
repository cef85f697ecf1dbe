//! Withdrawing a case: the referral was cancelled or the study was sent in error. A cancelled
//! case leaves every worklist and every indicator (where it is counted as excluded), and keeps
//! who cancelled it, when, why and what status it had; its study and referral stay archived.

use super::{invalid, Routing, RoutingError};
use crate::access::{Action, Principal, Role};
use crate::catalog;
use crate::index::{CaseRow, JournalEntry};

impl Routing {
    /// Cancels case `id`: an administrator any open case, a clinic one of its own.
    pub async fn cancel(
        &self,
        who: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<CaseRow, RoutingError> {
        let result = self.cancel_open(who, id, reason).await;
        let detail = format!("case {id} cancelled");
        self.audit
            .refusal(who, "case_cancelled", detail, result)
            .await
    }

    async fn cancel_open(
        &self,
        who: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<CaseRow, RoutingError> {
        match who.role {
            Role::Admin => self.policy.permit(who, Action::Administer)?,
            Role::Clinic => self.policy.permit(who, Action::Store)?,
            _ => {
                return Err(RoutingError::Denied(crate::access::Denied {
                    name: who.name.clone(),
                    role: who.role,
                    action: "cancel a case",
                }))
            }
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(invalid("reason", "cancelling a case needs a reason"));
        }
        if reason.chars().count() > 1000 {
            return Err(invalid(
                "reason",
                "the reason is longer than 1,000 characters",
            ));
        }
        let case = self.visible(who, id).await?;
        let detail = format!("cancelled (was {}): {reason}", case.status);
        let journal =
            JournalEntry::of_case(&case, "cancelled", &who.institution, &who.name, "", detail);
        if !self
            .index
            .cancel_case(id, &who.name, reason, &journal)
            .await?
        {
            return Err(RoutingError::Conflict(format!(
                "case {id} is {}: only a case not yet reported can be cancelled",
                case.status
            )));
        }
        let mut event = catalog::event(who, "case_cancelled");
        event.detail = format!("case {id}: {reason}");
        event.study_uid = case.study_uid.clone();
        event.patient_id = case.patient_id.clone();
        event.outcome = "done".into();
        self.audit.record(event).await;
        self.visible(who, id).await
    }
}
