//! Leftovers `verify --all` names, and an administrator's decision on each: an object in the
//! store that no index row names (an index commit failed after the object became durable), or
//! a report object that no signed report version names (a node stopped in the middle of a
//! signature). Adopting indexes the first kind (a DICOM object, read again as received) and
//! keeps the second as its study's instance; quarantining moves either under `quarantine/`,
//! withdrawing an index row it had. Nothing is deleted, and every decision is audited.

use crate::access::{Action, Policy, Principal};
use crate::archive::{keys, Archive, ArchiveError, ObjectKey};
use crate::audit::AuditTrail;
use crate::catalog::event;
use crate::fault::Fault;
use crate::index::{now_micros, Index, IndexError, OrphanDecision, OrphanReport};
use crate::ingest::{Ingest, IngestError};
use crate::reports::document::ENCAPSULATED_PDF;

/// How long a report object may wait for its signature to commit before it counts as left over.
const SIGNING_GRACE_MICROS: i64 = 15 * 60 * 1_000_000;

/// Report objects made here that no signed version names, past the signing grace.
pub async fn orphan_reports(index: &Index, own_ae: &str) -> Result<Vec<OrphanReport>, IndexError> {
    index
        .orphan_reports(
            own_ae,
            ENCAPSULATED_PDF,
            now_micros() - SIGNING_GRACE_MICROS,
        )
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum OrphanError {
    #[error(transparent)]
    Denied(#[from] crate::access::Denied),
    #[error("`{0}` is named by the index and is no leftover: verify --all lists the leftovers")]
    NotAnOrphan(String),
    #[error("no object `{0}` in the store")]
    NotInStore(String),
    #[error("`{key}` cannot be adopted: {why}; quarantine it instead")]
    NotPlaceable { key: String, why: String },
    #[error("reason: must be given")]
    NoReason,
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl OrphanError {
    pub fn fault(&self) -> Fault {
        match self {
            OrphanError::Denied(_) => Fault::Forbidden,
            OrphanError::NotAnOrphan(_) => Fault::Conflict,
            OrphanError::NotInStore(_) => Fault::NotFound,
            OrphanError::NotPlaceable { .. } | OrphanError::NoReason => Fault::BadInput,
            OrphanError::Index(_) | OrphanError::Archive(_) => Fault::Unavailable,
        }
    }
}

/// What a key turned out to be.
enum Leftover {
    Unindexed { sha256: String },
    ReportObject(OrphanReport),
}

pub struct Orphans {
    index: Index,
    archive: Archive,
    ingest: Ingest,
    policy: Policy,
    audit: AuditTrail,
    own_ae: String,
}

impl Orphans {
    pub fn new(ingest: Ingest, policy: Policy, audit: AuditTrail) -> Orphans {
        let own_ae = policy.config().dicom.ae_title.clone();
        Orphans {
            index: ingest.index().clone(),
            archive: ingest.archive().clone(),
            ingest,
            policy,
            audit,
            own_ae,
        }
    }

    async fn leftover(&self, key: &str) -> Result<Leftover, OrphanError> {
        if let Some(report) = orphan_reports(&self.index, &self.own_ae)
            .await?
            .into_iter()
            .find(|r| r.key == key)
        {
            return Ok(Leftover::ReportObject(report));
        }
        if self.index.names_object(key).await? {
            return Err(OrphanError::NotAnOrphan(key.to_owned()));
        }
        match self.archive.digest(&ObjectKey::from(key)).await {
            Ok((sha256, _)) => Ok(Leftover::Unindexed { sha256 }),
            Err(e) if e.is_not_found() => Err(OrphanError::NotInStore(key.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Indexes an unindexed DICOM object, or keeps a report object as its study's instance.
    pub async fn adopt(
        &self,
        who: &Principal,
        key: &str,
        reason: &str,
    ) -> Result<OrphanDecision, OrphanError> {
        self.decide(who, key, reason, "adopt").await
    }

    /// Moves a leftover under `quarantine/`, withdrawing its index row if it had one.
    pub async fn quarantine(
        &self,
        who: &Principal,
        key: &str,
        reason: &str,
    ) -> Result<OrphanDecision, OrphanError> {
        self.decide(who, key, reason, "quarantine").await
    }

    async fn decide(
        &self,
        who: &Principal,
        key: &str,
        reason: &str,
        decision: &str,
    ) -> Result<OrphanDecision, OrphanError> {
        let mut audited = event(who, &format!("orphan_{decision}"));
        audited.detail = format!("{key}: {}", reason.trim());
        if let Err(denied) = self.policy.permit(who, Action::Administer) {
            audited.outcome = format!("denied: {denied}");
            self.audit.record(audited).await;
            return Err(denied.into());
        }
        let outcome = self.carry_out(who, key, reason, decision).await;
        audited.outcome = match &outcome {
            Ok(d) if d.quarantine_key.is_empty() => "done".into(),
            Ok(d) => format!("done: moved to {}", d.quarantine_key),
            Err(e) => format!("refused: {e}"),
        };
        self.audit.record(audited).await;
        outcome
    }

    async fn carry_out(
        &self,
        who: &Principal,
        key: &str,
        reason: &str,
        decision: &str,
    ) -> Result<OrphanDecision, OrphanError> {
        if reason.trim().is_empty() {
            return Err(OrphanError::NoReason);
        }
        let leftover = self.leftover(key).await?;
        let (kind, sha256) = match &leftover {
            Leftover::Unindexed { sha256 } => ("unindexed", sha256.clone()),
            Leftover::ReportObject(r) => ("report_object", r.sha256.clone()),
        };
        let mut quarantine_key = String::new();
        match (decision, &leftover) {
            ("adopt", Leftover::Unindexed { .. }) => {
                if !key.starts_with(&format!("{}/", keys::DICOM_PREFIX)) {
                    return Err(OrphanError::NotPlaceable {
                        key: key.to_owned(),
                        why: "only DICOM objects are adopted one by one (referral documents \
                              and reports come back with `restore` or `rebuild-index`)"
                            .into(),
                    });
                }
                // Received when the store made it durable, as `rebuild-index` takes it.
                let (_, received_at) = self.archive.head(&ObjectKey::from(key)).await?;
                self.ingest
                    .reindex(key, received_at, &self.own_ae)
                    .await
                    .map_err(|e: IngestError| OrphanError::NotPlaceable {
                        key: key.to_owned(),
                        why: e.to_string(),
                    })?;
            }
            ("adopt", Leftover::ReportObject(_)) => {}
            (_, Leftover::Unindexed { .. }) => {
                quarantine_key = self.archive.quarantine(&ObjectKey::from(key)).await?;
            }
            (_, Leftover::ReportObject(_)) => {
                quarantine_key = self.archive.quarantine(&ObjectKey::from(key)).await?;
                self.index.withdraw_instance(key).await?;
            }
        }
        let decided = OrphanDecision {
            object_key: key.to_owned(),
            kind: kind.into(),
            decision: decision.into(),
            quarantine_key,
            sha256,
            reason: reason.trim().to_owned(),
            decided_by: who.name.clone(),
            decided_at: now_micros(),
        };
        self.index.record_orphan_decision(&decided).await?;
        Ok(decided)
    }
}
