//! Objects that arrive as whole Part 10 files (STOW-RS): the file meta says what the object is,
//! and the data set after it goes through the same pipeline as a C-STORE data set, with the
//! same checks and the same durability. The sender's file meta is replaced by ours.

use super::{accepted, Declared, Ingest, IngestError, Origin, Receiving, Stored};

/// Preamble, "DICM", and the (0002,0000) group length element (PS3.10 7.1).
const HEAD: usize = 128 + 4 + 12;
/// A file meta group larger than this is not one.
const MAX_META: usize = 64 * 1024;

/// A Part 10 object being received.
pub struct Part10Receiving {
    ingest: Ingest,
    origin: Origin,
    study_uid: Option<String>,
    head: Vec<u8>,
    receiving: Option<Receiving>,
    declared: Option<Declared>,
    failure: Option<IngestError>,
}

impl Ingest {
    /// Starts receiving a Part 10 file; with `study_uid`, the object must belong to that study.
    pub fn begin_part10(&self, origin: Origin, study_uid: Option<String>) -> Part10Receiving {
        Part10Receiving {
            ingest: self.clone(),
            origin,
            study_uid,
            head: Vec::new(),
            receiving: None,
            declared: None,
            failure: None,
        }
    }
}

impl Part10Receiving {
    /// What the file meta declared, once it has been read (for per-instance answers).
    pub fn declared(&self) -> Option<&Declared> {
        self.declared.as_ref()
    }

    pub async fn write(&mut self, chunk: &[u8]) {
        if self.failure.is_some() {
            return;
        }
        if let Some(receiving) = self.receiving.as_mut() {
            receiving.write(chunk).await;
            return;
        }
        self.head.extend_from_slice(chunk);
        match self.meta_end() {
            Err(e) => self.failure = Some(e),
            Ok(None) => {}
            Ok(Some(end)) => {
                if let Err(e) = self.begin(end).await {
                    self.failure = Some(e);
                }
            }
        }
    }

    /// Where the file meta ends, once enough has arrived to know.
    fn meta_end(&self) -> Result<Option<usize>, IngestError> {
        let head = &self.head;
        if head.len() < HEAD {
            return Ok(None);
        }
        if &head[128..132] != b"DICM" {
            return Err(IngestError::NotPart10(
                "no DICM prefix after the preamble".into(),
            ));
        }
        if head[132..136] != [2, 0, 0, 0] || &head[136..138] != b"UL" {
            return Err(IngestError::NotPart10(
                "the file meta does not start with its group length".into(),
            ));
        }
        let group = u32::from_le_bytes([head[140], head[141], head[142], head[143]]) as usize;
        if group > MAX_META {
            return Err(IngestError::NotPart10(format!(
                "file meta group of {group} bytes"
            )));
        }
        Ok((head.len() >= HEAD + group).then_some(HEAD + group))
    }

    async fn begin(&mut self, end: usize) -> Result<(), IngestError> {
        let table = dicom_object::meta::FileMetaTable::from_reader(&self.head[128..end])
            .map_err(|e| IngestError::NotPart10(e.to_string()))?;
        let trim = |s: &str| s.trim_end_matches(['\0', ' ']).to_owned();
        let sop_class = trim(&table.media_storage_sop_class_uid);
        let transfer_syntax = trim(table.transfer_syntax());
        if !accepted::TRANSFER_SYNTAXES.contains(&transfer_syntax.as_str()) {
            return Err(IngestError::TransferSyntax(transfer_syntax));
        }
        if !accepted::accepts(&self.ingest.extra_sop_classes, &sop_class, &transfer_syntax) {
            return Err(IngestError::SopClass(sop_class));
        }
        let declared = Declared {
            sop_class_uid: sop_class.clone(),
            sop_instance_uid: trim(&table.media_storage_sop_instance_uid),
            transfer_syntax,
            context_sop_class_uid: sop_class,
            study_uid: self.study_uid.clone(),
        };
        self.declared = Some(declared.clone());
        let mut receiving = self.ingest.begin(self.origin.clone(), declared).await;
        receiving.write(&self.head[end..]).await;
        self.head = Vec::new();
        self.receiving = Some(receiving);
        Ok(())
    }

    /// Gives up (the upload broke off): nothing of the object stays visible.
    pub async fn abort(self) {
        if let Some(receiving) = self.receiving {
            receiving.abort().await;
        }
    }

    /// Checks the complete object, makes it durable and indexes it.
    pub async fn finish(self) -> Result<Stored, IngestError> {
        if let Some(failure) = self.failure {
            if let Some(receiving) = self.receiving {
                receiving.abort().await;
            }
            return Err(failure);
        }
        match self.receiving {
            Some(receiving) => receiving.finish().await,
            None => Err(IngestError::NotPart10(format!(
                "only {} bytes, which end inside the file header",
                self.head.len()
            ))),
        }
    }
}
