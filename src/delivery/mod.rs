//! Delivery of signed reports back to the clinic (stage 3.4 of the order) on its push channels:
//! the report object by C-STORE to the clinic's PACS, the report text as ORU^R01 to its HIS.
//!
//! Signing queues the deliveries in the database in the same transaction as the signature; this
//! worker, on every node, leases what is due, tries it, and records the outcome. A failed
//! attempt is retried with doubling waits; after the configured number of attempts the delivery
//! is failed for good, which is journaled, logged as an alert and counted in the metrics, and
//! stays on the administrators' list until one retries it. A node that dies mid-attempt loses
//! its lease and another node (or itself, restarted) tries again, so a delivery is made at
//! least once and, short of such a crash between the peer's answer and our record of it,
//! exactly once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};

use crate::archive::{Archive, ArchiveError, ObjectKey};
use crate::config::{Clinic, Config};
use crate::dimse::push::{self, Instance, PushError};
use crate::hl7::oru::{self, HisError, ReportMessage};
use crate::index::{hl7_timestamp, now_micros, DeliveryRow, Index, IndexError, JournalEntry};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the clinic `{0}` has no such channel configured any more")]
    NotConfigured(String),
    #[error("{0} is missing from the index")]
    Missing(String),
    #[error(transparent)]
    Pacs(#[from] PushError),
    #[error(transparent)]
    His(#[from] HisError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl DeliveryError {
    /// Errors no retry can mend: given up at once.
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            DeliveryError::NotConfigured(_) | DeliveryError::Missing(_)
        )
    }
}

/// The queue worker of this node; cheap to clone.
#[derive(Clone)]
pub struct Deliveries {
    index: Index,
    archive: Archive,
    config: Arc<Config>,
    metrics: Metrics,
    /// This node's name on the leases it takes.
    node: String,
    wake: Arc<Notify>,
}

impl Deliveries {
    pub fn new(
        index: Index,
        archive: Archive,
        config: Arc<Config>,
        metrics: Metrics,
        wake: Arc<Notify>,
    ) -> Deliveries {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let node = format!("{host}:{}:{}", std::process::id(), uuid::Uuid::new_v4());
        Deliveries {
            index,
            archive,
            config,
            metrics,
            node,
            wake,
        }
    }

    /// Works the queue until shutdown: what is due now, then waits for a signature here, the
    /// poll interval, or shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let d = &self.config.delivery;
        let poll = Duration::from_secs(d.poll_seconds);
        let mut counted_at = 0;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = now_micros();
            let leased = self
                .index
                .lease_deliveries(
                    &self.node,
                    now,
                    now + d.lease_micros(),
                    d.concurrency as i64,
                )
                .await;
            match leased {
                Ok(batch) if !batch.is_empty() => {
                    futures::future::join_all(batch.into_iter().map(|row| self.attempt(row))).await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the delivery queue"),
            }
            if now - counted_at > 10_000_000 {
                counted_at = now;
                if let Ok(counts) = self.index.delivery_counts().await {
                    // Every channel and status, so a count that fell to nothing reads 0.
                    let mut all = Vec::new();
                    for channel in ["dicom", "hl7", "pull"] {
                        for status in ["pending", "delivered", "failed"] {
                            let n = counts
                                .iter()
                                .find(|(c, s, _)| c == channel && s == status)
                                .map_or(0, |(_, _, n)| *n);
                            all.push((channel.to_owned(), status.to_owned(), n));
                        }
                    }
                    self.metrics.deliveries(&all);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One attempt at a leased delivery, and its outcome recorded.
    async fn attempt(&self, row: DeliveryRow) {
        let outcome = self.deliver(&row).await;
        let recorded = match outcome {
            Ok(detail) => {
                self.metrics.delivery_attempt(&row.channel, "delivered");
                tracing::info!(delivery = %row.id, channel = %row.channel, target = %row.target, report = %row.report_id, "report delivered");
                let entry = self.with_case_entry(&row, "report_delivered", detail).await;
                self.index.delivery_done(&row, &self.node, &entry).await
            }
            Err(e) => {
                let permanent = e.is_permanent()
                    || row.attempts >= i64::from(self.config.delivery.max_attempts);
                let retry_at =
                    (!permanent).then(|| self.config.delivery.retry_at(now_micros(), row.attempts));
                let error = e.to_string();
                if permanent {
                    self.metrics.delivery_attempt(&row.channel, "failed");
                    tracing::error!(alert = "delivery_failed", delivery = %row.id, channel = %row.channel, target = %row.target, report = %row.report_id, clinic = %row.clinic_id, attempts = row.attempts, error = %error, "report delivery failed for good; an administrator must act");
                } else {
                    self.metrics.delivery_attempt(&row.channel, "retry");
                    tracing::warn!(delivery = %row.id, channel = %row.channel, target = %row.target, attempts = row.attempts, error = %error, "report delivery attempt failed; will retry");
                }
                let entry = self
                    .with_case_entry(
                        &row,
                        "report_delivery_failed",
                        format!("after {} attempts: {error}", row.attempts),
                    )
                    .await;
                self.index
                    .delivery_attempt_failed(&row, &self.node, &error, retry_at, Some(&entry))
                    .await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %row.id, "the delivery's lease lapsed before its outcome was recorded; another node owns it")
            }
            Err(e) => {
                tracing::error!(delivery = %row.id, error = %e, "the outcome of a delivery could not be recorded; it will be tried again")
            }
        }
    }

    /// A journal entry about the delivery, with the case's patient, referral and study.
    async fn with_case_entry(&self, row: &DeliveryRow, kind: &str, detail: String) -> JournalEntry {
        let case = self
            .index
            .case(&row.case_id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        JournalEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: now_micros(),
            kind: kind.to_owned(),
            clinic_id: row.clinic_id.clone(),
            institution: row.clinic_id.clone(),
            actor: "telecardio".into(),
            patient_id: case.patient_id,
            referral_id: case.referral_id,
            study_uid: case.study_uid,
            report_id: row.report_id.clone(),
            detail: format!("{} to {}: {detail}", row.channel, row.target),
        }
    }

    fn clinic(&self, id: &str) -> Option<&Clinic> {
        self.config.clinics.iter().find(|c| c.id == id)
    }

    /// Makes the delivery; what the peer said, for the journal.
    async fn deliver(&self, row: &DeliveryRow) -> Result<String, DeliveryError> {
        let report = self
            .index
            .report(&row.report_id)
            .await?
            .ok_or_else(|| DeliveryError::Missing(format!("report {}", row.report_id)))?;
        let timeout = Duration::from_secs(self.config.delivery.timeout_seconds);
        let clinic = self.clinic(&row.clinic_id);
        match row.channel.as_str() {
            "dicom" => {
                let target = clinic
                    .and_then(|c| c.delivery.pacs.as_ref())
                    .ok_or_else(|| DeliveryError::NotConfigured(row.clinic_id.clone()))?;
                let case = self
                    .index
                    .case(&row.case_id)
                    .await?
                    .ok_or_else(|| DeliveryError::Missing(format!("case {}", row.case_id)))?;
                let stored = self
                    .index
                    .instances_of(&case.study_uid)
                    .await?
                    .into_iter()
                    .find(|i| i.sop_instance_uid == report.document_uid)
                    .ok_or_else(|| {
                        DeliveryError::Missing(format!("report object {}", report.document_uid))
                    })?;
                let object = self
                    .archive
                    .read(&ObjectKey::from(stored.object_key.as_str()))
                    .await?;
                let dataset = dataset_of(&object).ok_or_else(|| {
                    DeliveryError::Missing(format!("a Part 10 header in {}", stored.object_key))
                })?;
                let status = push::store_instance(
                    &self.config.dicom.ae_title,
                    self.config.dicom.max_pdu_bytes,
                    target,
                    Instance {
                        sop_class_uid: stored.sop_class_uid,
                        sop_instance_uid: stored.sop_instance_uid,
                        transfer_syntax: stored.transfer_syntax,
                        dataset,
                    },
                    timeout,
                )
                .await?;
                Ok(format!("C-STORE status {status:04X}H"))
            }
            "hl7" => {
                let target = clinic
                    .and_then(|c| c.delivery.his.as_ref())
                    .ok_or_else(|| DeliveryError::NotConfigured(row.clinic_id.clone()))?;
                let case = self
                    .index
                    .case(&row.case_id)
                    .await?
                    .ok_or_else(|| DeliveryError::Missing(format!("case {}", row.case_id)))?;
                let study = self.index.study(&case.study_uid).await?.map(|d| d.study);
                let referral = if case.referral_id.is_empty() {
                    None
                } else {
                    self.index.referral(&case.referral_id).await?
                };
                let placer = referral
                    .as_ref()
                    .map(|r| r.order_number.clone())
                    .filter(|o| !o.is_empty())
                    .unwrap_or_else(|| case.referral_id.clone());
                let signed_at = hl7_timestamp(report.signed_at.unwrap_or(0));
                let now = hl7_timestamp(now_micros());
                let study = study.unwrap_or_default();
                let message = oru::oru(
                    &ReportMessage {
                        control_id: &row.id,
                        now: &now,
                        centre: &report.signer_centre,
                        patient_id: &case.patient_id,
                        patient_name: if study.patient_name.is_empty() {
                            &case.patient_name
                        } else {
                            &study.patient_name
                        },
                        birth_date: &case.birth_date,
                        sex: &study.sex,
                        placer_order: &placer,
                        report_id: &report.id,
                        amended: !report.amends.is_empty(),
                        examination_date: &study.study_date,
                        signed_at: &signed_at,
                        signer_name: &report.signer_name,
                        signer_licence: &report.signer_licence,
                        findings: &report.findings,
                        conclusion: &report.conclusion,
                        recommendations: &report.recommendations,
                        free_text: &report.free_text,
                    },
                    target,
                );
                oru::send(target, &message, &row.id, timeout).await?;
                Ok("ORU^R01 acknowledged".into())
            }
            other => Err(DeliveryError::NotConfigured(format!(
                "{} (channel {other})",
                row.clinic_id
            ))),
        }
    }
}

/// The data set of a stored Part 10 object: after the preamble, "DICM" and the file meta group,
/// whose length its first element gives (PS3.10 7.1).
fn dataset_of(object: &Bytes) -> Option<Bytes> {
    if object.len() < 144 || &object[128..132] != b"DICM" || object[132..136] != [2, 0, 0, 0] {
        return None;
    }
    let group = u32::from_le_bytes([object[140], object[141], object[142], object[143]]);
    let start = 144usize.checked_add(group as usize)?;
    (start <= object.len()).then(|| object.slice(start..))
}
