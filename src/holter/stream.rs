//! The writing side of an import: a blocking thread reads the samples a block at a time,
//! writes each hour's instance, and hands the bytes to the ingest through a bounded channel,
//! so memory holds a few chunks whatever the recording's length.

use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::annotations::Mark;
use super::copy;
use super::dicom::{write_instance, Part};
use super::import::ImportError;
use super::plan::SourceKind;
use super::recording::{EdfInstants, Recording};
use super::{edf, ishne, HolterError, Instants};

/// Bytes handed to the ingest at a time: its hashing thread queues a few dozen of these.
const CHUNK: usize = 64 * 1024;

/// What the writing thread hands the ingest.
pub(super) enum Piece {
    Begin,
    Bytes(Vec<u8>),
    End,
}

/// Everything the writing thread needs, owned.
pub(super) struct Job {
    pub path: PathBuf,
    pub data_offset: u64,
    pub source: SourceKind,
    pub recording: Recording,
    pub marks: Vec<Mark>,
    pub parts: Vec<Part>,
    /// What every instance carries above its samples.
    pub template: dicom_object::InMemDicomObject,
    /// Each part's SOP Instance UID.
    pub uids: Vec<String>,
}

impl Job {
    /// Writes every part in turn; stops quietly when the ingest stops reading (its error is
    /// the one reported).
    pub fn run(self, tx: &mpsc::Sender<Piece>) -> Result<(), ImportError> {
        let mut file = std::fs::File::open(&self.path).map_err(HolterError::Io)?;
        file.seek(SeekFrom::Start(self.data_offset))
            .map_err(HolterError::Io)?;
        let reader = BufReader::with_capacity(1024 * 1024, file);
        let mut samples: Box<dyn Instants> = match &self.source {
            SourceKind::Ishne(h) => Box::new(ishne::Samples::new(reader, h)),
            SourceKind::Edf(h, picks) => Box::new(EdfInstants::new(
                edf::Records::new(reader, h),
                h,
                picks.clone(),
            )),
        };
        for (part, uid) in self.parts.iter().zip(&self.uids) {
            let head = copy::head(&self.template, &self.recording, *part, uid, &self.marks);
            if tx.blocking_send(Piece::Begin).is_err() {
                return Ok(());
            }
            let mut pipe = Pipe {
                tx,
                buffer: Vec::with_capacity(CHUNK),
            };
            match write_instance(
                &mut pipe,
                &head,
                &self.recording.channels,
                self.recording.rate,
                *part,
                samples.as_mut(),
            ) {
                Ok(()) => {}
                // The ingest stopped reading: its error is the one to report.
                Err(HolterError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(())
                }
                Err(e) => return Err(e.into()),
            }
            if pipe.flush().is_err() || tx.blocking_send(Piece::End).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A writer that hands its bytes to the ingest a chunk at a time.
struct Pipe<'a> {
    tx: &'a mpsc::Sender<Piece>,
    buffer: Vec<u8>,
}

impl Pipe<'_> {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Piece::Bytes(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the ingest stopped"))
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
