//! What a local directory store needs beyond object_store: listing keys by walking directory
//! entries (object_store stats every file), finding what was placed lately, and removing the
//! temporary files a crash leaves.

use std::time::SystemTime;

use super::recent::micros;
use super::ArchiveError;

pub(super) fn unreachable(e: impl std::error::Error + Send + Sync + 'static) -> ArchiveError {
    ArchiveError::Unreachable {
        source: object_store::Error::Generic {
            store: "local",
            source: Box::new(e),
        },
    }
}

/// Keys of the files under `root`, as the store names them: `/`-separated relative paths,
/// leaving out the temporary files a write in flight (or a crash) leaves (`…#n`).
pub(super) fn walk_keys(root: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut dirs = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push((entry.path(), key));
            } else if kind.is_file() && !name.contains('#') {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

pub(super) fn remove_temporaries(root: &std::path::Path, before: std::time::SystemTime) -> usize {
    let mut removed = 0;
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(path);
            } else if entry.file_name().to_string_lossy().contains('#')
                && meta.modified().is_ok_and(|m| m < before)
                && std::fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

/// Files under `root/prefix` in directories whose entries changed at or after `since`, with
/// their own modification times. Directories are stat-ed, files only in changed directories.
pub(super) fn placed_since(
    root: &std::path::Path,
    prefix: &str,
    since: SystemTime,
) -> std::io::Result<Vec<(String, i64)>> {
    let mut found = Vec::new();
    let start = root.join(prefix);
    if !start.is_dir() {
        return Ok(found);
    }
    let mut dirs = vec![(start, prefix.trim_end_matches('/').to_owned())];
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    while let Some((dir, key)) = dirs.pop() {
        // A directory or file removed meanwhile (a deletion) is simply not there.
        let (changed, entries) = match std::fs::metadata(&dir).and_then(|m| m.modified()) {
            Ok(modified) => match std::fs::read_dir(&dir) {
                Ok(entries) => (modified >= since, entries),
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            },
            Err(e) if gone(&e) => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push((entry.path(), child));
            } else if changed && kind.is_file() && !name.contains('#') {
                match entry.metadata().and_then(|m| m.modified()) {
                    Ok(modified) => found.push((child, micros(modified))),
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_directories_changed_since() {
        let root = tempfile::tempdir().unwrap();
        let dir = |p: &str| {
            let d = root.path().join(p);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        std::fs::write(dir("dicom/c/s1/r1").join("a.dcm"), b"a").unwrap();
        std::fs::write(dir("dicom/c/s1/r3").join("e.dcm"), b"e").unwrap();
        // Past the file system's clock granularity.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let since = SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(dir("dicom/c/s1/r1").join("c.dcm"), b"c").unwrap();
        std::fs::write(dir("dicom/c/s2/r2").join("b.dcm"), b"b").unwrap();
        std::fs::write(dir("dicom/c/s2/r2").join("d.dcm#1"), b"d").unwrap();
        let mut keys: Vec<String> = placed_since(root.path(), "dicom", since)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "dicom/c/s1/r1/a.dcm",
                "dicom/c/s1/r1/c.dcm",
                "dicom/c/s2/r2/b.dcm"
            ]
        );
        assert!(placed_since(root.path(), "absent", since)
            .unwrap()
            .is_empty());
    }
}
