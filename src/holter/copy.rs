//! The attributes each instance of the standard copy carries above its samples: the patient
//! and study of the referral the recording came with (never the file's own free-text
//! patient fields), our UIDs, when each hour was sampled, where the copy came from (the
//! original's name, format and SHA-256, in the Contributing Equipment Sequence, so the
//! object itself leads back to the bytes it was made from) and the marks that fall in it.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use jiff::civil::DateTime;
use sha2::{Digest, Sha256};

use super::annotations::{self, Mark};
use super::dicom::{code, put, Part, AMBULATORY_ECG};
use super::recording::Recording;

/// A UID under 2.25 (PS3.5 B.2) made from names: the same recording for the same referral
/// always makes the same UIDs, so importing it again finds it stored instead of copying it
/// twice.
pub fn uid(names: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for n in names {
        hasher.update(n.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(first))
}

/// Who and what the copy is of, as the referral (and its study, when it has one) says.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub patient_id: String,
    pub issuer: String,
    /// DICOM PN, `Family^Given`.
    pub name: String,
    pub birth_date: String,
    pub sex: String,
    pub study_uid: String,
    pub series_uid: String,
    /// The study's own date and time when it exists; else the recording's start.
    pub study_date: String,
    pub study_time: String,
    pub study_id: String,
    pub study_description: String,
    pub accession_number: String,
    pub referring_physician: String,
    pub institution_name: String,
}

/// Where the copy came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub file_name: String,
    pub format: &'static str,
    pub sha256: String,
    pub recorder: String,
}

/// `YYYYMMDDHHMMSS.FFFFFF` and its date and time parts, `micros` after `start`.
fn stamp(start: DateTime, micros: i64) -> (String, String, String) {
    let at = start
        .checked_add(jiff::SignedDuration::from_micros(micros))
        .unwrap_or(start);
    let date = at.strftime("%Y%m%d").to_string();
    let time = format!(
        "{}.{:06}",
        at.strftime("%H%M%S"),
        at.subsec_nanosecond() / 1000
    );
    (format!("{date}{time}"), date, time)
}

fn sequence(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

/// What every instance of the copy shares.
pub fn template(recording: &Recording, subject: &Subject, source: &Source) -> InMemDicomObject {
    let (_, start_date, start_time) = stamp(recording.start, 0);
    let or = |value: &str, fallback: &str| {
        if value.is_empty() {
            fallback.to_owned()
        } else {
            value.to_owned()
        }
    };
    let mut o = InMemDicomObject::new_empty();
    put(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(&mut o, tags::SOP_CLASS_UID, VR::UI, AMBULATORY_ECG);
    put(
        &mut o,
        tags::STUDY_DATE,
        VR::DA,
        or(&subject.study_date, &start_date),
    );
    put(
        &mut o,
        tags::STUDY_TIME,
        VR::TM,
        or(&subject.study_time, &start_time),
    );
    put(
        &mut o,
        tags::ACCESSION_NUMBER,
        VR::SH,
        subject.accession_number.as_str(),
    );
    put(&mut o, tags::MODALITY, VR::CS, "ECG");
    put(&mut o, tags::MANUFACTURER, VR::LO, "");
    put(
        &mut o,
        tags::INSTITUTION_NAME,
        VR::LO,
        subject.institution_name.as_str(),
    );
    put(
        &mut o,
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        subject.referring_physician.as_str(),
    );
    put(
        &mut o,
        tags::STUDY_DESCRIPTION,
        VR::LO,
        or(&subject.study_description, "Holter"),
    );
    put(
        &mut o,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        format!("Holter ({})", source.format),
    );
    if !source.recorder.is_empty() {
        put(
            &mut o,
            tags::MANUFACTURER_MODEL_NAME,
            VR::LO,
            source.recorder.as_str(),
        );
    }
    // Where the copy came from: the converting software, and the original's identity.
    let mut equipment = InMemDicomObject::new_empty();
    put(&mut equipment, tags::MANUFACTURER, VR::LO, "telecardio");
    sequence(
        &mut equipment,
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        vec![code("109103", "DCM", "Modifying Equipment")],
    );
    put(
        &mut equipment,
        tags::CONTRIBUTION_DESCRIPTION,
        VR::ST,
        format!(
            "Converted from the {} file \"{}\", SHA-256 {}",
            source.format, source.file_name, source.sha256
        ),
    );
    sequence(
        &mut o,
        tags::CONTRIBUTING_EQUIPMENT_SEQUENCE,
        vec![equipment],
    );
    put(&mut o, tags::PATIENT_NAME, VR::PN, subject.name.as_str());
    put(
        &mut o,
        tags::PATIENT_ID,
        VR::LO,
        subject.patient_id.as_str(),
    );
    if !subject.issuer.is_empty() {
        put(
            &mut o,
            tags::ISSUER_OF_PATIENT_ID,
            VR::LO,
            subject.issuer.as_str(),
        );
    }
    put(
        &mut o,
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        subject.birth_date.as_str(),
    );
    put(&mut o, tags::PATIENT_SEX, VR::CS, subject.sex.as_str());
    put(
        &mut o,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        subject.study_uid.as_str(),
    );
    put(
        &mut o,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        subject.series_uid.as_str(),
    );
    put(&mut o, tags::STUDY_ID, VR::SH, subject.study_id.as_str());
    put(&mut o, tags::SERIES_NUMBER, VR::IS, "1");
    sequence(&mut o, tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new());
    o
}

/// One instance's head: the template, its UID and number, when its first sample was taken,
/// and the marks that fall in it.
pub fn head(
    template: &InMemDicomObject,
    recording: &Recording,
    part: Part,
    sop_instance_uid: &str,
    marks: &[Mark],
) -> InMemDicomObject {
    let mut o = template.clone();
    let (at, date, time) = stamp(recording.start, part.start_micros);
    put(&mut o, tags::SOP_INSTANCE_UID, VR::UI, sop_instance_uid);
    put(&mut o, tags::CONTENT_DATE, VR::DA, date);
    put(&mut o, tags::CONTENT_TIME, VR::TM, time);
    put(&mut o, tags::ACQUISITION_DATE_TIME, VR::DT, at);
    put(
        &mut o,
        tags::INSTANCE_NUMBER,
        VR::IS,
        PrimitiveValue::from((part.index + 1).to_string()),
    );
    let items = annotations::items(marks, part);
    if !items.is_empty() {
        o.put(annotations::sequence(items));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_and_valid() {
        let a = uid(&["holter-series", "r1", "abc"]);
        assert_eq!(a, uid(&["holter-series", "r1", "abc"]));
        assert_ne!(a, uid(&["holter-series", "r1a", "bc"]));
        assert!(crate::archive::keys::is_valid_uid(&a));
    }

    #[test]
    fn an_hour_later_is_stamped_to_the_microsecond() {
        let start: DateTime = "2026-03-06T23:30:15".parse().unwrap();
        let (at, date, time) = stamp(start, 3_600_000_005);
        assert_eq!(at, "20260307003015.000005");
        assert_eq!(
            (date.as_str(), time.as_str()),
            ("20260307", "003015.000005")
        );
    }
}
