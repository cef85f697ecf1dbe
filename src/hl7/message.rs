//! Reading the HL7 v2 messages we take: orders (ORM^O01, OMG^O19) and patient maintenance
//! (ADT^A08, ADT^A40). Structure comes from `hl7-parser`; this module decides what the fields
//! mean and says precisely, with the HL7 error code (table 0357) and the field's location,
//! what is missing or wrong.

use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use hl7_parser::message::{Field, Separators};
use hl7_parser::Message;

/// HL7 table 0357 message error condition codes used in our ERR segments.
pub mod code {
    pub const SEGMENT_SEQUENCE: u16 = 100;
    pub const REQUIRED_FIELD_MISSING: u16 = 101;
    pub const DATA_TYPE: u16 = 102;
    pub const TABLE_VALUE_NOT_FOUND: u16 = 103;
    pub const UNSUPPORTED_MESSAGE_TYPE: u16 = 200;
    pub const UNSUPPORTED_EVENT: u16 = 201;
    pub const UNSUPPORTED_PROCESSING_ID: u16 = 202;
    pub const UNSUPPORTED_VERSION: u16 = 203;
    pub const UNKNOWN_KEY: u16 = 204;
    pub const DUPLICATE_KEY: u16 = 205;
    pub const APPLICATION_ERROR: u16 = 207;
}

/// Why a message cannot be acted on. `reject` problems (AR) concern the message as a whole
/// (type, version, sender); the others (AE) its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    pub code: u16,
    /// Segment and field, e.g. `PID-3`; empty when the message as a whole is meant.
    pub location: String,
    pub message: String,
    pub reject: bool,
}

impl Problem {
    pub fn error(code: u16, location: &str, message: impl Into<String>) -> Problem {
        Problem {
            code,
            location: location.to_owned(),
            message: message.into(),
            reject: false,
        }
    }

    pub fn reject(code: u16, location: &str, message: impl Into<String>) -> Problem {
        Problem {
            reject: true,
            ..Problem::error(code, location, message)
        }
    }
}

/// MSH: who sent the message and what it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub sending_application: String,
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    pub time: String,
    pub message_code: String,
    pub trigger_event: String,
    pub control_id: String,
    pub processing_id: String,
    pub version: String,
}

/// One entry of a patient identifier list (CX).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientId {
    pub id: String,
    /// Assigning authority: namespace (CX-4.1) and universal id (CX-4.2, an OID).
    pub namespace: String,
    pub universal_id: String,
    /// Identifier type code (HL7 table 0203), e.g. NNLTU, MR.
    pub type_code: String,
}

/// The patient as a PID segment gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patient {
    pub ids: Vec<PatientId>,
    pub family_name: String,
    pub given_names: String,
    /// YYYYMMDD, or empty.
    pub birth_date: String,
    /// M, F, or empty.
    pub sex: String,
}

/// A coded value (CE/CWE): code, text, coding system.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coded {
    pub code: String,
    pub text: String,
    pub system: String,
}

/// An order for an examination: ORC and OBR of an ORM^O01 or OMG^O19.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Order {
    pub patient: Patient,
    /// ORC-1: NW for a new order.
    pub control: String,
    pub placer_number: String,
    pub filler_number: String,
    pub time: String,
    pub provider_id: String,
    pub provider_name: String,
    pub facility: String,
    pub services: Vec<Coded>,
    /// S (stat), A (ASAP), R (routine), … from ORC-7/OBR-27/TQ1-9.
    pub priority: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Order(Box<Order>),
    /// ADT^A08: new demographics for a patient we may already hold.
    PatientUpdate(Patient),
    /// ADT^A40: the prior identifiers (MRG-1) are merged into the surviving patient (PID).
    Merge {
        survivor: Patient,
        prior: Vec<PatientId>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub header: Header,
    pub content: Content,
}

/// Versions whose ORM/OMG/ADT layouts we read.
const VERSIONS: &[&str] = &[
    "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8",
];

/// Turns the bytes of one message into text, honouring MSH-18 (character set).
pub fn decode(bytes: &[u8]) -> Result<String, Problem> {
    let charset = msh_field(bytes, 18).unwrap_or_default();
    let dicom_term = match charset.trim() {
        "" | "UNICODE UTF-8" | "UNICODE" => {
            return String::from_utf8(bytes.to_vec()).map_err(|e| {
                Problem::error(
                    code::DATA_TYPE,
                    "MSH-18",
                    format!(
                        "the message is not UTF-8 (invalid byte at {}) and MSH-18 names no other \
                         character set",
                        e.utf8_error().valid_up_to()
                    ),
                )
            });
        }
        "ASCII" => "ISO_IR 6",
        "8859/1" => "ISO_IR 100",
        "8859/2" => "ISO_IR 101",
        "8859/4" => "ISO_IR 110",
        "8859/5" => "ISO_IR 144",
        other => {
            return Err(Problem::error(
                code::TABLE_VALUE_NOT_FOUND,
                "MSH-18",
                format!(
                    "character set `{other}` is not supported; send UNICODE UTF-8 or 8859/1, \
                     8859/2, 8859/4"
                ),
            ))
        }
    };
    let codec = SpecificCharacterSet::from_code(dicom_term).ok_or_else(|| {
        Problem::error(
            code::APPLICATION_ERROR,
            "MSH-18",
            "no decoder for the character set",
        )
    })?;
    codec.decode(bytes).map_err(|e| {
        Problem::error(
            code::DATA_TYPE,
            "MSH-18",
            format!("the message is not valid {charset}: {e}"),
        )
    })
}

/// MSH-`n` read from raw bytes (the header is ASCII in every character set we take), for the
/// character set before the message can be decoded, and for answering what cannot be parsed.
pub fn msh_field(bytes: &[u8], n: usize) -> Option<String> {
    let line_end = bytes
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[..line_end];
    if line.len() < 4 || &line[..3] != b"MSH" || n < 2 {
        return None;
    }
    let separator = line[3];
    let part = line.split(|b| *b == separator).nth(n - 1)?;
    Some(String::from_utf8_lossy(part).trim().to_owned())
}

/// HL7 v2.7 added a fifth encoding character (truncation, usually `#`) to MSH-2; the parser
/// takes exactly four, so it is dropped here (we never truncate what we read).
fn without_truncation_character(text: &str) -> std::borrow::Cow<'_, str> {
    let field = match (text.chars().nth(3), text.starts_with("MSH")) {
        (Some(f), true) => f,
        _ => return text.into(),
    };
    let encoding: Vec<(usize, char)> = text
        .char_indices()
        .skip(4)
        .take_while(|(_, c)| *c != field)
        .collect();
    match encoding.get(4) {
        Some((at, c)) if encoding.len() == 5 => {
            let mut out = String::with_capacity(text.len());
            out.push_str(&text[..*at]);
            out.push_str(&text[at + c.len_utf8()..]);
            out.into()
        }
        _ => text.into(),
    }
}

/// Parses and reads a decoded message.
pub fn read(text: &str) -> Result<Inbound, Problem> {
    let text = without_truncation_character(text.trim_matches(['\r', '\n']));
    let message = Message::parse_with_lenient_newlines(&text, true).map_err(|e| {
        Problem::reject(
            code::SEGMENT_SEQUENCE,
            "",
            format!("not an HL7 v2 message: {e}"),
        )
    })?;
    let seps = message.separators;
    let msh = message
        .segment("MSH")
        .filter(|_| message.segments().next().is_some_and(|s| s.name == "MSH"))
        .ok_or_else(|| {
            Problem::reject(
                code::SEGMENT_SEQUENCE,
                "MSH",
                "the message must start with MSH",
            )
        })?;
    let v = |field: usize, comp: usize| value(&seps, msh.field(field), comp, 1);
    let header = Header {
        sending_application: v(3, 1),
        sending_facility: v(4, 1),
        receiving_application: v(5, 1),
        receiving_facility: v(6, 1),
        time: v(7, 1),
        message_code: v(9, 1),
        trigger_event: v(9, 2),
        control_id: v(10, 1),
        processing_id: v(11, 1),
        version: v(12, 1),
    };
    if header.control_id.is_empty() {
        return Err(Problem::reject(
            code::REQUIRED_FIELD_MISSING,
            "MSH-10",
            "the message has no control id",
        ));
    }
    if !matches!(header.processing_id.as_str(), "P" | "D") {
        return Err(Problem::reject(
            code::UNSUPPORTED_PROCESSING_ID,
            "MSH-11",
            format!(
                "processing id `{}` is not taken: P (production) or D (debugging) only",
                header.processing_id
            ),
        ));
    }
    if !VERSIONS.contains(&header.version.as_str()) {
        return Err(Problem::reject(
            code::UNSUPPORTED_VERSION,
            "MSH-12",
            format!(
                "HL7 version `{}` is not supported (2.3 to 2.8)",
                header.version
            ),
        ));
    }
    let content = match (header.message_code.as_str(), header.trigger_event.as_str()) {
        ("ORM", "O01") | ("OMG", "O19") => Content::Order(Box::new(order(&message, &seps)?)),
        ("ADT", "A08") => Content::PatientUpdate(patient(&message, &seps)?),
        ("ADT", "A40") => {
            let survivor = patient(&message, &seps)?;
            let mrg = message.segment("MRG").ok_or_else(|| {
                Problem::error(
                    code::SEGMENT_SEQUENCE,
                    "MRG",
                    "an ADT^A40 needs an MRG segment with the prior patient identifiers",
                )
            })?;
            let prior = patient_ids(&seps, mrg.field(1));
            if prior.is_empty() {
                return Err(Problem::error(
                    code::REQUIRED_FIELD_MISSING,
                    "MRG-1",
                    "the prior patient identifier list is empty",
                ));
            }
            Content::Merge { survivor, prior }
        }
        ("ORM" | "OMG" | "ADT", event) => {
            return Err(Problem::reject(
                code::UNSUPPORTED_EVENT,
                "MSH-9",
                format!(
                    "event `{event}` of {} is not taken: ORM^O01, OMG^O19, ADT^A08 and ADT^A40 are",
                    header.message_code
                ),
            ))
        }
        (other, _) => {
            return Err(Problem::reject(
                code::UNSUPPORTED_MESSAGE_TYPE,
                "MSH-9",
                format!(
                    "message type `{other}` is not taken: ORM^O01, OMG^O19, ADT^A08 and ADT^A40 are"
                ),
            ))
        }
    };
    Ok(Inbound { header, content })
}

fn order(message: &Message, seps: &Separators) -> Result<Order, Problem> {
    let patient = patient(message, seps)?;
    let orc = message.segment("ORC").ok_or_else(|| {
        Problem::error(
            code::SEGMENT_SEQUENCE,
            "ORC",
            "the order has no ORC segment",
        )
    })?;
    // One referral per message: a second order group would otherwise be acknowledged and lost.
    if message.segment_count("ORC") > 1 || message.segment_count("OBR") > 1 {
        return Err(Problem::error(
            code::SEGMENT_SEQUENCE,
            "ORC",
            "the message carries more than one order; send one order (ORC/OBR) per message",
        ));
    }
    let obr = message.segment("OBR");
    let orc_v = |field: usize, comp: usize| value(seps, orc.field(field), comp, 1);
    let obr_v = |field: usize, comp: usize| value(seps, obr.and_then(|s| s.field(field)), comp, 1);
    let first = |a: String, b: String| if a.is_empty() { b } else { a };
    let control = orc_v(1, 1);
    if control.is_empty() {
        return Err(Problem::error(
            code::REQUIRED_FIELD_MISSING,
            "ORC-1",
            "the order control code is missing",
        ));
    }
    let placer_number = first(orc_v(2, 1), obr_v(2, 1));
    if placer_number.is_empty() {
        return Err(Problem::error(
            code::REQUIRED_FIELD_MISSING,
            "ORC-2",
            "the placer order number (ORC-2 or OBR-2) is missing: it is the referral number \
             the study's accession number must carry",
        ));
    }
    let mut services = Vec::new();
    if let Some(field) = obr.and_then(|s| s.field(4)) {
        for (c, t, s) in [(1, 2, 3), (4, 5, 6)] {
            let coded = Coded {
                code: value(seps, Some(field), c, 1),
                text: value(seps, Some(field), t, 1),
                system: value(seps, Some(field), s, 1),
            };
            if !coded.code.is_empty() || !coded.text.is_empty() {
                services.push(coded);
            }
        }
    }
    let tq1_priority = value(seps, message.segment("TQ1").and_then(|s| s.field(9)), 1, 1);
    let priority = first(
        first(tq1_priority, orc_v(7, 6)),
        first(obr_v(27, 6), obr_v(5, 1)),
    );
    let mut reasons: Vec<String> = Vec::new();
    if let Some(field) = obr.and_then(|s| s.field(31)) {
        for repeat in field.repeats() {
            let text = decoded(seps, repeat.component(2).map(|c| c.raw_value()));
            let code = decoded(seps, repeat.component(1).map(|c| c.raw_value()));
            let said = first(text, code);
            if !said.is_empty() {
                reasons.push(said);
            }
        }
    }
    let clinical = obr_v(13, 1);
    if !clinical.is_empty() {
        reasons.push(clinical);
    }
    for nte in message.segments().filter(|s| s.name == "NTE") {
        let note = value(seps, nte.field(3), 1, 1);
        if !note.is_empty() {
            reasons.push(note);
        }
    }
    let provider = |f: usize| first(orc_v(12, f), obr_v(16, f));
    let provider_name = [provider(3), provider(2)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Order {
        patient,
        control,
        placer_number,
        filler_number: first(orc_v(3, 1), obr_v(3, 1)),
        time: first(orc_v(9, 1), obr_v(6, 1)),
        provider_id: provider(1),
        provider_name,
        facility: orc_v(21, 1),
        services,
        priority,
        reason: reasons.join("; "),
    })
}

fn patient(message: &Message, seps: &Separators) -> Result<Patient, Problem> {
    let pid = message.segment("PID").ok_or_else(|| {
        Problem::error(
            code::SEGMENT_SEQUENCE,
            "PID",
            "the message has no PID segment",
        )
    })?;
    let ids = patient_ids(seps, pid.field(3));
    if ids.is_empty() {
        return Err(Problem::error(
            code::REQUIRED_FIELD_MISSING,
            "PID-3",
            "the patient identifier list is empty",
        ));
    }
    let v = |field: usize, comp: usize| value(seps, pid.field(field), comp, 1);
    let birth_date: String = v(7, 1).chars().take(8).collect();
    if !birth_date.is_empty()
        && (birth_date.len() != 8 || !birth_date.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Problem::error(
            code::DATA_TYPE,
            "PID-7",
            format!("birth date `{birth_date}` is not YYYYMMDD"),
        ));
    }
    let given = [v(5, 2), v(5, 3)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Patient {
        ids,
        family_name: v(5, 1),
        given_names: given,
        birth_date,
        sex: match v(8, 1).as_str() {
            s @ ("M" | "F") => s.to_owned(),
            _ => String::new(),
        },
    })
}

fn patient_ids(seps: &Separators, field: Option<&Field>) -> Vec<PatientId> {
    let Some(field) = field else {
        return Vec::new();
    };
    field
        .repeats()
        .filter_map(|r| {
            let comp = |n: usize, sub: usize| {
                decoded(
                    seps,
                    r.component(n)
                        .and_then(|c| c.subcomponent(sub))
                        .map(|s| s.raw_value()),
                )
            };
            let id = PatientId {
                id: comp(1, 1),
                namespace: comp(4, 1),
                universal_id: comp(4, 2),
                type_code: comp(5, 1),
            };
            (!id.id.is_empty()).then_some(id)
        })
        .collect()
}

/// Component `comp`, subcomponent `sub` of a field's first repetition, unescaped and trimmed.
fn value(seps: &Separators, field: Option<&Field>, comp: usize, sub: usize) -> String {
    decoded(
        seps,
        field
            .and_then(|f| f.component(comp))
            .and_then(|c| c.subcomponent(sub))
            .map(|s| s.raw_value()),
    )
}

/// HL7 escape sequences resolved. Written here rather than taken from the parser's decoder,
/// which indexes text by characters as if they were bytes and so mangles (or panics on) a
/// Lithuanian letter before an escape.
fn decoded(seps: &Separators, raw: Option<&str>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(seps.escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + seps.escape.len_utf8()..];
        let Some(end) = after.find(seps.escape) else {
            // An escape never closed: keep the text as it came.
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match &after[..end] {
            "F" => out.push(seps.field),
            "S" => out.push(seps.component),
            "T" => out.push(seps.subcomponent),
            "R" => out.push(seps.repetition),
            "E" => out.push(seps.escape),
            ".br" | "X0D" | "X0A" => out.push('\n'),
            // Highlighting and other formatting escapes carry no text.
            _ => {}
        }
        rest = &after[end + seps.escape.len_utf8()..];
    }
    out.push_str(rest);
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORM: &str = "MSH|^~\\&|HIS|DEMO_HIS|TELECARDIO|TC|20261130101500||ORM^O01|MSG0001|P|2.5\r\
PID|1||48507120013^^^LT&2.999.370.1&ISO^NNLTU~ST-2024-77^^^&2.999.370.3&ISO^MR||Žemaitė^Julija^Ona||19850712|F\r\
ORC|NW|ORD-77|||||^^^^^S||20261130101000|||12345^Kairys^Petras\r\
OBR|1|ORD-77||40701008^Echokardiografija^SCT|||||||||Dusulys \\T\\ krūtinės skausmas\r";

    #[test]
    fn an_order_is_read_field_by_field() {
        let inbound = read(ORM).expect("reads");
        assert_eq!(inbound.header.sending_facility, "DEMO_HIS");
        assert_eq!(inbound.header.control_id, "MSG0001");
        let Content::Order(order) = inbound.content else {
            panic!("an order");
        };
        assert_eq!(order.control, "NW");
        assert_eq!(order.placer_number, "ORD-77");
        assert_eq!(order.priority, "S");
        assert_eq!(order.provider_name, "Petras Kairys");
        assert_eq!(order.patient.family_name, "Žemaitė");
        assert_eq!(order.patient.given_names, "Julija Ona");
        assert_eq!(order.patient.ids.len(), 2);
        assert_eq!(order.patient.ids[0].universal_id, "2.999.370.1");
        assert_eq!(order.patient.ids[1].type_code, "MR");
        assert_eq!(order.services[0].code, "40701008");
        assert_eq!(order.reason, "Dusulys & krūtinės skausmas");
    }

    #[test]
    fn unknown_types_events_versions_are_rejected_with_their_field() {
        let p = read(&ORM.replace("ORM^O01", "ORU^R01")).unwrap_err();
        assert!(p.reject && p.code == code::UNSUPPORTED_MESSAGE_TYPE && p.location == "MSH-9");
        let p = read(&ORM.replace("ORM^O01", "ADT^A01")).unwrap_err();
        assert_eq!((p.code, p.reject), (code::UNSUPPORTED_EVENT, true));
        let p = read(&ORM.replace("|P|2.5", "|P|3.0")).unwrap_err();
        assert_eq!(p.location, "MSH-12");
        let p = read(&ORM.replace("|P|2.5", "|T|2.5")).unwrap_err();
        assert_eq!(p.location, "MSH-11");
    }

    #[test]
    fn an_order_without_placer_number_names_the_field() {
        let text = ORM
            .replace("ORC|NW|ORD-77|", "ORC|NW||")
            .replace("OBR|1|ORD-77|", "OBR|1||");
        let p = read(&text).unwrap_err();
        assert_eq!((p.code, p.location.as_str()), (101, "ORC-2"));
        assert!(!p.reject);
    }

    #[test]
    fn a_v27_truncation_character_does_not_shift_the_header() {
        let text = ORM.replacen("MSH|^~\\&|", "MSH|^~\\&#|", 1);
        let inbound = read(&text).expect("reads");
        assert_eq!(inbound.header.sending_facility, "DEMO_HIS");
        assert_eq!(inbound.header.control_id, "MSG0001");
    }

    #[test]
    fn two_orders_in_one_message_are_refused() {
        let text = format!("{ORM}ORC|NW|ORD-78\rOBR|2|ORD-78\r");
        assert_eq!(read(&text).unwrap_err().location, "ORC");
    }

    #[test]
    fn newline_separated_segments_are_read_too() {
        assert!(read(&ORM.replace('\r', "\n")).is_ok());
    }

    #[test]
    fn latin4_messages_are_decoded_by_msh_18() {
        let text = "MSH|^~\\&|HIS|DEMO_HIS|||20261130||ADT^A08|M2|P|2.5|||||LTU|8859/4\r\
PID|||48507120013^^^&2.999.370.1&ISO||";
        let mut bytes = text.as_bytes().to_vec();
        // Š in ISO 8859-4 is 0xA9.
        bytes.extend_from_slice(b"\xa9ukys^Jonas\r");
        let text = decode(&bytes).expect("decodes");
        let Content::PatientUpdate(p) = read(&text).expect("reads").content else {
            panic!("update");
        };
        assert_eq!(p.family_name, "Šukys");
        assert!(decode(b"MSH|^~\\&|a|b|||||ADT^A08|1|P|2.5\r\xff").is_err());
    }

    #[test]
    fn escapes_after_lithuanian_letters_are_resolved() {
        let seps = Separators::default();
        assert_eq!(
            decoded(&seps, Some("Ąžuolas\\S\\Čia\\E\\")),
            "Ąžuolas^Čia\\"
        );
        assert_eq!(decoded(&seps, Some("unclosed \\F")), "unclosed \\F");
    }

    #[test]
    fn a_merge_needs_prior_identifiers() {
        let text = "MSH|^~\\&|HIS|DEMO_HIS|||20261130||ADT^A40^ADT_A39|M3|P|2.5\r\
PID|||48507120013^^^&2.999.370.1&ISO\r";
        let p = read(text).unwrap_err();
        assert_eq!(p.location, "MRG");
        let merged = read(&format!("{text}MRG|TMP-1^^^DEMO\r")).expect("reads");
        let Content::Merge { prior, .. } = merged.content else {
            panic!("merge");
        };
        assert_eq!(prior[0].id, "TMP-1");
        assert_eq!(prior[0].namespace, "DEMO");
    }
}
