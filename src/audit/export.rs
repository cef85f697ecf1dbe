//! The audit trail in the forms hospitals' audit repositories read: FHIR R4 `AuditEvent`
//! resources, and DICOM audit messages (PS3.15 A.5, the schema IHE ATNA repositories take over
//! syslog). Each event keeps its place in the chain (sequence number and hash) so a copy held
//! elsewhere can be matched against the chain.

use serde_json::{json, Value};

use crate::index::{rfc3339, ChainedEvent};

/// DICOM (DCM) event identification for an event kind: code, meaning and action (C, R, U, D,
/// E), from PS3.16 CID 400 and PS3.15 A.5.3.
struct EventCode {
    code: &'static str,
    meaning: &'static str,
    action: &'static str,
}

fn classify(kind: &str) -> EventCode {
    let (code, meaning, action) = match kind {
        "store" | "referral_received" => ("110104", "DICOM Instances Transferred", "C"),
        "dicom_association" => ("110104", "DICOM Instances Transferred", "E"),
        "retrieve" | "report_pdf_read" | "answer_read" => {
            ("110104", "DICOM Instances Transferred", "R")
        }
        "query"
        | "studies_listed"
        | "reports_listed"
        | "worklist_read"
        | "journal_read"
        | "unlinked_studies_read" => ("110112", "Query", "E"),
        "login" | "logout" | "authentication_failed" => ("110114", "User Authentication", "E"),
        "deletion_approved" => ("110105", "DICOM Study Deleted", "D"),
        "dicom_association_rejected"
        | "hl7_connection_refused"
        | "forgery_refused"
        | "ownership_refused" => ("110113", "Security Alert", "E"),
        k if k.starts_with("user_") || k.starts_with("token_") => ("110113", "Security Alert", "U"),
        k if k.starts_with("audit_")
            || k.starts_with("fixity_")
            || k.starts_with("retention_")
            || k.starts_with("deletion_")
            || k.starts_with("legal_hold_")
            || k == "tombstones_read" =>
        {
            ("110101", "Audit Log Used", "R")
        }
        k if k.ends_with("_read") => ("110110", "Patient Record", "R"),
        k if k.starts_with("patient_") => ("110110", "Patient Record", "U"),
        k if k.starts_with("case_") || k.starts_with("report_") || k.starts_with("referral_") => {
            ("110110", "Patient Record", "U")
        }
        _ => ("110100", "Application Activity", "E"),
    };
    EventCode {
        code,
        meaning,
        action,
    }
}

/// 0 success, 4 minor failure (refused, denied), 8 serious failure.
fn outcome_code(outcome: &str) -> &'static str {
    let o = outcome.to_ascii_lowercase();
    if o.starts_with("denied") || o.starts_with("refused") || o.starts_with("rejected") {
        "4"
    } else if o.starts_with("failed") || o.starts_with("error") {
        "8"
    } else {
        "0"
    }
}

/// An address as an IP address ("2") or a machine name ("1").
fn address_type(address: &str) -> &'static str {
    if address.parse::<std::net::IpAddr>().is_ok() {
        "2"
    } else {
        "1"
    }
}

/// One event as a FHIR R4 AuditEvent.
pub fn fhir(e: &ChainedEvent, source: &str) -> Value {
    let ev = &e.event;
    let code = classify(&ev.kind);
    let mut entities = Vec::new();
    if !ev.study_uid.is_empty() {
        entities.push(json!({
            "what": {"identifier": {"system": "urn:dicom:uid", "value": format!("urn:oid:{}", ev.study_uid)}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "3", "display": "Report"},
            "description": "Study Instance UID"
        }));
    }
    if !ev.patient_id.is_empty() {
        entities.push(json!({
            "what": {"identifier": {"value": ev.patient_id}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
        }));
    }
    let mut agent = json!({
        "who": {"identifier": {"value": ev.actor}, "display": ev.actor},
        "requestor": true,
        "network": {"address": ev.address, "type": address_type(&ev.address)}
    });
    if !ev.role.is_empty() {
        agent["role"] = json!([{"text": ev.role}]);
    }
    if !ev.institution.is_empty() {
        agent["who"]["identifier"]["assigner"] = json!({"display": ev.institution});
    }
    let description = match (ev.outcome.as_str(), ev.detail.as_str()) {
        (o, "") => o.to_owned(),
        (o, d) => format!("{o}: {d}"),
    };
    let mut resource = json!({
        "resourceType": "AuditEvent",
        "id": e.id,
        "extension": [{
            "url": "urn:telecardio:audit-chain",
            "extension": [
                {"url": "seq", "valueInteger": e.seq},
                {"url": "hash", "valueString": e.hash},
                {"url": "prev_hash", "valueString": e.prev_hash}
            ]
        }],
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": code.code, "display": code.meaning},
        "subtype": [{"system": "urn:telecardio:audit-kind", "code": ev.kind}],
        "action": code.action,
        "recorded": rfc3339(ev.at),
        "outcome": outcome_code(&ev.outcome),
        "outcomeDesc": description,
        "agent": [agent],
        "source": {
            "site": source,
            "observer": {"display": source},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        }
    });
    if !entities.is_empty() {
        resource["entity"] = Value::Array(entities);
    }
    resource
}

/// Events as a FHIR R4 Bundle (collection), in chain order.
pub fn fhir_bundle(events: &[ChainedEvent], source: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "total": events.len(),
        "entry": events.iter().map(|e| json!({
            "fullUrl": format!("urn:uuid:{}", e.id),
            "resource": fhir(e, source)
        })).collect::<Vec<_>>()
    })
}

fn attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// One event as a DICOM audit message (PS3.15 A.5.1), on one line.
pub fn dicom_message(e: &ChainedEvent, source: &str) -> String {
    let ev = &e.event;
    let code = classify(&ev.kind);
    let mut xml = String::with_capacity(1024);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><AuditMessage>");
    xml.push_str(&format!(
        "<EventIdentification EventActionCode=\"{}\" EventDateTime=\"{}\" EventOutcomeIndicator=\"{}\">\
         <EventID csd-code=\"{}\" codeSystemName=\"DCM\" originalText=\"{}\"/>\
         <EventTypeCode csd-code=\"{}\" codeSystemName=\"telecardio\" originalText=\"{}\"/>\
         <EventOutcomeDescription>{}</EventOutcomeDescription></EventIdentification>",
        code.action,
        rfc3339(ev.at),
        outcome_code(&ev.outcome),
        code.code,
        code.meaning,
        attr(&ev.kind),
        attr(&ev.kind),
        attr(&ev.outcome),
    ));
    xml.push_str(&format!(
        "<ActiveParticipant UserID=\"{}\" UserIsRequestor=\"true\" NetworkAccessPointID=\"{}\" \
         NetworkAccessPointTypeCode=\"{}\"",
        attr(&ev.actor),
        attr(&ev.address),
        address_type(&ev.address),
    ));
    if !ev.institution.is_empty() {
        xml.push_str(&format!(" AlternativeUserID=\"{}\"", attr(&ev.institution)));
    }
    if ev.role.is_empty() {
        xml.push_str("/>");
    } else {
        xml.push_str(&format!(
            "><RoleIDCode csd-code=\"{}\" codeSystemName=\"telecardio\" originalText=\"{}\"/>\
             </ActiveParticipant>",
            attr(&ev.role),
            attr(&ev.role)
        ));
    }
    xml.push_str(&format!(
        "<AuditSourceIdentification AuditSourceID=\"{}\"><AuditSourceTypeCode csd-code=\"4\"/>\
         </AuditSourceIdentification>",
        attr(source)
    ));
    if !ev.study_uid.is_empty() {
        xml.push_str(&format!(
            "<ParticipantObjectIdentification ParticipantObjectID=\"{}\" \
             ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"3\">\
             <ParticipantObjectIDTypeCode csd-code=\"110180\" codeSystemName=\"DCM\" \
             originalText=\"Study Instance UID\"/>\
             <ParticipantObjectDetail type=\"detail\" value=\"{}\"/>\
             </ParticipantObjectIdentification>",
            attr(&ev.study_uid),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ev.detail),
        ));
    }
    if !ev.patient_id.is_empty() {
        xml.push_str(&format!(
            "<ParticipantObjectIdentification ParticipantObjectID=\"{}\" \
             ParticipantObjectTypeCode=\"1\" ParticipantObjectTypeCodeRole=\"1\">\
             <ParticipantObjectIDTypeCode csd-code=\"2\"/>\
             </ParticipantObjectIdentification>",
            attr(&ev.patient_id)
        ));
    }
    xml.push_str(&format!(
        "<ParticipantObjectIdentification ParticipantObjectID=\"{}\" \
         ParticipantObjectTypeCode=\"2\" ParticipantObjectTypeCodeRole=\"13\">\
         <ParticipantObjectIDTypeCode csd-code=\"audit-chain\" codeSystemName=\"telecardio\" \
         originalText=\"audit chain position\"/>\
         <ParticipantObjectDetail type=\"hash\" value=\"{}\"/>\
         </ParticipantObjectIdentification>",
        e.seq,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &e.hash),
    ));
    xml.push_str("</AuditMessage>");
    xml
}

/// An RFC 5424 syslog message carrying a DICOM audit message (facility authpriv, severity
/// notice, as IHE ATNA asks), framed for TLS transport by octet counting (RFC 5425).
pub fn syslog_frame(e: &ChainedEvent, source: &str, host: &str) -> Vec<u8> {
    let message = format!(
        "<85>1 {} {} telecardio {} IHE+RFC-3881 - \u{feff}{}",
        rfc3339(e.event.at),
        if host.is_empty() { "-" } else { host },
        std::process::id(),
        dicom_message(e, source)
    );
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message.as_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::AuditEvent;

    fn event(kind: &str, outcome: &str) -> ChainedEvent {
        let mut ev = AuditEvent::now(kind, "dr-a", "demo-centre", "10.0.0.7");
        ev.outcome = outcome.into();
        ev.role = "cardiologist".into();
        ev.study_uid = "2.25.7001".into();
        ev.patient_id = "48507120013".into();
        ev.detail = "study <2.25.7001> & \"more\"".into();
        ChainedEvent {
            seq: 42,
            id: "0193a1b2-0000-7000-8000-000000000001".into(),
            prev_hash: "ab".repeat(32),
            hash: "cd".repeat(32),
            event: ev,
        }
    }

    #[test]
    fn a_read_becomes_a_patient_record_audit_event() {
        let r = fhir(&event("study_read", "answered"), "TELECARDIO");
        assert_eq!(r["resourceType"], "AuditEvent");
        assert_eq!(r["type"]["code"], "110110");
        assert_eq!(r["action"], "R");
        assert_eq!(r["outcome"], "0");
        assert_eq!(
            r["entity"][0]["what"]["identifier"]["value"],
            "urn:oid:2.25.7001"
        );
        assert_eq!(r["entity"][1]["role"]["code"], "1");
        assert_eq!(r["extension"][0]["extension"][0]["valueInteger"], 42);
        let refused = fhir(&event("deletion_proposed", "refused: kept"), "TELECARDIO");
        assert_eq!(refused["outcome"], "4");
        assert_eq!(refused["type"]["code"], "110101");
    }

    #[test]
    fn the_dicom_message_is_well_formed_and_framed_by_its_length() {
        let e = event("retrieve", "answered");
        let xml = dicom_message(&e, "TELECARDIO");
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let id = doc
            .descendants()
            .find(|n| n.has_tag_name("EventID"))
            .unwrap();
        assert_eq!(id.attribute("csd-code"), Some("110104"));
        assert!(!xml.contains('\n'));
        let frame = syslog_frame(&e, "TELECARDIO", "archive-1");
        let text = String::from_utf8(frame).unwrap();
        let (len, message) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), message.len());
        assert!(message.starts_with("<85>1 "));
        assert!(message.contains(" archive-1 telecardio "));
    }
}
