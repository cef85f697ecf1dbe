//! Referrals: form 027 (HL7 CDA) in, kept as received, read into the index and journaled.
//!
//! Every way a referral arrives (HTTP now; Encapsulated CDA and HL7 v2 orders later) goes
//! through [`Referrals::receive`]: size limit, parse (no DTD, no entities), validation against
//! our profile (point 12.3), the original bytes made durable in the object store, then the
//! row and its journal entry committed together. Only then is the sender answered. A resend of
//! the same document is answered with the referral it already made.

pub mod cda;
pub mod journal;
pub mod links;
pub mod order;
pub mod personal_code;
pub mod rebuild;
pub mod validate;

use std::sync::Arc;

use crate::access::{Action, Denied, Policy, Principal, Role};
use crate::archive::{keys, Archive, ArchiveError};
use crate::audit::AuditTrail;
use crate::catalog;
use crate::config::Config;
use crate::fault::Fault;
use crate::index::{Index, IndexError, Inserted, JournalEntry, ReferralRow};
pub use validate::{Examination, Invalid, Urgency};

#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    #[error("the document is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Cda(#[from] cda::CdaError),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("no referral {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl ReferralError {
    pub fn fault(&self) -> Fault {
        match self {
            ReferralError::TooLarge { .. } | ReferralError::Cda(_) | ReferralError::Invalid(_) => {
                Fault::BadInput
            }
            ReferralError::Denied(_) => Fault::Forbidden,
            ReferralError::NotFound(_) => Fault::NotFound,
            ReferralError::Conflict(_) => Fault::BadInput,
            ReferralError::Archive(_) | ReferralError::Index(_) => Fault::Unavailable,
        }
    }
}

/// How a referral reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Http,
    /// An Encapsulated CDA object received over C-STORE or STOW-RS.
    Dicom,
    /// An HL7 v2 order (ORM^O01, OMG^O19) over MLLP.
    Hl7,
    /// Filed again from the stored document when the index was rebuilt from the store alone;
    /// the channel it first came by is not in the document.
    Store,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Dicom => "dicom",
            Source::Hl7 => "hl7v2",
            Source::Store => "store",
        }
    }
}

/// Root of the document ids of referrals made from HL7 v2 orders (`hl7v2:{clinic}`), never
/// taken from a CDA document.
pub const ORDER_DOCUMENT_ROOT: &str = "hl7v2:";

/// Encapsulated CDA Storage: the SOP class whose objects carry a referral.
pub const ENCAPSULATED_CDA: &str = "1.2.840.10008.5.1.4.1.1.104.2";

/// A received referral, and whether this call created it or gave a waiting HL7 v2 order its
/// document.
#[derive(Debug, Clone)]
pub struct Received {
    pub referral: ReferralRow,
    pub created: bool,
    pub enriched: bool,
}

/// When and under which id a referral is filed: as it arrives, now and with a fresh id; when
/// the index is rebuilt, at the time the store gives and, where a signed report names it, with
/// the id it had.
pub(crate) struct Filing {
    pub at: i64,
    pub id: String,
}

impl Filing {
    pub(crate) fn now() -> Filing {
        Filing {
            at: crate::index::now_micros(),
            id: uuid::Uuid::now_v7().to_string(),
        }
    }
}

/// A received document or message, durable in the object store.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub key: String,
    pub sha256: String,
}

/// The referral row a validated document or order describes; identity, clinic, status and
/// times are the caller's to set.
fn row_of(valid: &validate::Valid, stored: &Stored) -> ReferralRow {
    ReferralRow {
        document_id: valid.document_id.clone(),
        set_id: valid.set_id.clone(),
        version: valid.version,
        effective_time: valid.effective_time.clone(),
        personal_code: valid.personal_code.clone(),
        insured_code: valid.insured_code.clone(),
        statistical_card: valid.statistical_card.clone(),
        family_name: valid.family_name.clone(),
        given_names: valid.given_names.clone(),
        sex: valid.sex.clone(),
        birth_date: valid.birth_date.clone(),
        author_id: valid.author_id.clone(),
        author_name: valid.author_name.clone(),
        author_organisation: valid.author_organisation.clone(),
        custodian: valid.custodian.clone(),
        order_number: valid.order_number.clone(),
        examination: valid.examination.as_str().to_owned(),
        examination_codes: serde_json::to_string(&valid.examination_codes)
            .unwrap_or_else(|_| "[]".into()),
        urgency: valid.urgency.as_str().to_owned(),
        reason: valid.reason.clone(),
        warnings: serde_json::to_string(&valid.warnings).unwrap_or_else(|_| "[]".into()),
        document_key: stored.key.clone(),
        document_sha256: stored.sha256.clone(),
        ..ReferralRow::default()
    }
}

#[derive(Clone)]
pub struct Referrals {
    index: Index,
    archive: Archive,
    config: Arc<Config>,
    policy: Policy,
    audit: AuditTrail,
}

impl Referrals {
    pub fn new(
        index: Index,
        archive: Archive,
        config: Arc<Config>,
        policy: Policy,
        audit: AuditTrail,
    ) -> Referrals {
        Referrals {
            index,
            archive,
            config,
            policy,
            audit,
        }
    }

    /// Takes in one form 027 document sent by `who`.
    pub async fn receive(
        &self,
        who: &Principal,
        document: &[u8],
        source: Source,
    ) -> Result<Received, ReferralError> {
        let mut event = catalog::event(who, "referral_received");
        event.detail = format!("via {}", source.as_str());
        let outcome = self.take(who, document, source).await;
        event.outcome = match &outcome {
            Ok(r) if r.created => "accepted".to_owned(),
            Ok(r) if r.enriched => "accepted as the document of an HL7 v2 order".to_owned(),
            Ok(_) => "already received".to_owned(),
            Err(e) => format!("refused: {e}"),
        };
        if let Ok(r) = &outcome {
            event.patient_id = r.referral.personal_code.clone();
            event.detail = format!("{}; referral {}", event.detail, r.referral.id);
        }
        self.audit.record(event).await;
        outcome
    }

    async fn take(
        &self,
        who: &Principal,
        document: &[u8],
        source: Source,
    ) -> Result<Received, ReferralError> {
        self.policy.permit(who, Action::Store)?;
        let limit = self.config.referral.max_document_bytes;
        if document.len() > limit {
            return Err(ReferralError::TooLarge {
                size: document.len(),
                limit,
            });
        }
        let read = cda::read(document)?;
        let valid = validate::validate(&read, &self.config.referral.oids)?;
        // A clinic sends its own referrals: the performing clinic named in the document, when
        // it names one, must be the sender.
        let clinic_id = &who.institution;
        if who.role == Role::Clinic && !valid.custodian.is_empty() && valid.custodian != *clinic_id
        {
            return Err(Invalid {
                field: "custodian".into(),
                message: format!(
                    "the document names performing clinic `{}`, but was sent by `{clinic_id}`",
                    valid.custodian
                ),
            }
            .into());
        }
        if valid.document_id.starts_with(ORDER_DOCUMENT_ROOT) {
            return Err(Invalid {
                field: "id".into(),
                message: format!(
                    "document id root `{ORDER_DOCUMENT_ROOT}…` is reserved for referrals made \
                     from HL7 v2 orders"
                ),
            }
            .into());
        }
        if let Some(existing) = self.index.referral_by_document(&valid.document_id).await? {
            return Ok(Received {
                referral: self.own(who, existing)?,
                created: false,
                enriched: false,
            });
        }
        let order = self.waiting_order(clinic_id, &valid).await?;
        let stored = self.keep(document, keys::cda_document).await?;
        match order {
            Some(order) => {
                self.enrich(who, order, valid, stored, Filing::now().at)
                    .await
            }
            None => {
                self.file(who, valid, source, stored, false, Filing::now())
                    .await
            }
        }
    }

    /// Makes `bytes` durable under the key `key_of` gives for their SHA-256.
    async fn keep(
        &self,
        bytes: &[u8],
        key_of: fn(&str) -> object_store::path::Path,
    ) -> Result<Stored, ReferralError> {
        let (key, sha256) = self.archive.keep(bytes, key_of).await?;
        Ok(Stored { key, sha256 })
    }

    /// The referral an HL7 v2 order made for the same clinic and order number that still waits
    /// for its document, if any; an error when the document names another patient.
    async fn waiting_order(
        &self,
        clinic_id: &str,
        valid: &validate::Valid,
    ) -> Result<Option<ReferralRow>, ReferralError> {
        let waiting = self
            .index
            .referrals_of_order(clinic_id, &valid.order_number)
            .await?
            .into_iter()
            .find(|r| !r.order_message_key.is_empty() && r.document_key == r.order_message_key);
        let Some(order) = waiting else {
            return Ok(None);
        };
        let same = |a: &str, b: &str| !a.is_empty() && a == b;
        if same(&order.personal_code, &valid.personal_code)
            || (order.personal_code.is_empty() && same(&order.insured_code, &valid.insured_code))
        {
            Ok(Some(order))
        } else {
            Err(Invalid {
                field: "personal_code".into(),
                message: format!(
                    "order {} was placed over HL7 for a patient with other identifiers; a \
                     document for it must name the same patient",
                    valid.order_number
                ),
            }
            .into())
        }
    }

    /// Files a new referral with its journal entry, then tries to link it.
    pub(crate) async fn file(
        &self,
        who: &Principal,
        valid: validate::Valid,
        source: Source,
        stored: Stored,
        from_order: bool,
        filing: Filing,
    ) -> Result<Received, ReferralError> {
        let clinic_id = who.institution.clone();
        let Filing { at: now, id } = filing;
        let mut referral = row_of(&valid, &stored);
        referral.id = id.clone();
        referral.clinic_id = clinic_id.clone();
        referral.source = source.as_str().to_owned();
        referral.status = "awaiting_examination".into();
        referral.received_by = who.name.clone();
        referral.received_at = now;
        referral.updated_at = now;
        if from_order {
            referral.order_message_key = stored.key.clone();
        }
        let journal = JournalEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: now,
            kind: "referral_received".into(),
            clinic_id,
            institution: who.institution.clone(),
            actor: who.name.clone(),
            patient_id: patient_key(&valid.personal_code, &valid.insured_code),
            referral_id: id,
            study_uid: String::new(),
            report_id: String::new(),
            detail: format!(
                "order {}, {} ({}), via {}",
                valid.order_number,
                valid.examination.as_str(),
                valid.urgency.as_str(),
                source.as_str()
            ),
        };
        match self.index.insert_referral(&referral, &journal).await? {
            Inserted::New(referral) => {
                let referral = self.linked(referral, &who.name).await?;
                Ok(Received {
                    referral,
                    created: true,
                    enriched: false,
                })
            }
            Inserted::Existing(referral) => Ok(Received {
                referral: self.own(who, referral)?,
                created: false,
                enriched: false,
            }),
        }
    }

    /// A referral answered to its sender as "already received": only to the clinic that sent
    /// it. Another sender learns nothing of it, not even whose it is.
    fn own(&self, who: &Principal, referral: ReferralRow) -> Result<ReferralRow, ReferralError> {
        if referral.clinic_id == who.institution {
            Ok(referral)
        } else {
            Err(ReferralError::Conflict(
                "a document with this id was already received from another sender".into(),
            ))
        }
    }

    /// The document arrived for a referral an HL7 v2 order made: it becomes its document.
    async fn enrich(
        &self,
        who: &Principal,
        order: ReferralRow,
        valid: validate::Valid,
        stored: Stored,
        now: i64,
    ) -> Result<Received, ReferralError> {
        let mut with = row_of(&valid, &stored);
        with.id = order.id.clone();
        with.updated_at = now;
        let journal = JournalEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: now,
            kind: "referral_enriched".into(),
            clinic_id: order.clinic_id.clone(),
            institution: who.institution.clone(),
            actor: who.name.clone(),
            patient_id: patient_key(&order.personal_code, &order.insured_code),
            referral_id: order.id.clone(),
            study_uid: order.study_uid.clone(),
            report_id: String::new(),
            detail: format!(
                "form 027 document {} for order {}",
                valid.document_id, valid.order_number
            ),
        };
        let enriched = self.index.enrich_referral(&with, &journal).await?;
        let current = self
            .index
            .referral(&order.id)
            .await?
            .ok_or_else(|| ReferralError::NotFound(order.id.clone()))?;
        let referral = if current.status == "linked" {
            current
        } else {
            self.linked(current, &who.name).await?
        };
        Ok(Received {
            referral,
            created: false,
            enriched,
        })
    }

    /// Tries to link a committed referral and answers it as it now stands. A link attempt that
    /// fails leaves it waiting (the study's next series tries again); it does not undo the
    /// receipt.
    async fn linked(
        &self,
        referral: ReferralRow,
        actor: &str,
    ) -> Result<ReferralRow, ReferralError> {
        if let Err(e) = self.link_referral(&referral, actor).await {
            tracing::warn!(referral = %referral.id, error = %e, "linking deferred");
        }
        Ok(self.index.referral(&referral.id).await?.unwrap_or(referral))
    }

    /// Takes the referral carried by a stored Encapsulated CDA object (its Encapsulated
    /// Document attribute). The object itself is already archived and indexed like any other
    /// instance, whatever becomes of the referral.
    pub async fn receive_encapsulated(
        &self,
        who: &Principal,
        object_key: &str,
        object_size: u64,
    ) -> Result<Received, ReferralError> {
        let limit = self.config.referral.max_document_bytes;
        // The object is the document plus a few kilobytes of attributes; a larger one is
        // refused before it is read into memory.
        if object_size > (limit + 64 * 1024) as u64 {
            let refused = ReferralError::TooLarge {
                size: usize::try_from(object_size).unwrap_or(usize::MAX),
                limit,
            };
            let mut event = catalog::event(who, "referral_received");
            event.detail = format!("via dicom, object {object_key}");
            event.outcome = format!("refused: {refused}");
            self.audit.record(event).await;
            return Err(refused);
        }
        let bytes = self
            .archive
            .read(&crate::archive::ObjectKey::from(object_key))
            .await?;
        let document = crate::reports::document::encapsulated_document(&bytes).map_err(|why| {
            ReferralError::Cda(cda::CdaError::Malformed(format!(
                "Encapsulated CDA object {object_key}: {why}"
            )))
        })?;
        self.receive(who, &document, Source::Dicom).await
    }

    /// Referrals `who` may see, newest first, optionally of one status or order number.
    pub async fn list(
        &self,
        who: &Principal,
        status: Option<&str>,
        order_number: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReferralRow>, ReferralError> {
        let detail = format!(
            "status={} order={}",
            status.unwrap_or("*"),
            order_number.unwrap_or("*")
        );
        self.reading(who, "referral_list", detail, "").await?;
        Ok(self
            .index
            .referrals(&self.policy.scope(who), status, order_number, limit)
            .await?)
    }

    /// A referral, if `who` may see its clinic's cases; otherwise "not found" (audited).
    pub async fn get(&self, who: &Principal, id: &str) -> Result<ReferralRow, ReferralError> {
        let mut event = catalog::event(who, "referral_read");
        event.detail = format!("referral {id}");
        if let Err(denied) = self.policy.permit(who, Action::Query) {
            event.outcome = format!("denied: {denied}");
            self.audit.record(event).await;
            return Err(denied.into());
        }
        let found = self.index.referral(id).await?;
        let visible = found
            .filter(|r| self.policy.sees_clinic(who, &r.clinic_id))
            .ok_or_else(|| ReferralError::NotFound(id.to_owned()));
        event.outcome = match &visible {
            Ok(r) => {
                event.patient_id = r.personal_code.clone();
                "answered".into()
            }
            Err(_) => "not found or outside the caller's scope".into(),
        };
        self.audit
            .record_required(event)
            .await
            .map_err(ReferralError::Index)?;
        visible
    }

    /// Open (or resolved) link exceptions of the clinics `who` may see.
    pub async fn exceptions(
        &self,
        who: &Principal,
        status: &str,
    ) -> Result<Vec<crate::index::LinkException>, ReferralError> {
        let detail = format!("status={status}");
        self.reading(who, "link_exceptions_read", detail, "")
            .await?;
        Ok(self
            .index
            .link_exceptions(&self.policy.scope(who), status)
            .await?)
    }

    /// Studies without a referral, of the clinics `who` may see.
    pub async fn unlinked(
        &self,
        who: &Principal,
        limit: i64,
    ) -> Result<Vec<crate::index::StudyForLink>, ReferralError> {
        let detail = format!("limit={limit}");
        self.reading(who, "unlinked_studies_read", detail, "")
            .await?;
        Ok(self
            .index
            .unlinked_studies(&self.policy.scope(who), limit)
            .await?)
    }

    /// Lets `who` read patient data through a list, audited either way: a refusal is recorded,
    /// and an allowed read is answered only once its record is written.
    pub(crate) async fn reading(
        &self,
        who: &Principal,
        kind: &str,
        detail: String,
        patient_id: &str,
    ) -> Result<(), ReferralError> {
        let mut event = catalog::event(who, kind);
        event.detail = detail;
        event.patient_id = patient_id.to_owned();
        if let Err(denied) = self.policy.permit(who, Action::Query) {
            event.outcome = format!("denied: {denied}");
            self.audit.record(event).await;
            return Err(denied.into());
        }
        event.outcome = "answered".into();
        self.audit
            .record_required(event)
            .await
            .map_err(ReferralError::Index)
    }
}

/// The patient identifier journal entries are filed under: the personal code, else the
/// insured person's code.
pub(crate) fn patient_key(personal_code: &str, insured_code: &str) -> String {
    if personal_code.is_empty() {
        insured_code.to_owned()
    } else {
        personal_code.to_owned()
    }
}
