//! One frame as a PNG or JPEG for a browser (WADO-RS `/rendered`).
//!
//! Only that frame's bytes are given to the decoder: the data set before Pixel Data plus a Pixel
//! Data element holding the one frame (native bytes, or its fragments), so rendering frame 900
//! of a gigabyte clip costs one frame of memory. Grey-scale images get the object's first VOI
//! window (8-bit ones without a window are shown as stored, deeper ones stretched min-max),
//! MONOCHROME1 is inverted, YBR is converted to RGB: what a viewer would show by default.

use std::io::Cursor;

use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dicom_pixeldata::image::codecs::jpeg::JpegEncoder;
use dicom_pixeldata::image::{DynamicImage, ImageFormat};
use dicom_pixeldata::{ConvertOptions, PixelDecoder, VoiLutOption};

use super::{PixelData, PixelError};

/// The image formats `/rendered` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg { quality: u8 },
    Png,
}

impl Format {
    pub fn media_type(&self) -> &'static str {
        match self {
            Format::Jpeg { .. } => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

/// The frame's pixel data as read from the store: native bytes or its fragments.
pub enum FrameBytes {
    Native(Vec<u8>),
    Fragments(Vec<Vec<u8>>),
}

/// Decodes one frame (with `header`, the data set before Pixel Data) and encodes it as `format`.
/// CPU-bound: call from a blocking thread.
pub fn render(
    mut header: InMemDicomObject,
    transfer_syntax: &str,
    pixels: &PixelData,
    frame: FrameBytes,
    format: Format,
) -> Result<Vec<u8>, PixelError> {
    // The object's own window when it has one; 8-bit samples are shown as they are (an echo
    // clip must look as the scanner showed it); deeper samples without a window are stretched.
    let bits_stored = header
        .get(tags::BITS_STORED)
        .and_then(|e| e.to_int::<u16>().ok())
        .unwrap_or(8);
    let voi = if header.get(tags::WINDOW_CENTER).is_some() {
        VoiLutOption::First
    } else if bits_stored <= 8 {
        VoiLutOption::Identity
    } else {
        VoiLutOption::Normalize
    };
    header.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("1"),
    ));
    let vr = if pixels.vr() == *b"OW" {
        VR::OW
    } else {
        VR::OB
    };
    let value = match frame {
        FrameBytes::Native(bytes) => Value::Primitive(PrimitiveValue::U8(bytes.into())),
        FrameBytes::Fragments(fragments) => {
            Value::PixelSequence(PixelFragmentSequence::new(Vec::<u32>::new(), fragments))
        }
    };
    header.put(DataElement::new(tags::PIXEL_DATA, vr, value));
    let object = header
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(transfer_syntax))
        .map_err(|e| PixelError::Damaged(e.to_string()))?;
    let decoded = object
        .decode_pixel_data()
        .map_err(|e| PixelError::Decode(e.to_string()))?;
    let options = ConvertOptions::new().with_voi_lut(voi).force_8bit();
    let image = decoded
        .to_dynamic_image_with_options(0, &options)
        .map_err(|e| PixelError::Decode(e.to_string()))?;
    encode(image, format)
}

fn encode(image: DynamicImage, format: Format) -> Result<Vec<u8>, PixelError> {
    let mut out = Cursor::new(Vec::new());
    let result = match format {
        Format::Png => image.write_to(&mut out, ImageFormat::Png),
        Format::Jpeg { quality } => {
            // JPEG has no 16-bit or alpha samples; force_8bit already gave 8-bit grey or RGB.
            let encoder = JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100));
            image.write_with_encoder(encoder)
        }
    };
    result.map_err(|e| PixelError::Decode(e.to_string()))?;
    Ok(out.into_inner())
}
