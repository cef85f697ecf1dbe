//! Fixity: proof that what the archive holds is what it received. Every stored object the
//! index names is read back from the store and its SHA-256 compared with the one recorded when
//! it arrived; an object that no longer matches, or is gone, is named with its key and study.
//! Nothing is repaired here: a failure stays a failure until someone deals with it.

use futures::stream::{self, StreamExt};

use crate::archive::{Archive, ObjectKey};
use crate::index::{now_micros, FixityCheck, FixityScope, Index, IndexError, StoredObject};

mod orphans;
mod report;
mod worker;
pub use orphans::{OrphanError, Orphans};
pub use report::{PeriodReport, ReportError};
pub use worker::FixityWorker;

/// Objects read at once: enough to keep a network store busy, few enough for a small machine.
const READERS: usize = 4;
/// DICOM objects listed from the index at a time.
const BATCH: i64 = 2_000;
/// Outcomes kept in one index transaction: one commit per object would cost more than the
/// reading on a fast disk.
const RECORD_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum FixityError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("no study {0} in the index")]
    NoSuchStudy(String),
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
}

/// What one check found wrong with one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub kind: &'static str,
    pub key: String,
    pub study_uid: String,
    /// altered, missing or unreadable.
    pub problem: &'static str,
    pub expected_sha256: String,
    /// What reading it back gave ('' when nothing could be read).
    pub found_sha256: String,
    /// The store's words, for an unreadable object.
    pub detail: String,
}

/// What a run checked and found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// What was asked for: all, a study, or since a date.
    pub scope: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub objects: u64,
    pub bytes: u64,
    pub failures: Vec<Failure>,
    /// Objects in the store that no index row names (an index commit that failed after the
    /// object became durable, say), when the whole archive was checked. Reported, never
    /// deleted: an administrator decides what they are.
    pub unindexed: Vec<String>,
    /// Report objects no signed report version names (a node stopped in the middle of a
    /// signature), when the whole archive was checked.
    pub orphan_reports: Vec<crate::index::OrphanReport>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What reading one object back gave.
enum Read {
    Whole { sha256: String, bytes: u64 },
    Missing,
    Unreadable(String),
}

async fn read_back(archive: &Archive, key: &str) -> Read {
    match archive.digest(&ObjectKey::from(key)).await {
        Ok((sha256, bytes)) => Read::Whole { sha256, bytes },
        Err(e) if e.is_not_found() => Read::Missing,
        Err(e) => Read::Unreadable(e.to_string()),
    }
}

#[derive(Clone)]
pub struct Fixity {
    index: Index,
    archive: Archive,
    /// This service's AE title, the source of the report objects it makes.
    source: String,
}

impl Fixity {
    pub fn new(index: Index, archive: Archive) -> Fixity {
        Fixity {
            index,
            archive,
            source: String::new(),
        }
    }

    /// Also names report objects no signed version names, made under this AE title.
    pub fn with_source(mut self, ae_title: &str) -> Fixity {
        self.source = ae_title.to_owned();
        self
    }

    /// Reads back every object in `scope`, records each outcome in the index and answers
    /// what was checked and what failed. Only an index that cannot be read stops a run: a
    /// store failing on one object is that object's failure, and the run goes on.
    pub async fn verify(&self, scope: &FixityScope) -> Result<Report, FixityError> {
        if let Some(study) = &scope.study_uid {
            if !self.index.has_study(study).await? {
                return Err(FixityError::NoSuchStudy(study.clone()));
            }
        }
        let mut report = Report {
            scope: describe(scope),
            started_at: now_micros(),
            ..Report::default()
        };
        let whole = scope.study_uid.is_none() && scope.since.is_none();
        let mut named = std::collections::HashSet::new();
        let documents = self.index.document_objects(scope).await?;
        self.check_all(&documents, &mut report).await?;
        if whole {
            named.extend(documents.iter().map(|o| o.key.clone()));
        }
        let mut after = String::new();
        loop {
            let batch = self.index.dicom_objects_after(&after, scope, BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.key.clone();
            self.check_all(&batch, &mut report).await?;
            if whole {
                named.extend(batch.iter().map(|o| o.key.clone()));
            }
        }
        if whole {
            report.unindexed = self.unindexed(&named).await?;
            if !self.source.is_empty() {
                report.orphan_reports = orphans::orphan_reports(&self.index, &self.source).await?;
            }
        }
        report.finished_at = now_micros();
        Ok(report)
    }

    /// Objects in the store the index does not name, uploads in flight, the audit chain's
    /// signed heads (which the chain's check reads) and deletion records aside.
    async fn unindexed(
        &self,
        named: &std::collections::HashSet<String>,
    ) -> Result<Vec<String>, FixityError> {
        let listed = self.archive.list("").await?;
        // Objects whose deletion was approved are the tombstones' business, not orphans.
        let removing: std::collections::HashSet<String> =
            self.index.awaiting_removal().await?.into_iter().collect();
        let mut out: Vec<String> = listed
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| {
                !named.contains(key)
                    && !removing.contains(key)
                    && !key.starts_with(&format!("{}/", crate::archive::keys::STAGING_PREFIX))
                    && !key.starts_with(&format!("{}/", crate::archive::keys::AUDIT_HEADS_PREFIX))
                    && !key.starts_with(&format!("{}/", crate::archive::keys::TOMBSTONES_PREFIX))
                    && !key.starts_with(&format!("{}/", crate::archive::keys::QUARANTINE_PREFIX))
            })
            .collect();
        out.sort();
        for key in &out {
            tracing::warn!(alert = "unindexed_object", key = %key, "stored object that no index row names");
        }
        Ok(out)
    }

    async fn check_all(
        &self,
        objects: &[StoredObject],
        report: &mut Report,
    ) -> Result<(), FixityError> {
        for chunk in objects.chunks(RECORD_BATCH) {
            let checks = self.check(chunk).await;
            for c in &checks {
                report.objects += 1;
                report.bytes += c.bytes;
                if c.outcome != "ok" {
                    report.failures.push(Failure {
                        kind: c.object.kind,
                        key: c.object.key.clone(),
                        study_uid: c.object.study_uid.clone(),
                        problem: c.outcome,
                        expected_sha256: c.object.sha256.clone(),
                        found_sha256: c.found.clone(),
                        detail: c.detail.clone(),
                    });
                }
            }
            self.index.record_fixity_batch(&checks).await?;
        }
        Ok(())
    }

    /// Reads `objects` back, a few at once, and answers each one's outcome; every failure is
    /// an alert line.
    pub async fn check(&self, objects: &[StoredObject]) -> Vec<FixityCheck> {
        // Owned objects and store handles: the reads then live in a task any thread can run.
        let mut reads = stream::iter(objects.iter().cloned())
            .map(|object| {
                let archive = self.archive.clone();
                async move {
                    let read = read_back(&archive, &object.key).await;
                    (object, read)
                }
            })
            .buffered(READERS);
        let mut checks = Vec::with_capacity(objects.len());
        while let Some((object, read)) = reads.next().await {
            let (found, outcome, bytes, detail) = match read {
                Read::Whole { sha256, bytes } => {
                    let outcome = if sha256.eq_ignore_ascii_case(&object.sha256) {
                        "ok"
                    } else {
                        "altered"
                    };
                    (sha256, outcome, bytes, String::new())
                }
                Read::Missing => (String::new(), "missing", 0, String::new()),
                Read::Unreadable(why) => (String::new(), "unreadable", 0, why),
            };
            if outcome != "ok" {
                tracing::error!(
                    alert = "fixity",
                    key = %object.key,
                    study = %object.study_uid,
                    problem = outcome,
                    expected = %object.sha256,
                    found = %found,
                    "stored object failed its fixity check"
                );
            }
            checks.push(FixityCheck {
                object,
                found,
                outcome,
                bytes,
                detail,
                checked_at: now_micros(),
            });
        }
        checks
    }
}

fn describe(scope: &FixityScope) -> String {
    let mut parts = Vec::new();
    if let Some(study) = &scope.study_uid {
        parts.push(format!("study {study}"));
    }
    if let Some(since) = scope.since {
        let at = jiff::Timestamp::from_microsecond(since)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| since.to_string());
        parts.push(format!("received since {at}"));
    }
    if parts.is_empty() {
        "all".to_owned()
    } else {
        parts.join(", ")
    }
}
