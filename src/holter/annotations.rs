//! What an analyser or the patient marked on a recording, carried into the copy as DICOM
//! waveform annotations (PS3.3 C.10.10): the beat labels of an ISHNE annotation file
//! (`.ann`, the THEW layout: the ISHNE header with magic `ANN  1.0`, the first beat's sample,
//! then four bytes a beat — label, internal code, samples since the beat before) and the
//! texts of an EDF+ annotations signal (button presses, events, with their durations).
//!
//! A mark is placed by its instant in the file's stream of samples, so it lands in the
//! instance holding that instant, at its position there (1-based, as the IOD counts).

use std::io::Read;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::dicom::{put, Part, Segment};
use super::{tal, HolterError};

const ANN_MAGIC: &[u8; 8] = b"ANN  1.0";
/// The ISHNE fixed header: magic, CRC, then 512 bytes.
const FIXED: usize = 522;
/// More beats than a week at 300 beats a minute is not an annotation file.
const MAX_MARKS: u64 = 3_000_000;

/// One mark: from instant `first` of the file's samples, for `length` instants (0: a point).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub first: u64,
    pub length: u64,
    pub text: String,
}

/// The meaning of an ISHNE beat label (THEW annotation file specification).
fn beat_label(label: u8) -> &'static str {
    match label {
        b'N' => "normal beat",
        b'V' => "premature ventricular contraction",
        b'S' => "supraventricular premature beat",
        b'C' => "calibration pulse",
        b'B' => "bundle branch block beat",
        b'P' => "pacemaker beat",
        b'X' => "artefact",
        b'U' => "unknown beat",
        _ => "unlisted label",
    }
}

fn field(problem: impl Into<String>) -> HolterError {
    HolterError::Field {
        field: "annotations",
        problem: problem.into(),
    }
}

/// The beats of an ISHNE annotation file of `file_len` bytes, for a recording of `instants`
/// instants. A timeout record (`!`) moves the count on without a beat of its own.
pub fn read_ishne(
    source: &mut impl Read,
    file_len: u64,
    instants: u64,
) -> Result<Vec<Mark>, HolterError> {
    let mut fixed = vec![0u8; FIXED];
    source
        .read_exact(&mut fixed)
        .map_err(|_| field(format!("{file_len} bytes cannot hold an ISHNE header")))?;
    if &fixed[..8] != ANN_MAGIC {
        return Err(field(format!(
            "the first 8 bytes are {:?}, not \"ANN  1.0\"",
            String::from_utf8_lossy(&fixed[..8])
        )));
    }
    let var_len = i32::from_le_bytes([fixed[10], fixed[11], fixed[12], fixed[13]]);
    let var_len = u64::try_from(var_len)
        .ok()
        .filter(|v| (FIXED as u64 + *v + 4) <= file_len && *v <= 16 * 1024 * 1024)
        .ok_or_else(|| field(format!("variable block of {var_len} bytes")))?;
    let mut var_block = vec![0u8; var_len as usize];
    source.read_exact(&mut var_block)?;
    let stored = u16::from_le_bytes([fixed[8], fixed[9]]);
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);
    let mut digest = crc.digest();
    digest.update(&fixed[10..]);
    digest.update(&var_block);
    let computed = digest.finalize();
    if stored != computed {
        return Err(field(format!(
            "header CRC: the file says {stored:#06x}, the header computes to {computed:#06x}"
        )));
    }
    let body = file_len - FIXED as u64 - var_len - 4;
    if !body.is_multiple_of(4) || body / 4 > MAX_MARKS {
        return Err(field(format!(
            "{body} bytes of beats is not a whole number of 4-byte records"
        )));
    }
    let mut first = [0u8; 4];
    source.read_exact(&mut first)?;
    let mut at = u64::from(u32::from_le_bytes(first));
    let mut records = vec![0u8; body as usize];
    source.read_exact(&mut records)?;
    let mut marks = Vec::new();
    for r in records.chunks_exact(4) {
        at += u64::from(u16::from_le_bytes([r[2], r[3]]));
        if r[0] == b'!' {
            continue;
        }
        if at >= instants {
            return Err(field(format!(
                "a beat at sample {at}, after the recording's {instants} samples"
            )));
        }
        marks.push(Mark {
            first: at,
            length: 0,
            text: format!("{} {}", char::from(r[0]), beat_label(r[0])),
        });
    }
    Ok(marks)
}

/// The file instant sampled `micros` after the recording's start, by the segment holding it
/// (or the next one, for a time inside a gap).
fn instant_at(segments: &[Segment], rate: u32, micros: i64) -> Option<u64> {
    let per_second = i128::from(rate);
    segments.iter().find_map(|s| {
        let end = s.start_micros + super::dicom::micros_at(s.count, rate);
        if micros >= end {
            return None;
        }
        let into = i128::from((micros - s.start_micros).max(0));
        let k = u64::try_from(into * per_second / 1_000_000).ok()?;
        Some(s.first + k.min(s.count.saturating_sub(1)))
    })
}

/// The texts of an EDF+ annotations signal as marks, placed through the recording's
/// segments; the records' own time stamps (no text) are not marks.
pub fn from_edf(list: &[tal::Annotation], segments: &[Segment], rate: u32) -> Vec<Mark> {
    list.iter()
        .filter(|a| !a.text.is_empty())
        .filter_map(|a| {
            let micros = (a.onset * 1e6).round() as i64;
            let first = instant_at(segments, rate, micros)?;
            let length = a
                .duration
                .map_or(0, |d| (d * f64::from(rate)).round().max(0.0) as u64);
            Some(Mark {
                first,
                length,
                text: a.text.clone(),
            })
        })
        .collect()
}

/// The Waveform Annotation Sequence items of the marks that start in `part`, sorted marks
/// assumed; a segment running past the instance ends at its last sample.
pub fn items(marks: &[Mark], part: Part) -> Vec<InMemDicomObject> {
    let from = marks.partition_point(|m| m.first < part.first);
    let to = marks.partition_point(|m| m.first < part.first + part.count);
    marks[from..to]
        .iter()
        .map(|m| {
            let mut item = InMemDicomObject::new_empty();
            put(
                &mut item,
                tags::UNFORMATTED_TEXT_VALUE,
                VR::ST,
                m.text.as_str(),
            );
            // Group 1, channel 0: every channel of the one multiplex group.
            put(
                &mut item,
                tags::REFERENCED_WAVEFORM_CHANNELS,
                VR::US,
                PrimitiveValue::U16([1u16, 0].into_iter().collect()),
            );
            let start = (m.first - part.first + 1) as u32;
            if m.length == 0 {
                put(&mut item, tags::TEMPORAL_RANGE_TYPE, VR::CS, "POINT");
                put(&mut item, tags::REFERENCED_SAMPLE_POSITIONS, VR::UL, start);
            } else {
                let last = (m.first + m.length).min(part.first + part.count) - part.first;
                put(&mut item, tags::TEMPORAL_RANGE_TYPE, VR::CS, "SEGMENT");
                put(
                    &mut item,
                    tags::REFERENCED_SAMPLE_POSITIONS,
                    VR::UL,
                    PrimitiveValue::U32([start, last as u32].into_iter().collect()),
                );
            }
            item
        })
        .collect()
}

/// The annotation items as the sequence element a head carries.
pub fn sequence(items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(
        tags::WAVEFORM_ANNOTATION_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(items),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An annotation file: the first beat's sample, then (label, samples since the last).
    pub(crate) fn write_ann(first: u32, beats: &[(u8, u16)]) -> Vec<u8> {
        let mut header = vec![0u8; FIXED - 10];
        header[8..12].copy_from_slice(&(FIXED as i32).to_le_bytes());
        let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);
        let mut out = ANN_MAGIC.to_vec();
        out.extend(crc.checksum(&header).to_le_bytes());
        out.extend(&header);
        out.extend(first.to_le_bytes());
        for (label, toc) in beats {
            out.extend([*label, b'0']);
            out.extend(toc.to_le_bytes());
        }
        out
    }

    #[test]
    fn beats_follow_their_intervals_and_timeouts_carry_time() {
        let file = write_ann(100, &[(b'N', 160), (b'V', 120), (b'!', 1000), (b'N', 200)]);
        let marks = read_ishne(&mut &file[..], file.len() as u64, 10_000).unwrap();
        let at: Vec<u64> = marks.iter().map(|m| m.first).collect();
        assert_eq!(at, [260, 380, 1580]);
        assert_eq!(marks[1].text, "V premature ventricular contraction");
        let late = write_ann(100, &[(b'N', 60000)]);
        let err = read_ishne(&mut &late[..], late.len() as u64, 10_000).unwrap_err();
        assert!(err.to_string().contains("after the recording"), "{err}");
        let mut bad = file.clone();
        bad[200] ^= 1;
        let err = read_ishne(&mut &bad[..], bad.len() as u64, 10_000).unwrap_err();
        assert!(
            err.to_string().starts_with("annotations: header CRC"),
            "{err}"
        );
    }

    #[test]
    fn marks_land_in_their_instance_at_their_position() {
        let marks = vec![
            Mark {
                first: 5,
                length: 0,
                text: "a".into(),
            },
            Mark {
                first: 120,
                length: 50,
                text: "b".into(),
            },
        ];
        let part = Part {
            index: 1,
            first: 100,
            count: 60,
            start_micros: 0,
        };
        let got = items(&marks, part);
        assert_eq!(got.len(), 1);
        let positions = got[0]
            .element(tags::REFERENCED_SAMPLE_POSITIONS)
            .unwrap()
            .to_multi_int::<u32>()
            .unwrap();
        assert_eq!(positions, [21, 60]);
    }

    #[test]
    fn edf_marks_skip_gaps_by_time() {
        let segments = [
            Segment {
                first: 0,
                count: 200,
                start_micros: 0,
            },
            Segment {
                first: 200,
                count: 200,
                start_micros: 10_000_000,
            },
        ];
        let list = [
            tal::Annotation {
                onset: 0.5,
                duration: None,
                text: "start".into(),
            },
            tal::Annotation {
                onset: 10.25,
                duration: Some(0.5),
                text: "press".into(),
            },
            tal::Annotation {
                onset: 3.0,
                duration: None,
                text: String::new(),
            },
        ];
        let marks = from_edf(&list, &segments, 100);
        assert_eq!(
            marks,
            [
                Mark {
                    first: 50,
                    length: 0,
                    text: "start".into()
                },
                Mark {
                    first: 225,
                    length: 50,
                    text: "press".into()
                }
            ]
        );
    }
}
