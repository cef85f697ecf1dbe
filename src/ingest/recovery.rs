//! After a crash of the machine: the index rows its unflushed commits lost, made again from
//! the store (see the index's `durability` module for why rows may be lost and what the
//! durable mark promises).
//!
//! A run of the service holds a marker file with the machine's boot id and removes it when it
//! stops cleanly. At start, a marker left behind means the last run did not stop cleanly: with
//! the same boot id only the process ended, and every commit it made is in the kernel's hands
//! and survived; with another boot id (or none readable) the machine went down, and every
//! object the store received since the durable mark is looked up and indexed again if its row
//! is missing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Ingest, IngestError};
use crate::archive::{instant, keys};

const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// Slack for the file system's clock granularity and a clock stepped back a little.
const MARK_SLACK: Duration = Duration::from_secs(5);

/// How the last run of the service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastRun {
    /// Stopped cleanly, or never ran here.
    Clean,
    /// The process ended without stopping (killed, crashed); the machine kept running.
    ProcessEnded,
    /// The machine went down (or it cannot be told) while the service ran.
    MachineDown,
}

/// The marker a running service holds in its data directory.
#[derive(Debug)]
pub struct RunMarker {
    path: PathBuf,
}

impl RunMarker {
    /// Reads what the last run left in `data_dir`, without taking the marker yet.
    pub fn inspect(data_dir: &Path) -> (RunMarker, LastRun) {
        let path = data_dir.join("running");
        let last = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LastRun::Clean,
            Err(_) => LastRun::MachineDown,
            Ok(held) => match boot_id() {
                Some(now) if held.lines().next() == Some(now.as_str()) => LastRun::ProcessEnded,
                _ => LastRun::MachineDown,
            },
        };
        (RunMarker { path }, last)
    }

    /// Takes the marker for this run: written and flushed before anything is received.
    pub fn hold(&self) -> std::io::Result<()> {
        let boot = boot_id().unwrap_or_default();
        let text = format!("{boot}\n{}\n", std::process::id());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = self.path.with_extension("new");
        std::fs::write(&temporary, text)?;
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, &self.path)?;
        sync_parent(&self.path)
    }

    /// Gives the marker up on a clean stop, after the index was flushed.
    pub fn release(self) -> std::io::Result<()> {
        std::fs::remove_file(&self.path)?;
        sync_parent(&self.path)
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string(BOOT_ID).ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// What a recovery did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovered {
    /// Objects received since the mark.
    pub looked_at: usize,
    /// Of those, objects whose row was missing and is made again.
    pub indexed_again: usize,
    /// Objects whose row was missing and could not be made: left to the orphan check.
    pub not_placed: usize,
}

impl Ingest {
    /// Indexes again every DICOM object the store received since the durable mark whose row
    /// the index does not have, in the order they were received.
    pub async fn recover_lost_rows(&self, own_ae: &str) -> Result<Recovered, IngestError> {
        let since = match self.index.durable_mark().await? {
            Some(at) => instant(at)
                .checked_sub(MARK_SLACK)
                .unwrap_or(std::time::UNIX_EPOCH),
            None => std::time::UNIX_EPOCH,
        };
        let placed = self.archive.placed_since(keys::DICOM_PREFIX, since).await?;
        let mut recovered = Recovered {
            looked_at: placed.len(),
            ..Recovered::default()
        };
        for (key, received_at) in placed {
            if self.index.has_object(&key).await? {
                continue;
            }
            match self.reindex(&key, received_at, own_ae).await {
                Ok(_) => recovered.indexed_again += 1,
                Err(e @ (IngestError::Store(_) | IngestError::Index(_))) => return Err(e),
                Err(e) => {
                    tracing::warn!(key, error = %e, "stored object not indexed again; the orphan check lists it");
                    recovered.not_placed += 1;
                }
            }
        }
        Ok(recovered)
    }
}
