//! Waveforms inside stored objects (PS3.3 C.10.9): where each multiplex group's samples are and
//! what its channels mean, found by walking element headers with small range reads; and a
//! window of samples read back, decimated to min/max pairs when it holds more samples than the
//! view has points.
//!
//! A 24-hour Holter recording holds ~100 MB of samples; nothing here reads more than the
//! headers and the window asked for, in chunks of at most [`CHUNK`] bytes, so memory stays
//! bounded by the answer whatever the recording's length.

mod annotations;

use std::ops::Range;

use bytes::Bytes;
use dicom_core::dictionary::DataDictionary;
use dicom_core::{Tag, VR};

use super::PixelError;
use crate::archive::{Archive, ObjectKey};
pub use annotations::Annotation;

const CHUNK: u64 = 1024 * 1024;
/// Values up to this size are read; larger ones (the samples) are only located.
const SMALL: u32 = 64 * 1024;
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITATION: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITATION: Tag = Tag(0xFFFE, 0xE0DD);
const WAVEFORM_SEQUENCE: Tag = Tag(0x5400, 0x0100);
const WAVEFORM_ANNOTATION_SEQUENCE: Tag = Tag(0x0040, 0xB020);
const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);
/// Annotations kept of one object; a Holter recording that marks every beat has ~100,000,
/// which a viewer cannot show at once and memory should not hold per request.
const MAX_ANNOTATIONS: usize = 5_000;
const CHANNEL_DEFINITION_SEQUENCE: Tag = Tag(0x003A, 0x0200);
const CHANNEL_SOURCE_SEQUENCE: Tag = Tag(0x003A, 0x0208);
const CHANNEL_SENSITIVITY_UNITS_SEQUENCE: Tag = Tag(0x003A, 0x0211);
const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";

/// One channel of a multiplex group.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// The lead or signal name: Channel Label, else the source's code meaning.
    pub label: String,
    /// The unit of the physical values (UCUM code, e.g. `uV`, `mV`).
    pub unit: String,
    /// Physical value = raw sample × `scale` + `baseline`.
    pub scale: f64,
    pub baseline: f64,
}

/// One multiplex group: channels sampled together, interleaved in one value.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub label: String,
    pub frequency: f64,
    pub samples: u64,
    pub channels: Vec<Channel>,
    /// Bytes per sample (1, 2 or 4).
    pub width: u8,
    pub signed: bool,
    /// Where the interleaved samples are in the stored object.
    pub data: Range<u64>,
}

impl Group {
    pub fn seconds(&self) -> f64 {
        if self.frequency > 0.0 {
            self.samples as f64 / self.frequency
        } else {
            0.0
        }
    }

    fn frame_bytes(&self) -> u64 {
        self.channels.len() as u64 * u64::from(self.width)
    }
}

/// What a waveform object holds: its multiplex groups and the annotations made on them.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub groups: Vec<Group>,
    /// The first [`MAX_ANNOTATIONS`] annotations, in stored order.
    pub annotations: Vec<Annotation>,
    /// How many the object holds (more than `annotations.len()` when capped).
    pub annotations_total: usize,
}

/// A window of one group, per channel: raw values, or (min, max) pairs over equal spans.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub first: u64,
    pub count: u64,
    /// Samples per point (1: raw values).
    pub per_point: u64,
    /// Per channel: one value per point (raw), or min and max per point (decimated).
    pub values: Vec<Vec<f32>>,
}

/// One element met on the walk: where it is and, when small, its value.
struct Element {
    /// (sequence, item index) for every item enclosing it.
    path: Vec<(Tag, usize)>,
    tag: Tag,
    value: Range<u64>,
    bytes: Option<Bytes>,
}

enum Frame {
    Sequence {
        tag: Tag,
        end: Option<u64>,
        items: usize,
    },
    Item {
        end: Option<u64>,
    },
}

impl Frame {
    fn end(&self) -> Option<u64> {
        match self {
            Frame::Sequence { end, .. } | Frame::Item { end } => *end,
        }
    }
}

/// Sequential reads of one object through a buffer of [`CHUNK`] bytes.
struct Reader<'a> {
    archive: &'a Archive,
    key: &'a ObjectKey,
    size: u64,
    buffer: Bytes,
    buffer_at: u64,
}

impl Reader<'_> {
    async fn bytes(&mut self, at: u64, n: u64) -> Result<Bytes, PixelError> {
        if at + n > self.size {
            return Err(PixelError::Damaged(format!(
                "an element at {at} runs past the end of the object"
            )));
        }
        let end = self.buffer_at + self.buffer.len() as u64;
        if at < self.buffer_at || at + n > end {
            let upto = self.size.min(at + n.max(CHUNK));
            self.buffer = self.archive.read_range(self.key, at..upto).await?;
            self.buffer_at = at;
        }
        let from = (at - self.buffer_at) as usize;
        Ok(self.buffer.slice(from..from + n as usize))
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn is_sequence_in_dictionary(tag: Tag) -> bool {
    dicom_dictionary_std::StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|entry| entry.vr.relaxed() == VR::SQ)
}

/// What the walk met: the elements inside waveform groups and kept annotations, and how many
/// annotation items there were in all.
#[derive(Default)]
struct Walked {
    elements: Vec<Element>,
    annotation_items: usize,
}

/// Walks the data set (starting at `dataset_at`) far enough to see every waveform group and
/// annotation.
async fn walk(
    reader: &mut Reader<'_>,
    dataset_at: u64,
    explicit: bool,
) -> Result<Walked, PixelError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut found = Walked::default();
    let mut at = dataset_at;
    loop {
        while stack
            .last()
            .and_then(Frame::end)
            .is_some_and(|end| end <= at)
        {
            let frame = stack.pop();
            if let Some(Frame::Sequence { tag, .. }) = frame {
                if tag == WAVEFORM_SEQUENCE && stack.is_empty() {
                    return Ok(found);
                }
            }
        }
        if at + 8 > reader.size {
            return Ok(found);
        }
        let head = reader.bytes(at, 8).await?;
        let tag = Tag(u16_at(&head, 0), u16_at(&head, 2));
        if tag.group() == 0xFFFE {
            let len = u32_at(&head, 4);
            at += 8;
            match tag {
                ITEM => {
                    let top_level = stack.len() == 1;
                    match stack.last_mut() {
                        Some(Frame::Sequence { tag, items, .. }) => {
                            *items += 1;
                            if top_level && *tag == WAVEFORM_ANNOTATION_SEQUENCE {
                                found.annotation_items += 1;
                            }
                        }
                        _ => return Err(PixelError::Damaged("an item outside a sequence".into())),
                    }
                    stack.push(Frame::Item {
                        end: (len != u32::MAX).then(|| at + u64::from(len)),
                    });
                }
                ITEM_DELIMITATION => {
                    if let Some(Frame::Item { .. }) = stack.last() {
                        stack.pop();
                    }
                }
                SEQUENCE_DELIMITATION => {
                    if let Some(Frame::Sequence { tag, .. }) = stack.pop() {
                        if tag == WAVEFORM_SEQUENCE && stack.is_empty() {
                            return Ok(found);
                        }
                    }
                }
                _ => return Err(PixelError::Damaged(format!("unexpected delimiter {tag}"))),
            }
            continue;
        }
        // Data sets are sorted by tag: past the waveforms at the top level, nothing more.
        if stack.is_empty() && tag > WAVEFORM_SEQUENCE {
            return Ok(found);
        }
        let (vr, len, header) = if explicit {
            let vr = [head[4], head[5]];
            if crate::ingest::scanner::has_long_length(vr) {
                let long = reader.bytes(at + 8, 4).await?;
                (Some(vr), u32_at(&long, 0), 12)
            } else {
                (Some(vr), u32::from(u16_at(&head, 6)), 8)
            }
        } else {
            (None, u32_at(&head, 4), 8)
        };
        let sequence = match vr {
            Some(vr) => &vr == b"SQ" || (&vr == b"UN" && len == u32::MAX),
            None => is_sequence_in_dictionary(tag) || len == u32::MAX,
        };
        at += header;
        if sequence {
            stack.push(Frame::Sequence {
                tag,
                end: (len != u32::MAX).then(|| at + u64::from(len)),
                items: 0,
            });
            continue;
        }
        if len == u32::MAX {
            // Encapsulated pixel data: not a waveform object's business; stop here.
            return Ok(found);
        }
        let value = at..at + u64::from(len);
        let path: Vec<(Tag, usize)> = stack
            .windows(2)
            .filter_map(|pair| match pair {
                [Frame::Sequence { tag, items, .. }, Frame::Item { .. }] => Some((*tag, items - 1)),
                _ => None,
            })
            .collect();
        // The character set too: annotation text may be in any of them.
        let wanted = path
            .first()
            .map_or(tag == SPECIFIC_CHARACTER_SET, |&(sequence, item)| {
                sequence == WAVEFORM_SEQUENCE
                    || (sequence == WAVEFORM_ANNOTATION_SEQUENCE && item < MAX_ANNOTATIONS)
            });
        if wanted {
            let bytes = if len <= SMALL {
                Some(reader.bytes(at, u64::from(len)).await?)
            } else {
                None
            };
            found.elements.push(Element {
                path,
                tag,
                value: value.clone(),
                bytes,
            });
        }
        at = value.end;
    }
}

fn text(e: &Element) -> String {
    e.bytes
        .as_ref()
        .map(|b| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\0', ' '])
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn number(e: &Element) -> Option<f64> {
    text(e).split('\\').next()?.trim().parse().ok()
}

fn unsigned(e: &Element) -> Option<u64> {
    let b = e.bytes.as_ref()?;
    match b.len() {
        2 => Some(u64::from(u16_at(b, 0))),
        4 => Some(u64::from(u32_at(b, 0))),
        _ => None,
    }
}

/// The waveform groups and annotations of the object at `key`.
pub async fn locate(
    archive: &Archive,
    key: &ObjectKey,
    size: u64,
    dataset_at: u64,
    transfer_syntax: &str,
) -> Result<Recording, PixelError> {
    if transfer_syntax == "1.2.840.10008.1.2.1.99" || transfer_syntax == "1.2.840.10008.1.2.2" {
        return Err(PixelError::Unsupported(
            "waveforms are read from little endian, not deflated, data sets".into(),
        ));
    }
    let mut reader = Reader {
        archive,
        key,
        size,
        buffer: Bytes::new(),
        buffer_at: 0,
    };
    let explicit = transfer_syntax != IMPLICIT_VR_LITTLE_ENDIAN;
    let walked = walk(&mut reader, dataset_at, explicit).await?;
    let elements = &walked.elements;
    let groups = elements
        .iter()
        .filter(|e| e.path.len() == 1 && e.path[0].0 == WAVEFORM_SEQUENCE)
        .map(|e| e.path[0].1)
        .max()
        .map_or(0, |last| last + 1);
    let mut out = Vec::new();
    for g in 0..groups {
        let own = |tag: Tag| {
            elements
                .iter()
                .find(|e| e.path == [(WAVEFORM_SEQUENCE, g)] && e.tag == tag)
        };
        let missing = |what: &str| PixelError::NoAttribute(format!("{what} of waveform group {g}"));
        let data = own(Tag(0x5400, 0x1010)).ok_or_else(|| missing("Waveform Data"))?;
        let bits = own(Tag(0x5400, 0x1004))
            .and_then(unsigned)
            .ok_or_else(|| missing("Waveform Bits Allocated"))?;
        let interpretation = own(Tag(0x5400, 0x1006)).map(text).unwrap_or_default();
        let (width, signed) = match (bits, interpretation.as_str()) {
            (8, "SB") => (1, true),
            (8, "UB") => (1, false),
            (16, "SS") => (2, true),
            (16, "US") => (2, false),
            (32, "SL") => (4, true),
            (32, "UL") => (4, false),
            _ => {
                return Err(PixelError::Unsupported(format!(
                    "waveform samples of {bits} bits interpreted as `{interpretation}`"
                )))
            }
        };
        let frequency = own(Tag(0x003A, 0x001A))
            .and_then(number)
            .ok_or_else(|| missing("Sampling Frequency"))?;
        let count = own(Tag(0x003A, 0x0005))
            .and_then(unsigned)
            .ok_or_else(|| missing("Number of Waveform Channels"))? as usize;
        let mut channels = Vec::with_capacity(count);
        for c in 0..count {
            let base = vec![(WAVEFORM_SEQUENCE, g), (CHANNEL_DEFINITION_SEQUENCE, c)];
            let field = |tag: Tag| elements.iter().find(|e| e.path == base && e.tag == tag);
            let nested = |sequence: Tag, tag: Tag| {
                let mut path = base.clone();
                path.push((sequence, 0));
                elements
                    .iter()
                    .find(|e| e.path == path && e.tag == tag)
                    .map(text)
            };
            let label = field(Tag(0x003A, 0x0203))
                .map(text)
                .filter(|l| !l.is_empty())
                .or_else(|| nested(CHANNEL_SOURCE_SEQUENCE, Tag(0x0008, 0x0104)))
                .unwrap_or_else(|| format!("{}", c + 1));
            let sensitivity = field(Tag(0x003A, 0x0210)).and_then(number).unwrap_or(1.0);
            let correction = field(Tag(0x003A, 0x0212)).and_then(number).unwrap_or(1.0);
            channels.push(Channel {
                label,
                unit: nested(CHANNEL_SENSITIVITY_UNITS_SEQUENCE, Tag(0x0008, 0x0100))
                    .unwrap_or_default(),
                scale: sensitivity * correction,
                baseline: field(Tag(0x003A, 0x0213)).and_then(number).unwrap_or(0.0),
            });
        }
        let frame = count as u64 * width;
        let samples = own(Tag(0x003A, 0x0010)).and_then(unsigned).unwrap_or(
            (data.value.end - data.value.start)
                .checked_div(frame)
                .unwrap_or(0),
        );
        let group = Group {
            label: own(Tag(0x003A, 0x0020)).map(text).unwrap_or_default(),
            frequency,
            samples,
            channels,
            width: width as u8,
            signed,
            data: data.value.clone(),
        };
        if group.samples * group.frame_bytes() > data.value.end - data.value.start {
            return Err(PixelError::Damaged(format!(
                "waveform group {g} declares more samples than its data holds"
            )));
        }
        out.push(group);
    }
    Ok(Recording {
        annotations: annotations::read(elements, &out),
        annotations_total: walked.annotation_items,
        groups: out,
    })
}

fn sample(bytes: &[u8], width: u8, signed: bool) -> f64 {
    match (width, signed) {
        (1, true) => f64::from(bytes[0] as i8),
        (1, false) => f64::from(bytes[0]),
        (2, true) => f64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
        (2, false) => f64::from(u16::from_le_bytes([bytes[0], bytes[1]])),
        (4, true) => f64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        _ => f64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
    }
}

/// Samples `first..first + count` of `group`, as at most `points` points per channel: raw
/// values when they fit, else the minimum and maximum of each equal span. Values are in the
/// channel's unit.
pub async fn window(
    archive: &Archive,
    key: &ObjectKey,
    group: &Group,
    first: u64,
    count: u64,
    points: u64,
) -> Result<Window, PixelError> {
    let first = first.min(group.samples);
    let count = count.min(group.samples - first);
    let points = points.max(1);
    let per_point = count.div_ceil(points).max(1);
    let frame = group.frame_bytes();
    let channels = group.channels.len();
    let decimated = per_point > 1;
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); channels];
    let mut low = vec![f64::INFINITY; channels];
    let mut high = vec![f64::NEG_INFINITY; channels];
    let mut in_span = 0u64;
    let frames_per_chunk = (CHUNK / frame.max(1)).max(1);
    let mut done = 0u64;
    let width = usize::from(group.width);
    while done < count {
        let n = frames_per_chunk.min(count - done);
        let start = group.data.start + (first + done) * frame;
        let chunk = archive.read_range(key, start..start + n * frame).await?;
        for f in chunk.chunks_exact(frame as usize) {
            for (c, channel) in group.channels.iter().enumerate() {
                let raw = sample(&f[c * width..(c + 1) * width], group.width, group.signed);
                let value = raw * channel.scale + channel.baseline;
                if decimated {
                    low[c] = low[c].min(value);
                    high[c] = high[c].max(value);
                } else {
                    values[c].push(value as f32);
                }
            }
            in_span += 1;
            if decimated && in_span == per_point {
                for c in 0..channels {
                    values[c].push(low[c] as f32);
                    values[c].push(high[c] as f32);
                    low[c] = f64::INFINITY;
                    high[c] = f64::NEG_INFINITY;
                }
                in_span = 0;
            }
        }
        done += n;
    }
    if decimated && in_span > 0 {
        for c in 0..channels {
            values[c].push(low[c] as f32);
            values[c].push(high[c] as f32);
        }
    }
    Ok(Window {
        first,
        count,
        per_point,
        values,
    })
}
