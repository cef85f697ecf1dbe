//! Report delivery to a clinic's HIS: the signed report as ORU^R01 (v2.5) over MLLP, one
//! message per connection, and the ACK checked (MSA-1 AA or CA, MSA-2 our control id).
//!
//! The report text goes in TX observations, one OBX per line, coded with LOINC section codes
//! so a HIS can file findings, conclusion and recommendations apart; OBR names the referral
//! (placer order) and the case (filler order) and the signer as principal result interpreter.

use std::time::Duration;

use hl7_parser::builder::prelude::*;
use tokio::io::BufReader;
use tokio::net::TcpStream;

use super::ack::APPLICATION;
use super::mllp::{read_frame, write_frame, Frame};
use crate::config::HisTarget;

#[derive(Debug, thiserror::Error)]
pub enum HisError {
    #[error("cannot reach {target}: {message}")]
    Connect { target: String, message: String },
    #[error("{target} did not answer within {seconds} s")]
    Timeout { target: String, seconds: u64 },
    #[error("{target} closed the connection without an acknowledgement")]
    NoAck { target: String },
    #[error("{target} answered with an unreadable acknowledgement: {message}")]
    BadAck { target: String, message: String },
    #[error("{target} answered {code}: {text}")]
    Refused {
        target: String,
        code: String,
        text: String,
    },
}

/// What the message carries.
pub struct ReportMessage<'a> {
    pub control_id: &'a str,
    /// `YYYYMMDDHHMMSS+0000`.
    pub now: &'a str,
    pub centre: &'a str,
    pub patient_id: &'a str,
    pub patient_name: &'a str,
    pub birth_date: &'a str,
    pub sex: &'a str,
    /// The referral's order number (placer) and ours for the case (filler: the same for every
    /// version, so a correction replaces the result it corrects).
    pub placer_order: &'a str,
    pub filler_order: &'a str,
    pub amended: bool,
    pub examination_date: &'a str,
    pub signed_at: &'a str,
    pub signer_name: &'a str,
    pub signer_licence: &'a str,
    pub findings: &'a str,
    pub conclusion: &'a str,
    pub recommendations: &'a str,
    pub free_text: &'a str,
}

/// The ORU^R01 message (segments separated by CR).
pub fn oru(m: &ReportMessage, target: &HisTarget) -> String {
    let msh = SegmentBuilder::new("MSH")
        .with_field_value(3, APPLICATION)
        .with_field_value(4, m.centre)
        .with_field_value(5, &target.application)
        .with_field_value(6, &target.facility)
        .with_field_value(7, m.now)
        .with_field(
            9,
            FieldBuilder::default()
                .with_component(1, "ORU")
                .with_component(2, "R01")
                .with_component(3, "ORU_R01"),
        )
        .with_field_value(10, m.control_id)
        .with_field_value(11, "P")
        .with_field_value(12, "2.5")
        .with_field_value(15, "AL")
        .with_field_value(16, "NE")
        .with_field_value(18, "UNICODE UTF-8");
    let (family, given) = m
        .patient_name
        .split_once('^')
        .unwrap_or((m.patient_name, ""));
    let pid = SegmentBuilder::new("PID")
        .with_field_value(1, "1")
        .with_field(
            3,
            FieldBuilder::default()
                .with_component(1, m.patient_id)
                .with_component(5, "PI"),
        )
        .with_field(
            5,
            FieldBuilder::default()
                .with_component(1, family)
                .with_component(2, given.split('^').next().unwrap_or("")),
        )
        .with_field_value(7, m.birth_date)
        .with_field_value(8, m.sex);
    let orc = SegmentBuilder::new("ORC")
        .with_field_value(1, "RE")
        .with_field_value(2, m.placer_order)
        .with_field_value(3, m.filler_order);
    let (signer_family, signer_given) = split_person(m.signer_name);
    let obr = SegmentBuilder::new("OBR")
        .with_field_value(1, "1")
        .with_field_value(2, m.placer_order)
        .with_field_value(3, m.filler_order)
        .with_field(
            4,
            FieldBuilder::default()
                .with_component(1, "11488-4")
                .with_component(2, "Consult note")
                .with_component(3, "LN"),
        )
        .with_field_value(7, m.examination_date)
        .with_field_value(22, m.signed_at)
        .with_field_value(24, "CAR")
        .with_field_value(25, if m.amended { "C" } else { "F" })
        .with_field(
            32,
            FieldBuilder::default().with_component(
                1,
                ComponentBuilder::default()
                    .with_subcomponent(1, m.signer_licence)
                    .with_subcomponent(2, signer_family)
                    .with_subcomponent(3, signer_given),
            ),
        );
    let mut message = MessageBuilder::new(Separators::default());
    message.push_segment(msh);
    message.push_segment(pid);
    message.push_segment(orc);
    message.push_segment(obr);
    let status = if m.amended { "C" } else { "F" };
    let mut n = 0;
    for (section, (code, name), text) in [
        (1, ("18782-3", "Radiology Study observation"), m.findings),
        (2, ("19005-8", "Impression"), m.conclusion),
        (3, ("18783-1", "Recommendation"), m.recommendations),
        (4, ("48767-8", "Annotation comment"), m.free_text),
    ] {
        if text.trim().is_empty() {
            continue;
        }
        for line in text.trim_end().lines() {
            n += 1;
            message.push_segment(
                SegmentBuilder::new("OBX")
                    .with_field_value(1, n.to_string())
                    .with_field_value(2, "TX")
                    .with_field(
                        3,
                        FieldBuilder::default()
                            .with_component(1, code)
                            .with_component(2, name)
                            .with_component(3, "LN"),
                    )
                    .with_field_value(4, section.to_string())
                    .with_field_value(5, line.trim_end_matches('\r'))
                    .with_field_value(11, status)
                    .with_field_value(14, m.signed_at),
            );
        }
    }
    message.to_string()
}

/// "Given Family" (as signers' names are kept) → (family, given).
fn split_person(name: &str) -> (&str, &str) {
    match name.trim().rsplit_once(' ') {
        Some((given, family)) => (family, given),
        None => (name.trim(), ""),
    }
}

/// Sends the message and checks the acknowledgement.
pub async fn send(
    target: &HisTarget,
    message: &str,
    control_id: &str,
    timeout: Duration,
) -> Result<(), HisError> {
    let name = target.describe();
    match tokio::time::timeout(timeout, exchange(target, message, control_id)).await {
        Ok(result) => result,
        Err(_) => Err(HisError::Timeout {
            target: name,
            seconds: timeout.as_secs(),
        }),
    }
}

async fn exchange(target: &HisTarget, message: &str, control_id: &str) -> Result<(), HisError> {
    let name = target.describe();
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| HisError::Connect {
            target: name.clone(),
            message: e.to_string(),
        })?;
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    write_frame(&mut write, message.as_bytes())
        .await
        .map_err(|e| HisError::Connect {
            target: name.clone(),
            message: e.to_string(),
        })?;
    let mut reader = BufReader::new(read);
    let ack = match read_frame(&mut reader, 1 << 20).await {
        Ok(Frame::Message(bytes)) => bytes,
        Ok(Frame::Closed) => return Err(HisError::NoAck { target: name }),
        Err(e) => {
            return Err(HisError::BadAck {
                target: name,
                message: e.to_string(),
            })
        }
    };
    let (code, acked, text) = msa(&ack).ok_or_else(|| HisError::BadAck {
        target: name.clone(),
        message: "no MSA segment".into(),
    })?;
    if acked != control_id {
        return Err(HisError::BadAck {
            target: name,
            message: format!("MSA-2 `{acked}` is not our control id `{control_id}`"),
        });
    }
    match code.as_str() {
        "AA" | "CA" => Ok(()),
        _ => Err(HisError::Refused {
            target: name,
            code,
            text,
        }),
    }
}

/// MSA-1, MSA-2 and MSA-3 of an acknowledgement, read leniently (any segment terminator, the
/// field separator from MSH).
fn msa(bytes: &[u8]) -> Option<(String, String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let separator = text.strip_prefix("MSH")?.chars().next()?;
    let line = text.split(['\r', '\n']).find(|l| l.starts_with("MSA"))?;
    let fields: Vec<&str> = line.split(separator).collect();
    let field = |n: usize| fields.get(n).map_or(String::new(), |f| f.trim().to_owned());
    Some((field(1), field(2), field(3)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_are_read_leniently() {
        let ack =
            b"MSH|^~\\&|HIS|C|TELECARDIO|T|20261130||ACK^R01|9|P|2.5\nMSA|AE|abc|no such patient";
        assert_eq!(
            msa(ack),
            Some(("AE".into(), "abc".into(), "no such patient".into()))
        );
        assert_eq!(msa(b"garbage"), None);
    }

    #[test]
    fn report_lines_become_observations() {
        let target = HisTarget {
            host: "h".into(),
            port: 1,
            application: "HIS".into(),
            facility: "DEMO".into(),
        };
        let m = ReportMessage {
            control_id: "d-1",
            now: "20261130120000+0000",
            centre: "demo-centre",
            patient_id: "48507120013",
            patient_name: "Žukauskienė^Rūta",
            birth_date: "19850712",
            sex: "F",
            placer_order: "E027-2026-0001",
            filler_order: "r-1",
            amended: false,
            examination_date: "20261130",
            signed_at: "20261130115900+0000",
            signer_name: "Žaneta Ūsienė",
            signer_licence: "MPL-1|2",
            findings: "Line one\nLine two",
            conclusion: "Normal.",
            recommendations: "",
            free_text: "",
        };
        let text = oru(&m, &target);
        let segments: Vec<&str> = text.split('\r').filter(|s| !s.is_empty()).collect();
        assert!(segments[0].starts_with("MSH|^~\\&|TELECARDIO|demo-centre|HIS|DEMO|"));
        assert_eq!(segments.iter().filter(|s| s.starts_with("OBX")).count(), 3);
        assert!(text.contains("Žukauskienė^Rūta"));
        // A delimiter in a value is escaped, not taken as structure.
        assert!(text.contains("MPL-1\\F\\2&Ūsienė&Žaneta"), "{text}");
    }
}
