//! Reading form 027 from an HL7 CDA R2 document, in our profile: document id, set id and
//! version; patient identifiers (told apart by their OID roots), name, sex and birth date; the
//! author and their organisation; the custodian (performing clinic); the order's id, code and
//! priority; the requested service; the reason-for-referral section.
//!
//! The document is parsed by `roxmltree` with DTDs refused (so no entity, internal or
//! external, is ever expanded) and a node limit; only elements in the HL7 v3 namespace count.
//! This module reads what the document says; whether that is enough for a referral is
//! [`super::validate`]'s business.

use roxmltree::{Document, Node, ParsingOptions};

pub const HL7_V3: &str = "urn:hl7-org:v3";
/// Far above any referral; a bound on what a hostile document can make us allocate.
const MAX_NODES: u32 = 200_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdaError {
    #[error("the document is not UTF-8 text: {0}")]
    NotUtf8(String),
    #[error("the document declares a DTD; DTDs and entities are not accepted")]
    Dtd,
    #[error("the document is not well-formed XML: {0}")]
    Malformed(String),
    #[error("the root element is {found}, not ClinicalDocument in namespace {HL7_V3}")]
    NotCda { found: String },
}

/// An instance identifier: `@root` (an OID or UUID) and `@extension`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Id {
    pub root: String,
    pub extension: String,
}

impl Id {
    fn of(node: Node) -> Id {
        Id {
            root: node.attribute("root").unwrap_or("").trim().to_owned(),
            extension: node.attribute("extension").unwrap_or("").trim().to_owned(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.root.is_empty() && self.extension.is_empty()
    }
}

/// A coded value: `@code` in `@codeSystem`, with its display name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Code {
    pub code: String,
    pub system: String,
    pub display: String,
}

impl Code {
    fn of(node: Node) -> Code {
        Code {
            code: node.attribute("code").unwrap_or("").trim().to_owned(),
            system: node.attribute("codeSystem").unwrap_or("").trim().to_owned(),
            display: node
                .attribute("displayName")
                .unwrap_or("")
                .trim()
                .to_owned(),
        }
    }
}

/// What a form 027 document says, as read (unvalidated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document027 {
    pub id: Id,
    pub set_id: Id,
    pub version: Option<i64>,
    pub effective_time: String,
    pub patient_ids: Vec<Id>,
    pub family_name: String,
    pub given_names: String,
    pub sex: String,
    pub birth_date: String,
    pub author_id: Id,
    pub author_name: String,
    pub author_organisation_id: Id,
    pub author_organisation: String,
    pub custodian_id: Id,
    pub custodian_name: String,
    pub order_id: Id,
    pub order_codes: Vec<Code>,
    pub service_codes: Vec<Code>,
    pub priority: String,
    pub reason: String,
}

fn is_hl7(node: &Node, name: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == name
        && node.tag_name().namespace() == Some(HL7_V3)
}

/// The first child element `name` in the HL7 namespace.
fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is_hl7(c, name))
}

fn children<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| is_hl7(c, name))
}

/// Follows a path of child names from `node`.
fn path<'a, 'i>(node: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

/// The text content of an element and its descendants, whitespace collapsed.
fn text(node: Option<Node>) -> String {
    let Some(node) = node else {
        return String::new();
    };
    let raw: String = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn attr(node: Option<Node>, name: &str) -> String {
    node.and_then(|n| n.attribute(name))
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// A person's name element as (family, given names).
fn person_name(name: Option<Node>) -> (String, String) {
    let Some(name) = name else {
        return (String::new(), String::new());
    };
    let family = text(child(name, "family"));
    let given: Vec<String> = children(name, "given").map(|g| text(Some(g))).collect();
    if family.is_empty() && given.is_empty() {
        // A name given as plain text only.
        return (text(Some(name)), String::new());
    }
    (family, given.join(" "))
}

/// Parses `bytes` as a CDA document and reads the form 027 fields.
pub fn read(bytes: &[u8]) -> Result<Document027, CdaError> {
    let text_in = std::str::from_utf8(bytes).map_err(|e| CdaError::NotUtf8(e.to_string()))?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text_in, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => CdaError::Dtd,
        other => CdaError::Malformed(other.to_string()),
    })?;
    let root = doc.root_element();
    if !is_hl7(&root, "ClinicalDocument") {
        let found = match root.tag_name().namespace() {
            Some(ns) => format!("{{{ns}}}{}", root.tag_name().name()),
            None => root.tag_name().name().to_owned(),
        };
        return Err(CdaError::NotCda { found });
    }
    let mut d = Document027 {
        id: child(root, "id").map(Id::of).unwrap_or_default(),
        set_id: child(root, "setId").map(Id::of).unwrap_or_default(),
        version: attr(child(root, "versionNumber"), "value").parse().ok(),
        effective_time: attr(child(root, "effectiveTime"), "value"),
        ..Document027::default()
    };
    if let Some(role) = path(root, &["recordTarget", "patientRole"]) {
        d.patient_ids = children(role, "id").map(Id::of).collect();
        let patient = child(role, "patient");
        let (family, given) = person_name(patient.and_then(|p| child(p, "name")));
        d.family_name = family;
        d.given_names = given;
        d.sex = attr(
            patient.and_then(|p| child(p, "administrativeGenderCode")),
            "code",
        );
        d.birth_date = attr(patient.and_then(|p| child(p, "birthTime")), "value");
    }
    if let Some(author) = path(root, &["author", "assignedAuthor"]) {
        d.author_id = child(author, "id").map(Id::of).unwrap_or_default();
        let (family, given) = person_name(path(author, &["assignedPerson", "name"]));
        d.author_name = [given, family]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(org) = child(author, "representedOrganization") {
            d.author_organisation_id = child(org, "id").map(Id::of).unwrap_or_default();
            d.author_organisation = text(child(org, "name"));
        }
    }
    if let Some(org) = path(
        root,
        &[
            "custodian",
            "assignedCustodian",
            "representedCustodianOrganization",
        ],
    ) {
        d.custodian_id = child(org, "id").map(Id::of).unwrap_or_default();
        d.custodian_name = text(child(org, "name"));
    }
    if let Some(order) = path(root, &["inFulfillmentOf", "order"]) {
        d.order_id = child(order, "id").map(Id::of).unwrap_or_default();
        d.order_codes = children(order, "code").map(Code::of).collect();
        d.priority = attr(child(order, "priorityCode"), "code");
    }
    for event in children(root, "documentationOf").filter_map(|n| child(n, "serviceEvent")) {
        d.service_codes
            .extend(children(event, "code").map(Code::of));
    }
    if d.priority.is_empty() {
        d.priority = attr(child(root, "priorityCode"), "code");
    }
    d.reason = reason_for_referral(root);
    Ok(d)
}

/// LOINC section codes for the reason for referral (42349-1) and the reason for visit (29299-5).
const REASON_SECTIONS: &[&str] = &["42349-1", "29299-5"];

/// The narrative text of the body's reason-for-referral section.
fn reason_for_referral(root: Node) -> String {
    let Some(body) = path(root, &["component", "structuredBody"]) else {
        return String::new();
    };
    root.descendants()
        .filter(|n| is_hl7(n, "section"))
        .filter(|s| s.ancestors().any(|a| a == body))
        .find(|s| {
            child(*s, "code")
                .and_then(|c| c.attribute("code"))
                .is_some_and(|c| REASON_SECTIONS.contains(&c))
        })
        .map(|s| text(child(s, "text")))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <id root="2.999.370.9" extension="DOC-1"/>
  <effectiveTime value="20261120093000+0200"/>
  <setId root="2.999.370.9" extension="SET-1"/>
  <versionNumber value="2"/>
  <recordTarget><patientRole>
    <id root="2.999.370.1" extension="48507120014"/>
    <id root="2.999.370.3" extension="AK-2026-77"/>
    <patient>
      <name><given>Rūta</given><family>Žukauskienė</family></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19850712"/>
    </patient>
  </patientRole></recordTarget>
  <author><assignedAuthor>
    <id root="2.999.370.6" extension="GYD-1234"/>
    <assignedPerson><name><given>Vytautas</given><family>Kairys</family></name></assignedPerson>
    <representedOrganization><id root="2.999.370.4" extension="demo"/><name>Demo klinika</name></representedOrganization>
  </assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="2.999.370.4" extension="demo"/><name>Demo klinika</name>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <inFulfillmentOf><order>
    <id root="2.999.370.5" extension="E027-2026-0001"/>
    <code code="433236007" codeSystem="2.16.840.1.113883.6.96" displayName="Transthoracic echocardiography"/>
    <priorityCode code="UR"/>
  </order></inFulfillmentOf>
  <component><structuredBody><component><section>
    <code code="42349-1" codeSystem="2.16.840.1.113883.6.1"/>
    <text>Dusulys krūvio metu.   Ar yra vožtuvų patologija?</text>
  </section></component></structuredBody></component>
</ClinicalDocument>"#;

    #[test]
    fn reads_the_profile_fields() {
        let d = read(MINIMAL.as_bytes()).unwrap();
        assert_eq!(d.id.extension, "DOC-1");
        assert_eq!(d.set_id.extension, "SET-1");
        assert_eq!(d.version, Some(2));
        assert_eq!(d.patient_ids.len(), 2);
        assert_eq!(d.family_name, "Žukauskienė");
        assert_eq!(d.given_names, "Rūta");
        assert_eq!((d.sex.as_str(), d.birth_date.as_str()), ("F", "19850712"));
        assert_eq!(d.author_name, "Vytautas Kairys");
        assert_eq!(d.custodian_id.extension, "demo");
        assert_eq!(d.order_id.extension, "E027-2026-0001");
        assert_eq!(d.order_codes[0].code, "433236007");
        assert_eq!(d.priority, "UR");
        assert_eq!(d.reason, "Dusulys krūvio metu. Ar yra vožtuvų patologija?");
    }

    #[test]
    fn hostile_or_foreign_documents_are_refused() {
        let dtd = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><ClinicalDocument xmlns="urn:hl7-org:v3">&e;</ClinicalDocument>"#;
        assert_eq!(read(dtd.as_bytes()), Err(CdaError::Dtd));
        assert!(matches!(
            read(b"<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id></ClinicalDocument>"),
            Err(CdaError::Malformed(_))
        ));
        assert!(matches!(
            read(b"<ClinicalDocument><id/></ClinicalDocument>"),
            Err(CdaError::NotCda { .. })
        ));
        assert!(matches!(
            read(b"<ClinicalDocument xmlns=\"urn:hl7-org:v2\"/>"),
            Err(CdaError::NotCda { .. })
        ));
        assert!(matches!(
            read(b"<?xml version=\"1.0\"?><a>\xff</a>"),
            Err(CdaError::NotUtf8(_))
        ));
    }
}
