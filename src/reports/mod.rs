//! Reports: the consulting cardiologist's description of a case (stage 3.3 of the order).
//!
//! The reader who holds the case's claim drafts the structured fields (findings, conclusion,
//! recommendations) and free text, saving as often as they like (each save renews the claim),
//! then signs. Signing freezes the text: the signed content, with the signer's name, licence
//! (or staff) number, centre and time (point 13.1), is made durable in the object store under
//! its SHA-256 before the index marks the version signed. A correction after signing is a new
//! version that names the one it amends and why; earlier versions stay as they were.

pub mod answer;
mod archival;
mod deliveries;
pub mod document;
pub mod pdf;
pub mod printed;
pub mod rebuild;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::access::{Denied, Principal, Role};
use crate::archive::{keys, Archive, ArchiveError};
use crate::audit::AuditTrail;
use crate::catalog;
use crate::config::Config;
use crate::fault::Fault;
use crate::index::{
    now_micros, rfc3339, CaseRow, Index, IndexError, JournalEntry, Push, ReportRow, Saved,
    SignedReport,
};
use crate::ingest::{Ingest, IngestError, Origin};
use crate::routing::{Routing, RoutingError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Case(#[from] RoutingError),
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("the report object could not be stored: {0}")]
    Ingest(#[from] IngestError),
    #[error("the report object could not be made: {0}")]
    Print(#[from] printed::PrintError),
}

impl ReportError {
    pub fn fault(&self) -> Fault {
        match self {
            ReportError::Case(e) => e.fault(),
            ReportError::Denied(_) => Fault::Forbidden,
            ReportError::Conflict(_) | ReportError::Invalid { .. } => Fault::BadInput,
            ReportError::Archive(_) | ReportError::Index(_) => Fault::Unavailable,
            ReportError::Ingest(e) => match e.fault() {
                Fault::Unavailable => Fault::Unavailable,
                _ => Fault::Bug,
            },
            ReportError::Print(_) => Fault::Bug,
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ReportError {
    ReportError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// What a reader writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    #[serde(default)]
    pub findings: String,
    #[serde(default)]
    pub conclusion: String,
    #[serde(default)]
    pub recommendations: String,
    #[serde(default)]
    pub free_text: String,
    /// Required when the case already has a signed report: why it is being corrected.
    #[serde(default)]
    pub amendment_reason: String,
    /// The study could not be read (non-diagnostic): a repeat examination is requested.
    #[serde(default)]
    pub non_diagnostic: bool,
}

/// Longest text accepted in one field: far beyond any description, a bound on what one
/// request can make us store.
const MAX_FIELD_CHARS: usize = 100_000;

/// How long a draft stays reserved for a signature that neither completes nor fails (its node
/// died): then it can be signed again.
const SIGNING_MICROS: i64 = 120_000_000;

#[derive(Clone)]
pub struct Reports {
    index: Index,
    archive: Archive,
    config: Arc<Config>,
    routing: Routing,
    audit: AuditTrail,
    /// Where the report object goes into the study.
    ingest: Ingest,
    /// Wakes this node's delivery worker when a signature queued deliveries.
    deliveries_queued: Arc<Notify>,
}

impl Reports {
    pub fn new(
        index: Index,
        archive: Archive,
        config: Arc<Config>,
        routing: Routing,
        audit: AuditTrail,
        ingest: Ingest,
        deliveries_queued: Arc<Notify>,
    ) -> Reports {
        Reports {
            index,
            archive,
            config,
            routing,
            audit,
            ingest,
            deliveries_queued,
        }
    }

    fn reader_of(&self, who: &Principal, case: &CaseRow) -> Result<(), ReportError> {
        if who.role == Role::Cardiologist && case.centre_id == who.institution {
            Ok(())
        } else {
            Err(Denied {
                name: who.name.clone(),
                role: who.role,
                action: "write reports",
            }
            .into())
        }
    }

    /// Saves `who`'s draft of the case's report: the first report by the reader holding the
    /// claim (renewing it), a correction of a signed one by any reader of the centre, with a
    /// reason.
    pub async fn save_draft(
        &self,
        who: &Principal,
        case_id: &str,
        text: &Text,
    ) -> Result<ReportRow, ReportError> {
        let result = self.write_draft(who, case_id, text).await;
        let detail = format!("case {case_id}");
        self.audit
            .refusal(who, "report_draft_saved", detail, result)
            .await
    }

    async fn write_draft(
        &self,
        who: &Principal,
        case_id: &str,
        text: &Text,
    ) -> Result<ReportRow, ReportError> {
        let case = self.routing.visible(who, case_id).await?;
        self.reader_of(who, &case)?;
        for (field, value) in [
            ("findings", &text.findings),
            ("conclusion", &text.conclusion),
            ("recommendations", &text.recommendations),
            ("free_text", &text.free_text),
            ("amendment_reason", &text.amendment_reason),
        ] {
            if value.chars().count() > MAX_FIELD_CHARS {
                return Err(invalid(field, format!("over {MAX_FIELD_CHARS} characters")));
            }
            // XML 1.0 (the answer document) and PostgreSQL text take no other control characters.
            if value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return Err(invalid(field, "contains control characters"));
            }
        }
        let versions = self.index.reports_of_case(case_id).await?;
        let last_signed = versions.iter().rev().find(|r| r.status == "signed");
        let mut draft = ReportRow {
            id: uuid::Uuid::now_v7().to_string(),
            case_id: case_id.to_owned(),
            findings: text.findings.clone(),
            conclusion: text.conclusion.clone(),
            recommendations: text.recommendations.clone(),
            free_text: text.free_text.clone(),
            non_diagnostic: text.non_diagnostic,
            author: who.name.clone(),
            ..ReportRow::default()
        };
        match (case.status.as_str(), last_signed) {
            ("new" | "in_progress", None) => {
                // Writing is activity: the claim is renewed, or taken if free.
                if !self
                    .index
                    .claim(
                        case_id,
                        &who.name,
                        now_micros() + self.config.routing.claim_micros(),
                        None,
                    )
                    .await?
                {
                    return Err(ReportError::Conflict(format!(
                        "case {case_id} is claimed by {}",
                        case.claimed_by
                    )));
                }
            }
            ("reported" | "delivered", Some(signed)) => {
                let open_own = versions
                    .iter()
                    .any(|r| r.status == "draft" && r.author == who.name);
                if text.amendment_reason.trim().is_empty() && !open_own {
                    return Err(invalid(
                        "amendment_reason",
                        "the case has a signed report: a correction needs a reason",
                    ));
                }
                draft.amends = signed.id.clone();
                draft.amendment_reason = text.amendment_reason.trim().to_owned();
            }
            (status, _) => {
                return Err(ReportError::Conflict(format!(
                    "case {case_id} is {status}: not open for reporting"
                )))
            }
        }
        match self.index.save_draft(&draft).await? {
            Saved::Created | Saved::Updated => {}
            Saved::Taken { author } => {
                return Err(ReportError::Conflict(format!(
                    "{author} has a draft of this case's report open"
                )))
            }
            Saved::Signing => {
                return Err(ReportError::Conflict(format!(
                    "the draft of case {case_id} is being signed right now"
                )))
            }
        }
        let mut event = catalog::event(who, "report_draft_saved");
        event.detail = format!("case {case_id}");
        event.patient_id = case.patient_id.clone();
        event.study_uid = case.study_uid.clone();
        event.outcome = "saved".into();
        self.audit.record(event).await;
        self.draft_of(case_id, &who.name).await
    }

    async fn draft_of(&self, case_id: &str, author: &str) -> Result<ReportRow, ReportError> {
        self.index
            .reports_of_case(case_id)
            .await?
            .into_iter()
            .find(|r| r.status == "draft" && r.author == author)
            .ok_or_else(|| ReportError::Conflict(format!("no draft of {author} on case {case_id}")))
    }

    /// Signs `who`'s draft: frozen in the store, then marked signed; journaled and audited.
    pub async fn sign(&self, who: &Principal, case_id: &str) -> Result<ReportRow, ReportError> {
        let result = self.sign_draft(who, case_id).await;
        let detail = format!("case {case_id}");
        self.audit
            .refusal(who, "report_signed", detail, result)
            .await
    }

    async fn sign_draft(&self, who: &Principal, case_id: &str) -> Result<ReportRow, ReportError> {
        let case = self.routing.visible(who, case_id).await?;
        self.reader_of(who, &case)?;
        let draft = self.draft_of(case_id, &who.name).await?;
        if draft.conclusion.trim().is_empty() {
            return Err(invalid(
                "conclusion",
                "a report is signed with a conclusion",
            ));
        }
        let user = self
            .index
            .user(&who.name)
            .await?
            .filter(|u| !u.full_name.trim().is_empty() && !u.licence.trim().is_empty());
        let Some(user) = user else {
            return Err(invalid(
                "licence",
                format!(
                    "a signed report names its signer: set the full name and licence number of \
                     {} first (telecardio user profile)",
                    who.name
                ),
            ));
        };
        // The draft is reserved for this signature (across nodes) before anything is made
        // from it: a second signature of it (a double click) is refused here rather than after
        // it made a report object in the study that would never be signed.
        let until = now_micros() + SIGNING_MICROS;
        if !self
            .index
            .reserve_signing(&draft.id, &who.name, draft.updated_at, until)
            .await?
        {
            return Err(ReportError::Conflict(format!(
                "the draft of case {case_id} is being signed right now, or changed"
            )));
        }
        let result = self.sign_reserved(who, &case, draft.clone(), user).await;
        if result.is_err() {
            if let Err(e) = self.index.release_signing(&draft.id, until).await {
                tracing::warn!(report = %draft.id, error = %e, "a failed signature's reservation stays until it lapses");
            }
        }
        result
    }

    /// Signing once the draft is reserved: frozen content, answer, report object, signature.
    async fn sign_reserved(
        &self,
        who: &Principal,
        case: &CaseRow,
        draft: ReportRow,
        user: crate::index::UserRow,
    ) -> Result<ReportRow, ReportError> {
        let case_id = case.id.as_str();
        let signed_at = now_micros();
        let content = serde_json::json!({
            "report_id": draft.id,
            "case_id": case.id,
            "version": draft.version,
            "amends": draft.amends,
            "amendment_reason": draft.amendment_reason,
            "study_uid": case.study_uid,
            "referral_id": case.referral_id,
            "clinic_id": case.clinic_id,
            "patient": {"id": case.patient_id, "name": case.patient_name, "birth_date": case.birth_date},
            "examination": case.examination,
            "findings": draft.findings,
            "conclusion": draft.conclusion,
            "recommendations": draft.recommendations,
            "free_text": draft.free_text,
            "non_diagnostic": draft.non_diagnostic,
            "signer": {
                "user": who.name,
                "name": user.full_name,
                "licence": user.licence,
                "centre": who.institution,
            },
            "signed_at": rfc3339(signed_at),
        });
        let bytes = serde_json::to_vec_pretty(&content).unwrap_or_default();
        let (content_key, content_sha256) = self.archive.keep(&bytes, keys::report_content).await?;
        let mut signed = ReportRow {
            status: "signed".into(),
            signer: who.name.clone(),
            signer_name: user.full_name.clone(),
            signer_licence: user.licence.clone(),
            signer_centre: who.institution.clone(),
            signed_at: Some(signed_at),
            content_key,
            content_sha256,
            ..draft.clone()
        };
        // The answer to the referral (form 027 answer, HL7 CDA), durable before the signature.
        let referral = if case.referral_id.is_empty() {
            None
        } else {
            self.index.referral(&case.referral_id).await?
        };
        let centre_name = self
            .config
            .centre(&case.centre_id)
            .map_or(case.centre_id.as_str(), |c| c.name.as_str());
        let document = answer::document(&answer::Answer {
            report: &signed,
            case,
            referral: referral.as_ref(),
            centre_name,
            signed: &crate::index::hl7_timestamp(signed_at),
            oids: &self.config.referral.oids,
        })
        .map_err(|e| {
            ReportError::Conflict(format!("the answer document could not be written: {e}"))
        })?;
        let (answer_key, answer_sha256) =
            self.archive.keep(&document, keys::answer_document).await?;
        signed.answer_key = answer_key;
        signed.answer_sha256 = answer_sha256;
        // The report object in the study, stored and indexed like any instance, before the
        // signature that names it.
        let (document_uid, document_key) = self
            .store_report_object(who, case, &signed, signed_at, centre_name)
            .await?;
        signed.document_uid = document_uid;
        signed.document_key = document_key;
        let pushes = self.pushes_for(&case.clinic_id);
        let kind = if draft.amends.is_empty() {
            "report_signed"
        } else {
            "report_amended"
        };
        let mut journal = JournalEntry::of_case(
            case,
            kind,
            &who.institution,
            &who.name,
            &draft.id,
            format!(
                "version {} signed by {} ({})",
                draft.version, user.full_name, user.licence
            ),
        );
        journal.at = signed_at;
        if !self
            .index
            .sign_report(&signed, &journal, &case.clinic_id, &pushes)
            .await?
        {
            return Err(ReportError::Conflict(format!(
                "the draft of case {case_id} was signed or replaced meanwhile"
            )));
        }
        if !pushes.is_empty() {
            self.deliveries_queued.notify_one();
        }
        let mut event = catalog::event(who, kind);
        event.detail = format!(
            "case {case_id}, report {} version {}",
            draft.id, draft.version
        );
        event.patient_id = case.patient_id.clone();
        event.study_uid = case.study_uid.clone();
        event.outcome = "signed".into();
        self.audit.record(event).await;
        Ok(signed)
    }

    /// Makes the signed version's report object (DICOM Encapsulated PDF, a new series in the
    /// case's study) and ingests it; its SOP Instance UID and object key.
    async fn store_report_object(
        &self,
        who: &Principal,
        case: &CaseRow,
        signed: &ReportRow,
        signed_at: i64,
        centre_name: &str,
    ) -> Result<(String, String), ReportError> {
        let study = self
            .index
            .study(&case.study_uid)
            .await?
            .map(|detail| detail.study)
            .ok_or_else(|| {
                ReportError::Conflict(format!("study {} is not in the index", case.study_uid))
            })?;
        let clinic_name = self
            .config
            .clinics
            .iter()
            .find(|c| c.id == case.clinic_id)
            .map_or(case.clinic_id.as_str(), |c| c.name.as_str());
        let sop_instance_uid = answer::uuid_oid(&uuid::Uuid::new_v4().to_string());
        let series_uid = answer::uuid_oid(&uuid::Uuid::new_v4().to_string());
        let object = printed::report_object(&printed::Printed {
            report: signed,
            case,
            study: &study,
            clinic_name,
            centre_name,
            signed: &crate::index::hl7_timestamp(signed_at),
            series_uid: &series_uid,
            sop_instance_uid: &sop_instance_uid,
        })?;
        let origin = Origin {
            // The object belongs to the clinic's study; the sender answerable for it is the
            // signer.
            clinic_id: case.clinic_id.clone(),
            calling_ae: self.config.dicom.ae_title.clone(),
            sender: who.clone(),
            made_here: true,
        };
        let mut receiving = self
            .ingest
            .begin_part10(origin, Some(case.study_uid.clone()));
        receiving.write(&object).await;
        let stored = receiving.finish().await?;
        Ok((sop_instance_uid, stored.object_key))
    }

    /// The push deliveries the clinic is configured for.
    fn pushes_for(&self, clinic_id: &str) -> Vec<Push> {
        let Some(clinic) = self.config.clinics.iter().find(|c| c.id == clinic_id) else {
            return Vec::new();
        };
        let mut pushes = Vec::new();
        if let Some(pacs) = &clinic.delivery.pacs {
            pushes.push(Push {
                channel: "dicom".into(),
                target: pacs.describe(),
            });
        }
        if let Some(his) = &clinic.delivery.his {
            pushes.push(Push {
                channel: "hl7".into(),
                target: his.describe(),
            });
        }
        pushes
    }

    /// The answer document (HL7 CDA) of a signed version of the case's report.
    pub async fn answer(
        &self,
        who: &Principal,
        case_id: &str,
        report_id: &str,
        delivering: bool,
    ) -> Result<Vec<u8>, ReportError> {
        let result = self.read_answer(who, case_id, report_id, delivering).await;
        let detail = format!("case {case_id}, report {report_id}");
        self.audit.refusal(who, "answer_read", detail, result).await
    }

    async fn read_answer(
        &self,
        who: &Principal,
        case_id: &str,
        report_id: &str,
        delivering: bool,
    ) -> Result<Vec<u8>, ReportError> {
        let report = self
            .read_versions(who, case_id)
            .await?
            .into_iter()
            .find(|r| r.id == report_id && !r.answer_key.is_empty())
            .ok_or_else(|| {
                ReportError::Case(RoutingError::NotFound(format!(
                    "signed report {report_id} of case {case_id}"
                )))
            })?;
        let document = self
            .archive
            .read(&crate::archive::ObjectKey::from(report.answer_key.as_str()))
            .await?
            .to_vec();
        // The clinic fetching its answer is the pull channel's delivery (T6 for the case's
        // latest version), recorded once, after the document was read.
        let case = self.routing.visible(who, case_id).await?;
        if delivering && who.role == Role::Clinic && case.clinic_id == who.institution {
            let journal = JournalEntry::of_case(
                &case,
                "report_delivered",
                &who.institution,
                &who.name,
                &report.id,
                format!("version {} fetched by the clinic (pull)", report.version),
            );
            self.index
                .record_pull(&report, &case.clinic_id, &journal)
                .await?;
        }
        Ok(document)
    }

    /// The printed report (PDF) of a signed version of the case's report, as the report object
    /// in the study carries it.
    pub async fn pdf(
        &self,
        who: &Principal,
        case_id: &str,
        report_id: &str,
    ) -> Result<Vec<u8>, ReportError> {
        let result = self.read_pdf(who, case_id, report_id).await;
        let detail = format!("case {case_id}, report {report_id}");
        self.audit
            .refusal(who, "report_pdf_read", detail, result)
            .await
    }

    async fn read_pdf(
        &self,
        who: &Principal,
        case_id: &str,
        report_id: &str,
    ) -> Result<Vec<u8>, ReportError> {
        let report = self
            .read_versions(who, case_id)
            .await?
            .into_iter()
            .find(|r| r.id == report_id && !r.document_key.is_empty())
            .ok_or_else(|| {
                ReportError::Case(RoutingError::NotFound(format!(
                    "signed report {report_id} of case {case_id}"
                )))
            })?;
        let object = self
            .archive
            .read(&crate::archive::ObjectKey::from(
                report.document_key.as_str(),
            ))
            .await?;
        document::encapsulated_document(&object).map_err(|why| {
            ReportError::Conflict(format!(
                "the report object {} holds no readable PDF: {why}",
                report.document_key
            ))
        })
    }

    /// Signed report versions since `since` (microseconds) that `who` may see: a clinic its
    /// cases', a cardiologist their centre's, administrators and auditors all.
    pub async fn since(
        &self,
        who: &Principal,
        since: i64,
        limit: i64,
    ) -> Result<Vec<SignedReport>, ReportError> {
        let own = [who.institution.clone()];
        let (clinics, centres): (Option<&[String]>, Option<&[String]>) = match who.role {
            Role::Clinic => (Some(&own), None),
            Role::Cardiologist => (None, Some(&own)),
            Role::Admin | Role::Auditor => (None, None),
        };
        let mut event = catalog::event(who, "reports_listed");
        event.detail = format!("since {}", rfc3339(since));
        event.outcome = "answered".into();
        self.audit.record_required(event).await?;
        Ok(self
            .index
            .signed_since(since, clinics, centres, limit)
            .await?)
    }

    /// Every version of the case's report `who` may see, oldest first; a draft only to its
    /// author.
    pub async fn versions(
        &self,
        who: &Principal,
        case_id: &str,
    ) -> Result<Vec<ReportRow>, ReportError> {
        let result = self.read_versions(who, case_id).await;
        let detail = format!("case {case_id}");
        self.audit.refusal(who, "report_read", detail, result).await
    }

    async fn read_versions(
        &self,
        who: &Principal,
        case_id: &str,
    ) -> Result<Vec<ReportRow>, ReportError> {
        let case = self.routing.visible(who, case_id).await?;
        let mut event = catalog::event(who, "report_read");
        event.detail = format!("case {case_id}");
        event.patient_id = case.patient_id.clone();
        event.study_uid = case.study_uid.clone();
        event.outcome = "answered".into();
        self.audit.record_required(event).await?;
        Ok(self
            .index
            .reports_of_case(case_id)
            .await?
            .into_iter()
            .filter(|r| r.status == "signed" || r.author == who.name)
            .collect())
    }
}
