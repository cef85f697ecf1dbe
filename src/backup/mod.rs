//! Backup and restore (point 10.6 of the order): a second object store that holds a copy of
//! every stored object, under the same keys, and snapshots of the index beside them.
//!
//! ```text
//! <the store's own keys: dicom/…, cda/…, hl7/…, reports/…, answers/…, audit/heads/…>
//! telecardio-backup/archive-id                 which archive this is a backup of
//! telecardio-backup/index/{stamp}.jsonl.gz     an index snapshot (see snapshot.rs)
//! telecardio-backup/snapshots/{stamp}.json     a completed backup: its snapshot, counts, hash
//! ```
//! Everything is written create-only, so a backup never alters what an earlier one wrote, and
//! a copy is kept only when its bytes hash to what the index recorded on arrival. A backup
//! is complete once its `snapshots/` record exists; that record is written last.
//! The index is read first, in one consistent snapshot: every object it names was durable in
//! the store before its row committed, so it is there to be copied even while the service
//! goes on receiving.

mod rebuild;
mod snapshot;

use std::collections::{HashMap, HashSet};

use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};

use crate::archive::{keys, Archive, ArchiveError, ObjectKey};
use crate::index::{now_micros, rfc3339, Index, IndexError};
pub use rebuild::{rebuild_index, RebuildReport, Unplaced};
pub use snapshot::{SnapshotHeader, SnapshotRecord};

pub const BACKUP_PREFIX: &str = "telecardio-backup";
const ARCHIVE_ID_KEY: &str = "telecardio-backup/archive-id";
const SNAPSHOTS_PREFIX: &str = "telecardio-backup/snapshots";
const INDEX_PREFIX: &str = "telecardio-backup/index";
/// Objects copied at once.
const COPIERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("the target already holds a backup of another archive ({0}); use a target of its own")]
    OtherArchive(String),
    #[error("the target holds {0} objects but no telecardio backup; use an empty target")]
    NotABackup(usize),
    #[error("the target is the archive's own store, or lies inside it")]
    SameStore,
    #[error("{0} holds no completed backup")]
    NoBackup(String),
    #[error("no backup snapshot `{0}` in the source")]
    NoSuchSnapshot(String),
    #[error(
        "the index already holds an archive ({0} rows); restore builds a new one on an empty index"
    )]
    IndexNotEmpty(i64),
    #[error("the store holds {0} objects that are not in the backup (first: {1}); restore into an empty store")]
    StoreNotEmpty(usize, String),
    #[error("the backup snapshot is of index schema {found}, this telecardio has {ours}")]
    Schema { found: i64, ours: i64 },
    #[error("the backup is damaged: {0}")]
    Damaged(String),
}

/// An object that could not be copied as it should.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct CopyFailure {
    pub key: String,
    /// missing (named by the index, absent from the source), altered (its bytes no longer
    /// give the recorded hash: not copied), unreadable, or conflict (the target holds other
    /// bytes under the key).
    pub problem: &'static str,
    pub expected_sha256: String,
    pub found_sha256: String,
    pub detail: String,
}

/// What a backup or a restore did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyReport {
    pub archive_id: String,
    pub snapshot: String,
    pub started_at: String,
    pub finished_at: String,
    /// Objects in the source (the backup's own records aside).
    pub objects: u64,
    /// Objects copied this time, and their bytes.
    pub copied: u64,
    pub copied_bytes: u64,
    /// Objects the target already held.
    pub already_there: u64,
    /// Index rows in the snapshot.
    pub index_rows: u64,
    pub failures: Vec<CopyFailure>,
}

impl CopyReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The hash a key's object must have: DICOM objects as the index recorded them, documents
/// as their content-addressed names say; `None` for objects named otherwise (signed audit
/// heads, which carry their own signature).
fn expected_hash(key: &str, dicom: &HashMap<String, String>) -> Option<String> {
    if let Some(sha) = dicom.get(key) {
        return Some(sha.to_ascii_lowercase());
    }
    let content_addressed = [
        keys::CDA_PREFIX,
        keys::HL7_PREFIX,
        keys::HOLTER_PREFIX,
        keys::REPORTS_PREFIX,
        keys::ANSWERS_PREFIX,
        keys::INDICATORS_PREFIX,
    ]
    .iter()
    .any(|p| key.starts_with(&format!("{p}/")));
    if !content_addressed {
        return None;
    }
    let name = key.rsplit('/').next().unwrap_or("");
    let stem = name.split('.').next().unwrap_or("");
    (stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| stem.to_ascii_lowercase())
}

/// Keys of the source worth copying: everything but uploads in flight and, in a backup, the
/// backup's own records.
fn copied_keys(listing: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = listing
        .into_iter()
        .filter(|k| {
            !k.starts_with(&format!("{}/", keys::STAGING_PREFIX))
                && !k.starts_with(&format!("{BACKUP_PREFIX}/"))
        })
        .collect();
    out.sort();
    out
}

enum Copied {
    Done(u64),
    Failed(CopyFailure),
}

/// Copies one object, keeping the copy only when its bytes give `expected`.
async fn copy_one(from: &Archive, to: &Archive, key: &str, expected: Option<&str>) -> Copied {
    let failure = |problem, found: String, detail: String| {
        Copied::Failed(CopyFailure {
            key: key.to_owned(),
            problem,
            expected_sha256: expected.unwrap_or("").to_owned(),
            found_sha256: found,
            detail,
        })
    };
    let path = ObjectKey::from(key);
    let mut stream = match from.stream(&path).await {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return failure("missing", String::new(), String::new()),
        Err(e) => return failure("unreadable", String::new(), e.to_string()),
    };
    let mut writer = to.writer();
    let mut hash = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                writer.abort().await;
                return failure("unreadable", String::new(), e.to_string());
            }
        };
        hash.update(&chunk);
        if let Err(e) = writer.write(&chunk).await {
            writer.abort().await;
            return failure(
                "unreadable",
                String::new(),
                format!("writing the copy: {e}"),
            );
        }
    }
    let found = hex::encode(hash.finalize());
    if let Some(expected) = expected {
        if !found.eq_ignore_ascii_case(expected) {
            writer.abort().await;
            tracing::error!(alert = "fixity", key, expected, found = %found, "stored object altered: not copied");
            return failure("altered", found, "not copied".into());
        }
    }
    let bytes = writer.len();
    match writer.commit(&path).await {
        Ok(_) => Copied::Done(bytes),
        Err(e) => failure("unreadable", found, format!("writing the copy: {e}")),
    }
}

/// Copies every key in `wanted` that `to` does not hold yet; answers (copied, bytes,
/// already there, failures).
async fn copy_missing(
    from: &Archive,
    to: &Archive,
    wanted: &[String],
    held: &HashSet<String>,
    dicom: &HashMap<String, String>,
) -> (u64, u64, u64, Vec<CopyFailure>) {
    let mut already = 0;
    let todo: Vec<(String, Option<String>)> = wanted
        .iter()
        .filter(|k| {
            let there = held.contains(*k);
            if there {
                already += 1;
            }
            !there
        })
        .map(|k| (k.clone(), expected_hash(k, dicom)))
        .collect();
    let mut copies = stream::iter(todo)
        .map(|(key, expected)| {
            let (from, to) = (from.clone(), to.clone());
            async move { copy_one(&from, &to, &key, expected.as_deref()).await }
        })
        .buffer_unordered(COPIERS);
    let (mut copied, mut bytes, mut failures) = (0, 0, Vec::new());
    while let Some(done) = copies.next().await {
        match done {
            Copied::Done(n) => {
                copied += 1;
                bytes += n;
            }
            Copied::Failed(f) => failures.push(f),
        }
    }
    failures.sort_by(|a, b| a.key.cmp(&b.key));
    (copied, bytes, already, failures)
}

fn listing_set(listing: &[String]) -> HashSet<String> {
    listing.iter().cloned().collect()
}

/// Copies a consistent snapshot of the index and every object the target does not hold yet
/// to `target`.
pub async fn backup(
    index: &Index,
    store: &Archive,
    target: &Archive,
) -> Result<CopyReport, BackupError> {
    if store.overlaps(target) {
        return Err(BackupError::SameStore);
    }
    let started = now_micros();
    let archive_id = index.archive_id().await?;
    let listed = std::time::Instant::now();
    let target_listing = target.keys().await?;
    tracing::info!(
        elapsed_ms = listed.elapsed().as_millis() as u64,
        objects = target_listing.len(),
        "backup: target listed"
    );
    let ours = target_listing.iter().any(|k| k == ARCHIVE_ID_KEY);
    if ours {
        let found = String::from_utf8_lossy(&target.read(&ObjectKey::from(ARCHIVE_ID_KEY)).await?)
            .trim()
            .to_owned();
        if found != archive_id {
            return Err(BackupError::OtherArchive(found));
        }
    } else if !target_listing.is_empty() {
        return Err(BackupError::NotABackup(target_listing.len()));
    } else {
        let mut w = target.writer();
        w.write(archive_id.as_bytes()).await?;
        w.commit(&ObjectKey::from(ARCHIVE_ID_KEY)).await?;
    }

    let phase = std::time::Instant::now();
    let ms = |t: std::time::Instant| t.elapsed().as_millis() as u64;
    // The index first: every object it names is in the store by now.
    let dumps = index.snapshot().await?;
    let dicom = snapshot::dicom_hashes(&dumps);
    let named = snapshot::named_keys(&dumps);
    tracing::info!(elapsed_ms = ms(phase), "backup: index read");
    let source = copied_keys(store.keys().await?);
    let in_source = listing_set(&source);
    tracing::info!(
        elapsed_ms = ms(phase),
        objects = source.len(),
        "backup: store listed"
    );
    let (copied, copied_bytes, already_there, mut failures) = copy_missing(
        store,
        target,
        &source,
        &listing_set(&target_listing),
        &dicom,
    )
    .await;
    tracing::info!(elapsed_ms = ms(phase), copied, "backup: objects copied");
    for key in named.iter().filter(|k| !in_source.contains(*k)) {
        failures.push(CopyFailure {
            key: key.clone(),
            problem: "missing",
            expected_sha256: expected_hash(key, &dicom).unwrap_or_default(),
            found_sha256: String::new(),
            detail: "named by the index, absent from the store".into(),
        });
    }
    let stamp = snapshot::stamp(started);
    let header = SnapshotHeader {
        format: snapshot::FORMAT.into(),
        archive_id: archive_id.clone(),
        schema_version: index.schema_version().await?,
        made_at: rfc3339(started),
    };
    let body = snapshot::encode(&header, &dumps)
        .map_err(|e| BackupError::Damaged(format!("cannot write the snapshot: {e}")))?;
    let index_key = format!("{INDEX_PREFIX}/{stamp}.jsonl.gz");
    let mut w = target.writer();
    w.write(&body).await?;
    w.commit(&ObjectKey::from(index_key.as_str())).await?;
    tracing::info!(
        elapsed_ms = phase.elapsed().as_millis() as u64,
        bytes = body.len(),
        "backup: index snapshot written"
    );
    let index_rows: u64 = dumps.iter().map(|d| d.rows.len() as u64).sum();
    let record = SnapshotRecord {
        format: snapshot::FORMAT.into(),
        archive_id: archive_id.clone(),
        made_at: rfc3339(started),
        index_key,
        index_sha256: hex::encode(Sha256::digest(&body)),
        index_rows,
        objects: source.len() as u64,
        failures: failures.len() as u64,
    };
    let record_body = serde_json::to_vec_pretty(&record).unwrap_or_default();
    let mut w = target.writer();
    w.write(&record_body).await?;
    w.commit(&ObjectKey::from(
        format!("{SNAPSHOTS_PREFIX}/{stamp}.json").as_str(),
    ))
    .await?;
    Ok(CopyReport {
        archive_id,
        snapshot: stamp,
        started_at: rfc3339(started),
        finished_at: rfc3339(now_micros()),
        objects: source.len() as u64,
        copied,
        copied_bytes,
        already_there,
        index_rows,
        failures,
    })
}

/// Builds the archive anew from a backup: every object copied into the (empty) store,
/// verified, then the index loaded from the snapshot (`latest` when none is named).
pub async fn restore(
    index: &Index,
    store: &Archive,
    from: &Archive,
    snapshot_name: Option<&str>,
) -> Result<CopyReport, BackupError> {
    let started = now_micros();
    let rows = index.archive_rows().await?;
    if rows > 0 {
        return Err(BackupError::IndexNotEmpty(rows));
    }
    let source_listing = from.keys().await?;
    let mut records: Vec<String> = source_listing
        .iter()
        .filter(|k| k.starts_with(&format!("{SNAPSHOTS_PREFIX}/")))
        .cloned()
        .collect();
    records.sort();
    let record_key = match snapshot_name {
        Some(name) => records
            .iter()
            .find(|k| k.ends_with(&format!("/{name}.json")))
            .cloned()
            .ok_or_else(|| BackupError::NoSuchSnapshot(name.to_owned()))?,
        None => records
            .last()
            .cloned()
            .ok_or_else(|| BackupError::NoBackup(from.description().to_owned()))?,
    };
    let record: SnapshotRecord =
        serde_json::from_slice(&from.read(&ObjectKey::from(record_key.as_str())).await?)
            .map_err(|e| BackupError::Damaged(format!("{record_key}: {e}")))?;
    let body = from
        .read(&ObjectKey::from(record.index_key.as_str()))
        .await?;
    if hex::encode(Sha256::digest(&body)) != record.index_sha256 {
        return Err(BackupError::Damaged(format!(
            "{} does not match the hash its record gives",
            record.index_key
        )));
    }
    let (header, dumps) = snapshot::decode(&body).map_err(BackupError::Damaged)?;
    let ours = index.schema_version().await?;
    if header.schema_version != ours {
        return Err(BackupError::Schema {
            found: header.schema_version,
            ours,
        });
    }
    let dicom = snapshot::dicom_hashes(&dumps);
    let source = copied_keys(source_listing);
    let in_backup = listing_set(&source);
    let store_listing = copied_keys(store.keys().await?);
    if let Some(stray) = store_listing.iter().find(|k| !in_backup.contains(*k)) {
        let strays = store_listing
            .iter()
            .filter(|k| !in_backup.contains(*k))
            .count();
        return Err(BackupError::StoreNotEmpty(strays, stray.clone()));
    }
    // Objects an interrupted restore already copied are checked, not trusted.
    let mut failures = Vec::new();
    for key in &store_listing {
        if let Some(expected) = expected_hash(key, &dicom) {
            let found = store.sha256(&ObjectKey::from(key.as_str())).await?;
            if !found.eq_ignore_ascii_case(&expected) {
                failures.push(CopyFailure {
                    key: key.clone(),
                    problem: "conflict",
                    expected_sha256: expected,
                    found_sha256: found,
                    detail: "the store holds other bytes under this key".into(),
                });
            }
        }
    }
    let (copied, copied_bytes, already_there, more) =
        copy_missing(from, store, &source, &listing_set(&store_listing), &dicom).await;
    failures.extend(more);
    let index_rows = if failures.is_empty() {
        // The index last, so it never names an object the store does not hold.
        index.load_snapshot(&dumps).await?
    } else {
        0
    };
    Ok(CopyReport {
        archive_id: header.archive_id,
        snapshot: record_key
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".json")
            .to_owned(),
        started_at: rfc3339(started),
        finished_at: rfc3339(now_micros()),
        objects: source.len() as u64,
        copied,
        copied_bytes,
        already_there,
        index_rows,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_come_from_the_index_or_the_name() {
        let sha = "ab".repeat(32);
        let mut dicom = HashMap::new();
        dicom.insert("dicom/x/1/2/3_y.dcm".to_owned(), sha.to_uppercase());
        assert_eq!(
            expected_hash("dicom/x/1/2/3_y.dcm", &dicom),
            Some(sha.clone())
        );
        assert_eq!(
            expected_hash(&format!("cda/{sha}.xml"), &dicom),
            Some(sha.clone())
        );
        assert_eq!(
            expected_hash("audit/heads/2026-12-03/000000000001.json", &dicom),
            None
        );
        assert_eq!(expected_hash("cda/short.xml", &dicom), None);
        let kept = copied_keys(vec![
            "staging/x".into(),
            "telecardio-backup/archive-id".into(),
            "dicom/a".into(),
        ]);
        assert_eq!(kept, vec!["dicom/a".to_owned()]);
    }
}
