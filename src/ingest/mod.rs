//! Receiving one object: stream it into the archive, check it, index it, in that order.
//!
//! Owns the rules of what is accepted (structure, UIDs, SOP class agreement, size), the Part 10
//! wrapping of a received data set, hashing on the way, and the duplicate policy. Edges (DIMSE
//! C-STORE, later STOW-RS) feed it bytes as they arrive and map its result to their protocol.
//! Nothing is acknowledged by an edge before [`Receiving::finish`] returns: by then the object is
//! durable in the store and its index row committed.
//!
//! Ownership is checked here for every door: a study, its series and instances belong to the
//! clinic that first sent them, and an object naming another clinic's study, series or SOP
//! Instance UID is refused before it is stored ([`IngestError::Foreign`]), audited and kept on
//! the administrators' list of refusals. The index checks again under its locks, so two clinics
//! racing to create one study cannot both win.

pub mod accepted;
mod digest;
pub mod examined;
pub mod meta;
mod part10;
mod recovery;
mod rederive;
mod reindex;
pub mod scanner;

pub use part10::Part10Receiving;
pub use recovery::{LastRun, Recovered, RunMarker};

use crate::access::{Principal, Via};
use crate::archive::{keys, Archive, ArchiveError, ObjectWriter, Written};
use crate::audit::AuditTrail;
use crate::fault::Fault;
use crate::index::{
    Collision, Index, IndexError, InstanceRecord, Precheck, Prepared, Recorded, Refusal,
};
use crate::metrics::Metrics;
use crate::referral::{self, Referrals};
use digest::Digests;
use meta::InstanceMeta;
use scanner::{ScanError, Scanner};

/// Our implementation class UID (a UUID-derived UID under 2.25) and version, written into the
/// file meta of every object we store.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.187542102398164733019127633495405276613";
pub const IMPLEMENTATION_VERSION_NAME: &str = "TELECARDIO_01";

const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
pub(crate) const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("malformed data set: {0}")]
    Malformed(#[from] ScanError),
    #[error("data set lacks {0}")]
    MissingAttribute(&'static str),
    #[error("invalid {what}: `{value}`")]
    InvalidUid { what: &'static str, value: String },
    #[error("data set {what} {found} contradicts the declared {declared}")]
    Mismatch {
        what: &'static str,
        declared: String,
        found: String,
    },
    #[error("object exceeds the configured maximum of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("transfer syntax {0} is not accepted for storage")]
    TransferSyntax(String),
    #[error("SOP class {0} is not accepted for storage")]
    SopClass(String),
    #[error("not a DICOM Part 10 file: {0}")]
    NotPart10(String),
    /// The object names a study, series or instance another institution owns. The message
    /// goes back to the sender, so it does not say whose.
    #[error("{what} {uid} belongs to another institution; the object is refused")]
    Foreign {
        what: &'static str,
        uid: String,
        owner: String,
    },
    #[error("series {series_uid} already belongs to study {study_uid}")]
    SeriesElsewhere {
        series_uid: String,
        study_uid: String,
    },
    #[error("internal error: {0}")]
    Internal(&'static str),
    #[error(transparent)]
    Store(#[from] ArchiveError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl IngestError {
    pub fn fault(&self) -> Fault {
        match self {
            IngestError::Store(_) | IngestError::Index(_) => Fault::Unavailable,
            IngestError::Internal(_) => Fault::Bug,
            IngestError::Foreign { .. } => Fault::Forbidden,
            _ => Fault::BadInput,
        }
    }

    /// Short label for metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            IngestError::Malformed(_) => "malformed",
            IngestError::MissingAttribute(_) => "missing_attribute",
            IngestError::InvalidUid { .. } => "invalid_uid",
            IngestError::Mismatch { .. } => "sop_mismatch",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::TransferSyntax(_) => "transfer_syntax",
            IngestError::SopClass(_) => "sop_class",
            IngestError::NotPart10(_) => "not_part10",
            IngestError::Foreign { .. } => "foreign",
            IngestError::SeriesElsewhere { .. } => "series_elsewhere",
            IngestError::Internal(_) => "internal",
            IngestError::Store(_) => "store",
            IngestError::Index(_) => "index",
        }
    }
}

/// Who sent the object.
#[derive(Debug, Clone)]
pub struct Origin {
    pub clinic_id: String,
    /// Recorded in the file meta of what is stored (`STOW-RS` for uploads over HTTP).
    pub calling_ae: String,
    /// The principal that sent it (the clinic's AE, or the user or system that uploaded it),
    /// answerable for what the object carries, such as a referral.
    pub sender: Principal,
    /// An object the service made itself (a signed report's object), not data received from
    /// the clinic: the registration journal does not record it as data received.
    pub made_here: bool,
}

impl Origin {
    /// The door the object came in by, for the audit trail and the list of refusals.
    fn door(&self) -> &str {
        match (self.made_here, self.sender.via) {
            (true, _) => "report object",
            (false, Via::Dicom) => "C-STORE",
            (false, _) => &self.calling_ae,
        }
    }
}

impl From<Collision> for IngestError {
    fn from(c: Collision) -> IngestError {
        match c {
            Collision::Foreign { what, uid, owner } => IngestError::Foreign { what, uid, owner },
            Collision::SeriesElsewhere {
                series_uid,
                study_uid,
            } => IngestError::SeriesElsewhere {
                series_uid,
                study_uid,
            },
        }
    }
}

/// What the sender said it is sending, before the data set arrives.
#[derive(Debug, Clone)]
pub struct Declared {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax: String,
    /// The SOP class of the presentation context the object travels on.
    pub context_sop_class_uid: String,
    /// The study the object must belong to (STOW-RS to a study's URL).
    pub study_uid: Option<String>,
}

/// A stored and indexed object.
#[derive(Debug, Clone)]
pub struct Stored {
    pub object_key: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub recorded: Recorded,
    pub meta: InstanceMeta,
}

/// The ingest pipeline; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    archive: Archive,
    index: Index,
    audit: AuditTrail,
    metrics: Metrics,
    max_object_bytes: u64,
    /// Storage classes accepted besides the built-in set (`dicom.extra_sop_classes`).
    extra_sop_classes: Vec<String>,
    /// Where the referral inside an Encapsulated CDA object goes once the object is stored.
    referrals: Option<Referrals>,
}

impl Ingest {
    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    pub fn new(
        archive: Archive,
        index: Index,
        audit: AuditTrail,
        metrics: Metrics,
        max_object_bytes: u64,
    ) -> Ingest {
        Ingest {
            archive,
            index,
            audit,
            metrics,
            max_object_bytes,
            extra_sop_classes: Vec::new(),
            referrals: None,
        }
    }

    pub fn with_referrals(mut self, referrals: Referrals) -> Ingest {
        self.referrals = Some(referrals);
        self
    }

    pub fn with_extra_sop_classes(mut self, extra: Vec<String>) -> Ingest {
        self.extra_sop_classes = extra;
        self
    }

    /// Starts receiving an object. Errors found here (a bad UID in the request) are remembered
    /// and reported by `finish`, so the caller can still drain the data it is being sent.
    pub async fn begin(&self, origin: Origin, declared: Declared) -> Receiving {
        let mut receiving = Receiving {
            ingest: self.clone(),
            scanner: Scanner::new(
                declared.transfer_syntax != IMPLICIT_VR_LITTLE_ENDIAN,
                declared.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
                meta::wanted,
            )
            .with_limit(self.max_object_bytes),
            origin,
            writer: None,
            digests: None,
            failure: None,
            dataset_len: 0,
            declared,
        };
        if let Err(e) = receiving.start().await {
            receiving.fail(e).await;
        }
        receiving
    }

    /// Makes the object durable in the store. On a local store its rows are written at the
    /// same time, to be committed once it is durable: the two waits overlap. On S3 the rows
    /// wait for the store, so a slow request never holds the index's turn, and so they do when
    /// other writers are waiting for it ([`Index::may_overlap`]).
    async fn place(
        &self,
        writer: ObjectWriter,
        key: &crate::archive::ObjectKey,
        record: &InstanceRecord,
        checked: &Precheck,
    ) -> (
        Result<Written, ArchiveError>,
        Option<Result<Prepared, IndexError>>,
    ) {
        let started = std::time::Instant::now();
        let metrics = &self.metrics;
        let store = async {
            let written = writer.commit(key).await;
            metrics.store_latency(started.elapsed());
            written
        };
        if self.archive.is_local() && self.index.may_overlap() {
            let (written, prepared) =
                tokio::join!(store, self.index.prepare_checked(record, checked));
            (written, Some(prepared))
        } else {
            (store.await, None)
        }
    }
}

/// An object being received.
pub struct Receiving {
    ingest: Ingest,
    origin: Origin,
    declared: Declared,
    scanner: Scanner,
    writer: Option<ObjectWriter>,
    digests: Option<Digests>,
    failure: Option<IngestError>,
    dataset_len: u64,
}

impl Receiving {
    async fn start(&mut self) -> Result<(), IngestError> {
        let d = &self.declared;
        check_uid("SOP Class UID", &d.sop_class_uid)?;
        check_uid("SOP Instance UID", &d.sop_instance_uid)?;
        if d.sop_class_uid != d.context_sop_class_uid {
            return Err(IngestError::Mismatch {
                what: "SOP Class UID of the request",
                declared: d.context_sop_class_uid.clone(),
                found: d.sop_class_uid.clone(),
            });
        }
        if d.transfer_syntax == EXPLICIT_VR_BIG_ENDIAN {
            return Err(IngestError::TransferSyntax(d.transfer_syntax.clone()));
        }
        let header = part10_header(d, &self.origin.calling_ae);
        self.digests = Some(Digests::new(&header));
        let mut writer = self.ingest.archive.writer();
        writer.write(&header).await?;
        self.writer = Some(writer);
        Ok(())
    }

    async fn fail(&mut self, error: IngestError) {
        if self.failure.is_none() {
            self.failure = Some(error);
        }
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        }
    }

    /// Takes the next bytes of the data set. After a failure the rest is read and dropped.
    pub async fn write(&mut self, chunk: &[u8]) {
        if self.failure.is_some() {
            return;
        }
        self.dataset_len += chunk.len() as u64;
        if self.dataset_len > self.ingest.max_object_bytes {
            let limit = self.ingest.max_object_bytes;
            return self.fail(IngestError::TooLarge { limit }).await;
        }
        if let Err(e) = self.scanner.feed(chunk) {
            let limit = self.ingest.max_object_bytes;
            let error = match e {
                ScanError::Oversize { .. } => IngestError::TooLarge { limit },
                e => e.into(),
            };
            return self.fail(error).await;
        }
        if let Some(digests) = self.digests.as_mut() {
            digests.update(chunk).await;
        }
        if let Some(writer) = self.writer.as_mut() {
            if let Err(e) = writer.write(chunk).await {
                self.fail(e.into()).await;
            }
        }
    }

    /// Checks the complete data set, makes it durable and indexes it.
    pub async fn finish(mut self) -> Result<Stored, IngestError> {
        let result = self.complete().await;
        if let Err(IngestError::Foreign { what, uid, owner }) = &result {
            self.refused(what, uid, owner).await;
        }
        let metrics = &self.ingest.metrics;
        match &result {
            Ok(stored) => metrics.object_stored(stored.size_bytes),
            Err(e) => metrics.ingest_failed(e.cause()),
        }
        if let (Ok(stored), Some(referrals)) = (&result, self.ingest.referrals.clone()) {
            let sender = self.origin.sender.clone();
            if matches!(stored.recorded, Recorded::New { new_series: true }) {
                // The object is acknowledged whatever happens here; the journal and the link
                // follow it, and a failure is logged (the next series tries the link again).
                if let Err(e) = referrals.on_new_series(&sender, &stored.meta).await {
                    tracing::warn!(study = %stored.meta.study_uid, error = %e, "journal or link of a new series failed");
                }
            }
            if stored.meta.sop_class_uid == referral::ENCAPSULATED_CDA {
                take_referral(&referrals, &sender, stored).await;
            }
        }
        result
    }

    async fn complete(&mut self) -> Result<Stored, IngestError> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        let scanner = std::mem::replace(&mut self.scanner, Scanner::new(true, false, |_| false));
        let meta = match scanner.finish() {
            Ok(kept) => InstanceMeta::from_kept(&kept),
            Err(e) => {
                self.fail(e.into()).await;
                return Err(self.failure.take().expect("just set"));
            }
        };
        if let Err(e) = self.check(&meta) {
            self.fail(e).await;
            return Err(self.failure.take().expect("just set"));
        }
        let digests = match self.digests.take() {
            Some(digests) => digests.finish().await,
            None => None,
        }
        .ok_or(IngestError::Internal("the hashing thread failed"))?;
        let dataset_sha256 = digests.dataset;
        let key = keys::dicom_object(
            &self.origin.clinic_id,
            &meta.study_uid,
            &meta.series_uid,
            &meta.sop_instance_uid,
            &dataset_sha256,
        )
        .map_err(|e| IngestError::InvalidUid {
            what: e.what,
            value: e.value,
        })?;
        let writer = self.writer.take().expect("writer exists while not failed");
        let size_bytes = writer.len();
        let record = self.record(
            &meta,
            key.as_ref(),
            size_bytes,
            &digests.object,
            &dataset_sha256,
        );
        // Refused before anything is made durable: an object naming another clinic's data
        // never reaches the store.
        let checked = match self.ingest.index.precheck(&record).await {
            Ok(Precheck {
                collision: Some(c), ..
            }) => Err(c.into()),
            Ok(checked) => Ok(checked),
            Err(e) => Err(e.into()),
        };
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                writer.abort().await;
                self.fail(e).await;
                return Err(self.failure.take().expect("just set"));
            }
        };
        // From before the object is placed until its row is committed: the index's durable
        // mark does not pass it meanwhile.
        let _in_flight = self.ingest.index.in_flight();
        let (written, prepared) = self.ingest.place(writer, &key, &record, &checked).await;
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                if let Some(Ok(prepared)) = prepared {
                    prepared.abandon().await;
                }
                return Err(e.into());
            }
        };
        let mut prepared = match prepared {
            Some(prepared) => prepared?,
            None => self.ingest.index.prepare_checked(&record, &checked).await?,
        };
        let mut sha256 = digests.object;
        if written == Written::AlreadyExisted
            && !matches!(
                prepared.outcome(),
                Recorded::Duplicate | Recorded::Refused(_)
            )
        {
            // A crash came between store and index; the stored copy may carry another sender's
            // file meta, so its own digest is what the index must record.
            prepared.abandon().await;
            sha256 = self.ingest.archive.sha256(&key).await?;
            let record = self.record(&meta, key.as_ref(), size_bytes, &sha256, &dataset_sha256);
            prepared = self.ingest.index.prepare_instance(&record).await?;
        }
        if let Recorded::Refused(collision) = prepared.outcome().clone() {
            // Another clinic created the study (or series, or instance) between the check above
            // and the index's locks: what this call just wrote goes again, unseen.
            prepared.abandon().await;
            if written == Written::Created {
                self.ingest.archive.withdraw(&key).await;
            }
            return Err(collision.into());
        }
        let recorded = prepared.commit().await?;
        Ok(Stored {
            object_key: key.to_string(),
            size_bytes,
            sha256,
            recorded,
            meta,
        })
    }

    /// Keeps a refused write into another clinic's data on record: a security event with both
    /// institutions, and a row on the administrators' list.
    async fn refused(&mut self, what: &'static str, uid: &str, owner: &str) {
        let sender = &self.origin.sender;
        let refusal = Refusal {
            at: crate::index::now_micros(),
            clinic_id: self.origin.clinic_id.clone(),
            owner_id: owner.to_owned(),
            what: what.to_owned(),
            uid: uid.to_owned(),
            sop_instance_uid: self.declared.sop_instance_uid.clone(),
            door: self.origin.door().to_owned(),
            actor: sender.name.clone(),
            address: sender.address.clone(),
        };
        tracing::warn!(clinic = %refusal.clinic_id, owner = %owner, what, uid, door = %refusal.door, "object refused: names another institution's data");
        let mut event = crate::catalog::event(sender, "ownership_refused");
        event.institution = refusal.clinic_id.clone();
        event.outcome = "refused".into();
        event.detail = format!(
            "{}: {what} {uid} belongs to `{owner}`; SOP Instance {} from `{}` not stored",
            refusal.door, refusal.sop_instance_uid, refusal.clinic_id
        );
        if what == "study" {
            event.study_uid = uid.to_owned();
        }
        if let Err(e) = self.ingest.index.record_refusal(&refusal).await {
            tracing::error!(error = %e, "refusal not listed");
        }
        self.ingest.audit.record(event).await;
    }

    fn check(&self, meta: &InstanceMeta) -> Result<(), IngestError> {
        if meta.sop_class_uid.is_empty() {
            return Err(IngestError::MissingAttribute("SOP Class UID (0008,0016)"));
        }
        if meta.sop_instance_uid.is_empty() {
            return Err(IngestError::MissingAttribute(
                "SOP Instance UID (0008,0018)",
            ));
        }
        check_uid("SOP Instance UID", &meta.sop_instance_uid)?;
        for (what, declared, found) in [
            (
                "SOP Class UID",
                &self.declared.sop_class_uid,
                &meta.sop_class_uid,
            ),
            (
                "SOP Instance UID",
                &self.declared.sop_instance_uid,
                &meta.sop_instance_uid,
            ),
        ] {
            if declared != found {
                return Err(IngestError::Mismatch {
                    what,
                    declared: declared.clone(),
                    found: found.chars().take(80).collect(),
                });
            }
        }
        if meta.study_uid.is_empty() {
            return Err(IngestError::MissingAttribute(
                "Study Instance UID (0020,000D)",
            ));
        }
        if meta.series_uid.is_empty() {
            return Err(IngestError::MissingAttribute(
                "Series Instance UID (0020,000E)",
            ));
        }
        check_uid("Study Instance UID", &meta.study_uid)?;
        if let Some(expected) = &self.declared.study_uid {
            if *expected != meta.study_uid {
                return Err(IngestError::Mismatch {
                    what: "Study Instance UID",
                    declared: expected.clone(),
                    found: meta.study_uid.clone(),
                });
            }
        }
        check_uid("Series Instance UID", &meta.series_uid)
    }

    fn record(
        &self,
        meta: &InstanceMeta,
        key: &str,
        size: u64,
        sha256: &str,
        dataset_sha256: &str,
    ) -> InstanceRecord {
        instance_record(
            meta,
            Where {
                key,
                size,
                sha256,
                dataset_sha256,
                transfer_syntax: &self.declared.transfer_syntax,
                clinic_id: &self.origin.clinic_id,
                calling_ae: &self.origin.calling_ae,
                made_here: self.origin.made_here,
            },
        )
    }

    /// Gives up (the association was aborted): nothing of the object stays visible.
    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        }
    }
}

/// Where a stored object is and who sent it: what an index row needs besides its attributes.
struct Where<'a> {
    key: &'a str,
    size: u64,
    sha256: &'a str,
    dataset_sha256: &'a str,
    transfer_syntax: &'a str,
    clinic_id: &'a str,
    calling_ae: &'a str,
    made_here: bool,
}

/// The index row of an object: its attributes and where it is.
fn instance_record(meta: &InstanceMeta, w: Where<'_>) -> InstanceRecord {
    InstanceRecord {
        object_key: w.key.to_owned(),
        sop_class_uid: meta.sop_class_uid.clone(),
        sop_instance_uid: meta.sop_instance_uid.clone(),
        study_uid: meta.study_uid.clone(),
        series_uid: meta.series_uid.clone(),
        transfer_syntax: w.transfer_syntax.to_owned(),
        size_bytes: i64::try_from(w.size).unwrap_or(i64::MAX),
        sha256: w.sha256.to_owned(),
        dataset_sha256: w.dataset_sha256.to_owned(),
        clinic_id: w.clinic_id.to_owned(),
        calling_ae: w.calling_ae.to_owned(),
        made_here: w.made_here,
        received_at: None,
        patient_id: meta.patient_id.clone(),
        patient_issuer: meta.patient_issuer.clone(),
        patient_name: meta.patient_name.clone(),
        patient_name_search: meta::search_form(&meta.patient_name),
        birth_date: meta.birth_date.clone(),
        sex: meta.sex.clone(),
        other_patient_ids: meta
            .other_patient_ids
            .iter()
            .map(|(id, issuer)| format!("{id}^^^{issuer}"))
            .collect::<Vec<_>>()
            .join("\\"),
        study_date: meta.study_date.clone(),
        study_time: meta.study_time.clone(),
        accession_number: meta.accession_number.clone(),
        accession_issuer: meta.accession_issuer.clone(),
        study_id: meta.study_id.clone(),
        study_description: meta.study_description.clone(),
        referring_physician: meta.referring_physician.clone(),
        referring_physician_search: meta::search_form(&meta.referring_physician),
        modality: meta.modality.clone(),
        series_number: meta.series_number,
        series_description: meta.series_description.clone(),
        instance_number: meta.instance_number,
        number_of_frames: meta.number_of_frames,
        // What the service makes (a report object) says when it was made, not examined.
        examined_at: meta.examined_at.filter(|_| !w.made_here),
    }
}

fn check_uid(what: &'static str, uid: &str) -> Result<(), IngestError> {
    if keys::is_valid_uid(uid) {
        Ok(())
    } else {
        Err(IngestError::InvalidUid {
            what,
            value: uid.chars().take(80).collect(),
        })
    }
}

/// Preamble, `DICM` and the file meta group for a received data set (PS3.10 7.1).
fn part10_header(declared: &Declared, calling_ae: &str) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    let table = dicom_object::meta::FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(declared.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(declared.sop_instance_uid.as_str())
        .transfer_syntax(declared.transfer_syntax.as_str())
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .source_application_entity_title(calling_ae.trim())
        .build()
        .expect("all required file meta attributes are set");
    table.write(&mut out).expect("writing to a Vec cannot fail");
    out
}

/// The referral an Encapsulated CDA object carries. The object is stored whatever the
/// referral's fate; a refused referral is audited and logged for the clinic to resend.
async fn take_referral(referrals: &Referrals, sender: &Principal, stored: &Stored) {
    match referrals
        .receive_encapsulated(sender, &stored.object_key, stored.size_bytes)
        .await
    {
        Ok(received) => tracing::info!(
            referral = %received.referral.id,
            new = received.created,
            object = %stored.object_key,
            "referral taken from an Encapsulated CDA object"
        ),
        Err(e) => tracing::warn!(
            object = %stored.object_key,
            error = %e,
            "Encapsulated CDA object stored, but its referral was refused"
        ),
    }
}
