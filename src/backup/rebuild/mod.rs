//! The index rebuilt from the object store alone, for when the index is lost and no backup of
//! it is at hand. The keys and the stored bytes carry what the index needs:
//!
//! 1. every DICOM object (`dicom/{clinic}/…`) is read again and indexed as received from the
//!    clinic its key names, at the time the store says it was written, oldest first;
//! 2. every referral document (`cda/`) and HL7 v2 order (`hl7/`) is filed again, in the order
//!    they arrived, for the clinic it names, and linked to its study as on arrival;
//! 3. every signed report version (`reports/`) is filed again with its case, its answer
//!    document (`answers/`) and its report object.
//!
//! What lives in the index only (drafts, claims, deliveries, the audit trail, link decisions
//! an administrator made) cannot come back this way; `restore` from a backup brings it.
//! Anything that cannot be placed is named with the reason, and nothing in the store changes.

mod workflow;

use futures::stream::{self, StreamExt};

use super::BackupError;
use crate::archive::{keys, Archive};
use crate::config::Config;
use crate::index::{now_micros, rfc3339, Index, Recorded};
use crate::ingest::{Ingest, IngestError};
use crate::referral::Referrals;

/// Objects read at once.
const READERS: usize = 4;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Unplaced {
    pub key: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RebuildReport {
    pub started_at: String,
    pub finished_at: String,
    /// DICOM objects in the store, and those indexed.
    pub dicom_objects: u64,
    pub indexed: u64,
    /// Referral documents and HL7 orders in the store; referrals filed from them (an HL7
    /// order's later document counts in `documents` but files no second referral), and how
    /// many of those are linked to a study.
    pub referral_objects: u64,
    pub referrals: u64,
    pub linked: u64,
    /// Signed report versions in the store, those filed again, and the cases they make.
    pub report_objects: u64,
    pub reports: u64,
    pub cases: u64,
    /// Linked referrals without a signed report: the routing makes their cases again when the
    /// service starts, as it would for a study just received.
    pub to_route: u64,
    /// Objects that could not be placed, and why.
    pub unplaced: Vec<Unplaced>,
    /// Other objects in the store, by prefix, kept but not indexed.
    pub not_indexed: std::collections::BTreeMap<String, u64>,
}

/// The store's keys by what they hold, each with the time it was written.
#[derive(Default)]
struct Listing {
    dicom: Vec<(String, i64)>,
    referrals: Vec<(String, i64)>,
    reports: Vec<(String, i64)>,
    answers: Vec<(String, i64)>,
}

/// Rebuilds the index from `store` into an index that holds no archive.
pub async fn rebuild_index(
    index: &Index,
    store: &Archive,
    ingest: &Ingest,
    referrals: &Referrals,
    config: &Config,
) -> Result<RebuildReport, BackupError> {
    let started = now_micros();
    let held = index.archive_tally(0, i64::MAX).await?;
    let objects: i64 = held.iter().map(|t| t.objects).sum();
    if objects > 0 {
        return Err(BackupError::IndexNotEmpty(objects));
    }
    let mut report = RebuildReport {
        started_at: rfc3339(started),
        ..RebuildReport::default()
    };
    let mut listing = Listing::default();
    for (key, _, modified) in store.list_dated("").await? {
        let prefix = key.split('/').next().unwrap_or("").to_owned();
        let entry = (key, modified);
        match prefix.as_str() {
            keys::DICOM_PREFIX => listing.dicom.push(entry),
            keys::CDA_PREFIX | keys::HL7_PREFIX => listing.referrals.push(entry),
            keys::REPORTS_PREFIX => listing.reports.push(entry),
            keys::ANSWERS_PREFIX => listing.answers.push(entry),
            keys::STAGING_PREFIX => {}
            _ => *report.not_indexed.entry(prefix).or_default() += 1,
        }
    }
    // In time order, as they arrived: each patient record ends as its newest object says.
    listing
        .dicom
        .sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    // HL7 orders first: an order is kept only when no referral had its order number, so each
    // came before any document for it, and a store's times may be too coarse to tell.
    listing
        .referrals
        .sort_by_key(|(key, at)| (!key.starts_with(keys::HL7_PREFIX), *at, key.clone()));
    dicom(
        &mut report,
        std::mem::take(&mut listing.dicom),
        ingest,
        config,
    )
    .await;
    workflow::rebuild(&mut report, listing, index, store, referrals, config).await?;
    report.finished_at = rfc3339(now_micros());
    Ok(report)
}

async fn dicom(
    report: &mut RebuildReport,
    dicom: Vec<(String, i64)>,
    ingest: &Ingest,
    config: &Config,
) {
    report.dicom_objects = dicom.len() as u64;
    let own_ae = config.dicom.ae_title.as_str();
    // Read several at once, indexed one by one in the order they arrived. Report objects (made
    // here, in a study that was there before them) go last: a store's times can be too coarse
    // to put them after the clinic's first object of the study, which makes the study's row.
    let mut read = stream::iter(dicom)
        .map(|(key, modified)| async move {
            let record = ingest.reread(&key, modified, own_ae).await;
            (key, record)
        })
        .buffered(READERS);
    let mut made_here = Vec::new();
    while let Some((key, record)) = read.next().await {
        match record {
            Ok(record) if record.made_here => made_here.push((key, record)),
            Ok(record) => {
                let outcome = ingest.record_again(&record).await;
                placed(report, key, outcome);
            }
            Err(e) => placed(report, key, Err(e)),
        }
    }
    for (key, record) in made_here {
        let outcome = ingest.record_again(&record).await;
        placed(report, key, outcome);
    }
}

fn placed(report: &mut RebuildReport, key: String, outcome: Result<Recorded, IngestError>) {
    match outcome {
        Ok(Recorded::Refused(c)) => report.unplaced.push(Unplaced {
            key,
            why: format!("another clinic's data: {c:?}"),
        }),
        Ok(_) => report.indexed += 1,
        Err(e) => report.unplaced.push(Unplaced {
            key,
            why: e.to_string(),
        }),
    }
}
