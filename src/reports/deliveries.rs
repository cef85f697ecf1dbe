//! Delivery status and the administrators' hand on the queue: who sees which deliveries, a
//! failed delivery retried, a signed report sent again on a push channel.

use crate::access::{Action, Principal, Role};
use crate::catalog;
use crate::index::{DeliveryRow, JournalEntry};
use crate::routing::RoutingError;

use super::{invalid, ReportError, Reports};

impl Reports {
    /// Every delivery of the case's reports, for whoever may see the case.
    pub async fn deliveries_of_case(
        &self,
        who: &Principal,
        case_id: &str,
    ) -> Result<Vec<DeliveryRow>, ReportError> {
        let result = self.read_deliveries_of_case(who, case_id).await;
        let detail = format!("case {case_id}");
        self.audit
            .refusal(who, "deliveries_read", detail, result)
            .await
    }

    async fn read_deliveries_of_case(
        &self,
        who: &Principal,
        case_id: &str,
    ) -> Result<Vec<DeliveryRow>, ReportError> {
        let case = self.routing.visible(who, case_id).await?;
        let mut event = catalog::event(who, "deliveries_read");
        event.detail = format!("case {case_id}");
        event.patient_id = case.patient_id.clone();
        event.study_uid = case.study_uid.clone();
        event.outcome = "answered".into();
        self.audit.record_required(event).await?;
        Ok(self.index.deliveries_of_case(case_id).await?)
    }

    /// Deliveries in a status (any when empty): a clinic its own, administrators and auditors
    /// all; consulting centres follow their cases instead.
    pub async fn deliveries(
        &self,
        who: &Principal,
        status: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, ReportError> {
        let result = self.list_deliveries(who, status, limit).await;
        let detail = format!("status `{status}`");
        self.audit
            .refusal(who, "deliveries_listed", detail, result)
            .await
    }

    async fn list_deliveries(
        &self,
        who: &Principal,
        status: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, ReportError> {
        if !matches!(status, "" | "pending" | "delivered" | "failed") {
            return Err(invalid("status", "status is pending, delivered or failed"));
        }
        let clinic = match who.role {
            Role::Clinic => Some(who.institution.as_str()),
            Role::Admin | Role::Auditor => None,
            Role::Cardiologist => {
                return Err(crate::access::Denied {
                    name: who.name.clone(),
                    role: who.role,
                    action: "list deliveries (see each case's instead)",
                }
                .into())
            }
        };
        let mut event = catalog::event(who, "deliveries_listed");
        event.detail = format!("status `{status}`");
        event.outcome = "answered".into();
        self.audit.record_required(event).await?;
        Ok(self.index.deliveries(status, clinic, limit).await?)
    }

    /// Puts a failed delivery back in the queue (administrators).
    pub async fn retry_delivery(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<DeliveryRow, ReportError> {
        let result = self.retry_failed(who, id).await;
        let detail = format!("delivery {id}");
        self.audit
            .refusal(who, "delivery_retried", detail, result)
            .await
    }

    async fn retry_failed(&self, who: &Principal, id: &str) -> Result<DeliveryRow, ReportError> {
        self.routing.policy().permit(who, Action::Administer)?;
        let delivery =
            self.index.delivery(id).await?.ok_or_else(|| {
                ReportError::Case(RoutingError::NotFound(format!("delivery {id}")))
            })?;
        let entry = self
            .entry(
                who,
                &delivery,
                "report_delivery_retried",
                "retried by an administrator",
            )
            .await;
        if !self.index.retry_delivery(id, &entry).await? {
            return Err(ReportError::Conflict(format!(
                "delivery {id} is {}: only a failed delivery is retried",
                delivery.status
            )));
        }
        self.audit_action(who, &delivery, "delivery_retried").await;
        self.deliveries_queued.notify_one();
        self.index
            .delivery(id)
            .await?
            .ok_or_else(|| ReportError::Case(RoutingError::NotFound(format!("delivery {id}"))))
    }

    /// Queues a signed version again on one of the clinic's push channels (administrators).
    pub async fn send_again(
        &self,
        who: &Principal,
        case_id: &str,
        report_id: &str,
        channel: &str,
    ) -> Result<DeliveryRow, ReportError> {
        let result = self.queue_again(who, case_id, report_id, channel).await;
        let detail = format!("case {case_id}, report {report_id}, {channel}");
        self.audit
            .refusal(who, "delivery_requested", detail, result)
            .await
    }

    async fn queue_again(
        &self,
        who: &Principal,
        case_id: &str,
        report_id: &str,
        channel: &str,
    ) -> Result<DeliveryRow, ReportError> {
        self.routing.policy().permit(who, Action::Administer)?;
        let case = self.routing.visible(who, case_id).await?;
        let report = self
            .index
            .report(report_id)
            .await?
            .filter(|r| r.case_id == case_id && r.status == "signed")
            .ok_or_else(|| {
                ReportError::Case(RoutingError::NotFound(format!(
                    "signed report {report_id} of case {case_id}"
                )))
            })?;
        if channel == "dicom" && report.document_uid.is_empty() {
            return Err(invalid(
                "channel",
                "this version was signed before reports had a DICOM object; it goes by hl7 or pull",
            ));
        }
        let Some(push) = self
            .pushes_for(&case.clinic_id)
            .into_iter()
            .find(|p| p.channel == channel)
        else {
            return Err(invalid(
                "channel",
                format!(
                    "clinic {} has no `{channel}` push channel (dicom, hl7) configured",
                    case.clinic_id
                ),
            ));
        };
        let draft = DeliveryRow {
            report_id: report.id.clone(),
            case_id: case.id.clone(),
            clinic_id: case.clinic_id.clone(),
            channel: push.channel.clone(),
            target: push.target.clone(),
            ..DeliveryRow::default()
        };
        let entry = self
            .entry(
                who,
                &draft,
                "report_sent_again",
                "queued again by an administrator",
            )
            .await;
        let id = self
            .index
            .send_again(&report.id, &case.id, &case.clinic_id, &push, &entry)
            .await?;
        self.audit_action(who, &draft, "delivery_requested").await;
        self.deliveries_queued.notify_one();
        self.index
            .delivery(&id)
            .await?
            .ok_or_else(|| ReportError::Case(RoutingError::NotFound(format!("delivery {id}"))))
    }

    async fn entry(
        &self,
        who: &Principal,
        d: &DeliveryRow,
        kind: &str,
        what: &str,
    ) -> JournalEntry {
        let mut case = self
            .index
            .case(&d.case_id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        case.clinic_id = d.clinic_id.clone();
        JournalEntry::of_case(
            &case,
            kind,
            &who.institution,
            &who.name,
            &d.report_id,
            format!("{} to {}: {what}", d.channel, d.target),
        )
    }

    async fn audit_action(&self, who: &Principal, d: &DeliveryRow, kind: &str) {
        let case = self
            .index
            .case(&d.case_id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut event = catalog::event(who, kind);
        event.detail = format!("case {}, report {}, {}", d.case_id, d.report_id, d.channel);
        event.patient_id = case.patient_id;
        event.study_uid = case.study_uid;
        event.outcome = "queued".into();
        self.audit.record(event).await;
    }
}
