//! Reading a recorder's file before anything is stored: which format it is, what its header
//! claims (checked against the file by the format's reader), its timeline and annotations,
//! and whether it names the referral's patient. Samples stay on disk.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::annotations::{self, Mark};
use super::dicom::{Segment, RATES};
use super::import::ImportError;
use super::recording::{self, Recording};
use super::{edf, ishne, tal, HolterError};
use crate::index::ReferralRow;
use crate::referral::personal_code;

/// A recording read and checked, ready to copy.
pub(super) struct Plan {
    pub recording: Recording,
    /// Gapless stretches, in file order.
    pub segments: Vec<Segment>,
    /// Beats and annotations, by their instant in the file.
    pub marks: Vec<Mark>,
    /// Where the samples start.
    pub data_offset: u64,
    pub source: SourceKind,
    /// The original's key ends in it: `ecg` or `edf`.
    pub extension: &'static str,
    /// The recorder as the file names it.
    pub recorder: String,
}

/// The header the samples are read by.
#[derive(Clone)]
pub(super) enum SourceKind {
    Ishne(Box<ishne::Header>),
    Edf(Box<edf::Header>, Vec<usize>),
}

/// The size and modification time of a file, to see it has not changed.
pub(super) fn file_state(path: &Path) -> Result<(u64, Option<std::time::SystemTime>), ImportError> {
    let meta = std::fs::metadata(path).map_err(HolterError::Io)?;
    Ok((meta.len(), meta.modified().ok()))
}

/// Reads and checks a file's header, its timeline and annotations, without its samples.
pub(super) fn plan(path: &Path, len: u64, ann: Option<&Path>) -> Result<Plan, ImportError> {
    let mut file = BufReader::new(std::fs::File::open(path).map_err(HolterError::Io)?);
    let mut magic = [0u8; 8];
    let got = read_up_to(&mut file, &mut magic)?;
    file.seek(SeekFrom::Start(0)).map_err(HolterError::Io)?;
    let plan = if &magic[..got] == b"ISHNE1.0" {
        let header = ishne::read_header(&mut file, len)?;
        let recording = recording::from_ishne(&header);
        let marks = match ann {
            Some(ann) => {
                let ann_len = std::fs::metadata(ann).map_err(HolterError::Io)?.len();
                let mut source = BufReader::new(std::fs::File::open(ann).map_err(HolterError::Io)?);
                annotations::read_ishne(&mut source, ann_len, recording.instants)?
            }
            None => Vec::new(),
        };
        Plan {
            segments: vec![Segment {
                first: 0,
                count: recording.instants,
                start_micros: 0,
            }],
            marks,
            data_offset: header.data_offset,
            extension: "ecg",
            recorder: header.recorder.clone(),
            recording,
            source: SourceKind::Ishne(Box::new(header)),
        }
    } else if got == 8 && &magic == b"0       " {
        if ann.is_some() {
            return Err(ImportError::Request {
                field: "annotations",
                problem:
                    "an ISHNE annotation file goes with an ISHNE recording; EDF+ carries its own"
                        .into(),
            });
        }
        let header = edf::read_header(&mut file, len)?;
        let (recording, picks) = recording::from_edf(&header)?;
        let timeline = tal::timeline(&mut file, &header)?;
        let per_record = recording.instants / header.records.max(1);
        let segments: Vec<Segment> = timeline
            .runs
            .iter()
            .map(|(first, count, onset)| Segment {
                first: first * per_record,
                count: count * per_record,
                start_micros: (onset * 1e6).round() as i64,
            })
            .collect();
        let mut marks = annotations::from_edf(&timeline.annotations, &segments, recording.rate);
        marks.sort_by_key(|m| m.first);
        Plan {
            segments,
            marks,
            data_offset: header.data_offset,
            extension: "edf",
            recorder: String::new(),
            recording,
            source: SourceKind::Edf(Box::new(header), picks),
        }
    } else {
        return Err(ImportError::Format(
            String::from_utf8_lossy(&magic[..got]).into_owned(),
        ));
    };
    let r = &plan.recording;
    if !RATES.contains(&r.rate) {
        return Err(HolterError::Field {
            field: "sampling_rate",
            problem: format!(
                "{} Hz; an Ambulatory ECG is sampled at 50 to 1000 Hz",
                r.rate
            ),
        }
        .into());
    }
    if r.instants == 0 {
        return Err(HolterError::Field {
            field: "samples",
            problem: "the recording holds no samples".into(),
        }
        .into());
    }
    Ok(plan)
}

fn read_up_to(source: &mut impl Read, buf: &mut [u8]) -> Result<usize, ImportError> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]).map_err(HolterError::Io)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The recording's own patient fields are free text and never prove who it is; but a file
/// that names someone else than the referral is the wrong file. A personal code in the
/// file's patient ID must be the referral's, and a name in the file must contain the
/// referral's family name (letters folded, so `Zukauskiene` is `Žukauskienė`).
pub(super) fn check_patient(recording: &Recording, r: &ReferralRow) -> Result<(), ImportError> {
    let ours = [r.personal_code.as_str(), r.insured_code.as_str()];
    let code = recording
        .patient_id
        .split(|c: char| !c.is_ascii_digit())
        .find(|t| t.len() == 11 && personal_code::parse(t).is_ok());
    if let Some(code) = code {
        if !ours.contains(&code) {
            return Err(ImportError::Patient {
                field: "patient_id",
                problem: format!(
                    "the recording names personal code {code}; referral {} is for {}",
                    r.id,
                    if r.personal_code.is_empty() {
                        &r.insured_code
                    } else {
                        &r.personal_code
                    }
                ),
            });
        }
    }
    let words = |text: &str| -> Vec<String> {
        crate::ingest::meta::search_form(text)
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && *w != "x")
            .map(str::to_owned)
            .collect()
    };
    let theirs = words(&recording.patient_name);
    let family = words(&r.family_name);
    if !theirs.is_empty() && !family.is_empty() && !family.iter().all(|f| theirs.contains(f)) {
        return Err(ImportError::Patient {
            field: "patient_name",
            problem: format!(
                "the recording names {:?}; referral {} is for {} {}",
                recording.patient_name, r.id, r.given_names, r.family_name
            ),
        });
    }
    Ok(())
}
