//! A push parser for a DICOM data set as it arrives, fragment by fragment.
//!
//! It checks the structure (element lengths, sequences, items, delimiters, encapsulated
//! fragments) and keeps the few small values the index needs, skipping everything else without
//! buffering it, so memory stays flat however large the object. It never changes or stores the
//! bytes: the caller stores them as received. Deflated data sets are inflated on the fly for
//! scanning only.

use std::collections::HashMap;

/// A tag as `(group << 16) | element`.
pub type Tag = u32;

pub const fn tag(group: u16, element: u16) -> Tag {
    ((group as u32) << 16) | element as u32
}

const ITEM: Tag = tag(0xFFFE, 0xE000);
const ITEM_DELIMITATION: Tag = tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITATION: Tag = tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = tag(0x7FE0, 0x0010);
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// Values longer than this are never kept, whatever their tag.
const MAX_KEPT: u32 = 64 * 1024;

/// Sequences whose items we read into (the others are skipped or walked).
pub const OTHER_PATIENT_IDS_SEQUENCE: Tag = tag(0x0010, 0x1002);
pub const ISSUER_OF_ACCESSION_NUMBER_SEQUENCE: Tag = tag(0x0008, 0x0051);
/// Its items say how long a recording lasts; of them only the counts are kept, never the
/// samples.
pub const WAVEFORM_SEQUENCE: Tag = tag(0x5400, 0x0100);
const NUMBER_OF_WAVEFORM_SAMPLES: Tag = tag(0x003A, 0x0010);
const SAMPLING_FREQUENCY: Tag = tag(0x003A, 0x001A);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("data set ends inside {0}")]
    Truncated(String),
    #[error(
        "element {tag} at byte {at}: length {len} runs past the end of its enclosing {parent}"
    )]
    Overrun {
        tag: String,
        at: u64,
        len: u32,
        parent: &'static str,
    },
    #[error("unexpected {what} at byte {at}")]
    Unexpected { what: String, at: u64 },
    #[error("element {tag} declares {len} bytes, past the limit of {limit} bytes per object")]
    Oversize { tag: String, len: u32, limit: u64 },
    #[error("deflated data set cannot be inflated: {0}")]
    Inflate(String),
}

pub fn tag_name(t: Tag) -> String {
    format!("({:04X},{:04X})", t >> 16, t & 0xFFFF)
}

/// A value kept from inside a sequence item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedValue {
    pub sequence: Tag,
    pub item: usize,
    pub tag: Tag,
    pub value: Vec<u8>,
}

/// Where the top-level Pixel Data element sits in the (inflated) data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelDataAt {
    /// Offset of its element header.
    pub header_at: u64,
    /// Offset of its value (the first fragment item when encapsulated).
    pub value_at: u64,
    /// Value length; `None` for encapsulated (undefined length) pixel data.
    pub length: Option<u32>,
    /// The VR as encoded; `None` under implicit VR.
    pub vr: Option<[u8; 2]>,
}

/// The values the scanner kept, as raw bytes.
#[derive(Debug, Default, Clone)]
pub struct Kept {
    pub top: HashMap<Tag, Vec<u8>>,
    pub nested: Vec<NestedValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Sequence,
    Item,
    Fragments,
}

#[derive(Debug, Clone)]
struct Frame {
    kind: FrameKind,
    tag: Tag,
    end: Option<u64>,
    /// Inside UN of undefined length the content is implicit VR (PS3.5 6.2.2).
    explicit: bool,
    items: usize,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Keep { tag: Tag, len: u32 },
    Skip { remaining: u64 },
}

pub struct Scanner {
    explicit: bool,
    inflater: Option<flate2::Decompress>,
    inflate_done: bool,
    state: State,
    header: [u8; 12],
    header_len: usize,
    value: Vec<u8>,
    pos: u64,
    stack: Vec<Frame>,
    wanted: fn(Tag) -> bool,
    kept: Kept,
    limit: u64,
    pixel_data: Option<PixelDataAt>,
}

impl Scanner {
    /// `explicit`: whether the transfer syntax uses explicit VR; `deflated`: whether the data set
    /// is deflate-compressed; `wanted`: which top-level tags to keep.
    pub fn new(explicit: bool, deflated: bool, wanted: fn(Tag) -> bool) -> Scanner {
        Scanner {
            explicit,
            inflater: deflated.then(|| flate2::Decompress::new(false)),
            inflate_done: false,
            state: State::Header,
            header: [0; 12],
            header_len: 0,
            value: Vec::new(),
            pos: 0,
            stack: Vec::new(),
            wanted,
            kept: Kept::default(),
            limit: u64::MAX,
            pixel_data: None,
        }
    }

    /// Refuses any element whose declared length would take the data set past `limit` bytes.
    pub fn with_limit(mut self, limit: u64) -> Scanner {
        self.limit = limit;
        self
    }

    /// The top-level Pixel Data element, once its header has been scanned.
    pub fn pixel_data(&self) -> Option<PixelDataAt> {
        self.pixel_data
    }

    /// The values kept so far: each one complete, whatever was fed after it.
    pub fn kept(&self) -> &Kept {
        &self.kept
    }

    /// Bytes of the (inflated) data set scanned so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<(), ScanError> {
        if self.inflater.is_some() {
            self.feed_deflated(data)
        } else {
            self.scan(data)
        }
    }

    fn feed_deflated(&mut self, mut data: &[u8]) -> Result<(), ScanError> {
        let mut out = vec![0u8; 64 * 1024];
        while !data.is_empty() && !self.inflate_done {
            let inflater = self
                .inflater
                .as_mut()
                .expect("deflated scanner has an inflater");
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(data, &mut out, flate2::FlushDecompress::None)
                .map_err(|e| ScanError::Inflate(e.to_string()))?;
            let consumed = (inflater.total_in() - before_in) as usize;
            let produced = (inflater.total_out() - before_out) as usize;
            data = &data[consumed..];
            self.scan(&out[..produced])?;
            if status == flate2::Status::StreamEnd {
                self.inflate_done = true;
            } else if consumed == 0 && produced == 0 {
                break;
            }
        }
        // Bytes after the end of the deflate stream are padding; the standard allows one.
        Ok(())
    }

    /// Checks that the data set ended on an element boundary with every sequence closed, and
    /// returns the kept values.
    pub fn finish(mut self) -> Result<Kept, ScanError> {
        if self.inflater.is_some() && !self.inflate_done {
            let mut out = vec![0u8; 64 * 1024];
            loop {
                let inflater = self.inflater.as_mut().expect("checked above");
                let before = inflater.total_out();
                let status = inflater
                    .decompress(&[], &mut out, flate2::FlushDecompress::Finish)
                    .map_err(|e| ScanError::Truncated(format!("the deflate stream ({e})")))?;
                let produced = (inflater.total_out() - before) as usize;
                self.scan(&out[..produced])?;
                if status == flate2::Status::StreamEnd {
                    break;
                }
                if produced == 0 {
                    return Err(ScanError::Truncated("the deflate stream".into()));
                }
            }
        }
        match self.state {
            State::Header if self.header_len == 0 => {}
            State::Header => return Err(ScanError::Truncated("an element header".into())),
            State::Keep { tag, .. } => {
                return Err(ScanError::Truncated(format!(
                    "the value of {}",
                    tag_name(tag)
                )))
            }
            State::Skip { remaining } => {
                return Err(ScanError::Truncated(format!(
                    "a value ({remaining} bytes missing)"
                )))
            }
        }
        if let Some(open) = self.stack.last() {
            let what = match open.kind {
                FrameKind::Sequence => "sequence",
                FrameKind::Item => "sequence item",
                FrameKind::Fragments => "encapsulated pixel data",
            };
            return Err(ScanError::Truncated(format!(
                "an open {what} {}",
                tag_name(open.tag)
            )));
        }
        Ok(self.kept)
    }

    fn scan(&mut self, mut data: &[u8]) -> Result<(), ScanError> {
        while !data.is_empty() {
            match self.state {
                State::Skip { remaining } => {
                    let n = remaining.min(data.len() as u64);
                    data = &data[n as usize..];
                    self.pos += n;
                    if n == remaining {
                        self.state = State::Header;
                        self.close_frames()?;
                    } else {
                        self.state = State::Skip {
                            remaining: remaining - n,
                        };
                    }
                }
                State::Keep { tag, len } => {
                    let need = len as usize - self.value.len();
                    let n = need.min(data.len());
                    self.value.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    self.pos += n as u64;
                    if n == need {
                        self.store_value(tag);
                        self.state = State::Header;
                        self.close_frames()?;
                    }
                }
                State::Header => {
                    let needed = self.header_needed();
                    let n = (needed - self.header_len).min(data.len());
                    self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                    self.header_len += n;
                    data = &data[n..];
                    self.pos += n as u64;
                    if self.header_len == self.header_needed() {
                        self.on_header()?;
                    }
                }
            }
        }
        Ok(())
    }

    fn explicit_here(&self) -> bool {
        self.stack
            .last()
            .map(|f| f.explicit)
            .unwrap_or(self.explicit)
    }

    /// Header bytes needed to decode what has been read so far.
    fn header_needed(&self) -> usize {
        if self.header_len < 8 {
            return 8;
        }
        let group = u16::from_le_bytes([self.header[0], self.header[1]]);
        if group != 0xFFFE && self.explicit_here() && has_long_length(self.vr()) {
            12
        } else {
            8
        }
    }

    fn vr(&self) -> [u8; 2] {
        [self.header[4], self.header[5]]
    }

    fn on_header(&mut self) -> Result<(), ScanError> {
        let h = self.header;
        let header_len = self.header_len;
        self.header_len = 0;
        let group = u16::from_le_bytes([h[0], h[1]]);
        let element = u16::from_le_bytes([h[2], h[3]]);
        let t = tag(group, element);
        let start = self.pos - header_len as u64;
        if group == 0xFFFE {
            let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            return self.on_delimiter(t, len, start);
        }
        let explicit = self.explicit_here();
        let (vr, len) = if explicit {
            let vr = [h[4], h[5]];
            let len = if header_len == 12 {
                u32::from_le_bytes([h[8], h[9], h[10], h[11]])
            } else {
                u16::from_le_bytes([h[6], h[7]]) as u32
            };
            (Some(vr), len)
        } else {
            (None, u32::from_le_bytes([h[4], h[5], h[6], h[7]]))
        };
        if let Some(top) = self.stack.last() {
            if top.kind != FrameKind::Item {
                return Err(ScanError::Unexpected {
                    what: format!("element {} directly inside a sequence", tag_name(t)),
                    at: start,
                });
            }
        }
        if t == PIXEL_DATA && self.stack.is_empty() {
            self.pixel_data = Some(PixelDataAt {
                header_at: start,
                value_at: self.pos,
                length: (len != UNDEFINED).then_some(len),
                vr,
            });
        }
        if len == UNDEFINED {
            return self.open_undefined(t, vr, start);
        }
        self.check_fits(t, len, start)?;
        if self.pos + len as u64 > self.limit {
            return Err(ScanError::Oversize {
                tag: tag_name(t),
                len,
                limit: self.limit,
            });
        }
        let is_sq = vr == Some(*b"SQ") || (vr.is_none() && is_known_sequence(t));
        if is_sq && self.reads_into(t) {
            self.stack.push(Frame {
                kind: FrameKind::Sequence,
                tag: t,
                end: Some(self.pos + len as u64),
                explicit,
                items: 0,
            });
            return self.close_frames();
        }
        if !is_sq && len <= MAX_KEPT && self.keeps(t) {
            self.value.clear();
            self.state = State::Keep { tag: t, len };
            if len == 0 {
                self.store_value(t);
                self.state = State::Header;
                return self.close_frames();
            }
            return Ok(());
        }
        self.skip(len as u64)
    }

    fn open_undefined(&mut self, t: Tag, vr: Option<[u8; 2]>, start: u64) -> Result<(), ScanError> {
        let kind = match vr {
            Some(vr) if &vr == b"SQ" || &vr == b"UN" => FrameKind::Sequence,
            Some(_) if t == PIXEL_DATA => FrameKind::Fragments,
            Some(vr) if &vr == b"OB" || &vr == b"OW" => FrameKind::Fragments,
            None if t == PIXEL_DATA => FrameKind::Fragments,
            None => FrameKind::Sequence,
            Some(vr) => {
                return Err(ScanError::Unexpected {
                    what: format!(
                        "undefined length on {} with VR {}",
                        tag_name(t),
                        String::from_utf8_lossy(&vr)
                    ),
                    at: start,
                })
            }
        };
        let explicit = match vr {
            Some(vr) if &vr == b"UN" => false,
            _ => self.explicit_here(),
        };
        self.stack.push(Frame {
            kind,
            tag: t,
            end: None,
            explicit,
            items: 0,
        });
        Ok(())
    }

    fn on_delimiter(&mut self, t: Tag, len: u32, start: u64) -> Result<(), ScanError> {
        let top = self.stack.last().map(|f| f.kind);
        match (t, top) {
            (ITEM, Some(FrameKind::Sequence)) => {
                let sequence = self.stack.last_mut().expect("checked above");
                sequence.items += 1;
                let parent_tag = sequence.tag;
                let explicit = sequence.explicit;
                if len != UNDEFINED {
                    self.check_fits(t, len, start)?;
                }
                if len != UNDEFINED && !self.reads_items_of_top() {
                    return self.skip(len as u64);
                }
                self.stack.push(Frame {
                    kind: FrameKind::Item,
                    tag: parent_tag,
                    end: (len != UNDEFINED).then(|| self.pos + len as u64),
                    explicit,
                    items: 0,
                });
                self.close_frames()
            }
            (ITEM, Some(FrameKind::Fragments)) if len != UNDEFINED => {
                self.check_fits(t, len, start)?;
                self.skip(len as u64)
            }
            (ITEM_DELIMITATION, Some(FrameKind::Item))
                if self.stack.last().and_then(|f| f.end).is_none() =>
            {
                self.stack.pop();
                self.close_frames()
            }
            (SEQUENCE_DELIMITATION, Some(FrameKind::Sequence | FrameKind::Fragments))
                if self.stack.last().and_then(|f| f.end).is_none() =>
            {
                self.stack.pop();
                self.close_frames()
            }
            _ => Err(ScanError::Unexpected {
                what: format!("delimiter {} (length {len})", tag_name(t)),
                at: start,
            }),
        }
    }

    /// A value of `len` bytes starting here must end inside every enclosing defined length.
    fn check_fits(&self, t: Tag, len: u32, start: u64) -> Result<(), ScanError> {
        let limit = self
            .stack
            .iter()
            .rev()
            .find_map(|f| f.end.map(|e| (e, f.kind)));
        match limit {
            Some((end, kind)) if self.pos + len as u64 > end => Err(ScanError::Overrun {
                tag: tag_name(t),
                at: start,
                len,
                parent: match kind {
                    FrameKind::Item => "item",
                    FrameKind::Sequence => "sequence",
                    FrameKind::Fragments => "pixel data",
                },
            }),
            _ => Ok(()),
        }
    }

    fn skip(&mut self, len: u64) -> Result<(), ScanError> {
        if len == 0 {
            return self.close_frames();
        }
        self.state = State::Skip { remaining: len };
        Ok(())
    }

    /// Pops every defined-length frame that ends exactly here.
    fn close_frames(&mut self) -> Result<(), ScanError> {
        while let Some(end) = self.stack.last().and_then(|f| f.end) {
            if self.pos < end {
                break;
            }
            if self.pos > end {
                let frame = self.stack.last().expect("non-empty");
                return Err(ScanError::Overrun {
                    tag: tag_name(frame.tag),
                    at: end,
                    len: 0,
                    parent: "item",
                });
            }
            self.stack.pop();
        }
        Ok(())
    }

    /// Whether sequence `t`, starting here, holds values we keep: only at the top level.
    fn reads_into(&self, t: Tag) -> bool {
        self.stack.is_empty() && is_known_sequence(t)
    }

    /// Whether the sequence just opened at the top level is one we read into.
    fn reads_items_of_top(&self) -> bool {
        self.stack.len() == 1 && is_known_sequence(self.stack[0].tag)
    }

    fn keeps(&self, t: Tag) -> bool {
        match self.stack.len() {
            0 => (self.wanted)(t),
            2 => {
                let sequence = self.stack[0].tag;
                is_known_sequence(sequence)
                    && self.stack[1].kind == FrameKind::Item
                    && (sequence != WAVEFORM_SEQUENCE
                        || matches!(t, NUMBER_OF_WAVEFORM_SAMPLES | SAMPLING_FREQUENCY))
            }
            _ => false,
        }
    }

    fn store_value(&mut self, t: Tag) {
        let value = std::mem::take(&mut self.value);
        if self.stack.is_empty() {
            self.kept.top.insert(t, value);
        } else if let Some(sequence) = self.stack.first() {
            self.kept.nested.push(NestedValue {
                sequence: sequence.tag,
                item: sequence.items,
                tag: t,
                value,
            });
        }
    }
}

/// Explicit VRs whose header carries a 4-byte length (PS3.5 7.1.2).
pub(crate) fn has_long_length(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// In implicit VR the sequences we read into must be recognised by tag.
fn is_known_sequence(t: Tag) -> bool {
    matches!(
        t,
        OTHER_PATIENT_IDS_SEQUENCE | ISSUER_OF_ACCESSION_NUMBER_SEQUENCE | WAVEFORM_SEQUENCE
    )
}

#[cfg(test)]
mod tests;
