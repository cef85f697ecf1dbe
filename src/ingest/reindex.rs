//! An object already in the store, indexed again: what an index rebuilt from the store alone
//! is made of. The key says whose the object is (`dicom/{clinic}/…`) and the hash of its data
//! set; the file meta says how it was encoded and which AE sent it; the data set says the rest,
//! read by the same scanner that reads an object as it arrives.

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::meta::{self, InstanceMeta};
use super::scanner::Scanner;
use super::{instance_record, Where};
use super::{Ingest, IngestError, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use crate::archive::ObjectKey;
use crate::index::{InstanceRecord, Recorded};

/// What a stored object's key says: the clinic that sent it and the hash of its data set.
fn key_parts(key: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = key.split('/').collect();
    if parts.len() != 5 || parts[0] != crate::archive::keys::DICOM_PREFIX {
        return None;
    }
    let name = parts[4].strip_suffix(".dcm")?;
    let (_, sha) = name.rsplit_once('_')?;
    (sha.len() == 64).then_some((parts[1], sha))
}

impl Ingest {
    /// Indexes the stored DICOM object at `key` as received at `received_at` from the clinic
    /// its key names (an object whose file meta names `own_ae` as its source was made here: a
    /// report object). An object whose key names no clinic (stored before keys did), or whose
    /// data set no longer gives the hash its key carries, is not placed.
    pub async fn reindex(
        &self,
        key: &str,
        received_at: i64,
        own_ae: &str,
    ) -> Result<Recorded, IngestError> {
        let record = self.reread(key, received_at, own_ae).await?;
        self.record_again(&record).await
    }

    /// Indexes what [`Ingest::reread`] read. Records of one study or patient are to be given
    /// in the order their objects arrived: the first object of a study makes its row.
    pub async fn record_again(&self, record: &InstanceRecord) -> Result<Recorded, IngestError> {
        Ok(self.index.record_instance(record).await?)
    }

    /// Reads the stored DICOM object at `key` again, as [`Ingest::reindex`] takes it, without
    /// indexing it: objects can be read at once and indexed in order.
    pub async fn reread(
        &self,
        key: &str,
        received_at: i64,
        own_ae: &str,
    ) -> Result<InstanceRecord, IngestError> {
        let unplaced = |why: &str| IngestError::NotPart10(format!("stored object {key}: {why}"));
        let (clinic, dataset_sha256) =
            key_parts(key).ok_or_else(|| unplaced("its key names no clinic"))?;
        let mut stream = self.archive.stream(&ObjectKey::from(key)).await?;
        let mut whole = Sha256::new();
        let mut dataset = Sha256::new();
        let mut size = 0u64;
        let mut head: Vec<u8> = Vec::new();
        let mut reading: Option<(Scanner, String, String)> = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            whole.update(&chunk);
            size += chunk.len() as u64;
            let rest: &[u8] = match &mut reading {
                Some((scanner, _, _)) => {
                    dataset.update(&chunk);
                    scanner.feed(&chunk)?;
                    continue;
                }
                None => {
                    head.extend_from_slice(&chunk);
                    if head.len() < 144 {
                        continue;
                    }
                    if &head[128..132] != b"DICM" {
                        return Err(unplaced("no Part 10 header"));
                    }
                    let group =
                        u32::from_le_bytes([head[140], head[141], head[142], head[143]]) as usize;
                    if head.len() < 144 + group {
                        continue;
                    }
                    &head[144 + group..]
                }
            };
            let start = head.len() - rest.len();
            let table = dicom_object::meta::FileMetaTable::from_reader(&head[128..start])
                .map_err(|e| unplaced(&e.to_string()))?;
            let syntax = table
                .transfer_syntax()
                .trim_end_matches(['\0', ' '])
                .to_owned();
            let source_ae = table
                .source_application_entity_title
                .as_deref()
                .unwrap_or("")
                .trim_end_matches(['\0', ' '])
                .to_owned();
            let mut scanner = Scanner::new(
                syntax != IMPLICIT_VR_LITTLE_ENDIAN,
                syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
                meta::wanted,
            );
            dataset.update(rest);
            scanner.feed(rest)?;
            reading = Some((scanner, syntax, source_ae));
        }
        let (scanner, syntax, source_ae) =
            reading.ok_or_else(|| unplaced("shorter than its header"))?;
        if hex::encode(dataset.finalize()) != dataset_sha256.to_ascii_lowercase() {
            return Err(unplaced(
                "its data set no longer gives the hash its key carries",
            ));
        }
        let meta = InstanceMeta::from_kept(&scanner.finish()?);
        let sha256 = hex::encode(whole.finalize());
        let dataset_sha256 = dataset_sha256.to_ascii_lowercase();
        Ok(InstanceRecord {
            received_at: Some(received_at),
            ..instance_record(
                &meta,
                Where {
                    key,
                    size,
                    sha256: &sha256,
                    dataset_sha256: &dataset_sha256,
                    transfer_syntax: &syntax,
                    clinic_id: clinic,
                    calling_ae: &source_ae,
                    made_here: source_ae == own_ae,
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::key_parts;

    #[test]
    fn the_key_names_the_clinic_and_the_data_set_hash() {
        let sha = "ab".repeat(32);
        assert_eq!(
            key_parts(&format!("dicom/demo/1.2/1.2.3/1.2.3.4_{sha}.dcm")),
            Some(("demo", sha.as_str()))
        );
        assert_eq!(
            key_parts(&format!("dicom/1.2/1.2.3/1.2.3.4_{sha}.dcm")),
            None
        );
        assert_eq!(key_parts("cda/x.xml"), None);
    }
}
