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

mod platform;

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
    /// The quality platform refused the bundle (`status`) or could not be reached (0).
    #[error("quality platform: {}{detail}", if *status > 0 { format!("HTTP {status}: ") } else { String::new() })]
    Platform { status: u16, detail: String },
}

impl DeliveryError {
    /// Errors no retry can mend: given up at once. A channel missing from this node's
    /// configuration is retried: another node, or this one restarted, may have it.
    fn is_permanent(&self) -> bool {
        match self {
            DeliveryError::Missing(_) => true,
            // The platform said the bundle itself is wrong: sending it again will not help.
            DeliveryError::Platform { status, .. } => {
                (400..500).contains(status) && !matches!(status, 401 | 403 | 408 | 409 | 429)
            }
            _ => false,
        }
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
            // Counted even while busy, so the gauge does not go stale under load.
            if now - counted_at > 10_000_000 {
                counted_at = now;
                self.count().await;
            }
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
                    // Each attempt on a task of its own: a panic costs that attempt (its lease
                    // lapses and it is tried again), not the worker.
                    let attempts: Vec<_> = batch
                        .into_iter()
                        .map(|row| {
                            let me = self.clone();
                            tokio::spawn(async move { me.attempt(row).await })
                        })
                        .collect();
                    for attempt in attempts {
                        if let Err(e) = attempt.await {
                            tracing::error!(error = %e, "a delivery attempt panicked");
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the delivery queue"),
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// The queue gauge: every channel and status, so a count that fell to nothing reads 0.
    async fn count(&self) {
        let Ok(counts) = self.index.delivery_counts().await else {
            return;
        };
        let mut all = Vec::new();
        for channel in ["dicom", "hl7", "pull", "platform"] {
            for status in ["pending", "delivered", "failed", "superseded"] {
                let n = counts
                    .iter()
                    .find(|(c, s, _)| c == channel && s == status)
                    .map_or(0, |(_, _, n)| *n);
                all.push((channel.to_owned(), status.to_owned(), n));
            }
        }
        self.metrics.deliveries(&all);
    }

    /// One attempt at a leased delivery, and its outcome recorded; counted and alerted only
    /// once recorded (a lapsed lease means another node owns the outcome).
    async fn attempt(&self, row: DeliveryRow) {
        let target = self.target_of(&row);
        // Indicator reports belong to no case: nothing for a case's journal.
        let platform = row.channel == "platform";
        let outcome = if platform {
            self.to_platform(&row).await
        } else {
            self.deliver(&row).await
        };
        match outcome {
            Ok(detail) => {
                let entry = if platform {
                    tracing::info!(delivery = %row.id, report = %row.report_id, %detail, "indicator report delivered");
                    None
                } else {
                    Some(
                        self.with_case_entry(&row, &target, "report_delivered", detail)
                            .await,
                    )
                };
                let recorded = self
                    .index
                    .delivery_done(&row, &self.node, &target, entry.as_ref())
                    .await;
                if self.recorded(&row, recorded) {
                    self.metrics.delivery_attempt(&row.channel, "delivered");
                    tracing::info!(delivery = %row.id, channel = %row.channel, target = %target, report = %row.report_id, "report delivered");
                }
            }
            Err(e) => {
                let permanent = e.is_permanent()
                    || row.attempts >= i64::from(self.config.delivery.max_attempts);
                let retry_at =
                    (!permanent).then(|| self.config.delivery.retry_at(now_micros(), row.attempts));
                // What a peer said goes into the index and the journal: no control characters
                // (PostgreSQL takes no NUL) and a bounded length.
                let error = printable(&e.to_string(), 500);
                let entry = if platform {
                    None
                } else {
                    Some(
                        self.with_case_entry(
                            &row,
                            &target,
                            "report_delivery_failed",
                            format!("after {} attempts: {error}", row.attempts),
                        )
                        .await,
                    )
                };
                let recorded = self
                    .index
                    .delivery_attempt_failed(
                        &row,
                        &self.node,
                        &target,
                        &error,
                        retry_at,
                        entry.as_ref(),
                    )
                    .await;
                if !self.recorded(&row, recorded) {
                    return;
                }
                if permanent {
                    self.metrics.delivery_attempt(&row.channel, "failed");
                    tracing::error!(alert = "delivery_failed", delivery = %row.id, channel = %row.channel, target = %target, report = %row.report_id, clinic = %row.clinic_id, attempts = row.attempts, error = %error, "report delivery failed for good; an administrator must act");
                } else {
                    self.metrics.delivery_attempt(&row.channel, "retry");
                    tracing::warn!(delivery = %row.id, channel = %row.channel, target = %target, attempts = row.attempts, error = %error, "report delivery attempt failed; will retry");
                }
            }
        }
    }

    fn recorded(&self, row: &DeliveryRow, recorded: Result<bool, IndexError>) -> bool {
        match recorded {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(delivery = %row.id, "the delivery's lease lapsed before its outcome was recorded; another node owns it");
                false
            }
            Err(e) => {
                tracing::error!(delivery = %row.id, error = %e, "the outcome of a delivery could not be recorded; it will be tried again");
                false
            }
        }
    }

    /// Where the delivery goes now: the clinic's channel as configured on this node (the
    /// queued target when the channel is gone).
    fn target_of(&self, row: &DeliveryRow) -> String {
        let delivery = self.clinic(&row.clinic_id).map(|c| &c.delivery);
        let current = match row.channel.as_str() {
            "dicom" => delivery.and_then(|d| d.pacs.as_ref()).map(|p| p.describe()),
            "hl7" => delivery.and_then(|d| d.his.as_ref()).map(|h| h.describe()),
            _ => None,
        };
        current.unwrap_or_else(|| row.target.clone())
    }

    /// A journal entry about the delivery, with the case's patient, referral and study.
    async fn with_case_entry(
        &self,
        row: &DeliveryRow,
        target: &str,
        kind: &str,
        detail: String,
    ) -> JournalEntry {
        let mut case = self
            .index
            .case(&row.case_id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        case.clinic_id = row.clinic_id.clone();
        JournalEntry::of_case(
            &case,
            kind,
            &row.clinic_id,
            "telecardio",
            &row.report_id,
            format!("{} to {target}: {detail}", row.channel),
        )
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
        let case = self
            .index
            .case(&row.case_id)
            .await?
            .ok_or_else(|| DeliveryError::Missing(format!("case {}", row.case_id)))?;
        let timeout = Duration::from_secs(self.config.delivery.timeout_seconds);
        let clinic = self.clinic(&row.clinic_id);
        match row.channel.as_str() {
            "dicom" => {
                let target = clinic
                    .and_then(|c| c.delivery.pacs.as_ref())
                    .ok_or_else(|| DeliveryError::NotConfigured(row.clinic_id.clone()))?;
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
                let study = self.index.study(&case.study_uid).await?.map(|d| d.study);
                let referral = if case.referral_id.is_empty() {
                    None
                } else {
                    self.index.referral(&case.referral_id).await?
                };
                let filler = filler_order(&case.id);
                let placer = referral
                    .as_ref()
                    .map(|r| r.order_number.clone())
                    .filter(|o| !o.is_empty())
                    .unwrap_or_else(|| filler.clone());
                let control = control_id(&row.id);
                let signed_at = hl7_timestamp(report.signed_at.unwrap_or(0));
                let now = hl7_timestamp(now_micros());
                let study = study.unwrap_or_default();
                let message = oru::oru(
                    &ReportMessage {
                        control_id: &control,
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
                        filler_order: &filler,
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
                oru::send(target, &message, &control, timeout).await?;
                Ok("ORU^R01 acknowledged".into())
            }
            other => Err(DeliveryError::NotConfigured(format!(
                "{} (channel {other})",
                row.clinic_id
            ))),
        }
    }
}

/// `text` without control characters, at most `max` characters.
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

/// The MSH-10 control id of a delivery: at most 20 characters (HL7 v2.5 ST), the same on every
/// attempt, so the HIS's MSA-2 can echo it whole. The random tail of the delivery's UUIDv7.
pub fn control_id(delivery_id: &str) -> String {
    let hex: String = delivery_id.chars().filter(|c| *c != '-').collect();
    hex.chars()
        .skip(hex.chars().count().saturating_sub(20))
        .collect()
}

/// A case's identifier short enough for an order number (EI, 22 characters in v2.5): the same
/// for every version of the case's report, so a correction replaces the result it corrects.
fn filler_order(case_id: &str) -> String {
    let hex: String = case_id.chars().filter(|c| *c != '-').collect();
    hex.chars()
        .skip(hex.chars().count().saturating_sub(22))
        .collect()
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
