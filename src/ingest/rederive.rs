//! Demographics read again from stored objects: for patient records the migration to
//! per-clinic records could not tell apart (one row had served several clinics, holding
//! whichever clinic wrote last). Each clinic's record takes what that clinic's own newest object
//! says. Runs at start-up, in the background, until no record is stale; a record something
//! wrote meanwhile is left as that write made it.

use bytes::BytesMut;
use futures::StreamExt;

use super::meta::{self, InstanceMeta};
use super::scanner::Scanner;
use super::{Ingest, IngestError, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use crate::archive::ObjectKey;
use crate::index::demographics::Held;

/// The patient module sits near the start of a data set: this much of an object is enough.
const HEAD_BYTES: usize = 1024 * 1024;

impl Ingest {
    /// Refreshes every stale patient record; answers how many were refreshed.
    pub async fn rederive_stale_patients(&self) -> usize {
        let mut done = 0;
        loop {
            let batch = match self.index.stale_patients(100).await {
                Ok(batch) if !batch.is_empty() => batch,
                Ok(_) => return done,
                Err(e) => {
                    tracing::warn!(error = %e, "stale patient records not refreshed; next start-up tries again");
                    return done;
                }
            };
            for record in &batch {
                let read = if record.object_key.is_empty() {
                    None
                } else {
                    match self.patient_of(&record.object_key).await {
                        Ok(m) => Some(Held {
                            name_search: meta::search_form(&m.patient_name),
                            name: m.patient_name,
                            birth_date: m.birth_date,
                            sex: m.sex,
                            maintained_by: String::new(),
                        }),
                        Err(e) => {
                            // Left stale: the next start-up tries again.
                            tracing::warn!(key = %record.object_key, error = %e, "patient record not refreshed");
                            return done;
                        }
                    }
                };
                if let Err(e) = self.index.refresh_stale(record, read.as_ref()).await {
                    tracing::warn!(error = %e, "patient record not refreshed");
                    return done;
                }
                done += 1;
            }
        }
    }

    /// The attributes a stored object's first megabyte gives.
    async fn patient_of(&self, key: &str) -> Result<InstanceMeta, IngestError> {
        let mut stream = self.archive.stream(&ObjectKey::from(key)).await?;
        let mut head = BytesMut::new();
        while head.len() < HEAD_BYTES {
            match stream.next().await {
                Some(chunk) => head.extend_from_slice(&chunk?),
                None => break,
            }
        }
        let malformed = |why: String| IngestError::NotPart10(format!("stored object {key}: {why}"));
        if head.len() < 144 || &head[128..132] != b"DICM" {
            return Err(malformed("no Part 10 header".into()));
        }
        let group = u32::from_le_bytes([head[140], head[141], head[142], head[143]]) as usize;
        let start = (144 + group).min(head.len());
        let table = dicom_object::meta::FileMetaTable::from_reader(&head[128..start])
            .map_err(|e| malformed(e.to_string()))?;
        let syntax = table.transfer_syntax().trim_end_matches(['\0', ' ']);
        let mut scanner = Scanner::new(
            syntax != IMPLICIT_VR_LITTLE_ENDIAN,
            syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
            meta::wanted,
        );
        // The head ends anywhere, mid-element most likely: what was kept before it is whole.
        let _ = scanner.feed(&head[start..]);
        Ok(InstanceMeta::from_kept(scanner.kept()))
    }
}
