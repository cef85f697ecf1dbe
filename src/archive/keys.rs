//! The object key layout: where each kind of object lives in the store.
//!
//! ```text
//! dicom/{clinic}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}_{sha256 of data set}.dcm
//! staging/{random id}
//! cda/{sha256 of the document}.xml
//! hl7/{sha256 of the message}.hl7
//! holter/{clinic}/{sha256 of the file}.{ecg|edf}
//! reports/{sha256 of the signed content}.json
//! answers/{sha256 of the document}.xml
//! audit/heads/{YYYY-MM-DD}/{chain position, 12 digits}.json
//! ```
//! A `dicom/` object is a complete DICOM Part 10 file (preamble, file meta naming the sending
//! AE, then the data set exactly as received), so the index can be rebuilt from the store alone.
//! The content hash in the name makes identical resends land on the same key (stored once)
//! while a different object under the same SOP Instance UID gets a key of its own (kept too).
//! The clinic that sent it comes first: two clinics never write the same key, so an object one
//! clinic was refused can be withdrawn without touching anything another clinic stored (and an
//! index rebuilt from the store knows whose each object is). Objects stored before the clinic
//! was part of the key keep their `dicom/{study}/…` keys, which the index records.
//! Objects of a series share one directory: on a local disk a new object then costs one
//! directory entry and one directory fsync, not a directory of its own.
//! `staging/` holds large uploads in flight; nothing in the index ever points there.
//! Every path segment is checked here, so no input can climb out of its prefix.

use object_store::path::Path;

pub const DICOM_PREFIX: &str = "dicom";
pub const STAGING_PREFIX: &str = "staging";
pub const CDA_PREFIX: &str = "cda";
pub const HL7_PREFIX: &str = "hl7";
pub const HOLTER_PREFIX: &str = "holter";
pub const REPORTS_PREFIX: &str = "reports";
pub const ANSWERS_PREFIX: &str = "answers";
pub const INDICATORS_PREFIX: &str = "indicators";
pub const AUDIT_HEADS_PREFIX: &str = "audit/heads";
pub const TOMBSTONES_PREFIX: &str = "tombstones";
pub const QUARANTINE_PREFIX: &str = "quarantine";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{value}` is not a valid {what}")]
pub struct InvalidKeyPart {
    pub what: &'static str,
    pub value: String,
}

/// A UID per PS3.5 9.1: 1–64 characters, dot-separated numeric components, no empty component,
/// no leading zero in a multi-digit component.
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && !(c.len() > 1 && c.starts_with('0'))
        })
}

/// An institution id as a key segment: ASCII letters, digits, `-`, `_` and `.`, not starting
/// with `.`, at most 64 characters (configuration refuses any other id).
pub fn is_valid_institution_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn clinic_part(clinic_id: &str) -> Result<&str, InvalidKeyPart> {
    if is_valid_institution_id(clinic_id) {
        Ok(clinic_id)
    } else {
        Err(InvalidKeyPart {
            what: "clinic id",
            value: clinic_id.chars().take(80).collect(),
        })
    }
}

fn uid_part(what: &'static str, uid: &str) -> Result<String, InvalidKeyPart> {
    if is_valid_uid(uid) {
        Ok(uid.to_owned())
    } else {
        Err(InvalidKeyPart {
            what,
            value: uid.chars().take(80).collect(),
        })
    }
}

/// The hash a content-addressed key carries (`…/<sha256>.<ext>`), in lower case;
/// '' when the name is not a hash.
pub fn hash_in_key(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or("");
    let stem = name.split('.').next().unwrap_or("");
    if stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        stem.to_ascii_lowercase()
    } else {
        String::new()
    }
}

/// Key of a received referral document: its content hash, so a resend lands on the same key.
pub fn cda_document(sha256_hex: &str) -> Path {
    Path::from(format!("{CDA_PREFIX}/{sha256_hex}.xml"))
}

/// Key of a signed report version's frozen content.
pub fn report_content(sha256_hex: &str) -> Path {
    Path::from(format!("{REPORTS_PREFIX}/{sha256_hex}.json"))
}

/// Key of a generated indicator report (JSON) or its FHIR Bundle, frozen as generated.
pub fn indicator_report(sha256_hex: &str) -> Path {
    Path::from(format!("{INDICATORS_PREFIX}/{sha256_hex}.json"))
}

/// Key of a report's answer document (HL7 CDA), as made at signing.
pub fn answer_document(sha256_hex: &str) -> Path {
    Path::from(format!("{ANSWERS_PREFIX}/{sha256_hex}.xml"))
}

/// Key of a received HL7 v2 message (an order a referral was made from), kept as received.
pub fn hl7_message(sha256_hex: &str) -> Path {
    Path::from(format!("{HL7_PREFIX}/{sha256_hex}.hl7"))
}

/// Key of a Holter recording as a clinic sent it (ISHNE `ecg`, EDF `edf`): kept byte for
/// byte, so hashing the stored object proves it is the file received. Per clinic, so one
/// clinic's file never shares a key with another's.
pub fn holter_original(
    clinic_id: &str,
    sha256_hex: &str,
    extension: &str,
) -> Result<Path, InvalidKeyPart> {
    Ok(Path::from_iter([
        HOLTER_PREFIX,
        clinic_part(clinic_id)?,
        &format!("{sha256_hex}.{extension}"),
    ]))
}

/// Key of a received DICOM object.
pub fn dicom_object(
    clinic_id: &str,
    study_uid: &str,
    series_uid: &str,
    sop_uid: &str,
    dataset_sha256: &str,
) -> Result<Path, InvalidKeyPart> {
    let clinic_id = clinic_part(clinic_id)?;
    let study = uid_part("Study Instance UID", study_uid)?;
    let series = uid_part("Series Instance UID", series_uid)?;
    let sop = uid_part("SOP Instance UID", sop_uid)?;
    if dataset_sha256.len() != 64 || !dataset_sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(InvalidKeyPart {
            what: "SHA-256 digest",
            value: dataset_sha256.to_owned(),
        });
    }
    Ok(Path::from_iter([
        DICOM_PREFIX,
        clinic_id,
        &study,
        &series,
        &format!("{sop}_{dataset_sha256}.dcm"),
    ]))
}

/// Key of a signed audit-chain head: the day it was signed (UTC, `YYYY-MM-DD`, which the
/// caller formats) and the chain position it vouches for, so keys sort in chain order.
pub fn audit_head(day: &str, seq: i64) -> Path {
    Path::from(format!("{AUDIT_HEADS_PREFIX}/{day}/{seq:012}.json"))
}

/// Key of the record an approved deletion leaves: what was removed, with hashes, who proposed
/// and approved it and why (a UUID names the request).
pub fn tombstone_record(request_id: &uuid::Uuid) -> Path {
    Path::from(format!("{TOMBSTONES_PREFIX}/{request_id}.json"))
}

/// A fresh key for an upload in flight.
pub fn staging() -> Path {
    Path::from_iter([STAGING_PREFIX, &uuid::Uuid::now_v7().to_string()])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_content_addressed_key_names_its_hash() {
        let sha = "ab".repeat(32);
        assert_eq!(super::hash_in_key(&format!("hl7/{sha}.hl7")), sha);
        assert_eq!(
            super::hash_in_key(&format!("hl7/{}.hl7", sha.to_uppercase())),
            sha
        );
        assert_eq!(super::hash_in_key("hl7/short.hl7"), "");
        assert_eq!(
            super::hash_in_key(&format!("x/{}.hl7", "zz".repeat(32))),
            ""
        );
    }

    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn uid_rules() {
        assert!(is_valid_uid("1.2.840.10008.5.1.4.1.1.6.1"));
        assert!(is_valid_uid("2.25.0"));
        for bad in [
            "",
            "1..2",
            ".1.2",
            "1.2.",
            "1.02",
            "1.2a",
            "../etc",
            &"1".repeat(65),
            "1.2 ",
        ] {
            assert!(!is_valid_uid(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn object_key_layout() {
        let key = dicom_object("demo", "1.2", "1.2.3", "1.2.3.4", SHA).unwrap();
        assert_eq!(
            key.as_ref(),
            format!("dicom/demo/1.2/1.2.3/1.2.3.4_{SHA}.dcm")
        );
    }

    #[test]
    fn object_key_refuses_bad_parts() {
        assert!(dicom_object("demo", "..", "1", "1", SHA).is_err());
        assert!(dicom_object("demo", "1", "1/2", "1", SHA).is_err());
        assert!(dicom_object("demo", "1", "1", "1", "zz").is_err());
        for clinic in ["", "..", ".x", "a/b", "klinika ą"] {
            assert!(
                dicom_object(clinic, "1", "1", "1", SHA).is_err(),
                "{clinic}"
            );
        }
    }
}
