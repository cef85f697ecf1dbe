//! The index rebuilt from the object store alone, for when the index is lost and no backup of
//! it is at hand: every DICOM object is read again and indexed as received from the clinic its
//! key names, at the time the store says it was written. Referral documents, HL7 orders,
//! report contents and answers stay in the store and are counted, not indexed: what links them
//! to studies and cases lives in the index only, and comes back with `restore`.

use futures::stream::{self, StreamExt};

use super::BackupError;
use crate::archive::{keys, Archive};
use crate::index::{now_micros, rfc3339, Index, Recorded};
use crate::ingest::Ingest;

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
    /// Objects that could not be placed, and why.
    pub unplaced: Vec<Unplaced>,
    /// Other objects in the store, by prefix, kept but not indexed.
    pub not_indexed: std::collections::BTreeMap<String, u64>,
}

/// Rebuilds the index of DICOM objects from `store` into an index that holds none.
pub async fn rebuild_index(
    index: &Index,
    store: &Archive,
    ingest: &Ingest,
    own_ae: &str,
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
    let mut dicom = Vec::new();
    for (key, _, modified) in store.list_dated("").await? {
        let prefix = key.split('/').next().unwrap_or("").to_owned();
        if prefix == keys::DICOM_PREFIX {
            dicom.push((key, modified));
        } else if prefix != keys::STAGING_PREFIX {
            *report.not_indexed.entry(prefix).or_default() += 1;
        }
    }
    // In time order, as they arrived: each patient record ends as its newest object says.
    dicom.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    report.dicom_objects = dicom.len() as u64;
    let mut done = stream::iter(dicom)
        .map(|(key, modified)| async move {
            let outcome = ingest.reindex(&key, modified, own_ae).await;
            (key, outcome)
        })
        .buffered(READERS);
    while let Some((key, outcome)) = done.next().await {
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
    report.finished_at = rfc3339(now_micros());
    Ok(report)
}
