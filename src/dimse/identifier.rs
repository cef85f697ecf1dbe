//! Query and retrieve identifiers (PS3.4 C.4): the data set after a C-FIND, C-MOVE or C-GET
//! request, read into the shared query model, and C-FIND answers written back.
//!
//! Identifiers are small, so they are parsed whole with dicom-object in the negotiated transfer
//! syntax; text is decoded by the identifier's Specific Character Set. Answers go out in the
//! query's character set when it can carry every letter of the answer, otherwise in UTF-8
//! (`ISO_IR 192`): a Lithuanian letter is never dropped.

use dicom_core::header::Header;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::catalog::Selection;
use crate::index::Level;
use crate::query::{self, Answered, Key, Model, Query, QueryError};

#[derive(Debug, thiserror::Error)]
pub enum IdentifierError {
    #[error("identifier cannot be parsed: {0}")]
    Parse(String),
    #[error("transfer syntax {0} is not supported for identifiers")]
    TransferSyntax(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("identifier lacks {0}")]
    Missing(&'static str),
    #[error("answer cannot be encoded: {0}")]
    Encode(String),
}

fn read(bytes: &[u8], ts_uid: &str) -> Result<InMemDicomObject, IdentifierError> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| IdentifierError::TransferSyntax(ts_uid.to_owned()))?;
    InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| IdentifierError::Parse(e.to_string()))
}

fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\0').to_owned())
        .unwrap_or_default()
}

/// A C-FIND identifier as a query, and the character set it was written in.
pub fn parse_find(
    bytes: &[u8],
    ts_uid: &str,
    model: Model,
) -> Result<(Query, Option<String>), IdentifierError> {
    let obj = read(bytes, ts_uid)?;
    let level = query::parse_level(&text(&obj, tags::QUERY_RETRIEVE_LEVEL))?;
    let charset = Some(text(&obj, tags::SPECIFIC_CHARACTER_SET)).filter(|c| !c.is_empty());
    let mut keys = Vec::new();
    for element in obj.iter() {
        let tag = element.tag();
        if tag == tags::QUERY_RETRIEVE_LEVEL || tag == tags::SPECIFIC_CHARACTER_SET {
            continue;
        }
        keys.push(key_of(element));
    }
    Ok((Query::new(model, level, keys)?, charset))
}

/// One key; a sequence key carries the keys of its (first) item (PS3.4 C.2.2.2.6).
fn key_of(element: &dicom_object::mem::InMemElement) -> Key {
    let vr = element.vr();
    if vr == VR::SQ {
        let items = element
            .items()
            .and_then(|items| items.first())
            .map(|item| item.iter().map(key_of).collect())
            .unwrap_or_default();
        return Key {
            items,
            ..Key::new(element.tag(), vr, "")
        };
    }
    let value = element
        .to_str()
        .map(|s| s.trim_matches(|c: char| c == ' ' || c == '\0').to_owned())
        .unwrap_or_default();
    Key::new(element.tag(), vr, value)
}

/// A C-MOVE or C-GET identifier as the selection to retrieve (PS3.4 C.4.2.2.1: the unique
/// keys of the level and the levels above it).
pub fn parse_retrieve(bytes: &[u8], ts_uid: &str) -> Result<(Level, Selection), IdentifierError> {
    let obj = read(bytes, ts_uid)?;
    let level = query::parse_level(&text(&obj, tags::QUERY_RETRIEVE_LEVEL))?;
    let list = |tag| -> Vec<String> {
        text(&obj, tag)
            .split('\\')
            .map(|u| u.trim_matches(|c: char| c == ' ' || c == '\0').to_owned())
            .filter(|u| !u.is_empty())
            .collect()
    };
    let selection = Selection {
        study_uids: list(tags::STUDY_INSTANCE_UID),
        series_uids: list(tags::SERIES_INSTANCE_UID),
        sop_instance_uids: list(tags::SOP_INSTANCE_UID),
    };
    let patient_id = text(&obj, tags::PATIENT_ID);
    let required: (&'static str, bool) = match level {
        Level::Patient => ("Patient ID", !patient_id.is_empty()),
        Level::Study => ("Study Instance UID", !selection.study_uids.is_empty()),
        Level::Series => ("Series Instance UID", !selection.series_uids.is_empty()),
        Level::Instance => ("SOP Instance UID", !selection.sop_instance_uids.is_empty()),
    };
    if !required.1 {
        return Err(IdentifierError::Missing(required.0));
    }
    for uid in selection
        .study_uids
        .iter()
        .chain(&selection.series_uids)
        .chain(&selection.sop_instance_uids)
    {
        if !crate::archive::keys::is_valid_uid(uid) {
            return Err(QueryError::BadValue {
                keyword: "UID".into(),
                value: uid.clone(),
                why: "not a UID".into(),
            }
            .into());
        }
    }
    if level == Level::Patient {
        return Err(IdentifierError::Missing(
            "Study Instance UID (retrieval of a whole patient is not offered)",
        ));
    }
    Ok((level, selection))
}

/// The character set an answer is written in: the query's if it carries every character,
/// none if the answer is plain ASCII, UTF-8 otherwise.
fn answer_charset(query_charset: Option<&str>, answers: &[Answered]) -> Option<&'static str> {
    fn all(answers: &[Answered]) -> Vec<&String> {
        answers
            .iter()
            .flat_map(|a| a.values.iter().chain(a.items.iter().flat_map(|i| all(i))))
            .collect()
    }
    let every = all(answers);
    let texts = || every.iter().copied();
    if texts().all(|v| v.is_ascii()) {
        return None;
    }
    if let Some(cs) = query_charset.and_then(|c| c.split('\\').rfind(|t| !t.trim().is_empty())) {
        if let Some(codec) = SpecificCharacterSet::from_code(cs.trim()) {
            let name = codec.name();
            if name != "ISO_IR 6" && texts().all(|v| codec.encode(v).is_ok()) {
                return KNOWN_CHARSETS.iter().copied().find(|k| *k == name);
            }
        }
    }
    Some("ISO_IR 192")
}

const KNOWN_CHARSETS: &[&str] = &[
    "ISO_IR 100",
    "ISO_IR 101",
    "ISO_IR 109",
    "ISO_IR 110",
    "ISO_IR 126",
    "ISO_IR 127",
    "ISO_IR 138",
    "ISO_IR 144",
    "ISO_IR 148",
    "ISO_IR 166",
    "ISO_IR 192",
];

/// A C-FIND answer identifier in transfer syntax `ts_uid`.
pub fn write_answer(
    level: Level,
    answers: &[Answered],
    query_charset: Option<&str>,
    ts_uid: &str,
) -> Result<Vec<u8>, IdentifierError> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| IdentifierError::TransferSyntax(ts_uid.to_owned()))?;
    let mut obj = InMemDicomObject::new_empty();
    if let Some(cs) = answer_charset(query_charset, answers) {
        obj.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from(cs),
        ));
    }
    obj.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from(query::level_name(level)),
    ));
    put_answers(&mut obj, answers);
    let mut out = Vec::with_capacity(512);
    obj.write_dataset_with_ts(&mut out, ts)
        .map_err(|e| IdentifierError::Encode(e.to_string()))?;
    Ok(out)
}

fn put_answers(obj: &mut InMemDicomObject, answers: &[Answered]) {
    for a in answers {
        let element = match a.vr {
            VR::SQ => {
                let items: Vec<InMemDicomObject> = a
                    .items
                    .iter()
                    .map(|item| {
                        let mut o = InMemDicomObject::new_empty();
                        put_answers(&mut o, item);
                        o
                    })
                    .collect();
                DataElement::new(a.tag, VR::SQ, DataSetSequence::from(items))
            }
            _ if a.values.is_empty() => DataElement::new(a.tag, a.vr, PrimitiveValue::Empty),
            vr => DataElement::new(
                a.tag,
                vr,
                PrimitiveValue::Strs(a.values.iter().cloned().collect()),
            ),
        };
        obj.put(element);
    }
}

/// The identifier of a final C-MOVE/C-GET response naming the instances that failed.
pub fn write_failed_list(uids: &[String], ts_uid: &str) -> Result<Vec<u8>, IdentifierError> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| IdentifierError::TransferSyntax(ts_uid.to_owned()))?;
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::FAILED_SOP_INSTANCE_UID_LIST,
        VR::UI,
        PrimitiveValue::Strs(uids.iter().cloned().collect()),
    ));
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts)
        .map_err(|e| IdentifierError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

    fn identifier(charset: Option<&str>, name: &str) -> Vec<u8> {
        let mut obj = InMemDicomObject::new_empty();
        if let Some(cs) = charset {
            obj.put(DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from(cs),
            ));
        }
        obj.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from("STUDY"),
        ));
        obj.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from(name),
        ));
        obj.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::Empty,
        ));
        let mut out = Vec::new();
        let ts = TransferSyntaxRegistry.get(EXPLICIT_LE).unwrap();
        obj.write_dataset_with_ts(&mut out, ts).unwrap();
        out
    }

    #[test]
    fn latin4_query_is_decoded_and_answered_in_latin4() {
        let bytes = identifier(Some("ISO_IR 110"), "ŽUK*");
        // The name went over the wire in ISO 8859-4: Ž is 0xAE.
        assert!(bytes.windows(4).any(|w| w == b"\xAEUK*"));
        let (q, cs) = parse_find(&bytes, EXPLICIT_LE, Model::StudyRoot).unwrap();
        assert_eq!(q.level, Level::Study);
        assert_eq!(q.keys[0].value, "ŽUK*");
        let answers = vec![Answered::new(
            tags::PATIENT_NAME,
            VR::PN,
            vec!["Žukauskas^Rūta".into()],
        )];
        let out = write_answer(Level::Study, &answers, cs.as_deref(), EXPLICIT_LE).unwrap();
        assert!(out.windows(10).any(|w| w == b"ISO_IR 110"));
        assert!(out.windows(3).any(|w| w == b"\xAEuk"));
    }

    #[test]
    fn latin1_query_is_answered_in_utf8_rather_than_dropping_letters() {
        let bytes = identifier(Some("ISO_IR 100"), "*");
        let (_, cs) = parse_find(&bytes, EXPLICIT_LE, Model::StudyRoot).unwrap();
        let answers = vec![Answered::new(
            tags::PATIENT_NAME,
            VR::PN,
            vec!["Žukauskas^Rūta".into()],
        )];
        let out = write_answer(Level::Study, &answers, cs.as_deref(), EXPLICIT_LE).unwrap();
        assert!(out.windows(10).any(|w| w == b"ISO_IR 192"));
        assert!(out
            .windows("Žukauskas".len())
            .any(|w| w == "Žukauskas".as_bytes()));
    }

    #[test]
    fn retrieve_needs_the_unique_key_of_its_level() {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from("SERIES"),
        ));
        obj.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3"),
        ));
        let mut out = Vec::new();
        let ts = TransferSyntaxRegistry.get(EXPLICIT_LE).unwrap();
        obj.write_dataset_with_ts(&mut out, ts).unwrap();
        let err = parse_retrieve(&out, EXPLICIT_LE).unwrap_err();
        assert!(err.to_string().contains("Series Instance UID"), "{err}");
    }
}
