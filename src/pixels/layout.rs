//! Where things are inside a stored Part 10 object: the data set bytes before Pixel Data, and
//! each frame's bytes, found by reading only headers.
//!
//! WADO-RS frames and rendering must not read a gigabyte to serve one frame. The data set is
//! read in chunks through the same scanner ingest used (so anything we stored walks the same
//! way) until the top-level Pixel Data header; for encapsulated pixel data the fragment item
//! headers are then walked with small range reads, jumping over the fragments themselves.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::PixelError;
use crate::archive::{Archive, ObjectKey};
use crate::ingest::scanner::Scanner;

const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const CHUNK: u64 = 64 * 1024;
const ITEM: u32 = 0xFFFE_E000;
const SEQUENCE_DELIMITATION: u32 = 0xFFFE_E0DD;

/// The structure of one stored object, as far as retrieval needs it.
#[derive(Debug, Clone)]
pub struct Layout {
    pub transfer_syntax: String,
    /// Whether the data set uses explicit VR.
    pub explicit: bool,
    /// The data set's bytes before Pixel Data (all of them when it has none).
    pub header: Bytes,
    pub pixel_data: Option<PixelData>,
}

/// The top-level Pixel Data element, with offsets into the stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PixelData {
    Native {
        /// `OB` or `OW` (implicit VR reads as `OW`).
        vr: [u8; 2],
        value: Range<u64>,
    },
    Encapsulated {
        /// Each fragment's bytes, without item headers; the Basic Offset Table excluded.
        fragments: Vec<Range<u64>>,
        /// Item-start offsets of the fragments, relative to the first fragment's item.
        item_starts: Vec<u64>,
        /// The Basic Offset Table (empty when the sender left it empty).
        offsets: Vec<u32>,
    },
}

impl PixelData {
    pub fn vr(&self) -> [u8; 2] {
        match self {
            PixelData::Native { vr, .. } => *vr,
            PixelData::Encapsulated { .. } => *b"OB",
        }
    }
}

/// Reads the layout of the object at `key` (`size` bytes, data set starting at `dataset_at`),
/// holding at most `max_header` bytes of the data set in memory.
pub async fn read(
    archive: &Archive,
    key: &ObjectKey,
    size: u64,
    dataset_at: u64,
    transfer_syntax: &str,
    max_header: u64,
) -> Result<Layout, PixelError> {
    if transfer_syntax == DEFLATED {
        return Err(PixelError::Unsupported(
            "the data set is stored deflated; retrieve the whole instance instead".into(),
        ));
    }
    let explicit = transfer_syntax != IMPLICIT_VR_LITTLE_ENDIAN;
    let mut scanner = Scanner::new(explicit, false, |_| false);
    let mut header = BytesMut::new();
    let mut at = dataset_at;
    let found = loop {
        if at >= size {
            break None;
        }
        let chunk = archive.read_range(key, at..size.min(at + CHUNK)).await?;
        scanner
            .feed(&chunk)
            .map_err(|e| PixelError::Damaged(e.to_string()))?;
        if let Some(pixels) = scanner.pixel_data() {
            let keep = (pixels.header_at + dataset_at - at) as usize;
            header.extend_from_slice(&chunk[..keep]);
            break Some(pixels);
        }
        header.extend_from_slice(&chunk);
        if header.len() as u64 > max_header {
            return Err(PixelError::Unsupported(format!(
                "the data set holds more than {max_header} bytes besides pixel data"
            )));
        }
        at += chunk.len() as u64;
    };
    let pixel_data = match found {
        None => None,
        Some(p) => {
            let value_at = dataset_at + p.value_at;
            let vr = p.vr.unwrap_or(*b"OW");
            Some(match p.length {
                Some(len) => {
                    let end = value_at + u64::from(len);
                    if end > size {
                        return Err(PixelError::Damaged("pixel data runs past the end".into()));
                    }
                    PixelData::Native {
                        vr,
                        value: value_at..end,
                    }
                }
                None => fragments(archive, key, size, value_at).await?,
            })
        }
    };
    Ok(Layout {
        transfer_syntax: transfer_syntax.to_owned(),
        explicit,
        header: header.freeze(),
        pixel_data,
    })
}

/// Walks the items of encapsulated pixel data starting at `at`: the offset table, then fragments.
async fn fragments(
    archive: &Archive,
    key: &ObjectKey,
    size: u64,
    mut at: u64,
) -> Result<PixelData, PixelError> {
    let mut window = Window::default();
    let mut offsets = Vec::new();
    let mut fragments = Vec::new();
    let mut item_starts = Vec::new();
    let mut first_item = None;
    let mut last_len = 0u64;
    loop {
        // Small fragments: read ahead; large ones: fetch only the next header.
        let ahead = if last_len < 16 * 1024 { CHUNK } else { 8 };
        let head = window.get(archive, key, size, at, 8, ahead).await?;
        let tag = u32::from(u16::from_le_bytes([head[0], head[1]])) << 16
            | u32::from(u16::from_le_bytes([head[2], head[3]]));
        let len = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        match tag {
            SEQUENCE_DELIMITATION => break,
            ITEM if at + 8 + len <= size => {}
            _ => {
                return Err(PixelError::Damaged(format!(
                    "unexpected item ({:08X}, length {len}) in encapsulated pixel data",
                    tag
                )))
            }
        }
        let value = at + 8..at + 8 + len;
        if first_item.is_none() && offsets.is_empty() && fragments.is_empty() {
            // The first item is the Basic Offset Table.
            let table = window
                .get(archive, key, size, value.start, len as usize, 0)
                .await?;
            offsets = table
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            first_item = Some(value.end);
        } else {
            let base = first_item.unwrap_or(at);
            item_starts.push(at - base);
            fragments.push(value.clone());
        }
        last_len = len;
        at = value.end;
    }
    Ok(PixelData::Encapsulated {
        fragments,
        item_starts,
        offsets,
    })
}

/// A read-ahead window over the object, so many small headers cost one range read.
#[derive(Default)]
struct Window {
    start: u64,
    data: Bytes,
}

impl Window {
    async fn get(
        &mut self,
        archive: &Archive,
        key: &ObjectKey,
        size: u64,
        at: u64,
        len: usize,
        ahead: u64,
    ) -> Result<Bytes, PixelError> {
        let end = at + len as u64;
        if end > size {
            return Err(PixelError::Damaged(
                "encapsulated pixel data runs past the end".into(),
            ));
        }
        let inside = at >= self.start && end <= self.start + self.data.len() as u64;
        if !inside {
            let fetch_end = size.min(end.max(at + ahead));
            self.data = archive.read_range(key, at..fetch_end).await?;
            self.start = at;
        }
        let from = (at - self.start) as usize;
        Ok(self.data.slice(from..from + len))
    }
}

impl Layout {
    /// The byte ranges of frame `number` (1-based) of `frames`, given the native frame size
    /// (`frame_bytes`, ignored for encapsulated data).
    pub fn frame(
        &self,
        number: u32,
        frames: u32,
        frame_bytes: Option<u64>,
    ) -> Result<Vec<Range<u64>>, PixelError> {
        let frames = frames.max(1);
        if number == 0 || number > frames {
            return Err(PixelError::NoSuchFrame { number, frames });
        }
        let index = u64::from(number - 1);
        match &self.pixel_data {
            None => Err(PixelError::NoPixelData),
            Some(PixelData::Native { value, .. }) => {
                let size = frame_bytes.ok_or_else(|| {
                    PixelError::Unsupported("frames of packed 1-bit pixel data".into())
                })?;
                let start = value.start + index * size;
                if start + size > value.end {
                    return Err(PixelError::Damaged(format!(
                        "pixel data holds {} bytes, too few for {frames} frames of {size}",
                        value.end - value.start
                    )));
                }
                Ok(std::iter::once(start..start + size).collect())
            }
            Some(PixelData::Encapsulated {
                fragments,
                item_starts,
                offsets,
            }) => {
                if !offsets.is_empty() {
                    if offsets.len() != frames as usize {
                        return Err(PixelError::Damaged(format!(
                            "the offset table lists {} frames, the object {frames}",
                            offsets.len()
                        )));
                    }
                    let from = u64::from(offsets[index as usize]);
                    let to = offsets
                        .get(index as usize + 1)
                        .map(|o| u64::from(*o))
                        .unwrap_or(u64::MAX);
                    let picked: Vec<_> = item_starts
                        .iter()
                        .zip(fragments)
                        .filter(|(start, _)| **start >= from && **start < to)
                        .map(|(_, f)| f.clone())
                        .collect();
                    if picked.is_empty() {
                        return Err(PixelError::Damaged(format!(
                            "the offset table points frame {number} at no fragment"
                        )));
                    }
                    Ok(picked)
                } else if frames == 1 {
                    Ok(fragments.clone())
                } else if fragments.len() == frames as usize {
                    Ok(vec![fragments[index as usize].clone()])
                } else {
                    Err(PixelError::Unsupported(format!(
                        "{} fragments for {frames} frames and no offset table: frames cannot \
                         be told apart without decoding",
                        fragments.len()
                    )))
                }
            }
        }
    }
}
