//! EDF+ time-stamped annotation lists (TALs): what the annotations signal says, and the
//! timeline it gives a file — each record's own start, so a discontinuous (EDF+D) recording's
//! gaps are known before a sample is copied.

use std::io::Read;

use super::edf::{Header, Signal, Variant};
use super::HolterError;

fn field(field: &'static str, problem: impl Into<String>) -> HolterError {
    HolterError::field(field, problem)
}

/// One annotation of an EDF+ record: when (seconds from the start), for how long, what.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub onset: f64,
    pub duration: Option<f64>,
    pub text: String,
}

/// The time-stamped annotation lists (TALs) of one record's annotations signal. The first
/// TAL of each record holds the record's own start (an empty text); it comes back as an
/// annotation with no text, which the caller uses for discontinuous files.
pub fn annotations(samples: &[i16]) -> Result<Vec<Annotation>, HolterError> {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = Vec::new();
    for tal in bytes.split(|b| *b == 0).filter(|t| !t.is_empty()) {
        let mut parts = tal.split(|b| *b == 0x14);
        let stamp = parts.next().unwrap_or_default();
        let mut stamp = stamp.split(|b| *b == 0x15);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let onset = text(stamp.next().unwrap_or_default());
        let onset: f64 = onset
            .parse()
            .map_err(|_| field("annotations", format!("onset {onset:?} is not a number")))?;
        let duration = match stamp.next() {
            Some(d) => Some(text(d).parse::<f64>().map_err(|_| {
                field(
                    "annotations",
                    format!("duration {:?} is not a number", text(d)),
                )
            })?),
            None => None,
        };
        let texts: Vec<String> = parts.map(text).collect();
        if texts.iter().all(String::is_empty) {
            out.push(Annotation {
                onset,
                duration,
                text: String::new(),
            });
        }
        for t in texts.into_iter().filter(|t| !t.is_empty()) {
            out.push(Annotation {
                onset,
                duration,
                text: t,
            });
        }
    }
    Ok(out)
}

/// When each stretch of an EDF file was sampled, and what its annotations signal says: read
/// record by record, only the annotations' bytes of each (the samples stay on disk).
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Gapless runs of records, in file order, as (first record, records, onset seconds).
    pub runs: Vec<(u64, u64, f64)>,
    pub annotations: Vec<Annotation>,
}

/// The timeline of `header`'s file. A plain EDF or EDF+C file is one run; an EDF+D file
/// breaks where a record's own time stamp is not where the record before it ended, and a
/// record that starts before the last one ended is refused.
pub fn timeline(
    source: &mut (impl Read + std::io::Seek),
    header: &Header,
) -> Result<Timeline, HolterError> {
    let Some(signal) = header.signals.iter().position(Signal::is_annotations) else {
        return Ok(Timeline {
            runs: vec![(0, header.records, 0.0)],
            annotations: Vec::new(),
        });
    };
    let offset: usize = header.signals[..signal]
        .iter()
        .map(|s| 2 * s.samples_per_record)
        .sum();
    let mut bytes = vec![0u8; 2 * header.signals[signal].samples_per_record];
    let mut runs: Vec<(u64, u64, f64)> = Vec::new();
    let mut all = Vec::new();
    // Half a millisecond: time stamps are decimal text, and no rate here is above 1 kHz.
    let tolerance = 0.0005;
    for record in 0..header.records {
        let at = header.data_offset + record * header.record_bytes as u64 + offset as u64;
        source.seek(std::io::SeekFrom::Start(at))?;
        source.read_exact(&mut bytes).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                HolterError::Truncated(format!(
                    "record {record} of {} is cut short",
                    header.records
                ))
            } else {
                HolterError::Io(e)
            }
        })?;
        let samples: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let mut list = annotations(&samples)?;
        let stamp = match list.first() {
            Some(a) if a.text.is_empty() => a.onset,
            _ => {
                return Err(field(
                    "annotations",
                    format!("record {record} has no time stamp of its own"),
                ))
            }
        };
        list.remove(0);
        all.extend(list);
        match runs.last_mut() {
            Some((first, count, onset)) => {
                let end = *onset + *count as f64 * header.record_seconds;
                if header.variant != Variant::PlusDiscontinuous || (stamp - end).abs() < tolerance {
                    *count += 1;
                } else if stamp < end {
                    return Err(field(
                        "annotations",
                        format!(
                            "record {record} starts at {stamp} s, before the record ahead of it \
                             ends ({end} s)"
                        ),
                    ));
                } else {
                    let next = *first + *count;
                    runs.push((next, 1, stamp));
                }
            }
            None => runs.push((0, 1, stamp)),
        }
    }
    Ok(Timeline {
        runs,
        annotations: all,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holter::edf::read_header;
    use crate::holter::edf::tests::write;

    #[test]
    fn annotations_are_read_from_their_signal() {
        let tal = b"+0\x14\x14\0+12.5\x150.2\x14Ventricular run\x14\0+30\x14Patient event\x14\0\0";
        let mut bytes = tal.to_vec();
        bytes.resize(bytes.len() + bytes.len() % 2, 0);
        let samples: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let read = annotations(&samples).unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].text, "", "the record's own start");
        assert_eq!(read[1].onset, 12.5);
        assert_eq!(read[1].duration, Some(0.2));
        assert_eq!(read[1].text, "Ventricular run");
        assert_eq!(read[2].text, "Patient event");
    }

    /// An EDF+D file of three one-second records, 100 ECG samples each, the third after a
    /// gap: its records' time stamps are 0, 1 and 5 s, and the second carries an event.
    fn discontinuous(stamps: [&str; 3]) -> Vec<u8> {
        let (mut file, _) = write(
            &[
                ("ECG II", "uV", -3276.8, 3276.7, 100),
                ("EDF Annotations", "", -1.0, 1.0, 30),
            ],
            3,
            3,
        );
        file[192..197].copy_from_slice(b"EDF+D");
        let data = 256 * 3;
        for (r, stamp) in stamps.iter().enumerate() {
            let mut tal = format!("+{stamp}\x14\x14\0").into_bytes();
            if r == 1 {
                tal.extend(b"+1.5\x150.25\x14Button\x14\0");
            }
            tal.resize(60, 0);
            let at = data + r * 260 + 200;
            file[at..at + 60].copy_from_slice(&tal);
        }
        file
    }

    #[test]
    fn discontinuous_records_make_runs() {
        let file = discontinuous(["0", "1", "5"]);
        let mut source = std::io::Cursor::new(&file[..]);
        let header = read_header(&mut source, file.len() as u64).unwrap();
        assert_eq!(header.variant, Variant::PlusDiscontinuous);
        let t = timeline(&mut source, &header).unwrap();
        assert_eq!(t.runs, [(0, 2, 0.0), (2, 1, 5.0)]);
        assert_eq!(t.annotations.len(), 1);
        assert_eq!(t.annotations[0].text, "Button");
        let overlapping = discontinuous(["0", "1", "1.5"]);
        let mut source = std::io::Cursor::new(&overlapping[..]);
        let header = read_header(&mut source, overlapping.len() as u64).unwrap();
        let err = timeline(&mut source, &header).unwrap_err();
        assert!(err.to_string().contains("before the record ahead"), "{err}");
    }
}
