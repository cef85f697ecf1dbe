//! The standard copy of a recording: DICOM Ambulatory ECG (PS3.3 A.34.4: one multiplex group
//! of 1–12 channels, 50–1000 Hz, signed 16-bit samples), written as it streams in.
//!
//! A recording is cut into consecutive instances of at most [`INSTANCE_SECONDS`] each, in one
//! series: an hour of 12 leads at 1000 Hz is 86 MB, so neither the Waveform Data element's
//! 4 GB limit nor a viewer's memory is ever in question, and each instance starts exactly
//! where the one before ended (its acquisition time says when). An instance is written in
//! three parts: the data set up to the Waveform Sequence by dicom-rs, the multiplex group's
//! attributes by dicom-rs, then the Waveform Data element's header and the samples copied
//! through a block at a time — the samples never sit whole in memory.

use std::io::Write;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::{HolterError, Instants};
use crate::ingest::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

pub const AMBULATORY_ECG: &str = "1.2.840.10008.5.1.4.1.1.9.1.3";

/// The longest stretch of a recording one instance holds.
pub const INSTANCE_SECONDS: u64 = 3600;

/// The sampling rates the Ambulatory ECG IOD admits.
pub const RATES: std::ops::RangeInclusive<u32> = 50..=1000;

const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// Instants copied per write: 4,096 instants of 12 leads are 96 KiB.
const BLOCK: usize = 4096;

/// One channel as the copy describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub label: String,
    /// CID 3001 code value and meaning (MDC), where the lead is known.
    pub source: Option<(&'static str, &'static str)>,
    /// Microvolts per sample unit.
    pub sensitivity_uv: f64,
    /// Microvolts at sample 0.
    pub baseline_uv: f64,
}

/// Which instants of the recording instance `index` holds: `first` counts instants as they
/// follow one another in the file, `start_micros` is when the first was sampled (after the
/// recording's start; a discontinuous recording's gaps make the two disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub index: usize,
    pub first: u64,
    pub count: u64,
    pub start_micros: i64,
}

/// A stretch of a recording sampled without a gap: `count` instants from the file's
/// `first`, the first sampled `start_micros` after the recording's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub first: u64,
    pub count: u64,
    pub start_micros: i64,
}

/// Microseconds from a segment's start to its instant `k` at `rate` Hz.
pub fn micros_at(k: u64, rate: u32) -> i64 {
    i64::try_from(u128::from(k) * 1_000_000 / u128::from(rate.max(1))).unwrap_or(i64::MAX)
}

/// The instances a continuous recording of `samples` instants at `rate` Hz is cut into.
pub fn parts(samples: u64, rate: u32) -> Vec<Part> {
    segmented_parts(
        &[Segment {
            first: 0,
            count: samples,
            start_micros: 0,
        }],
        rate,
    )
}

/// The instances a recording of gapless segments is cut into: each segment in hours of its
/// own, so no instance spans a gap and each says when its first sample was taken.
pub fn segmented_parts(segments: &[Segment], rate: u32) -> Vec<Part> {
    let per = INSTANCE_SECONDS * u64::from(rate.max(1));
    let mut out = Vec::new();
    for s in segments {
        for i in 0..s.count.div_ceil(per) {
            out.push(Part {
                index: out.len(),
                first: s.first + i * per,
                count: per.min(s.count - i * per),
                start_micros: s.start_micros + micros_at(i * per, rate),
            });
        }
    }
    out
}

/// One element into `obj`.
pub(crate) fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, value.into()));
}

/// A code sequence item.
pub(crate) fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put(&mut item, tags::CODE_VALUE, VR::SH, value);
    put(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put(&mut item, tags::CODE_MEANING, VR::LO, meaning);
    item
}

/// A decimal string within DS's 16 characters.
fn ds(x: f64) -> String {
    let text = format!("{x}");
    if text.len() <= 16 {
        text
    } else {
        format!("{x:.9e}")
    }
}

/// The multiplex group's attributes, all but the samples.
fn group(channels: &[Channel], rate: u32, count: u64) -> Result<InMemDicomObject, HolterError> {
    let count = u32::try_from(count)
        .map_err(|_| HolterError::field("ecg_data", "an instance would exceed 2^32 samples"))?;
    let mut g = InMemDicomObject::new_empty();
    put(&mut g, tags::WAVEFORM_ORIGINALITY, VR::CS, "ORIGINAL");
    put(
        &mut g,
        tags::NUMBER_OF_WAVEFORM_CHANNELS,
        VR::US,
        channels.len() as u16,
    );
    put(&mut g, tags::NUMBER_OF_WAVEFORM_SAMPLES, VR::UL, count);
    put(&mut g, tags::SAMPLING_FREQUENCY, VR::DS, rate.to_string());
    put(&mut g, tags::MULTIPLEX_GROUP_LABEL, VR::SH, "HOLTER");
    let definitions: Vec<InMemDicomObject> = channels
        .iter()
        .map(|c| {
            let mut d = InMemDicomObject::new_empty();
            put(&mut d, tags::CHANNEL_LABEL, VR::SH, c.label.as_str());
            if let Some((value, meaning)) = c.source {
                d.put(DataElement::new(
                    tags::CHANNEL_SOURCE_SEQUENCE,
                    VR::SQ,
                    DataSetSequence::from(vec![code(value, "MDC", meaning)]),
                ));
            } else {
                d.put(DataElement::new(
                    tags::CHANNEL_SOURCE_SEQUENCE,
                    VR::SQ,
                    DataSetSequence::from(vec![code("2:0", "MDC", "Lead, unspecified")]),
                ));
            }
            put(
                &mut d,
                tags::CHANNEL_SENSITIVITY,
                VR::DS,
                ds(c.sensitivity_uv),
            );
            d.put(DataElement::new(
                tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![code("uV", "UCUM", "microvolt")]),
            ));
            put(
                &mut d,
                tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR,
                VR::DS,
                "1",
            );
            put(&mut d, tags::CHANNEL_BASELINE, VR::DS, ds(c.baseline_uv));
            put(&mut d, tags::CHANNEL_TIME_SKEW, VR::DS, "0");
            put(&mut d, tags::WAVEFORM_BITS_STORED, VR::US, 16u16);
            d
        })
        .collect();
    g.put(DataElement::new(
        tags::CHANNEL_DEFINITION_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(definitions),
    ));
    put(&mut g, tags::WAVEFORM_BITS_ALLOCATED, VR::US, 16u16);
    put(&mut g, tags::WAVEFORM_SAMPLE_INTERPRETATION, VR::CS, "SS");
    // A lead fault keeps its mark: the padding value is never a voltage.
    put(
        &mut g,
        tags::WAVEFORM_PADDING_VALUE,
        VR::OW,
        PrimitiveValue::from(i16::MIN.to_le_bytes().to_vec()),
    );
    Ok(g)
}

fn tag_header(out: &mut impl Write, tag: Tag) -> std::io::Result<()> {
    out.write_all(&tag.group().to_le_bytes())?;
    out.write_all(&tag.element().to_le_bytes())
}

/// Writes one instance: `head` holds everything above the waveform (patient, study, series,
/// SOP, acquisition time; no element at or after the Waveform Sequence); `samples` is read
/// until `part.count` instants are written.
pub fn write_instance(
    out: &mut impl Write,
    head: &InMemDicomObject,
    channels: &[Channel],
    rate: u32,
    part: Part,
    samples: &mut dyn Instants,
) -> Result<(), HolterError> {
    if !RATES.contains(&rate) {
        return Err(HolterError::field(
            "sampling_rate",
            format!("{rate} Hz; an Ambulatory ECG is sampled at 50 to 1000 Hz"),
        ));
    }
    if !(1..=12).contains(&channels.len()) {
        return Err(HolterError::field(
            "number_of_leads",
            format!("{}; an Ambulatory ECG has 1 to 12 channels", channels.len()),
        ));
    }
    let encode = |e: String| HolterError::field("dicom", e);
    let ts = TransferSyntaxRegistry
        .get(EXPLICIT_VR_LE)
        .ok_or_else(|| encode("explicit VR little endian is not registered".into()))?;
    let sop = head
        .element(tags::SOP_INSTANCE_UID)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches('\0').to_owned())
        .ok_or_else(|| encode("the instance has no SOP Instance UID".into()))?;
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(EXPLICIT_VR_LE)
        .media_storage_sop_class_uid(AMBULATORY_ECG)
        .media_storage_sop_instance_uid(sop)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| encode(e.to_string()))?;
    out.write_all(&[0u8; 128])?;
    out.write_all(b"DICM")?;
    meta.write(&mut *out).map_err(|e| encode(e.to_string()))?;
    head.write_dataset_with_ts(&mut *out, ts)
        .map_err(|e| encode(e.to_string()))?;
    // Waveform Sequence and its one item, both of undefined length, so nothing before the
    // samples needs their count of bytes.
    tag_header(out, tags::WAVEFORM_SEQUENCE)?;
    out.write_all(b"SQ\0\0")?;
    out.write_all(&u32::MAX.to_le_bytes())?;
    tag_header(out, Tag(0xFFFE, 0xE000))?;
    out.write_all(&u32::MAX.to_le_bytes())?;
    group(channels, rate, part.count)?
        .write_dataset_with_ts(&mut *out, ts)
        .map_err(|e| encode(e.to_string()))?;
    let bytes = part.count * channels.len() as u64 * 2;
    let length = u32::try_from(bytes)
        .ok()
        .filter(|l| *l < u32::MAX)
        .ok_or_else(|| HolterError::field("ecg_data", "an instance would exceed 4 GB"))?;
    tag_header(out, tags::WAVEFORM_DATA)?;
    out.write_all(b"OW\0\0")?;
    out.write_all(&length.to_le_bytes())?;
    let mut left = part.count;
    let (mut block, mut raw) = (Vec::with_capacity(BLOCK * channels.len()), Vec::new());
    while left > 0 {
        let want = BLOCK.min(usize::try_from(left).unwrap_or(BLOCK));
        let got = samples.next_instants(want, &mut block)?;
        if got == 0 || block.len() != got * channels.len() {
            return Err(HolterError::Truncated(format!(
                "the samples ended {left} instants before this instance's end"
            )));
        }
        raw.clear();
        raw.extend(block.iter().flat_map(|s| s.to_le_bytes()));
        out.write_all(&raw)?;
        left -= got.min(want) as u64;
    }
    tag_header(out, Tag(0xFFFE, 0xE00D))?;
    out.write_all(&0u32.to_le_bytes())?;
    tag_header(out, Tag(0xFFFE, 0xE0DD))?;
    out.write_all(&0u32.to_le_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::Value as DicomValue;

    /// Three channels' interleaved samples from memory.
    struct Memory<'a>(&'a [i16], usize);

    impl Instants for Memory<'_> {
        fn next_instants(&mut self, max: usize, out: &mut Vec<i16>) -> Result<usize, HolterError> {
            let n = max.min((self.0.len() - self.1) / 3);
            out.clear();
            out.extend(&self.0[self.1..self.1 + 3 * n]);
            self.1 += 3 * n;
            Ok(n)
        }
    }

    fn head(sop: &str) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        put(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        put(&mut o, tags::SOP_CLASS_UID, VR::UI, AMBULATORY_ECG);
        put(&mut o, tags::SOP_INSTANCE_UID, VR::UI, sop);
        put(&mut o, tags::PATIENT_NAME, VR::PN, "Žukauskienė^Rūta");
        put(&mut o, tags::MODALITY, VR::CS, "ECG");
        o
    }

    #[test]
    fn recordings_are_cut_at_whole_hours_without_a_sample_lost() {
        let cut = parts(200 * 3600 * 2 + 17, 200);
        assert_eq!(cut.len(), 3);
        assert_eq!(cut[1].first, 720_000);
        assert_eq!(cut[2].count, 17);
        assert_eq!(
            cut.iter().map(|p| p.count).sum::<u64>(),
            200 * 3600 * 2 + 17
        );
        assert!(parts(0, 200).is_empty());
        // Two stretches with a gap: the second starts its own instance, at its own time.
        let cut = segmented_parts(
            &[
                Segment {
                    first: 0,
                    count: 200 * 3600 + 5,
                    start_micros: 0,
                },
                Segment {
                    first: 200 * 3600 + 5,
                    count: 400,
                    start_micros: 7_200_000_000,
                },
            ],
            200,
        );
        assert_eq!(cut.len(), 3);
        assert_eq!((cut[1].count, cut[1].start_micros), (5, 3_600_000_000));
        assert_eq!(
            (cut[2].index, cut[2].first, cut[2].start_micros),
            (2, 720_005, 7_200_000_000)
        );
    }

    #[test]
    fn an_instance_reads_back_with_every_sample() {
        let channels: Vec<Channel> = ["ES", "AS", "AI"]
            .iter()
            .map(|l| Channel {
                label: (*l).into(),
                source: None,
                sensitivity_uv: 2.5,
                baseline_uv: 0.0,
            })
            .collect();
        let samples: Vec<i16> = (0..3 * 10_000)
            .map(|i| ((i * 7919) % 65_535 - 32_767) as i16)
            .collect();
        let mut source = Memory(&samples, 0);
        let mut file = Vec::new();
        let part = Part {
            index: 0,
            first: 0,
            count: 10_000,
            start_micros: 0,
        };
        write_instance(
            &mut file,
            &head("2.25.1"),
            &channels,
            200,
            part,
            &mut source,
        )
        .unwrap();
        let object = dicom_object::OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Always)
            .from_reader(&file[..])
            .unwrap();
        assert_eq!(
            object
                .element(tags::PATIENT_NAME)
                .unwrap()
                .to_str()
                .unwrap(),
            "Žukauskienė^Rūta"
        );
        let DicomValue::Sequence(seq) = object.element(tags::WAVEFORM_SEQUENCE).unwrap().value()
        else {
            panic!("no waveform sequence")
        };
        let item = &seq.items()[0];
        assert_eq!(
            item.element(tags::NUMBER_OF_WAVEFORM_SAMPLES)
                .unwrap()
                .to_int::<u32>()
                .unwrap(),
            10_000
        );
        let data = item
            .element(tags::WAVEFORM_DATA)
            .unwrap()
            .to_bytes()
            .unwrap();
        let read: Vec<i16> = data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(read, samples);
        // Too fast for the IOD: refused before a byte is written.
        let mut none = Vec::new();
        let err = write_instance(
            &mut none,
            &head("2.25.2"),
            &channels,
            2000,
            part,
            &mut source,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("sampling_rate"));
        assert!(none.is_empty());
    }
}
