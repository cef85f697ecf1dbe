//! The object store: where every received byte is kept, written once and never altered.
//!
//! Owns the store handle (a local directory by default, S3-compatible storage in production),
//! the key layout ([`keys`]) and the write path: small objects go in one create-only put, large
//! ones stream through a multipart upload to a staging key and are then published with a
//! create-only copy. A write returns only once the object is durable (local: file and directory
//! fsynced; S3: the PUT or copy acknowledged). This module knows nothing of DICOM networking,
//! HTTP or the index.

pub mod keys;
mod local;
mod lock;
mod recent;
mod writer;

pub use lock::{LockSupport, RetainUntil};
pub use recent::instant;
pub use writer::ObjectWriter;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, S3CopyIfNotExists};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::config::Config;

pub use object_store::path::Path as ObjectKey;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot open object store `{url}`: {source}")]
    Open {
        url: String,
        source: object_store::Error,
    },
    #[error("cannot create store directory {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("object store write of `{key}` failed: {source}")]
    Write {
        key: String,
        source: object_store::Error,
    },
    #[error("object store read of `{key}` failed: {source}")]
    Read {
        key: String,
        source: object_store::Error,
    },
    #[error("cannot {what} `{key}` in the store: {detail}")]
    Lock {
        key: String,
        what: String,
        detail: String,
    },
    #[error("object store is unreachable: {source}")]
    Unreachable { source: object_store::Error },
}

impl ArchiveError {
    /// Every archive failure is the store's, not the sender's: worth a retry later.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            ArchiveError::Open { .. } | ArchiveError::CreateDir { .. }
        )
    }

    /// The object asked for is not in the store (as opposed to the store failing).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ArchiveError::Read {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}

/// What a create-only write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The object is new and now durable.
    Created,
    /// An object already sat under that key; it was left untouched.
    AlreadyExisted,
}

/// Handle to the object store; cheap to clone.
#[derive(Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    inline_put_max: usize,
    part_size: usize,
    description: String,
    /// The directory of a local store, whose crash leftovers need a sweep of their own.
    local_root: Option<std::path::PathBuf>,
    /// The same local store, for reading whole files directly.
    local: Option<Arc<LocalFileSystem>>,
    /// An S3 bucket's Object Lock requests.
    s3_lock: Option<lock::S3Lock>,
    /// The lock every new object gets, where the bucket has Object Lock and it is wanted.
    lock: Option<lock::ObjectLock>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("store", &self.description)
            .finish()
    }
}

impl Archive {
    pub fn open(config: &Config) -> Result<Archive, ArchiveError> {
        Archive::open_url(config, &config.store.url)
    }

    /// A store other than the configured one (a backup target, say): a local directory
    /// (relative paths are under `service.data_dir`) or `s3://bucket` reached with the
    /// configured S3 settings, written with the configured durability.
    pub fn open_url(config: &Config, url: &str) -> Result<Archive, ArchiveError> {
        let url = url.trim();
        let mut local_root = None;
        let mut local_fs = None;
        let mut s3_lock = None;
        let (store, description): (Arc<dyn ObjectStore>, String) =
            if let Some(bucket) = url.strip_prefix("s3://") {
                let s3 = Arc::new(open_s3(config, bucket)?);
                s3_lock = Some(lock::S3Lock::new(s3.clone())?);
                (s3, url.to_owned())
            } else {
                let dir = config.data_path(url);
                std::fs::create_dir_all(&dir).map_err(|source| ArchiveError::CreateDir {
                    path: dir.clone(),
                    source,
                })?;
                let local = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|source| ArchiveError::Open {
                        url: url.to_owned(),
                        source,
                    })?
                    .with_fsync(config.store.fsync);
                local_root = Some(dir.clone());
                let local = Arc::new(local);
                local_fs = Some(local.clone());
                (local, dir.display().to_string())
            };
        Ok(Archive {
            store,
            inline_put_max: config.store.inline_put_max_bytes,
            part_size: config.store.part_size_bytes,
            description,
            local_root,
            local: local_fs,
            s3_lock,
            lock: None,
        })
    }

    /// Whether the store can lock objects itself (S3 Object Lock).
    pub async fn lock_support(&self) -> Result<LockSupport, ArchiveError> {
        match &self.s3_lock {
            None => Ok(LockSupport::NotS3),
            Some(s3) => s3.support().await,
        }
    }

    /// From now on every object written is locked until `until` says (compliance or
    /// governance mode); only for a bucket whose [`Archive::lock_support`] is `Enabled`.
    pub fn with_object_lock(mut self, compliance: bool, until: RetainUntil) -> Archive {
        if let Some(s3) = &self.s3_lock {
            self.lock = Some(lock::ObjectLock::new(s3.clone(), compliance, until));
        }
        self
    }

    /// Locks a freshly written (or found) object before its write is acknowledged.
    async fn locked(&self, key: &Path, written: Written) -> Result<Written, ArchiveError> {
        if let Some(lock) = &self.lock {
            lock.apply(key).await?;
        }
        Ok(written)
    }

    /// Whether the store is a local directory.
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the two stores are one, or one local directory lies inside the other's.
    pub fn overlaps(&self, other: &Archive) -> bool {
        if self.description == other.description {
            return true;
        }
        match (&self.local_root, &other.local_root) {
            (Some(a), Some(b)) => {
                let a = a.canonicalize().unwrap_or_else(|_| a.clone());
                let b = b.canonicalize().unwrap_or_else(|_| b.clone());
                a.starts_with(&b) || b.starts_with(&a)
            }
            _ => false,
        }
    }

    /// Starts an object whose key is decided once its content is known.
    pub fn writer(&self) -> ObjectWriter {
        ObjectWriter::new(self.clone())
    }

    /// Makes a small document durable under the key `key_of` gives for its SHA-256 (create-only,
    /// so a resend lands on the same object); answers the key and the hash.
    pub async fn keep(
        &self,
        bytes: &[u8],
        key_of: fn(&str) -> Path,
    ) -> Result<(String, String), ArchiveError> {
        use sha2::{Digest, Sha256};
        let sha256 = hex::encode(Sha256::digest(bytes));
        let key = key_of(&sha256);
        let mut writer = self.writer();
        writer.write(bytes).await?;
        writer.commit(&key).await?;
        Ok((key.to_string(), sha256))
    }

    /// Reachability probe for health checks: the first page of an (empty) prefix listing. On S3
    /// a missing bucket answers "not found" here, while an existing one answers an empty list.
    pub async fn check(&self) -> Result<(), ArchiveError> {
        let prefix = Path::from("healthz");
        match self.store.list(Some(&prefix)).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(source)) => Err(ArchiveError::Unreachable { source }),
        }
    }

    /// The whole object; for small objects and tests (large ones are streamed by callers).
    pub async fn read(&self, key: &Path) -> Result<Bytes, ArchiveError> {
        let read_err = |source| ArchiveError::Read {
            key: key.to_string(),
            source,
        };
        self.store
            .get(key)
            .await
            .map_err(read_err)?
            .bytes()
            .await
            .map_err(read_err)
    }

    /// A byte stream of the object, never held whole in memory.
    pub async fn stream(
        &self,
        key: &Path,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, ArchiveError>>, ArchiveError>
    {
        let owned = key.to_string();
        let result = self
            .store
            .get(key)
            .await
            .map_err(|source| ArchiveError::Read {
                key: owned.clone(),
                source,
            })?;
        Ok(result
            .into_stream()
            .map(move |r| {
                r.map_err(|source| ArchiveError::Read {
                    key: owned.clone(),
                    source,
                })
            })
            .boxed())
    }

    /// Bytes `range` of an object (a header, a frame's fragment).
    pub async fn read_range(
        &self,
        key: &Path,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, ArchiveError> {
        self.store
            .get_range(key, range)
            .await
            .map_err(|source| ArchiveError::Read {
                key: key.to_string(),
                source,
            })
    }

    /// A byte stream of the object from `offset` to its end.
    pub async fn stream_from(
        &self,
        key: &Path,
        offset: u64,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, ArchiveError>>, ArchiveError>
    {
        self.stream_part(key, object_store::GetRange::Offset(offset))
            .await
    }

    /// A byte stream of bytes `range` of the object (a large value, never held whole).
    pub async fn stream_range(
        &self,
        key: &Path,
        range: std::ops::Range<u64>,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, ArchiveError>>, ArchiveError>
    {
        self.stream_part(key, object_store::GetRange::Bounded(range))
            .await
    }

    async fn stream_part(
        &self,
        key: &Path,
        range: object_store::GetRange,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, ArchiveError>>, ArchiveError>
    {
        let owned = key.to_string();
        let options = object_store::GetOptions {
            range: Some(range),
            ..Default::default()
        };
        let result =
            self.store
                .get_opts(key, options)
                .await
                .map_err(|source| ArchiveError::Read {
                    key: owned.clone(),
                    source,
                })?;
        Ok(result
            .into_stream()
            .map(move |r| {
                r.map_err(|source| ArchiveError::Read {
                    key: owned.clone(),
                    source,
                })
            })
            .boxed())
    }

    /// SHA-256 of a stored object, read back as a stream.
    pub async fn sha256(&self, key: &Path) -> Result<String, ArchiveError> {
        Ok(self.digest(key).await?.0)
    }

    /// An object's SHA-256 (hex) and length, read whole. A local file is read directly in
    /// large blocks on a blocking thread: streaming it through the store's small chunks costs
    /// more than the disk and the hashing together.
    pub async fn digest(&self, key: &Path) -> Result<(String, u64), ArchiveError> {
        use sha2::{Digest, Sha256};
        let read_err = |source| ArchiveError::Read {
            key: key.to_string(),
            source,
        };
        if let Some(local) = &self.local {
            let file = local.path_to_filesystem(key).map_err(read_err)?;
            let location = key.to_string();
            let hashed = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
                use std::io::Read;
                let mut f = std::fs::File::open(&file)?;
                let mut buf = vec![0u8; 1 << 20];
                let mut hash = Sha256::new();
                let mut len = 0u64;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hash.update(&buf[..n]);
                    len += n as u64;
                }
                Ok((hex::encode(hash.finalize()), len))
            })
            .await
            .map_err(|e| {
                read_err(object_store::Error::Generic {
                    store: "local",
                    source: Box::new(e),
                })
            })?;
            return hashed.map_err(|e| {
                read_err(if e.kind() == std::io::ErrorKind::NotFound {
                    object_store::Error::NotFound {
                        path: location,
                        source: Box::new(e),
                    }
                } else {
                    object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    }
                })
            });
        }
        let mut hash = Sha256::new();
        let mut len = 0u64;
        let mut stream = self.stream(key).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            len += chunk.len() as u64;
            hash.update(&chunk);
        }
        Ok((hex::encode(hash.finalize()), len))
    }

    /// Every object under `prefix`: key and size, in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, ArchiveError> {
        let prefix = Path::from(prefix);
        let mut listing = self.store.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| ArchiveError::Unreachable { source })?;
            found.push((meta.location.to_string(), meta.size));
        }
        Ok(found)
    }

    /// The key of every object in the store. A local directory is walked directly, reading
    /// only directory entries: the store library's listing stats every file, which costs
    /// seconds on an archive of a hundred thousand objects.
    pub async fn keys(&self) -> Result<Vec<String>, ArchiveError> {
        let Some(root) = self.local_root.clone() else {
            return Ok(self.list("").await?.into_iter().map(|(k, _)| k).collect());
        };
        tokio::task::spawn_blocking(move || local::walk_keys(&root))
            .await
            .map_err(local::unreachable)?
            .map_err(local::unreachable)
    }

    /// Every object under `prefix` with its size and when it was written (microseconds).
    pub async fn list_dated(&self, prefix: &str) -> Result<Vec<(String, u64, i64)>, ArchiveError> {
        let prefix = Path::from(prefix);
        let mut listing = self.store.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| ArchiveError::Unreachable { source })?;
            let modified = meta.last_modified.timestamp_micros();
            found.push((meta.location.to_string(), meta.size, modified));
        }
        Ok(found)
    }

    /// Removes uploads left in `staging/` by a crash: they were never acknowledged. A local
    /// directory belongs to this process alone, so everything there is stale at start-up; a
    /// bucket may be shared by several service nodes, so there only day-old uploads go.
    pub async fn sweep_staging(&self) -> Result<usize, ArchiveError> {
        let grace = if self.local_root.is_some() {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_secs(24 * 3600)
        };
        let cutoff = std::time::SystemTime::now() - grace;
        let prefix = Path::from(keys::STAGING_PREFIX);
        let mut listing = self.store.list(Some(&prefix));
        let mut removed = 0;
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|source| ArchiveError::Unreachable { source })?;
            if std::time::SystemTime::from(meta.last_modified) <= cutoff {
                self.delete_quietly(&meta.location).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// On a local store, removes the temporary files a crash left beside objects (object_store
    /// names them `<key>#<n>` and never lists them). Only files older than `before` are touched,
    /// so writes in flight are safe; runs on a blocking thread and may take long on a big archive.
    pub async fn sweep_local_temporaries(&self, before: std::time::SystemTime) -> usize {
        let Some(root) = self.local_root.clone() else {
            return 0;
        };
        tokio::task::spawn_blocking(move || local::remove_temporaries(&root, before))
            .await
            .unwrap_or(0)
    }

    /// Removes an object this process created a moment ago and never acknowledged nor
    /// indexed (it lost a race the index settled). The only delete outside staging.
    pub async fn withdraw(&self, key: &Path) {
        if let Err(e) = self.store.delete(key).await {
            tracing::error!(key = %key, error = %e, "could not withdraw an unacknowledged object");
        }
    }

    /// Removes an object whose deletion was approved after its retention date (the only
    /// removal of an acknowledged object). Where the store enforces a retention lock, it has
    /// the last word.
    pub async fn remove_expired(&self, key: &Path) -> Result<(), ArchiveError> {
        if let (Some(s3), Some(_)) = (&self.s3_lock, &self.lock) {
            return s3.remove_versions(key).await;
        }
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(ArchiveError::Write {
                key: key.to_string(),
                source,
            }),
        }
    }

    /// Moves an object an administrator put aside to `quarantine/{key}` (copied create-only,
    /// then taken from its key); answers the new key.
    pub async fn quarantine(&self, key: &Path) -> Result<String, ArchiveError> {
        let target = Path::from(format!("{}/{}", keys::QUARANTINE_PREFIX, key));
        match self.store.copy_if_not_exists(key, &target).await {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(source) => {
                return Err(ArchiveError::Write {
                    key: target.to_string(),
                    source,
                })
            }
        }
        self.locked(&target, Written::Created).await?;
        self.store
            .delete(key)
            .await
            .map_err(|source| ArchiveError::Write {
                key: key.to_string(),
                source,
            })?;
        Ok(target.to_string())
    }

    /// The stored size of an object.
    pub async fn size(&self, key: &Path) -> Result<u64, ArchiveError> {
        self.head(key).await.map(|(size, _)| size)
    }

    /// An object's size and when the store made it durable (microseconds).
    pub async fn head(&self, key: &Path) -> Result<(u64, i64), ArchiveError> {
        self.store
            .head(key)
            .await
            .map(|meta| (meta.size, meta.last_modified.timestamp_micros()))
            .map_err(|source| ArchiveError::Read {
                key: key.to_string(),
                source,
            })
    }

    async fn delete_quietly(&self, key: &Path) {
        if let Err(e) = self.store.delete(key).await {
            tracing::warn!(key = %key, error = %e, "could not delete staging object");
        }
    }

    async fn put_create(&self, key: &Path, data: Bytes) -> Result<Written, ArchiveError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(key, PutPayload::from_bytes(data), options)
            .await
        {
            Ok(_) => self.locked(key, Written::Created).await,
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.locked(key, Written::AlreadyExisted).await
            }
            Err(source) => Err(ArchiveError::Write {
                key: key.to_string(),
                source,
            }),
        }
    }

    async fn publish_staged(&self, staged: &Path, key: &Path) -> Result<Written, ArchiveError> {
        let outcome = match self.store.copy_if_not_exists(staged, key).await {
            Ok(()) => self.locked(key, Written::Created).await,
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.locked(key, Written::AlreadyExisted).await
            }
            Err(source) => Err(ArchiveError::Write {
                key: key.to_string(),
                source,
            }),
        };
        self.delete_quietly(staged).await;
        outcome
    }
}

fn open_s3(config: &Config, bucket: &str) -> Result<object_store::aws::AmazonS3, ArchiveError> {
    let s3 = &config.store.s3;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(&s3.region)
        .with_allow_http(s3.allow_http)
        .with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
    if !s3.endpoint.is_empty() {
        builder = builder.with_endpoint(&s3.endpoint);
    }
    if !s3.access_key_id.is_empty() {
        builder = builder
            .with_access_key_id(&s3.access_key_id)
            .with_secret_access_key(&s3.secret_access_key);
    }
    builder.build().map_err(|source| ArchiveError::Open {
        url: format!("s3://{bucket}"),
        source,
    })
}
