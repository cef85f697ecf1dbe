//! What a local directory store needs beyond object_store: listing keys by walking directory
//! entries (object_store stats every file), and removing the temporary files a crash leaves.

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
