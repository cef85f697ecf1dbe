//! Retention (order point 14: the consulting institution keeps the data 15 years).
//!
//! Every stored thing is kept until the day it was received (in Vilnius) plus the years
//! configured for its kind; a study is kept until the latest of its objects' dates and of any
//! extension an administrator made. Dates only ever move later: the longest figure ever
//! configured per kind stays in force, and an extension earlier than the date in force is
//! refused. Legal holds block deletion whatever the date. Deletion is of a whole study, after
//! its date, by two people (an administrator proposes, an auditor approves); it leaves
//! tombstones kept forever, in the index and as a record in the store. Every action and every
//! refusal goes to the audit trail.

mod dates;
mod deletion;
mod holds;

pub use dates::{retain_until, today};

use crate::access::{Action, Denied, Policy, Principal};
use crate::archive::{keys, Archive, ArchiveError};
use crate::audit::AuditTrail;
use crate::catalog::event;
use crate::config::RetentionConfig;
use crate::fault::Fault;
use crate::index::{
    now_micros, AuditEvent, DeletionRequestRow, ExtensionRow, FixityScope, HoldRow, Index,
    IndexError, NoticeRow, TombstoneRow,
};

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("no study {0} in the archive")]
    NoSuchStudy(String),
    #[error("no legal hold {0}")]
    NoSuchHold(String),
    #[error("no deletion request {0}")]
    NoSuchRequest(String),
    #[error("{field}: {why}")]
    Invalid { field: &'static str, why: String },
    #[error(
        "study {study} is kept until {until} (its retention date); it cannot be deleted before \
         {first_day}"
    )]
    Retained {
        study: String,
        until: String,
        first_day: String,
    },
    #[error(
        "study {study} is under {holds} legal hold(s); nothing of it is deleted while one stands"
    )]
    Held { study: String, holds: usize },
    #[error(
        "study {study} is kept until {until}; a retention date is never shortened, so keeping it \
         only until {asked} is refused"
    )]
    Shortening {
        study: String,
        until: String,
        asked: String,
    },
    #[error("a deletion of study {0} is already proposed")]
    AlreadyProposed(String),
    #[error("deletion request {id} is {state}, not waiting for a decision")]
    Decided { id: String, state: String },
    #[error("legal hold {0} is already released")]
    AlreadyReleased(String),
    #[error("the deletion was proposed by {0}; another person must decide on it")]
    SamePerson(String),
    #[error(
        "study {0} changed since the deletion was proposed (objects arrived); propose it again"
    )]
    Changed(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl RetentionError {
    pub fn fault(&self) -> Fault {
        match self {
            RetentionError::Denied(_) => Fault::Forbidden,
            RetentionError::NoSuchStudy(_)
            | RetentionError::NoSuchHold(_)
            | RetentionError::NoSuchRequest(_) => Fault::NotFound,
            RetentionError::Invalid { .. } => Fault::BadInput,
            RetentionError::Retained { .. }
            | RetentionError::Held { .. }
            | RetentionError::Shortening { .. }
            | RetentionError::AlreadyProposed(_)
            | RetentionError::Decided { .. }
            | RetentionError::AlreadyReleased(_)
            | RetentionError::SamePerson(_)
            | RetentionError::Changed(_) => Fault::Conflict,
            RetentionError::Index(_) | RetentionError::Archive(_) => Fault::Unavailable,
        }
    }
}

/// The years in force per kind: the configured figure, or a longer one configured before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Years {
    pub dicom: u32,
    pub referral: u32,
    pub report: u32,
}

impl Years {
    /// Years for a stored object's kind (dicom, referral, hl7, report, answer, report_object).
    pub fn for_kind(&self, kind: &str) -> u32 {
        match kind {
            "referral" | "hl7" => self.referral,
            "report" | "answer" | "report_object" => self.report,
            _ => self.dicom,
        }
    }

    /// For the store's Object Lock: an object's key to the instant its lock ends, the start
    /// (UTC) of the day after its retention date counted from today. Audit heads and deletion
    /// records, kept forever, take the longest figure.
    pub fn lock_until(&self) -> crate::archive::RetainUntil {
        let years = *self;
        std::sync::Arc::new(move |key: &str| {
            let kind = match key.split('/').next().unwrap_or("") {
                keys::CDA_PREFIX => "referral",
                keys::HL7_PREFIX => "hl7",
                keys::REPORTS_PREFIX => "report",
                keys::ANSWERS_PREFIX => "answer",
                keys::DICOM_PREFIX | keys::HOLTER_PREFIX => "dicom",
                _ => "",
            };
            let n = match kind {
                // Report objects live under dicom/ too: the longer of the two covers them.
                "dicom" => years.dicom.max(years.report),
                "" => years.dicom.max(years.report).max(years.referral),
                kind => years.for_kind(kind),
            };
            let last = retain_until(now_micros(), n);
            format!("{}T00:00:00Z", last.tomorrow().unwrap_or(last))
        })
    }

    /// Records the configured figures as the floor and answers the figures in force; a figure
    /// lowered in the configuration is kept at its earlier value, with a warning.
    pub async fn settle(index: &Index, config: &RetentionConfig) -> Result<Years, IndexError> {
        let now = now_micros();
        let mut settled = [0u32; 3];
        for (slot, (kind, years)) in settled.iter_mut().zip([
            ("dicom", config.dicom_years),
            ("referral", config.referral_years),
            ("report", config.report_years),
        ]) {
            let in_force = index
                .raise_retention_policy(kind, i64::from(years), now)
                .await?;
            let in_force = u32::try_from(in_force).unwrap_or(u32::MAX);
            if in_force > years {
                tracing::warn!(
                    kind,
                    configured = years,
                    in_force,
                    "retention.{kind}_years is lower than a figure configured before; the longer \
                     one stays in force, since a retention date is never shortened"
                );
            }
            *slot = in_force;
        }
        Ok(Years {
            dicom: settled[0],
            referral: settled[1],
            report: settled[2],
        })
    }
}

/// Sets the store's own lock up where it has one, and says once at start-up what guards the
/// archive against early deletion.
pub async fn lock_archive(
    archive: Archive,
    config: &RetentionConfig,
    years: Years,
) -> Result<Archive, ArchiveError> {
    use crate::archive::LockSupport;
    match archive.lock_support().await? {
        LockSupport::Enabled if config.object_lock != "off" => {
            tracing::info!(
                mode = %config.object_lock,
                "the store has S3 Object Lock: every object is locked until its retention date"
            );
            Ok(archive.with_object_lock(config.object_lock == "compliance", years.lock_until()))
        }
        LockSupport::Enabled => {
            tracing::warn!(
                "the store offers S3 Object Lock but retention.object_lock is off: retention is \
                 enforced by telecardio alone"
            );
            Ok(archive)
        }
        LockSupport::NotEnabled => {
            tracing::warn!(
                "the S3 bucket has no Object Lock: retention is enforced by telecardio alone \
                 (a bucket created with Object Lock would refuse early deletion itself)"
            );
            Ok(archive)
        }
        LockSupport::NotS3 => {
            tracing::info!(
                "the store is a local directory, which has no object lock: retention is \
                 enforced by telecardio alone"
            );
            Ok(archive)
        }
    }
}

/// One stored object of a study, with its retention date.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectRetention {
    pub kind: String,
    pub key: String,
    pub sha256: String,
    pub received_at: i64,
    pub retain_until: String,
}

/// Everything retention knows of one study.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StudyRetention {
    pub study_uid: String,
    /// Kept to the end of this day (Vilnius).
    pub retain_until: String,
    /// The retention date has passed.
    pub expired: bool,
    /// Open legal holds.
    pub open_holds: usize,
    /// Expired and not held: an administrator may propose deleting it.
    pub deletable: bool,
    pub objects: Vec<ObjectRetention>,
    pub extensions: Vec<ExtensionRow>,
    pub holds: Vec<HoldRow>,
    pub deletion_requests: Vec<DeletionRequestRow>,
}

/// What an approved deletion did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deletion {
    pub request: DeletionRequestRow,
    pub tombstones: Vec<TombstoneRow>,
    /// Objects the store still holds (it refused or failed); the daily job tries again.
    pub left_in_store: Vec<String>,
}

#[derive(Clone)]
pub struct Retention {
    index: Index,
    archive: Archive,
    policy: Policy,
    audit: AuditTrail,
    years: Years,
    notice_days: u32,
}

impl Retention {
    pub fn new(
        index: Index,
        archive: Archive,
        policy: Policy,
        audit: AuditTrail,
        years: Years,
    ) -> Retention {
        let notice_days = policy.config().retention.notice_days;
        Retention {
            index,
            archive,
            policy,
            audit,
            years,
            notice_days,
        }
    }

    pub fn years(&self) -> Years {
        self.years
    }

    /// A study's retention: its objects with their dates, extensions, holds and requests.
    pub async fn study(
        &self,
        who: &Principal,
        study_uid: &str,
    ) -> Result<StudyRetention, RetentionError> {
        let event = self
            .permit(who, Action::ReadAudit, "retention_read", study_uid)
            .await?;
        match self.state_of(study_uid).await {
            Ok(state) => {
                self.done(event, String::new()).await;
                Ok(state)
            }
            Err(e) => Err(self.refused(event, e).await),
        }
    }

    async fn state_of(&self, study_uid: &str) -> Result<StudyRetention, RetentionError> {
        if !crate::archive::keys::is_valid_uid(study_uid) {
            return Err(RetentionError::Invalid {
                field: "study_uid",
                why: format!("`{study_uid}` is not a DICOM UID"),
            });
        }
        if !self.index.has_study(study_uid).await? {
            return Err(RetentionError::NoSuchStudy(study_uid.to_owned()));
        }
        let scope = FixityScope {
            study_uid: Some(study_uid.to_owned()),
            since: None,
        };
        let reports: std::collections::HashSet<String> = self
            .index
            .report_object_keys(study_uid)
            .await?
            .into_iter()
            .collect();
        let mut stored = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .index
                .dicom_objects_after(&after, &scope, 10_000)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.key.clone();
            stored.extend(page);
        }
        stored.extend(self.index.document_objects(&scope).await?);
        let objects: Vec<ObjectRetention> = stored
            .into_iter()
            .map(|o| {
                let kind = if o.kind == "dicom" && reports.contains(&o.key) {
                    "report_object"
                } else {
                    o.kind
                };
                ObjectRetention {
                    kind: kind.to_owned(),
                    retain_until: retain_until(o.received_at, self.years.for_kind(kind))
                        .to_string(),
                    key: o.key,
                    sha256: o.sha256,
                    received_at: o.received_at,
                }
            })
            .collect();
        let extensions = self.index.extensions(study_uid).await?;
        let holds = self.index.holds(Some(study_uid)).await?;
        let deletion_requests = self
            .index
            .deletion_requests("")
            .await?
            .into_iter()
            .filter(|r| r.study_uid == study_uid)
            .collect();
        let until = objects
            .iter()
            .map(|o| o.retain_until.clone())
            .chain(extensions.iter().map(|e| e.until_day.clone()))
            .max()
            .unwrap_or_default();
        let expired = !until.is_empty() && until < today().to_string();
        let open_holds = holds.iter().filter(|h| h.released_at.is_none()).count();
        Ok(StudyRetention {
            study_uid: study_uid.to_owned(),
            retain_until: until,
            expired,
            open_holds,
            deletable: expired && open_holds == 0,
            objects,
            extensions,
            holds,
            deletion_requests,
        })
    }

    /// The latest daily list of studies whose retention ends within the notice period.
    pub async fn notices(
        &self,
        who: &Principal,
    ) -> Result<Option<(String, Vec<NoticeRow>)>, RetentionError> {
        let event = self
            .permit(who, Action::ReadAudit, "retention_notices_read", "")
            .await?;
        let rows = self.index.latest_notices().await?;
        self.done(event, String::new()).await;
        Ok(rows)
    }

    /// [`Retention::expiring`] for an administrator or auditor, audited.
    pub async fn expiring_for(
        &self,
        who: &Principal,
        days: u32,
    ) -> Result<Vec<NoticeRow>, RetentionError> {
        let event = self
            .permit(who, Action::ReadAudit, "retention_expiring_read", "")
            .await?;
        let rows = self.expiring(days).await?;
        self.done(event, format!("within {days} days")).await;
        Ok(rows)
    }

    /// Studies whose retention ends within `days` of today (those already past included),
    /// earliest first.
    pub async fn expiring(&self, days: u32) -> Result<Vec<NoticeRow>, RetentionError> {
        let today = today();
        let horizon = today
            .checked_add(jiff::Span::new().days(i64::from(days)))
            .unwrap_or(jiff::civil::Date::MAX)
            .to_string();
        let mut studies: std::collections::BTreeMap<String, (String, i64)> = Default::default();
        for r in self.index.study_receipts().await? {
            let until = retain_until(r.latest, self.years.for_kind(&r.kind)).to_string();
            let entry = studies.entry(r.study_uid).or_default();
            entry.0 = entry.0.clone().max(until);
            entry.1 += r.objects;
        }
        for (study, day) in self.index.extension_days().await? {
            if let Some(entry) = studies.get_mut(&study) {
                entry.0 = entry.0.clone().max(day);
            }
        }
        let held: std::collections::HashMap<String, i64> =
            self.index.held_studies().await?.into_iter().collect();
        let day = today.to_string();
        let mut rows: Vec<NoticeRow> = studies
            .into_iter()
            .filter(|(_, (until, _))| *until <= horizon)
            .map(|(study_uid, (retain_until, objects))| NoticeRow {
                day: day.clone(),
                held: held.get(&study_uid).copied().unwrap_or(0),
                study_uid,
                retain_until,
                objects,
            })
            .collect();
        rows.sort_by(|a, b| (&a.retain_until, &a.study_uid).cmp(&(&b.retain_until, &b.study_uid)));
        Ok(rows)
    }

    /// The daily job: today's list of expiring studies, and any deletion left half done.
    pub async fn daily(&self) -> Result<usize, RetentionError> {
        let rows = self.expiring(self.notice_days).await?;
        self.index
            .record_notices(&today().to_string(), &rows)
            .await?;
        if !rows.is_empty() {
            tracing::info!(
                alert = "retention_expiring",
                studies = rows.len(),
                days = self.notice_days,
                "studies whose retention ends soon are listed for administrators"
            );
        }
        self.resume().await?;
        Ok(rows.len())
    }

    /// Runs [`Retention::daily`] at start and then every day, until the service stops.
    pub async fn run_daily(self, mut stopped: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.daily().await {
                tracing::warn!(error = %e, "the daily retention list could not be made");
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(86_400)) => {}
                _ = stopped.changed() => return,
            }
        }
    }

    async fn permit(
        &self,
        who: &Principal,
        action: Action,
        kind: &str,
        study_uid: &str,
    ) -> Result<AuditEvent, RetentionError> {
        let mut e = event(who, kind);
        e.study_uid = study_uid.to_owned();
        if let Err(denied) = self.policy.permit(who, action) {
            e.outcome = format!("denied: {denied}");
            self.audit.record(e).await;
            return Err(denied.into());
        }
        Ok(e)
    }

    async fn done(&self, mut e: AuditEvent, detail: String) {
        e.outcome = "done".into();
        e.detail = detail;
        self.audit.record(e).await;
    }

    async fn refused(&self, mut e: AuditEvent, error: RetentionError) -> RetentionError {
        e.outcome = format!("refused: {error}");
        self.audit.record(e).await;
        error
    }
}

pub(crate) fn required(field: &'static str, text: &str) -> Result<String, RetentionError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RetentionError::Invalid {
            field,
            why: "must be given".into(),
        });
    }
    if text.chars().count() > 2000 {
        return Err(RetentionError::Invalid {
            field,
            why: "must be at most 2000 characters".into(),
        });
    }
    Ok(text.to_owned())
}
