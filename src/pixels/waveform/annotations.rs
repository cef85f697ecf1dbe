//! The Waveform Annotation Module (PS3.3 C.10.10): what a device or a reader marked on a
//! recording (a patient-pressed event, an arrhythmia run, a pause, a measurement) and where.
//!
//! An annotation says what it is by free text or by a coded concept (with a coded or numeric
//! value), which channels it is about as (group, channel) pairs, and when: a point, several
//! points, a segment or several, as sample positions (from 1) or as seconds. Several points
//! or segments become one [`Annotation`] each, so a viewer only deals in spans of time.

use dicom_core::Tag;
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};

use super::{
    number, text, u16_at, u32_at, Element, Group, SPECIFIC_CHARACTER_SET,
    WAVEFORM_ANNOTATION_SEQUENCE,
};

const UNFORMATTED_TEXT_VALUE: Tag = Tag(0x0070, 0x0006);
const CONCEPT_NAME_CODE_SEQUENCE: Tag = Tag(0x0040, 0xA043);
const CONCEPT_CODE_SEQUENCE: Tag = Tag(0x0040, 0xA168);
const NUMERIC_VALUE: Tag = Tag(0x0040, 0xA30A);
const MEASUREMENT_UNITS_CODE_SEQUENCE: Tag = Tag(0x0040, 0x08EA);
const REFERENCED_WAVEFORM_CHANNELS: Tag = Tag(0x0040, 0xA0B0);
const TEMPORAL_RANGE_TYPE: Tag = Tag(0x0040, 0xA130);
const REFERENCED_SAMPLE_POSITIONS: Tag = Tag(0x0040, 0xA132);
const REFERENCED_TIME_OFFSETS: Tag = Tag(0x0040, 0xA138);
const CODE_VALUE: Tag = Tag(0x0008, 0x0100);
const CODE_MEANING: Tag = Tag(0x0008, 0x0104);

/// One marked point or span of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// What was marked, as a reader would say it: "Heart rate: 72 /min", "Patient event".
    pub label: String,
    /// Seconds from the start of the recording; `None` for what concerns the whole recording
    /// (a measurement such as the mean heart rate).
    pub start: Option<f64>,
    /// The end of a segment; the same as `start` for a point.
    pub end: Option<f64>,
    /// The channels it is about, as (multiplex group, channel) indices from 0; empty when it
    /// names none.
    pub channels: Vec<(usize, usize)>,
}

impl Annotation {
    /// Whether it concerns group `group` (from 0): it names one of its channels, or none.
    pub fn concerns(&self, group: usize) -> bool {
        self.channels.is_empty() || self.channels.iter().any(|&(g, _)| g == group)
    }

    /// Whether it lies (at least partly) in `from..to` seconds, or concerns the whole recording.
    pub fn overlaps(&self, from: f64, to: f64) -> bool {
        match (self.start, self.end) {
            (Some(start), Some(end)) => start <= to && end >= from,
            _ => true,
        }
    }
}

fn u16_values(e: &Element) -> Vec<u16> {
    e.bytes
        .as_ref()
        .map(|b| (0..b.len() / 2).map(|i| u16_at(b, i * 2)).collect())
        .unwrap_or_default()
}

fn u32_values(e: &Element) -> Vec<u32> {
    e.bytes
        .as_ref()
        .map(|b| (0..b.len() / 4).map(|i| u32_at(b, i * 4)).collect())
        .unwrap_or_default()
}

fn decimals(e: &Element) -> Vec<f64> {
    text(e)
        .split('\\')
        .filter_map(|v| v.trim().parse().ok())
        .filter(|v: &f64| v.is_finite())
        .collect()
}

/// Text values in the object's character set (its last term names the set carrying national
/// letters); without one, UTF-8 as found in practice.
fn decoder(elements: &[Element]) -> impl Fn(&Element) -> String {
    let charset = elements
        .iter()
        .find(|e| e.path.is_empty() && e.tag == SPECIFIC_CHARACTER_SET)
        .and_then(|e| {
            let terms = text(e);
            let last = terms.split('\\').map(str::trim).rfind(|t| !t.is_empty())?;
            SpecificCharacterSet::from_code(last)
        });
    move |e: &Element| match (&charset, &e.bytes) {
        (Some(cs), Some(bytes)) => cs
            .decode(bytes)
            .map(|t| t.trim_matches([' ', '\0']).to_owned())
            .unwrap_or_else(|_| text(e)),
        _ => text(e),
    }
}

/// The annotations among the walked `elements`, timed with the sampling frequency of the
/// `groups` they refer to. An item that cannot be placed in time is kept as concerning the
/// whole recording rather than dropped: a reader still sees what was said.
pub(super) fn read(elements: &[Element], groups: &[Group]) -> Vec<Annotation> {
    let items = elements
        .iter()
        .filter(|e| {
            e.path
                .first()
                .is_some_and(|p| p.0 == WAVEFORM_ANNOTATION_SEQUENCE)
        })
        .map(|e| e.path[0].1)
        .max()
        .map_or(0, |last| last + 1);
    let decode = decoder(elements);
    let mut out = Vec::new();
    for i in 0..items {
        let item = [(WAVEFORM_ANNOTATION_SEQUENCE, i)];
        let own = |tag: Tag| elements.iter().find(|e| e.path == item && e.tag == tag);
        let coded = |sequence: Tag, tag: Tag| {
            elements
                .iter()
                .find(|e| {
                    e.path.len() == 2
                        && e.path[0] == item[0]
                        && e.path[1] == (sequence, 0)
                        && e.tag == tag
                })
                .map(&decode)
                .filter(|t| !t.is_empty())
        };
        let label = own(UNFORMATTED_TEXT_VALUE)
            .map(&decode)
            .filter(|t| !t.is_empty())
            .or_else(|| {
                let name = coded(CONCEPT_NAME_CODE_SEQUENCE, CODE_MEANING)?;
                let value = coded(CONCEPT_CODE_SEQUENCE, CODE_MEANING).or_else(|| {
                    let value = own(NUMERIC_VALUE).and_then(number)?;
                    let unit = coded(MEASUREMENT_UNITS_CODE_SEQUENCE, CODE_VALUE)
                        .filter(|u| u != "1")
                        .unwrap_or_default();
                    Some(format!("{value} {unit}").trim_end().to_owned())
                });
                Some(match value {
                    Some(value) => format!("{name}: {value}"),
                    None => name,
                })
            });
        let Some(label) = label else { continue };
        let channels = channels(own(REFERENCED_WAVEFORM_CHANNELS), groups);
        // Sample positions count in the referenced group's samples; without a group named,
        // the first one's.
        let frequency = groups
            .get(channels.first().map_or(0, |c| c.0))
            .map(|g| g.frequency)
            .filter(|f| *f > 0.0);
        let times: Vec<f64> = match (
            own(REFERENCED_SAMPLE_POSITIONS),
            own(REFERENCED_TIME_OFFSETS),
            frequency,
        ) {
            (Some(positions), _, Some(hz)) => u32_values(positions)
                .into_iter()
                .map(|p| f64::from(p.saturating_sub(1)) / hz)
                .collect(),
            (_, Some(offsets), _) => decimals(offsets),
            _ => Vec::new(),
        };
        let range = own(TEMPORAL_RANGE_TYPE).map(text).unwrap_or_default();
        let spans: Vec<(f64, f64)> = match range.as_str() {
            "SEGMENT" | "MULTISEGMENT" => times
                .chunks_exact(2)
                .map(|pair| (pair[0].min(pair[1]), pair[0].max(pair[1])))
                .collect(),
            _ => times.iter().map(|&t| (t, t)).collect(),
        };
        if spans.is_empty() {
            out.push(Annotation {
                label,
                start: None,
                end: None,
                channels,
            });
            continue;
        }
        for (start, end) in spans {
            out.push(Annotation {
                label: label.clone(),
                start: Some(start),
                end: Some(end),
                channels: channels.clone(),
            });
        }
    }
    out
}

/// (group, channel) pairs stored from 1, as indices from 0; channel 0 means every channel of
/// the group. Pairs naming nothing in the object are left out.
fn channels(element: Option<&Element>, groups: &[Group]) -> Vec<(usize, usize)> {
    let Some(element) = element else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for pair in u16_values(element).chunks_exact(2) {
        let (g, c) = (usize::from(pair[0]), usize::from(pair[1]));
        let Some(group) = g.checked_sub(1).and_then(|g| groups.get(g)) else {
            continue;
        };
        if c == 0 {
            out.extend((0..group.channels.len()).map(|k| (g - 1, k)));
        } else if c <= group.channels.len() {
            out.push((g - 1, c - 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::Bytes;

    use super::super::{locate, Channel, Element, Group, Recording, WAVEFORM_ANNOTATION_SEQUENCE};
    use super::*;
    use crate::archive::{Archive, ObjectKey};
    use crate::config::{Config, Overrides};
    use crate::synth::iod::{self, StudyRef, Subject};

    const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

    /// A synthetic Holter recording stored in a local archive, walked as the viewer's
    /// endpoint walks it.
    async fn stored_holter(minutes: usize) -> Recording {
        let dir = tempfile::tempdir().unwrap();
        let overrides = Overrides {
            data_dir: Some(dir.path().to_owned()),
            ..Overrides::default()
        };
        let config = Config::from_toml(
            include_str!("../../../config/telecardio.toml"),
            Path::new("t.toml"),
            [],
            &overrides,
        )
        .unwrap();
        let archive = Archive::open(&config).unwrap();
        let object = iod::ambulatory_ecg(
            &Subject::demo(),
            &StudyRef::new("s", "A1"),
            "holter",
            1,
            minutes,
        );
        let path = dir.path().join("holter.dcm");
        iod::write(&object, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (key, _) = archive
            .keep(&bytes, |sha| ObjectKey::from(format!("t/{sha}")))
            .await
            .unwrap();
        let meta_length = u32::from_le_bytes(bytes[140..144].try_into().unwrap());
        locate(
            &archive,
            &ObjectKey::from(key),
            bytes.len() as u64,
            144 + u64::from(meta_length),
            EXPLICIT_VR_LITTLE_ENDIAN,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_holter_recordings_event_run_and_measurement_are_read_with_their_times() {
        let recording = stored_holter(10).await;
        assert_eq!(recording.annotations_total, 3);
        let all = vec![(0, 0), (0, 1), (0, 2)];
        assert_eq!(
            recording.annotations,
            vec![
                Annotation {
                    label: "Paciento įvykis: širdies plakimas".into(),
                    start: Some(300.0),
                    end: Some(300.0),
                    channels: all.clone(),
                },
                Annotation {
                    label: "Ventricular tachycardia".into(),
                    start: Some(180.0),
                    end: Some(186.0),
                    channels: all.clone(),
                },
                Annotation {
                    label: "Heart rate: 72 /min".into(),
                    start: None,
                    end: None,
                    channels: all,
                },
            ]
        );
        let run = &recording.annotations[1];
        assert!(run.overlaps(185.0, 195.0) && !run.overlaps(186.5, 196.5));
        assert!(run.concerns(0) && !run.concerns(1));
        assert!(
            recording.annotations[2].overlaps(0.0, 1.0),
            "a measurement of the whole"
        );
    }

    fn group(channels: usize, frequency: f64) -> Group {
        Group {
            label: String::new(),
            frequency,
            samples: 1000,
            channels: (0..channels)
                .map(|c| Channel {
                    label: format!("{c}"),
                    unit: "uV".into(),
                    scale: 1.0,
                    baseline: 0.0,
                })
                .collect(),
            width: 2,
            signed: true,
            data: 0..0,
        }
    }

    fn element(path: Vec<(Tag, usize)>, tag: Tag, bytes: &[u8]) -> Element {
        Element {
            path,
            tag,
            value: 0..0,
            bytes: Some(Bytes::copy_from_slice(bytes)),
        }
    }

    fn u16s(values: &[u16]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn text_in_the_objects_character_set_times_offsets_and_segments() {
        let item = |i| vec![(WAVEFORM_ANNOTATION_SEQUENCE, i)];
        let elements = vec![
            // Latin-4 (ISO_IR 110): Š is 0xA9, ū 0xFE, ž 0xBE.
            element(vec![], SPECIFIC_CHARACTER_SET, b"ISO_IR 110"),
            element(item(0), UNFORMATTED_TEXT_VALUE, b"\xA9irdies pauz\xEC "),
            element(item(0), REFERENCED_WAVEFORM_CHANNELS, &u16s(&[2, 1])),
            element(item(0), TEMPORAL_RANGE_TYPE, b"MULTISEGMENT"),
            element(
                item(0),
                REFERENCED_SAMPLE_POSITIONS,
                &[1u32, 101, 501, 401]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
            element(item(1), UNFORMATTED_TEXT_VALUE, b"Mark"),
            element(item(1), TEMPORAL_RANGE_TYPE, b"MULTIPOINT"),
            element(item(1), REFERENCED_TIME_OFFSETS, b"0.5\\2.25"),
            // Nothing to say: left out.
            element(item(2), TEMPORAL_RANGE_TYPE, b"POINT"),
            // A group that is not there: the annotation concerns the whole object.
            element(item(3), UNFORMATTED_TEXT_VALUE, b"Elsewhere"),
            element(item(3), REFERENCED_WAVEFORM_CHANNELS, &u16s(&[9, 1])),
        ];
        let groups = [group(3, 500.0), group(2, 100.0)];
        let read = read(&elements, &groups);
        let spans: Vec<_> = read
            .iter()
            .map(|a| (a.label.as_str(), a.start, a.end, a.channels.clone()))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("Širdies pauzė", Some(0.0), Some(1.0), vec![(1, 0)]),
                ("Širdies pauzė", Some(4.0), Some(5.0), vec![(1, 0)]),
                ("Mark", Some(0.5), Some(0.5), vec![]),
                ("Mark", Some(2.25), Some(2.25), vec![]),
                ("Elsewhere", None, None, vec![]),
            ]
        );
    }
}
