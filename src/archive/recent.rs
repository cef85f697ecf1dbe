//! Finding what the store received lately: after a machine crash, the objects whose index rows
//! may have been lost with the index's unflushed commits.

use std::time::{Duration, SystemTime};

use super::{local, Archive, ArchiveError};

impl Archive {
    /// Keys under `prefix` that may have been placed at or after `since`, with when their
    /// object was written (microseconds since the epoch), oldest first. A local directory is
    /// walked reading only the entries of directories changed since then: placing an object
    /// changes its directory, and an older directory's files are not looked at.
    pub async fn placed_since(
        &self,
        prefix: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, i64)>, ArchiveError> {
        let mut found = match self.local_root.clone() {
            Some(root) => {
                let prefix = prefix.to_owned();
                tokio::task::spawn_blocking(move || local::placed_since(&root, &prefix, since))
                    .await
                    .map_err(local::unreachable)?
                    .map_err(local::unreachable)?
            }
            None => {
                let since = micros(since);
                self.list_dated(prefix)
                    .await?
                    .into_iter()
                    .filter(|(_, _, modified)| *modified >= since)
                    .map(|(key, _, modified)| (key, modified))
                    .collect()
            }
        };
        found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(found)
    }
}

pub(super) fn micros(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// An instant in microseconds since the epoch.
pub fn instant(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}
