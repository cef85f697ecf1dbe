//! Writing one object whose key is known only once its content is.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};

use super::{keys, Archive, ArchiveError, Written};

/// An object being written: buffered in memory while small, streamed as a multipart upload to a
/// staging key once it outgrows `store.inline_put_max_bytes`. Dropping it without [`commit`]
/// leaves at most a staging object, which [`Archive::sweep_staging`] removes.
///
/// [`commit`]: ObjectWriter::commit
pub struct ObjectWriter {
    archive: Archive,
    buffer: Vec<u8>,
    upload: Option<(Path, WriteMultipart)>,
    len: u64,
}

impl ObjectWriter {
    pub(super) fn new(archive: Archive) -> ObjectWriter {
        ObjectWriter {
            archive,
            buffer: Vec::new(),
            upload: None,
            len: 0,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), ArchiveError> {
        self.len += data.len() as u64;
        if let Some((key, upload)) = &mut self.upload {
            // Two parts in flight keep a network store's pipe full without letting memory
            // grow; a local part is written to the page cache far faster than the network
            // brings the next one, so one in flight is enough there and memory stays lower.
            let in_flight = if self.archive.is_local() { 1 } else { 2 };
            upload
                .wait_for_capacity(in_flight)
                .await
                .map_err(|source| ArchiveError::Write {
                    key: key.to_string(),
                    source,
                })?;
            upload.write(data);
            return Ok(());
        }
        self.buffer.extend_from_slice(data);
        if self.buffer.len() > self.archive.inline_put_max {
            self.start_upload().await?;
        }
        Ok(())
    }

    async fn start_upload(&mut self) -> Result<(), ArchiveError> {
        let key = keys::staging();
        let upload = self
            .archive
            .store
            .put_multipart(&key)
            .await
            .map_err(|source| ArchiveError::Write {
                key: key.to_string(),
                source,
            })?;
        let mut upload = WriteMultipart::new_with_chunk_size(upload, self.archive.part_size);
        upload.write(&std::mem::take(&mut self.buffer));
        self.upload = Some((key, upload));
        Ok(())
    }

    /// Makes the object durable under `key` unless an object is already there.
    pub async fn commit(self, key: &Path) -> Result<Written, ArchiveError> {
        match self.upload {
            None => self.archive.put_create(key, Bytes::from(self.buffer)).await,
            Some((staged, upload)) => {
                if let Err(source) = upload.finish().await {
                    self.archive.delete_quietly(&staged).await;
                    return Err(ArchiveError::Write {
                        key: staged.to_string(),
                        source,
                    });
                }
                self.archive.publish_staged(&staged, key).await
            }
        }
    }

    /// Gives up the object; nothing of it stays visible.
    pub async fn abort(self) {
        if let Some((staged, upload)) = self.upload {
            if let Err(e) = upload.abort().await {
                tracing::warn!(key = %staged, error = %e, "could not abort staged upload");
            }
            self.archive.delete_quietly(&staged).await;
        }
    }
}
