//! The information object definitions we generate (PS3.3): the modules each IOD requires,
//! filled with plausible cardiology values.

use std::path::Path;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use sha2::{Digest, Sha256};

use super::{pdf, signal, SynthError};
use crate::holter::dicom::{code, put};
use crate::ingest::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const US_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.6.1";
const US_MULTIFRAME: &str = "1.2.840.10008.5.1.4.1.1.3.1";
const ECG_12_LEAD: &str = "1.2.840.10008.5.1.4.1.1.9.1.1";
const AMBULATORY_ECG: &str = "1.2.840.10008.5.1.4.1.1.9.1.3";
const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";

/// A deterministic UID under 2.25 (PS3.5 B.2) from a name.
pub fn uid(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(first))
}

pub struct Subject {
    name: String,
    id: String,
    birth_date: String,
    sex: &'static str,
}

impl Subject {
    /// The patient of the committed set: Lithuanian letters in both name components.
    pub fn demo() -> Subject {
        Subject {
            name: "Žukauskienė^Rūta".into(),
            id: "48507120014".into(),
            birth_date: "19850712".into(),
            sex: "F",
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn birth_date(&self) -> &str {
        &self.birth_date
    }

    pub fn sex(&self) -> &str {
        self.sex
    }

    pub fn numbered(n: usize) -> Subject {
        const NAMES: [&str; 5] = [
            "Kazlauskas^Jonas",
            "Petrauskaitė^Gintarė",
            "Šimkus^Žygimantas",
            "Jankauskienė^Aušra",
            "Butkus^Ąžuolas",
        ];
        Subject {
            name: NAMES[n % NAMES.len()].into(),
            id: format!("3{:02}0101{:04}", 50 + n % 40, 1000 + n),
            birth_date: format!("19{:02}0101", 50 + n % 40),
            sex: if n.is_multiple_of(2) { "M" } else { "F" },
        }
    }
}

pub struct StudyRef {
    uid: String,
    accession: String,
    name: String,
}

impl StudyRef {
    pub fn new(name: &str, accession: &str) -> StudyRef {
        StudyRef {
            uid: uid(name),
            accession: accession.into(),
            name: name.into(),
        }
    }

    pub fn uid(&self) -> &str {
        &self.uid
    }

    pub fn accession(&self) -> &str {
        &self.accession
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

fn sequence(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

/// Patient, General Study, General Series, General Equipment and SOP Common.
fn common(
    subject: &Subject,
    study: &StudyRef,
    sop_class: &str,
    name: &str,
    modality: &str,
    series: &str,
    instance: usize,
) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    put(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(&mut o, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put(
        &mut o,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        uid(&format!("{}/{name}", study.name)),
    );
    put(&mut o, tags::STUDY_DATE, VR::DA, "20261120");
    put(&mut o, tags::CONTENT_DATE, VR::DA, "20261120");
    put(&mut o, tags::STUDY_TIME, VR::TM, "093000");
    put(&mut o, tags::CONTENT_TIME, VR::TM, "093500");
    put(
        &mut o,
        tags::ACCESSION_NUMBER,
        VR::SH,
        study.accession.as_str(),
    );
    put(&mut o, tags::MODALITY, VR::CS, modality);
    put(&mut o, tags::MANUFACTURER, VR::LO, "telecardio synthetic");
    put(&mut o, tags::INSTITUTION_NAME, VR::LO, "Demo klinika");
    put(
        &mut o,
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        "Kairys^Vytautas",
    );
    put(
        &mut o,
        tags::STUDY_DESCRIPTION,
        VR::LO,
        "Širdies tyrimas / cardiac examination",
    );
    put(&mut o, tags::SERIES_DESCRIPTION, VR::LO, series);
    put(&mut o, tags::MANUFACTURER_MODEL_NAME, VR::LO, "synth");
    put(&mut o, tags::PATIENT_NAME, VR::PN, subject.name.as_str());
    put(&mut o, tags::PATIENT_ID, VR::LO, subject.id.as_str());
    put(&mut o, tags::ISSUER_OF_PATIENT_ID, VR::LO, "LT-AK");
    put(
        &mut o,
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        subject.birth_date.as_str(),
    );
    put(&mut o, tags::PATIENT_SEX, VR::CS, subject.sex);
    put(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, study.uid.as_str());
    put(
        &mut o,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        uid(&format!("{}/{series}", study.name)),
    );
    put(&mut o, tags::STUDY_ID, VR::SH, "1");
    put(&mut o, tags::SERIES_NUMBER, VR::IS, series_number(series));
    put(
        &mut o,
        tags::INSTANCE_NUMBER,
        VR::IS,
        (instance + 1).to_string(),
    );
    o
}

fn series_number(series: &str) -> &'static str {
    match series {
        "Echo clips" => "1",
        "Echo images" => "2",
        "Resting ECG" => "3",
        "Holter" => "4",
        _ => "5",
    }
}

/// General Image, Image Pixel and US Image attributes shared by single- and multi-frame US.
fn us_image_modules(o: &mut InMemDicomObject, rows: u16, cols: u16) {
    put(o, tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY");
    // Naming the (unpaired) body part tells validators that Laterality does not apply.
    put(o, tags::BODY_PART_EXAMINED, VR::CS, "HEART");
    put(o, tags::PATIENT_ORIENTATION, VR::CS, PrimitiveValue::Empty);
    put(o, tags::SAMPLES_PER_PIXEL, VR::US, 1u16);
    put(o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put(o, tags::ROWS, VR::US, rows);
    put(o, tags::COLUMNS, VR::US, cols);
    put(o, tags::BITS_ALLOCATED, VR::US, 8u16);
    put(o, tags::BITS_STORED, VR::US, 8u16);
    put(o, tags::HIGH_BIT, VR::US, 7u16);
    put(o, tags::PIXEL_REPRESENTATION, VR::US, 0u16);
    put(o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    put(o, tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
}

pub fn us_single(
    subject: &Subject,
    study: &StudyRef,
    name: &str,
    n: usize,
    rows: u16,
    cols: u16,
) -> InMemDicomObject {
    let mut o = common(subject, study, US_IMAGE, name, "US", "Echo images", n);
    us_image_modules(&mut o, rows, cols);
    let mut pixels = vec![0u8; rows as usize * cols as usize];
    signal::echo_frame(&mut pixels, rows as usize, cols as usize, n);
    put(
        &mut o,
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(pixels),
    );
    o
}

/// Everything of a multi-frame US object but its Pixel Data.
pub fn us_multiframe_header(
    subject: &Subject,
    study: &StudyRef,
    name: &str,
    n: usize,
    frames: u32,
    rows: u16,
    cols: u16,
) -> InMemDicomObject {
    let mut o = common(subject, study, US_MULTIFRAME, name, "US", "Echo clips", n);
    us_image_modules(&mut o, rows, cols);
    put(&mut o, tags::NUMBER_OF_FRAMES, VR::IS, frames.to_string());
    put(
        &mut o,
        tags::FRAME_INCREMENT_POINTER,
        VR::AT,
        PrimitiveValue::Tags(vec![tags::FRAME_TIME].into()),
    );
    put(&mut o, tags::FRAME_TIME, VR::DS, "33.3");
    put(&mut o, tags::CINE_RATE, VR::IS, "30");
    put(&mut o, tags::RECOMMENDED_DISPLAY_FRAME_RATE, VR::IS, "30");
    put(&mut o, tags::HEART_RATE, VR::IS, "72");
    o
}

pub fn us_multiframe(
    subject: &Subject,
    study: &StudyRef,
    name: &str,
    n: usize,
    frames: u32,
    rows: u16,
    cols: u16,
) -> InMemDicomObject {
    let mut o = us_multiframe_header(subject, study, name, n, frames, rows, cols);
    let frame = rows as usize * cols as usize;
    let mut pixels = vec![0u8; frame * frames as usize];
    for (f, chunk) in pixels.chunks_mut(frame).enumerate() {
        signal::echo_frame(chunk, rows as usize, cols as usize, f);
    }
    put(
        &mut o,
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(pixels),
    );
    o
}

/// MDC codes of the twelve standard leads (CID 3001) in the usual order.
const LEADS: [(&str, &str); 12] = [
    ("2:1", "Lead I"),
    ("2:2", "Lead II"),
    ("2:61", "Lead III"),
    ("2:62", "aVR, augmented voltage, right"),
    ("2:63", "aVL, augmented voltage, left"),
    ("2:64", "aVF, augmented voltage, foot"),
    ("2:3", "Lead V1"),
    ("2:4", "Lead V2"),
    ("2:5", "Lead V3"),
    ("2:6", "Lead V4"),
    ("2:7", "Lead V5"),
    ("2:8", "Lead V6"),
];

fn channel(lead: usize) -> InMemDicomObject {
    let (value, meaning) = LEADS[lead];
    let mut c = InMemDicomObject::new_empty();
    sequence(
        &mut c,
        tags::CHANNEL_SOURCE_SEQUENCE,
        vec![code(value, "MDC", meaning)],
    );
    put(&mut c, tags::CHANNEL_SENSITIVITY, VR::DS, "1");
    sequence(
        &mut c,
        tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE,
        vec![code("uV", "UCUM", "microvolt")],
    );
    put(
        &mut c,
        tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR,
        VR::DS,
        "1",
    );
    put(&mut c, tags::CHANNEL_BASELINE, VR::DS, "0");
    put(&mut c, tags::CHANNEL_TIME_SKEW, VR::DS, "0");
    put(&mut c, tags::WAVEFORM_BITS_STORED, VR::US, 16u16);
    put(&mut c, tags::FILTER_LOW_FREQUENCY, VR::DS, "0.05");
    put(&mut c, tags::FILTER_HIGH_FREQUENCY, VR::DS, "150");
    c
}

/// One multiplex group of `leads` channels, interleaved 16-bit signed samples.
fn multiplex_group(leads: usize, samples: usize, hz: f64, label: &str) -> InMemDicomObject {
    let mut g = InMemDicomObject::new_empty();
    put(&mut g, tags::WAVEFORM_ORIGINALITY, VR::CS, "ORIGINAL");
    put(
        &mut g,
        tags::NUMBER_OF_WAVEFORM_CHANNELS,
        VR::US,
        leads as u16,
    );
    put(
        &mut g,
        tags::NUMBER_OF_WAVEFORM_SAMPLES,
        VR::UL,
        samples as u32,
    );
    put(&mut g, tags::SAMPLING_FREQUENCY, VR::DS, format!("{hz}"));
    put(&mut g, tags::MULTIPLEX_GROUP_LABEL, VR::SH, label);
    sequence(
        &mut g,
        tags::CHANNEL_DEFINITION_SEQUENCE,
        (0..leads).map(channel).collect(),
    );
    put(&mut g, tags::WAVEFORM_BITS_ALLOCATED, VR::US, 16u16);
    put(&mut g, tags::WAVEFORM_SAMPLE_INTERPRETATION, VR::CS, "SS");
    let mut data = Vec::with_capacity(samples * leads * 2);
    for n in 0..samples {
        for lead in 0..leads {
            data.extend_from_slice(&signal::ecg_microvolts(lead, n, hz).to_le_bytes());
        }
    }
    put(
        &mut g,
        tags::WAVEFORM_DATA,
        VR::OW,
        PrimitiveValue::from(data),
    );
    g
}

fn waveform_identification(o: &mut InMemDicomObject) {
    put(o, tags::ACQUISITION_DATE_TIME, VR::DT, "20261120093000");
    sequence(o, tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new());
}

/// Ten seconds of a resting 12-lead ECG at 500 Hz.
pub fn ecg_12_lead(subject: &Subject, study: &StudyRef, name: &str, n: usize) -> InMemDicomObject {
    let mut o = common(subject, study, ECG_12_LEAD, name, "ECG", "Resting ECG", n);
    waveform_identification(&mut o);
    sequence(
        &mut o,
        tags::WAVEFORM_SEQUENCE,
        vec![multiplex_group(12, 5000, 500.0, "RHYTHM")],
    );
    o
}

/// `minutes` of a three-channel Holter recording at 200 Hz (Ambulatory ECG IOD, PS3.3 A.34.4:
/// one multiplex group, 1–12 channels, 50–1000 Hz).
pub fn ambulatory_ecg(
    subject: &Subject,
    study: &StudyRef,
    name: &str,
    n: usize,
    minutes: usize,
) -> InMemDicomObject {
    let mut o = common(subject, study, AMBULATORY_ECG, name, "ECG", "Holter", n);
    waveform_identification(&mut o);
    let samples = minutes * 60 * 200;
    sequence(
        &mut o,
        tags::WAVEFORM_ANNOTATION_SEQUENCE,
        holter_annotations(samples as u32),
    );
    sequence(
        &mut o,
        tags::WAVEFORM_SEQUENCE,
        vec![multiplex_group(3, samples, 200.0, "HOLTER")],
    );
    o
}

/// What a Holter analyser leaves on a recording, in the shapes real devices use (free text,
/// a coded finding over a segment, a measurement of the whole): the patient's button press at
/// the middle, a ventricular run at 30 % lasting 6 s, the mean heart rate. All channels of
/// group 1 (channel 0 means all).
fn holter_annotations(samples: u32) -> Vec<InMemDicomObject> {
    let all_channels = || {
        let mut item = InMemDicomObject::new_empty();
        put(
            &mut item,
            tags::REFERENCED_WAVEFORM_CHANNELS,
            VR::US,
            PrimitiveValue::U16([1u16, 0].into_iter().collect()),
        );
        item
    };
    let mut event = all_channels();
    put(
        &mut event,
        tags::UNFORMATTED_TEXT_VALUE,
        VR::ST,
        "Paciento įvykis: širdies plakimas",
    );
    put(&mut event, tags::TEMPORAL_RANGE_TYPE, VR::CS, "POINT");
    put(
        &mut event,
        tags::REFERENCED_SAMPLE_POSITIONS,
        VR::UL,
        samples / 2 + 1,
    );
    let mut run = all_channels();
    sequence(
        &mut run,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code("25569003", "SCT", "Ventricular tachycardia")],
    );
    put(&mut run, tags::TEMPORAL_RANGE_TYPE, VR::CS, "SEGMENT");
    let from = samples / 10 * 3 + 1;
    put(
        &mut run,
        tags::REFERENCED_SAMPLE_POSITIONS,
        VR::UL,
        PrimitiveValue::U32([from, from + 6 * 200].into_iter().collect()),
    );
    let mut rate = all_channels();
    sequence(
        &mut rate,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code("8867-4", "LN", "Heart rate")],
    );
    put(&mut rate, tags::NUMERIC_VALUE, VR::DS, "72");
    sequence(
        &mut rate,
        tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
        vec![code("/min", "UCUM", "per minute")],
    );
    vec![event, run, rate]
}

/// A vendor-style Holter summary as Encapsulated PDF.
pub fn encapsulated_pdf(
    subject: &Subject,
    study: &StudyRef,
    name: &str,
    n: usize,
) -> InMemDicomObject {
    let mut o = common(
        subject,
        study,
        ENCAPSULATED_PDF,
        name,
        "DOC",
        "Holter summary",
        n,
    );
    put(&mut o, tags::CONVERSION_TYPE, VR::CS, "WSD");
    put(
        &mut o,
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        "20261120093000",
    );
    put(&mut o, tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
    put(&mut o, tags::DOCUMENT_TITLE, VR::ST, "Holter summary");
    sequence(
        &mut o,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code("18745-0", "LN", "Cardiac catheterization study")],
    );
    put(
        &mut o,
        tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
        VR::LO,
        "application/pdf",
    );
    let document = pdf::one_page(
        "Holter summary (synthetic)",
        &[
            "Recording: 24 h, 3 channels, 200 Hz",
            "Mean heart rate 72/min, min 48/min, max 131/min",
            "Supraventricular ectopics: 41; ventricular ectopics: 12",
            "No pauses over 2.0 s. No sustained arrhythmia.",
        ],
    );
    let mut padded = document.clone();
    if padded.len() % 2 == 1 {
        padded.push(0);
    }
    put(
        &mut o,
        tags::ENCAPSULATED_DOCUMENT_LENGTH,
        VR::UL,
        document.len() as u32,
    );
    put(
        &mut o,
        tags::ENCAPSULATED_DOCUMENT,
        VR::OB,
        PrimitiveValue::from(padded),
    );
    o
}

fn meta() -> FileMetaTableBuilder {
    FileMetaTableBuilder::new()
        .transfer_syntax(EXPLICIT_VR_LE)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
}

pub fn write(object: &InMemDicomObject, path: &Path) -> Result<(), SynthError> {
    let file = std::fs::File::create(path).map_err(|source| SynthError::Io {
        path: path.to_owned(),
        source,
    })?;
    write_to(object, file, path)
}

/// Preamble, file meta and data set of `object` into `to`.
pub fn write_to(
    object: &InMemDicomObject,
    to: impl std::io::Write,
    path: &Path,
) -> Result<(), SynthError> {
    let encode = |message: String| SynthError::Encode {
        path: path.to_owned(),
        message,
    };
    object
        .clone()
        .with_meta(meta())
        .map_err(|e| encode(e.to_string()))?
        .write_all(to)
        .map_err(|e| encode(e.to_string()))
}
