//! Importing a Holter file for a referral, whichever door it came by (`POST /api/holter`, a
//! clinic's inbox, `telecardio import-holter`): read and check everything the file claims
//! before a byte is stored, keep the original create-only under its hash, then stream the
//! standard copy hour by hour through the same ingest as a C-STORE (hash, index, journal,
//! ownership, linking) and record which original each copy came from.
//!
//! Nothing here holds a recording in memory: the original is copied to the store a MiB at a
//! time while it is hashed, and the copy is written on a blocking thread that hands the ingest
//! 64 KiB at a time through a bounded channel.
//!
//! Importing is repeatable: the copy's UIDs come from the referral and the original's hash,
//! so the same file imported again (a retried upload, an inbox file taken again after a
//! crash) finds every object stored and adds nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::copy::{self, Source, Subject};
use super::dicom::segmented_parts;
use super::plan::{check_patient, file_state, plan, Plan};
use super::stream::{Job, Piece};
use super::HolterError;
use crate::access::{Action, Denied, Policy, Principal, Role};
use crate::archive::{keys, Archive, ArchiveError, Written};
use crate::audit::AuditTrail;
use crate::config::Config;
use crate::fault::Fault;
use crate::index::{HolterOriginal, Index, IndexError, ReferralRow};
use crate::ingest::{Ingest, IngestError, Origin};

/// The calling AE recorded in the copy's file meta.
const SOURCE_AE: &str = "TC_HOLTER";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("no referral {0} among this clinic's referrals")]
    NoReferral(String),
    #[error("no Holter original behind series {0}")]
    NoOriginal(String),
    #[error("{0}")]
    Ambiguous(String),
    #[error("the file is neither ISHNE 1.0 nor EDF/EDF+: it starts with {0:?}")]
    Format(String),
    #[error(transparent)]
    Recording(#[from] HolterError),
    #[error("{field}: {problem}")]
    Patient {
        field: &'static str,
        problem: String,
    },
    /// A part of the request that does not fit the recording.
    #[error("{field}: {problem}")]
    Request {
        field: &'static str,
        problem: String,
    },
    #[error("the recording is larger than the configured maximum of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file changed while it was being imported; it is taken once it stays unchanged")]
    Changed,
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] ArchiveError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl ImportError {
    pub fn fault(&self) -> Fault {
        match self {
            ImportError::Denied(_) => Fault::Forbidden,
            ImportError::NoReferral(_) | ImportError::NoOriginal(_) => Fault::NotFound,
            ImportError::Recording(HolterError::Io(_)) => Fault::Unavailable,
            ImportError::Ingest(e) => e.fault(),
            ImportError::Store(_) | ImportError::Index(_) | ImportError::Changed => {
                Fault::Unavailable
            }
            ImportError::Internal(_) => Fault::Bug,
            _ => Fault::BadInput,
        }
    }

    /// The part of the request or file at fault, for a 422 answer.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ImportError::Format(_) => Some("file"),
            ImportError::Ambiguous(_) => Some("order_number"),
            ImportError::Patient { field, .. } | ImportError::Request { field, .. } => Some(field),
            ImportError::Recording(e) => match e {
                HolterError::Field { field, .. } => Some(field),
                HolterError::Magic(_) => Some("magic"),
                HolterError::Crc { .. } => Some("crc"),
                HolterError::Truncated(_) => Some("file"),
                HolterError::Io(_) => None,
            },
            _ => None,
        }
    }
}

/// Which referral a recording comes with.
#[derive(Debug, Clone)]
pub enum Target {
    Referral(String),
    /// The referral's order number within the sending clinic, and the patient's personal (or
    /// insured person's) code; an empty code matches any (the inbox names files by order).
    Order {
        patient_code: String,
        order_number: String,
    },
}

/// A recording on local disk (an upload spooled, an inbox file, a command-line argument).
#[derive(Debug, Clone)]
pub struct Upload {
    pub path: PathBuf,
    /// The name the sender gave it, kept with the original.
    pub file_name: String,
    /// An ISHNE annotation file (`.ann`) for it.
    pub annotations: Option<PathBuf>,
}

/// What an import made.
#[derive(Debug, Clone)]
pub struct Imported {
    pub original: HolterOriginal,
    /// False when everything was stored already (the same file for the same referral).
    pub created: bool,
    /// Whether the referral is linked to the copy's study.
    pub linked: bool,
    /// Signals in the file not carried into the copy.
    pub left_out: Vec<String>,
}

/// The import service; cheap to clone.
#[derive(Clone)]
pub struct Holter {
    ingest: Ingest,
    pub(super) index: Index,
    pub(super) archive: Archive,
    pub(super) policy: Policy,
    audit: AuditTrail,
    config: Arc<Config>,
}

impl Holter {
    pub fn new(ingest: Ingest, policy: Policy, audit: AuditTrail, config: Arc<Config>) -> Holter {
        Holter {
            index: ingest.index().clone(),
            archive: ingest.archive().clone(),
            ingest,
            policy,
            audit,
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(super) async fn audit_required(
        &self,
        event: crate::index::AuditEvent,
    ) -> Result<(), ImportError> {
        Ok(self.audit.record_required(event).await?)
    }

    /// Imports `upload` for the referral `target` names, on behalf of `who`; audited either way.
    pub async fn import(
        &self,
        who: &Principal,
        target: &Target,
        upload: &Upload,
    ) -> Result<Imported, ImportError> {
        let mut referral = None;
        let result = self.run(who, target, upload, &mut referral).await;
        let mut event = crate::catalog::event(who, "holter_import");
        if let Some(r) = &referral {
            event.patient_id = crate::referral::patient_key(&r.personal_code, &r.insured_code);
            event.institution = r.clinic_id.clone();
        }
        match &result {
            Ok(done) => {
                event.outcome = if done.created {
                    "stored"
                } else {
                    "already stored"
                }
                .into();
                event.study_uid = done.original.study_uid.clone();
                event.detail = format!(
                    "{} `{}` for referral {}: {} instances in series {}, original {} (SHA-256 {})",
                    done.original.format,
                    done.original.file_name,
                    done.original.referral_id,
                    done.original.instances,
                    done.original.series_uid,
                    done.original.object_key,
                    done.original.sha256
                );
                tracing::info!(series = %done.original.series_uid, referral = %done.original.referral_id, created = done.created, "Holter recording imported");
            }
            Err(e) => {
                event.outcome = "refused".into();
                event.detail = format!("`{}`: {e}", upload.file_name);
                tracing::warn!(file = %upload.file_name, error = %e, "Holter recording refused");
            }
        }
        self.audit.record(event).await;
        result
    }

    async fn run(
        &self,
        who: &Principal,
        target: &Target,
        upload: &Upload,
        found: &mut Option<ReferralRow>,
    ) -> Result<Imported, ImportError> {
        self.policy.permit(who, Action::ImportRecording)?;
        let referral = self.referral(who, target).await?;
        *found = Some(referral.clone());
        let limit = self.config.holter.max_recording_bytes;
        let before = file_state(&upload.path)?;
        if before.0 > limit {
            return Err(ImportError::TooLarge { limit });
        }
        let plan = {
            let (path, ann) = (upload.path.clone(), upload.annotations.clone());
            tokio::task::spawn_blocking(move || plan(&path, before.0, ann.as_deref()))
                .await
                .map_err(|e| ImportError::Internal(e.to_string()))??
        };
        check_patient(&plan.recording, &referral)?;

        // The original first, create-only under its hash: once the copy exists, so does the
        // file it was made from.
        let (writer, sha256) = self.keep_original(&upload.path).await?;
        if file_state(&upload.path)? != before {
            writer.abort().await;
            return Err(ImportError::Changed);
        }
        // Clinic ids are checked when the configuration is read: a bad one here is a bug.
        let key = keys::holter_original(&referral.clinic_id, &sha256, plan.extension)
            .map_err(|e| ImportError::Internal(e.to_string()))?;
        let written = writer.commit(&key).await?;

        let subject = self.subject(&referral, &sha256).await?;
        // The sender's name for the file, bounded: it goes into the copy as text.
        let file_name: String = upload.file_name.chars().take(200).collect();
        let source = Source {
            file_name: file_name.clone(),
            format: plan.recording.format,
            sha256: sha256.clone(),
            recorder: plan.recorder.clone(),
        };
        let origin = Origin {
            clinic_id: referral.clinic_id.clone(),
            calling_ae: SOURCE_AE.into(),
            // The referral's clinic answers for what the copy carries; the journal and the
            // link look among its referrals.
            sender: Principal {
                institution: referral.clinic_id.clone(),
                ..who.clone()
            },
            made_here: false,
        };
        let (instances, new_objects) = self
            .copy(
                &upload.path,
                &plan,
                &subject,
                &source,
                origin,
                &referral,
                &sha256,
            )
            .await?;
        let original = HolterOriginal {
            series_uid: subject.series_uid.clone(),
            object_key: key.to_string(),
            sha256,
            size_bytes: i64::try_from(before.0).unwrap_or(i64::MAX),
            format: plan.recording.format.into(),
            file_name,
            clinic_id: referral.clinic_id.clone(),
            referral_id: referral.id.clone(),
            study_uid: subject.study_uid.clone(),
            instances: instances as i64,
            channels: plan.recording.channels.len() as i64,
            rate: i64::from(plan.recording.rate),
            samples: i64::try_from(plan.recording.instants).unwrap_or(i64::MAX),
            started: plan.recording.start.to_string(),
            annotations: plan.marks.len() as i64,
            received_by: who.name.clone(),
            received_at: 0,
        };
        let recorded = self.index.record_holter_original(&original).await?;
        let original = self
            .index
            .holter_original(&original.series_uid)
            .await?
            .unwrap_or(original);
        let linked = self
            .index
            .referral(&referral.id)
            .await?
            .is_some_and(|r| r.study_uid == original.study_uid);
        Ok(Imported {
            original,
            created: recorded || new_objects || written == Written::Created,
            linked,
            left_out: plan.recording.left_out.clone(),
        })
    }

    /// The referral `target` names, if `who` may import for it. A referral of another clinic
    /// is answered as not found.
    async fn referral(&self, who: &Principal, target: &Target) -> Result<ReferralRow, ImportError> {
        let own = |r: &ReferralRow| match who.role {
            Role::Clinic => who.institution == r.clinic_id,
            _ => self.policy.sees_clinic(who, &r.clinic_id),
        };
        match target {
            Target::Referral(id) => match self.index.referral(id).await? {
                Some(r) if own(&r) => Ok(r),
                _ => Err(ImportError::NoReferral(id.clone())),
            },
            Target::Order {
                patient_code,
                order_number,
            } => {
                let named = if patient_code.is_empty() {
                    format!("with order {order_number}")
                } else {
                    format!("with order {order_number} for patient {patient_code}")
                };
                if who.role != Role::Clinic {
                    return Err(ImportError::NoReferral(named));
                }
                let mut matching: Vec<ReferralRow> = self
                    .index
                    .referrals_with_order(&who.institution, order_number)
                    .await?
                    .into_iter()
                    .filter(|r| {
                        patient_code.is_empty()
                            || r.personal_code == *patient_code
                            || r.insured_code == *patient_code
                    })
                    .collect();
                match matching.len() {
                    0 => Err(ImportError::NoReferral(named)),
                    1 => Ok(matching.remove(0)),
                    n => Err(ImportError::Ambiguous(format!(
                        "{n} referrals {named}; name one by its id"
                    ))),
                }
            }
        }
    }

    /// Streams the file into a new object while hashing it; the object is not yet committed.
    async fn keep_original(
        &self,
        path: &Path,
    ) -> Result<(crate::archive::ObjectWriter, String), ImportError> {
        let mut writer = self.archive.writer();
        let path = path.to_owned();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            let copied = (|| -> Result<(), ImportError> {
                let mut file = std::fs::File::open(&path).map_err(HolterError::Io)?;
                let mut buffer = vec![0u8; 1024 * 1024];
                loop {
                    let n = file.read(&mut buffer).map_err(HolterError::Io)?;
                    if n == 0 {
                        return Ok(());
                    }
                    hasher.update(&buffer[..n]);
                    runtime.block_on(writer.write(&buffer[..n]))?;
                }
            })();
            match copied {
                Ok(()) => Ok((writer, hex::encode(hasher.finalize()))),
                // Nothing of a half-copied original stays staged.
                Err(e) => {
                    runtime.block_on(writer.abort());
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| ImportError::Internal(e.to_string()))?
    }

    /// The patient, study and series the copy goes into: the referral's study when it has
    /// one (with that study's patient attributes, so the study stays one patient's), else a
    /// study of our own that the referral's order number links.
    async fn subject(&self, r: &ReferralRow, sha256: &str) -> Result<Subject, ImportError> {
        let oids = &self.config.referral.oids;
        let (patient_id, issuer) = if r.personal_code.is_empty() {
            (r.insured_code.clone(), oids.insured_code.clone())
        } else {
            (r.personal_code.clone(), oids.personal_code.clone())
        };
        let name = match (r.family_name.is_empty(), r.given_names.is_empty()) {
            (_, true) => r.family_name.clone(),
            _ => format!("{}^{}", r.family_name, r.given_names),
        };
        let sex = match r.sex.as_str() {
            "M" | "F" => r.sex.clone(),
            "" => String::new(),
            _ => "O".into(),
        };
        let mut subject = Subject {
            patient_id,
            issuer,
            name,
            birth_date: r.birth_date.chars().take(8).collect(),
            sex,
            study_uid: copy::uid(&["holter-study", &r.id]),
            series_uid: copy::uid(&["holter-series", &r.id, sha256]),
            accession_number: r.order_number.clone(),
            referring_physician: r.author_name.clone(),
            study_description: r.examination.clone(),
            institution_name: self
                .config
                .clinics
                .iter()
                .find(|c| c.id == r.clinic_id)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            ..Subject::default()
        };
        if !r.study_uid.is_empty() {
            if let Some(study) = self.index.study_patient(&r.study_uid).await? {
                subject.study_uid = r.study_uid.clone();
                subject.patient_id = study.patient_id;
                subject.issuer = study.issuer;
                if !study.name.is_empty() {
                    subject.name = study.name;
                }
                subject.birth_date = study.birth_date;
                subject.sex = study.sex;
                subject.study_date = study.study_date;
                subject.study_time = study.study_time;
                subject.study_id = study.study_id;
                subject.study_description = study.description;
                subject.referring_physician = study.referring_physician;
            }
        }
        Ok(subject)
    }

    /// Writes the copy instance by instance on a blocking thread and feeds each to the
    /// ingest; how many instances, and whether any was new.
    #[allow(clippy::too_many_arguments)]
    async fn copy(
        &self,
        path: &Path,
        plan: &Plan,
        subject: &Subject,
        source: &Source,
        origin: Origin,
        referral: &ReferralRow,
        sha256: &str,
    ) -> Result<(usize, bool), ImportError> {
        let parts = segmented_parts(&plan.segments, plan.recording.rate);
        let template = copy::template(&plan.recording, subject, source);
        let (tx, mut rx) = mpsc::channel::<Piece>(8);
        let job = Job {
            path: path.to_owned(),
            data_offset: plan.data_offset,
            source: plan.source.clone(),
            recording: plan.recording.clone(),
            marks: plan.marks.clone(),
            parts: parts.clone(),
            template,
            uids: parts
                .iter()
                .map(|p| copy::uid(&["holter", &referral.id, sha256, &p.index.to_string()]))
                .collect(),
        };
        let producer = tokio::task::spawn_blocking(move || job.run(&tx));
        let mut receiving = None;
        let mut new_objects = false;
        let mut done = 0;
        let outcome: Result<(), ImportError> = async {
            while let Some(piece) = rx.recv().await {
                match piece {
                    Piece::Begin => {
                        receiving = Some(
                            self.ingest
                                .begin_part10(origin.clone(), Some(subject.study_uid.clone())),
                        );
                    }
                    Piece::Bytes(bytes) => {
                        if let Some(r) = receiving.as_mut() {
                            r.write(&bytes).await;
                        }
                    }
                    Piece::End => {
                        let r = receiving.take().ok_or_else(|| {
                            ImportError::Internal("an instance without a start".into())
                        })?;
                        let stored = r.finish().await?;
                        new_objects |=
                            !matches!(stored.recorded, crate::index::Recorded::Duplicate);
                        done += 1;
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Some(r) = receiving.take() {
            r.abort().await;
        }
        drop(rx);
        let produced = producer
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?;
        outcome?;
        produced?;
        if done != parts.len() {
            return Err(ImportError::Internal(format!(
                "{done} of {} instances were made",
                parts.len()
            )));
        }
        Ok((done, new_objects))
    }
}

/// Where uploads wait while they are imported.
pub fn spool_dir(config: &Config) -> PathBuf {
    config.data_path("tmp/holter")
}

/// Removes uploads an earlier run left in the spool (nothing is in flight at start-up).
pub fn clear_spool(config: &Config) -> usize {
    let Ok(entries) = std::fs::read_dir(spool_dir(config)) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}
