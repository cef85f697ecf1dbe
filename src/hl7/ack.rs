//! Acknowledgements (original mode): MSA with AA, AE or AR and the sender's control id, and for
//! a problem an ERR segment carrying both the v2.3/2.4 ELD form (ERR-1) and the v2.5+ fields
//! (location, HL7 error code from table 0357, severity, user message), so senders of any
//! version we take can read it.

use hl7_parser::builder::prelude::*;

use super::message::{Header, Problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Accepted and acted on.
    Accept,
    /// The content was wrong or could not be acted on; the sender should fix and resend.
    Error,
    /// The message was refused as a whole (type, version, sender).
    Reject,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// Our identity in MSH-3/MSH-4 of what we answer.
pub const APPLICATION: &str = "TELECARDIO";

/// An ACK to `header` (what we could read of the message), with `text` in MSA-3.
pub fn ack(
    header: &Header,
    code: AckCode,
    text: &str,
    problem: Option<&Problem>,
    control_id: &str,
    now: &str,
) -> String {
    let version = if header.version.is_empty() {
        "2.5"
    } else {
        header.version.as_str()
    };
    let mut msh = SegmentBuilder::new("MSH")
        .with_field_value(3, APPLICATION)
        .with_field_value(4, APPLICATION)
        .with_field_value(5, &header.sending_application)
        .with_field_value(6, &header.sending_facility)
        .with_field_value(7, now)
        .with_field(
            9,
            FieldBuilder::default()
                .with_component(1, "ACK")
                .with_component(2, &header.trigger_event)
                .with_component(3, "ACK"),
        )
        .with_field_value(10, control_id)
        .with_field_value(11, "P")
        .with_field_value(12, version);
    let mut msa = SegmentBuilder::new("MSA")
        .with_field_value(1, code.as_str())
        .with_field_value(2, &header.control_id);
    if !text.is_empty() {
        msa = msa.with_field_value(3, text);
    }
    let mut message = MessageBuilder::new(Separators::default());
    let mut needs_unicode = !text.is_ascii();
    let err = problem.map(|p| {
        needs_unicode |= !p.message.is_ascii();
        let (segment, field) = split_location(&p.location);
        let code_text = code_text(p.code);
        let mut err = SegmentBuilder::new("ERR")
            .with_field(
                1,
                FieldBuilder::default()
                    .with_component(1, segment)
                    .with_component(2, if segment.is_empty() { "" } else { "1" })
                    .with_component(3, field)
                    .with_component(
                        4,
                        ComponentBuilder::default()
                            .with_subcomponent(1, p.code.to_string())
                            .with_subcomponent(2, code_text)
                            .with_subcomponent(3, "HL70357"),
                    ),
            )
            .with_field(
                3,
                FieldBuilder::default()
                    .with_component(1, p.code.to_string())
                    .with_component(2, code_text)
                    .with_component(3, "HL70357"),
            )
            .with_field_value(4, "E")
            .with_field_value(8, &p.message);
        if !segment.is_empty() {
            err = err.with_field(
                2,
                FieldBuilder::default()
                    .with_component(1, segment)
                    .with_component(2, "1")
                    .with_component(3, field),
            );
        }
        err
    });
    if needs_unicode {
        msh = msh.with_field_value(18, "UNICODE UTF-8");
    }
    message.push_segment(msh);
    message.push_segment(msa);
    if let Some(err) = err {
        message.push_segment(err);
    }
    message.to_string()
}

/// `PID-3` → (`PID`, `3`).
fn split_location(location: &str) -> (&str, &str) {
    location.split_once('-').unwrap_or((location, ""))
}

fn code_text(code: u16) -> &'static str {
    match code {
        100 => "Segment sequence error",
        101 => "Required field missing",
        102 => "Data type error",
        103 => "Table value not found",
        200 => "Unsupported message type",
        201 => "Unsupported event code",
        202 => "Unsupported processing id",
        203 => "Unsupported version id",
        204 => "Unknown key identifier",
        205 => "Duplicate key identifier",
        206 => "Application record locked",
        _ => "Application internal error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::message::code;

    fn header() -> Header {
        Header {
            sending_application: "HIS".into(),
            sending_facility: "DEMO_HIS".into(),
            trigger_event: "O01".into(),
            control_id: "MSG1".into(),
            version: "2.5".into(),
            ..Header::default()
        }
    }

    #[test]
    fn an_accept_echoes_the_control_id() {
        let text = ack(&header(), AckCode::Accept, "", None, "ACK1", "20261130");
        let parsed = hl7_parser::Message::parse(&text).expect("our ACK parses");
        let msa = parsed.segment("MSA").expect("MSA");
        assert_eq!(msa.field(1).map(|f| f.raw_value()), Some("AA"));
        assert_eq!(msa.field(2).map(|f| f.raw_value()), Some("MSG1"));
        assert_eq!(
            parsed
                .segment("MSH")
                .and_then(|s| s.field(9))
                .map(|f| f.raw_value()),
            Some("ACK^O01^ACK")
        );
        assert!(parsed.segment("ERR").is_none());
    }

    #[test]
    fn an_error_names_code_location_and_reason_escaped() {
        let problem = Problem::error(
            code::REQUIRED_FIELD_MISSING,
            "PID-3",
            "no ids | none^at all",
        );
        let text = ack(
            &header(),
            AckCode::Error,
            "refused",
            Some(&problem),
            "A",
            "2026",
        );
        let parsed = hl7_parser::Message::parse(&text).expect("our ACK parses");
        let err = parsed.segment("ERR").expect("ERR");
        assert_eq!(err.field(2).map(|f| f.raw_value()), Some("PID^1^3"));
        assert_eq!(
            err.field(3).map(|f| f.raw_value()),
            Some("101^Required field missing^HL70357")
        );
        assert_eq!(
            err.field(8).map(|f| f.raw_value()),
            Some("no ids \\F\\ none\\S\\at all")
        );
    }
}
