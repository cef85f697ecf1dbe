//! The clinics' drop folders: a recorder's analysis station writes `ORDER.ecg` (with
//! `ORDER.ann` beside it) or `ORDER.edf` into `{inbox}/{clinic id}/`, and the file is imported
//! for that clinic's referral with that order number.
//!
//! A file is taken only once it is complete: its size and modification time unchanged for
//! `holter.settle_ms` and no process holding it open. It stays where it is while it is
//! imported and is moved to `imported/` only after, so a crash mid-import leaves it to be
//! taken again on restart; the import is repeatable (same file, same referral, same objects),
//! so taking it again adds nothing twice. A refused file goes to `rejected/` with
//! `NAME.reason.txt` beside it saying why, in Lithuanian and English. A file that could not be
//! imported for a passing reason (the store or database away) stays and is tried again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::import::{Holter, ImportError, Target, Upload};
use crate::access::{Principal, Role, Via};
use crate::fault::Fault;

const IMPORTED: &str = "imported";
const REJECTED: &str = "rejected";

/// A file seen in the inbox: its size and time when last looked at, and since when unchanged.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
    since: Instant,
}

pub struct Inbox {
    holter: Holter,
    root: PathBuf,
    poll: Duration,
    settle: Duration,
}

impl Inbox {
    pub fn new(holter: Holter) -> Inbox {
        let config = holter.config();
        Inbox {
            root: config.data_path(&config.holter.inbox),
            poll: Duration::from_millis(config.holter.poll_ms.max(50)),
            settle: Duration::from_millis(config.holter.settle_ms),
            holter,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Watches until `stopped`; an import under way when asked to stop is finished first.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        for clinic in &self.holter.config().clinics {
            for sub in ["", IMPORTED, REJECTED] {
                let dir = self.root.join(&clinic.id).join(sub);
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot make the Holter inbox");
                }
            }
        }
        let mut seen = HashMap::new();
        loop {
            tokio::select! {
                _ = stopped.changed() => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
            if *stopped.borrow() {
                return;
            }
            self.sweep(&mut seen).await;
        }
    }

    /// One look at every clinic's folder: each complete file is imported.
    async fn sweep(&self, seen: &mut HashMap<PathBuf, Seen>) {
        let mut present = Vec::new();
        let clinics: Vec<String> = self
            .holter
            .config()
            .clinics
            .iter()
            .map(|c| c.id.clone())
            .collect();
        for clinic in clinics {
            let dir = self.root.join(&clinic);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = entry.metadata() else { continue };
                let name = entry.file_name().to_string_lossy().into_owned();
                if !meta.is_file() || name.starts_with('.') || is_annotations(&path) {
                    continue;
                }
                present.push(path.clone());
                let now = Seen {
                    len: meta.len(),
                    modified: meta.modified().ok(),
                    since: Instant::now(),
                };
                let entry = seen.entry(path.clone()).or_insert(now);
                if (entry.len, entry.modified) != (now.len, now.modified) {
                    *entry = now;
                    continue;
                }
                if entry.since.elapsed() < self.settle || held_open(&path) {
                    continue;
                }
                if self.take(&clinic, &dir, &path, &name).await {
                    seen.remove(&path);
                } else {
                    // Tried again once it has settled again.
                    entry.since = Instant::now();
                }
            }
        }
        seen.retain(|p, _| present.contains(p));
    }

    /// Imports one file; whether it was moved aside (imported or refused).
    async fn take(&self, clinic: &str, dir: &Path, path: &Path, name: &str) -> bool {
        let order = Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let annotations = sidecar(path);
        let who = Principal {
            name: format!("inbox:{clinic}"),
            role: Role::Clinic,
            institution: clinic.to_owned(),
            via: Via::Cli,
            address: "inbox".into(),
            pixel_access: false,
        };
        let target = Target::Order {
            patient_code: String::new(),
            order_number: order,
        };
        let upload = Upload {
            path: path.to_owned(),
            file_name: name.to_owned(),
            annotations: annotations.clone(),
        };
        let result = self.holter.import(&who, &target, &upload).await;
        let aside = match &result {
            Ok(_) => dir.join(IMPORTED),
            Err(e) if refused(e) => dir.join(REJECTED),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "Holter inbox file left to try again");
                return false;
            }
        };
        let moved = move_into(path, &aside);
        if let Some(ann) = &annotations {
            move_into(ann, &aside);
        }
        if let (Err(e), Some(to)) = (&result, &moved) {
            let reason = format!(
                "Įrašas atmestas / The recording was refused\n{}\n\n{e}\n",
                jiff::Timestamp::now()
            );
            let mut file = to.clone().into_os_string();
            file.push(".reason.txt");
            if let Err(e) = std::fs::write(&file, reason) {
                tracing::error!(file = ?file, error = %e, "cannot write the reason beside a refused Holter file");
            }
        }
        moved.is_some()
    }
}

/// Whether an import failed for the file's own sake (it will fail again), not a passing one.
fn refused(e: &ImportError) -> bool {
    matches!(
        e.fault(),
        Fault::BadInput | Fault::NotFound | Fault::Forbidden
    )
}

fn is_annotations(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ann"))
}

/// The ISHNE annotation file beside a recording (`ORDER.ann`, any case).
fn sidecar(path: &Path) -> Option<PathBuf> {
    let stem = path.file_stem()?;
    let dir = path.parent()?;
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let p = e.path();
        (p.file_stem() == Some(stem) && is_annotations(&p) && p.is_file()).then_some(p)
    })
}

/// Moves `path` into `dir` under its name (with the time added if that name is taken);
/// where it went.
fn move_into(path: &Path, dir: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let mut to = dir.join(name);
    if to.exists() {
        let micros = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or_default();
        to = dir.join(format!("{micros}-{}", name.to_string_lossy()));
    }
    match std::fs::rename(path, &to) {
        Ok(()) => Some(to),
        Err(e) => {
            tracing::error!(file = %path.display(), to = %to.display(), error = %e, "cannot move a Holter inbox file aside");
            None
        }
    }
}

/// Whether any process has `path` open (a writer not yet done with it), as far as this
/// process may see; false where `/proc` is not there to ask.
fn held_open(path: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return false;
    };
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    processes.flatten().any(|p| {
        let is_pid = p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit());
        is_pid
            && std::fs::read_dir(p.path().join("fd")).is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_file_is_seen_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("E027-1.ecg");
        let file = std::fs::File::create(&path).unwrap();
        assert!(held_open(&path));
        drop(file);
        assert!(!held_open(&path));
        std::fs::write(dir.path().join("E027-1.ANN"), b"x").unwrap();
        assert_eq!(sidecar(&path).unwrap().file_name().unwrap(), "E027-1.ANN");
        let moved = move_into(&path, dir.path()).unwrap();
        assert_ne!(moved, path);
        assert!(moved.exists() && !path.exists());
    }
}
