//! The signed report as a DICOM object: an Encapsulated PDF (PS3.3 A.45.1) in a series of its
//! own in the examined study, so any viewer at the clinic shows it next to the images and a
//! PACS files it with them.
//!
//! Patient and study attributes come from the study as indexed, so the object lands in the same
//! patient and study at every receiver; text is UTF-8 (ISO_IR 192), whatever character set the
//! modality used.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

use crate::index::StudyRow;
use crate::ingest::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

pub const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Reports go in series numbered from here, one series per signed version.
pub(crate) const FIRST_SERIES_NUMBER: i64 = 9000;

#[derive(Debug, thiserror::Error)]
#[error("the report object could not be encoded: {0}")]
pub struct DocumentError(String);

/// What the object says besides the study's own attributes.
pub struct ReportObject<'a> {
    pub study: &'a StudyRow,
    pub series_uid: &'a str,
    pub sop_instance_uid: &'a str,
    pub version: i64,
    pub title: &'a str,
    /// Signing time as DICOM date (YYYYMMDD) and time (HHMMSS).
    pub date: &'a str,
    pub time: &'a str,
    pub manufacturer: &'a str,
    pub institution: &'a str,
    pub pdf: &'a [u8],
}

/// The Part 10 file (preamble, meta, Explicit VR Little Endian data set).
pub fn encapsulated_pdf(r: &ReportObject) -> Result<Vec<u8>, DocumentError> {
    let s = r.study;
    let mut o = InMemDicomObject::new_empty();
    let mut put = |tag: Tag, vr: VR, value: PrimitiveValue| {
        o.put(DataElement::new(tag, vr, value));
    };
    put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192".into());
    put(tags::SOP_CLASS_UID, VR::UI, ENCAPSULATED_PDF.into());
    put(tags::SOP_INSTANCE_UID, VR::UI, r.sop_instance_uid.into());
    put(tags::INSTANCE_CREATION_DATE, VR::DA, r.date.into());
    put(tags::INSTANCE_CREATION_TIME, VR::TM, r.time.into());
    // Dates and times here are UTC.
    put(tags::TIMEZONE_OFFSET_FROM_UTC, VR::SH, "+0000".into());
    // Patient (type 2 each: empty when the study had none).
    put(tags::PATIENT_NAME, VR::PN, s.patient_name.as_str().into());
    put(tags::PATIENT_ID, VR::LO, s.patient_id.as_str().into());
    if !s.patient_issuer.is_empty() {
        put(
            tags::ISSUER_OF_PATIENT_ID,
            VR::LO,
            s.patient_issuer.as_str().into(),
        );
    }
    put(
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        s.birth_date.as_str().into(),
    );
    put(tags::PATIENT_SEX, VR::CS, s.sex.as_str().into());
    // General Study.
    put(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        s.study_uid.as_str().into(),
    );
    put(tags::STUDY_DATE, VR::DA, s.study_date.as_str().into());
    put(tags::STUDY_TIME, VR::TM, s.study_time.as_str().into());
    put(
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        s.referring_physician.as_str().into(),
    );
    put(tags::STUDY_ID, VR::SH, PrimitiveValue::Empty);
    put(
        tags::ACCESSION_NUMBER,
        VR::SH,
        s.accession_number.as_str().into(),
    );
    // Encapsulated Document Series.
    put(tags::MODALITY, VR::CS, "DOC".into());
    put(tags::SERIES_INSTANCE_UID, VR::UI, r.series_uid.into());
    put(
        tags::SERIES_NUMBER,
        VR::IS,
        (FIRST_SERIES_NUMBER + r.version).to_string().into(),
    );
    put(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        truncate(r.title, 64).into(),
    );
    // General Equipment and SC Equipment: made by us, not scanned.
    put(
        tags::MANUFACTURER,
        VR::LO,
        truncate(r.manufacturer, 64).into(),
    );
    put(
        tags::INSTITUTION_NAME,
        VR::LO,
        truncate(r.institution, 64).into(),
    );
    put(tags::CONVERSION_TYPE, VR::CS, "SYN".into());
    // Encapsulated Document.
    put(tags::INSTANCE_NUMBER, VR::IS, "1".into());
    put(tags::CONTENT_DATE, VR::DA, r.date.into());
    put(tags::CONTENT_TIME, VR::TM, r.time.into());
    put(
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        format!("{}{}", r.date, r.time).into(),
    );
    put(tags::BURNED_IN_ANNOTATION, VR::CS, "YES".into());
    put(tags::RECOGNIZABLE_VISUAL_FEATURES, VR::CS, "NO".into());
    put(tags::DOCUMENT_TITLE, VR::ST, r.title.into());
    put(
        tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
        VR::LO,
        "application/pdf".into(),
    );
    put(
        tags::ENCAPSULATED_DOCUMENT_LENGTH,
        VR::UL,
        PrimitiveValue::from(r.pdf.len() as u32),
    );
    // An odd-length document is padded with one NUL; the length above stays the PDF's own.
    let mut padded = r.pdf.to_vec();
    if padded.len() % 2 == 1 {
        padded.push(0);
    }
    put(tags::ENCAPSULATED_DOCUMENT, VR::OB, padded.into());
    let mut code = InMemDicomObject::new_empty();
    code.put(DataElement::new(tags::CODE_VALUE, VR::SH, "11488-4"));
    code.put(DataElement::new(
        tags::CODING_SCHEME_DESIGNATOR,
        VR::SH,
        "LN",
    ));
    code.put(DataElement::new(tags::CODE_MEANING, VR::LO, "Consult note"));
    o.put(DataElement::new(
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![code]),
    ));

    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(EXPLICIT_VR_LE)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME);
    let mut out = Vec::with_capacity(r.pdf.len() + 4096);
    o.with_meta(meta)
        .map_err(|e| DocumentError(e.to_string()))?
        .write_all(&mut out)
        .map_err(|e| DocumentError(e.to_string()))?;
    Ok(out)
}

/// At most `max` characters (LO and similar have a length limit; titles can be longer).
fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The document an Encapsulated PDF or CDA object carries, without the padding that made its
/// length even.
pub fn encapsulated_document(part10: &[u8]) -> Result<Vec<u8>, String> {
    let object = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .from_reader(part10)
        .map_err(|e| e.to_string())?;
    let element = object
        .element(tags::ENCAPSULATED_DOCUMENT)
        .map_err(|_| "no Encapsulated Document".to_owned())?;
    let mut bytes = element.to_bytes().map_err(|e| e.to_string())?.into_owned();
    while bytes.last().is_some_and(|b| *b == 0 || *b == b' ') {
        bytes.pop();
    }
    Ok(bytes)
}
