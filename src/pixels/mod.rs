//! Pixel data of stored objects: finding frames without reading whole objects, the data set
//! without its bulk data (for metadata), and rendering one frame for a browser.
//!
//! Nothing here decides who may see what; the catalog calls in after its access check.

pub mod layout;
pub mod render;
pub mod waveform;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::archive::ArchiveError;
use crate::fault::Fault;
pub use layout::{Layout, PixelData};

#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("stored object is damaged: {0}")]
    Damaged(String),
    #[error("not available: {0}")]
    Unsupported(String),
    #[error("the instance has no pixel data")]
    NoPixelData,
    #[error("frame {number} does not exist: the instance has {frames} frames")]
    NoSuchFrame { number: u32, frames: u32 },
    #[error("no attribute {0} in the instance")]
    NoAttribute(String),
    #[error("pixel data cannot be decoded: {0}")]
    Decode(String),
}

impl PixelError {
    pub fn fault(&self) -> Fault {
        match self {
            PixelError::Archive(_) => Fault::Unavailable,
            PixelError::Damaged(_) => Fault::Bug,
            PixelError::Unsupported(_) | PixelError::Decode(_) => Fault::BadInput,
            PixelError::NoPixelData | PixelError::NoSuchFrame { .. } => Fault::NotFound,
            PixelError::NoAttribute(_) => Fault::NotFound,
        }
    }

    /// Whether the caller asked for a representation we do not produce (HTTP 406).
    pub fn not_acceptable(&self) -> bool {
        matches!(self, PixelError::Unsupported(_) | PixelError::Decode(_))
    }
}

/// The data set before Pixel Data, parsed (text decoded per its Specific Character Set).
pub fn header_object(layout: &Layout) -> Result<InMemDicomObject, PixelError> {
    use dicom_transfer_syntax_registry::entries;
    // The stored syntax matters only for how the data set is encoded, and every one we accept
    // is little endian, explicit or implicit VR.
    let ts = if layout.explicit {
        entries::EXPLICIT_VR_LITTLE_ENDIAN.erased()
    } else {
        entries::IMPLICIT_VR_LITTLE_ENDIAN.erased()
    };
    InMemDicomObject::read_dataset_with_ts(&layout.header[..], &ts)
        .map_err(|e| PixelError::Damaged(e.to_string()))
}

/// The Image Pixel attributes that fix how frames are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u32,
    pub bits_allocated: u32,
    pub frames: u32,
}

impl Geometry {
    pub fn of(object: &InMemDicomObject) -> Result<Geometry, PixelError> {
        let number = |tag: Tag, name: &str| -> Result<u32, PixelError> {
            object
                .element(tag)
                .ok()
                .and_then(|e| e.to_int::<u32>().ok())
                .ok_or_else(|| PixelError::NoAttribute(name.to_owned()))
        };
        Ok(Geometry {
            rows: number(tags::ROWS, "Rows")?,
            columns: number(tags::COLUMNS, "Columns")?,
            samples_per_pixel: number(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel").unwrap_or(1),
            bits_allocated: number(tags::BITS_ALLOCATED, "BitsAllocated")?,
            frames: number(tags::NUMBER_OF_FRAMES, "NumberOfFrames")
                .unwrap_or(1)
                .max(1),
        })
    }

    /// Bytes of one native frame; `None` when frames are bit-packed across byte boundaries.
    pub fn frame_bytes(&self) -> Option<u64> {
        let bits = u64::from(self.rows)
            * u64::from(self.columns)
            * u64::from(self.samples_per_pixel)
            * u64::from(self.bits_allocated);
        (bits % 8 == 0).then_some(bits / 8)
    }
}

/// The media type of a frame in `transfer_syntax` (PS3.18 table 8.7.3-5).
pub fn frame_media_type(transfer_syntax: &str) -> &'static str {
    match transfer_syntax {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "image/jphc"
        }
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        ts if ts.starts_with("1.2.840.10008.1.2.4.10") => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// The transfer syntax a frame is served in: native data as Explicit VR Little Endian (its
/// bytes are the same whether the data set was explicit or implicit VR), encapsulated as stored.
pub fn frame_transfer_syntax(layout: &Layout) -> &str {
    match layout.pixel_data {
        Some(PixelData::Encapsulated { .. }) => &layout.transfer_syntax,
        _ => "1.2.840.10008.1.2.1",
    }
}
