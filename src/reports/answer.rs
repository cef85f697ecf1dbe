//! The answer to a referral (form 027 answer, E027-a) as an HL7 CDA R2 document, made when a
//! report version is signed: the patient as the referral identified them, the signer as
//! author and legal authenticator (name, licence number, centre), the referral's order and its
//! telecardio id in `inFulfillmentOf`, the replaced version in `relatedDocument` for an
//! amendment, and the report's sections titled in Lithuanian and English. Written with
//! quick-xml, so every value is escaped.

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::config::ReferralOids;
use crate::index::{CaseRow, ReferralRow, ReportRow};

/// A UUID as an OID under the `2.25` arc (ITU-T X.667), for ids that have no registry root.
pub fn uuid_oid(uuid: &str) -> String {
    let hex: String = uuid.chars().filter(char::is_ascii_hexdigit).collect();
    match u128::from_str_radix(&hex, 16) {
        Ok(n) if hex.len() == 32 => format!("2.25.{n}"),
        _ => String::new(),
    }
}

/// Everything the answer says.
pub struct Answer<'a> {
    pub report: &'a ReportRow,
    pub case: &'a CaseRow,
    pub referral: Option<&'a ReferralRow>,
    pub centre_name: &'a str,
    /// CDA TS of the signature, e.g. `20261130101500+0000`.
    pub signed: &'a str,
    pub oids: &'a ReferralOids,
}

type Out = Writer<Vec<u8>>;

fn empty(w: &mut Out, name: &str, attrs: &[(&str, &str)]) -> std::io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_empty()?;
    Ok(())
}

fn text(w: &mut Out, name: &str, value: &str) -> std::io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn id(w: &mut Out, root: &str, extension: &str) -> std::io::Result<()> {
    if extension.is_empty() {
        empty(w, "id", &[("root", root)])
    } else {
        empty(w, "id", &[("root", root), ("extension", extension)])
    }
}

pub fn document(a: &Answer) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let r = a.report;
    w.create_element("ClinicalDocument")
        .with_attribute(("xmlns", "urn:hl7-org:v3"))
        .write_inner_content(|w| {
            empty(w, "realmCode", &[("code", "LT")])?;
            empty(
                w,
                "typeId",
                &[
                    ("root", "2.16.840.1.113883.1.3"),
                    ("extension", "POCD_HD000040"),
                ],
            )?;
            id(w, &uuid_oid(&r.id), "")?;
            empty(
                w,
                "code",
                &[
                    ("code", "11488-4"),
                    ("codeSystem", "2.16.840.1.113883.6.1"),
                    ("displayName", "Consult note"),
                ],
            )?;
            text(
                w,
                "title",
                "Konsultacijos išvada / Consultation report (E027-a)",
            )?;
            empty(w, "effectiveTime", &[("value", a.signed)])?;
            empty(
                w,
                "confidentialityCode",
                &[("code", "N"), ("codeSystem", "2.16.840.1.113883.5.25")],
            )?;
            empty(w, "languageCode", &[("code", "lt-LT")])?;
            id_as(w, "setId", &uuid_oid(&a.case.id))?;
            empty(w, "versionNumber", &[("value", &r.version.to_string())])?;
            record_target(w, a)?;
            w.create_element("author").write_inner_content(|w| {
                empty(w, "time", &[("value", a.signed)])?;
                w.create_element("assignedAuthor")
                    .write_inner_content(|w| signer(w, a, true))?;
                Ok(())
            })?;
            w.create_element("custodian").write_inner_content(|w| {
                w.create_element("assignedCustodian")
                    .write_inner_content(|w| {
                        w.create_element("representedCustodianOrganization")
                            .write_inner_content(|w| {
                                id(w, &a.oids.institution, &a.case.centre_id)?;
                                text(w, "name", a.centre_name)
                            })?;
                        Ok(())
                    })?;
                Ok(())
            })?;
            w.create_element("legalAuthenticator")
                .write_inner_content(|w| {
                    empty(w, "time", &[("value", a.signed)])?;
                    empty(w, "signatureCode", &[("code", "S")])?;
                    w.create_element("assignedEntity")
                        .write_inner_content(|w| signer(w, a, false))?;
                    Ok(())
                })?;
            if let Some(referral) = a.referral {
                w.create_element("inFulfillmentOf")
                    .write_inner_content(|w| {
                        w.create_element("order").write_inner_content(|w| {
                            id(w, &a.oids.order, &referral.order_number)?;
                            id(w, &uuid_oid(&referral.id), "")
                        })?;
                        Ok(())
                    })?;
            }
            if !r.amends.is_empty() {
                w.create_element("relatedDocument")
                    .with_attribute(("typeCode", "RPLC"))
                    .write_inner_content(|w| {
                        w.create_element("parentDocument")
                            .write_inner_content(|w| {
                                id(w, &uuid_oid(&r.amends), "")?;
                                id_as(w, "setId", &uuid_oid(&a.case.id))?;
                                empty(
                                    w,
                                    "versionNumber",
                                    &[("value", &(r.version - 1).max(1).to_string())],
                                )
                            })?;
                        Ok(())
                    })?;
            }
            w.create_element("component").write_inner_content(|w| {
                w.create_element("structuredBody")
                    .write_inner_content(|w| body(w, r))?;
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(w.into_inner())
}

fn id_as(w: &mut Out, element: &str, root: &str) -> std::io::Result<()> {
    empty(w, element, &[("root", root)])
}

fn record_target(w: &mut Out, a: &Answer) -> std::io::Result<()> {
    let (family, given, sex, birth) = match a.referral {
        Some(r) => (
            r.family_name.clone(),
            r.given_names.clone(),
            r.sex.clone(),
            r.birth_date.clone(),
        ),
        None => {
            let mut parts = a.case.patient_name.splitn(2, '^');
            let family = parts.next().unwrap_or("").to_owned();
            let given = parts.next().unwrap_or("").replace('^', " ");
            (family, given, String::new(), a.case.birth_date.clone())
        }
    };
    w.create_element("recordTarget").write_inner_content(|w| {
        w.create_element("patientRole").write_inner_content(|w| {
            match a.referral {
                Some(r) => {
                    for (root, value) in [
                        (&a.oids.personal_code, &r.personal_code),
                        (&a.oids.insured_code, &r.insured_code),
                        (&a.oids.statistical_card, &r.statistical_card),
                    ] {
                        if !value.is_empty() {
                            id(w, root, value)?;
                        }
                    }
                }
                // A study routed without a referral: its Patient ID is a personal code only if it
                // passes as one; otherwise it is the clinic's own number, said as such.
                None if crate::referral::personal_code::parse(&a.case.patient_id).is_ok() => {
                    id(w, &a.oids.personal_code, &a.case.patient_id)?
                }
                None => {
                    empty(
                        w,
                        "id",
                        &[
                            ("nullFlavor", "OTH"),
                            ("extension", &a.case.patient_id),
                            ("assigningAuthorityName", &a.case.clinic_id),
                        ],
                    )?;
                }
            }
            w.create_element("patient").write_inner_content(|w| {
                w.create_element("name").write_inner_content(|w| {
                    if !given.is_empty() {
                        text(w, "given", given.trim())?;
                    }
                    text(w, "family", family.trim())
                })?;
                if !sex.is_empty() {
                    empty(
                        w,
                        "administrativeGenderCode",
                        &[("code", &sex), ("codeSystem", "2.16.840.1.113883.5.1")],
                    )?;
                }
                // A personal code may leave month or day unknown (`00`): a TS stops before them.
                let mut birth = birth.as_str();
                while birth.len() > 4 && birth.ends_with("00") {
                    birth = &birth[..birth.len() - 2];
                }
                if !birth.is_empty() {
                    empty(w, "birthTime", &[("value", birth)])?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(())
}

/// The signer as `assignedAuthor` (with the centre) or `assignedEntity`.
fn signer(w: &mut Out, a: &Answer, with_organisation: bool) -> std::io::Result<()> {
    let r = a.report;
    id(w, &a.oids.practitioner, &r.signer_licence)?;
    w.create_element("assignedPerson")
        .write_inner_content(|w| {
            w.create_element("name").write_inner_content(|w| {
                w.write_event(Event::Text(BytesText::new(&r.signer_name)))
            })?;
            Ok(())
        })?;
    if with_organisation {
        w.create_element("representedOrganization")
            .write_inner_content(|w| {
                id(w, &a.oids.institution, &r.signer_centre)?;
                text(w, "name", a.centre_name)
            })?;
    }
    Ok(())
}

fn body(w: &mut Out, r: &ReportRow) -> std::io::Result<()> {
    let repeat = if r.non_diagnostic {
        "Tyrimo įvertinti negalima, prašoma jį pakartoti. / The study cannot be read; a repeat \
         examination is requested."
    } else {
        ""
    };
    let repeat = repeat.to_owned();
    for (code, title, value) in [
        ("", "Netinkamas diagnostikai / Non-diagnostic", &repeat),
        ("59776-5", "Radiniai / Findings", &r.findings),
        ("55110-1", "Išvada / Conclusion", &r.conclusion),
        (
            "18783-1",
            "Rekomendacijos / Recommendations",
            &r.recommendations,
        ),
        ("", "Pastabos / Notes", &r.free_text),
        (
            "",
            "Pataisymo priežastis / Reason for amendment",
            &r.amendment_reason,
        ),
    ] {
        if value.trim().is_empty() {
            continue;
        }
        w.create_element("component").write_inner_content(|w| {
            w.create_element("section").write_inner_content(|w| {
                if !code.is_empty() {
                    empty(
                        w,
                        "code",
                        &[("code", code), ("codeSystem", "2.16.840.1.113883.6.1")],
                    )?;
                }
                text(w, "title", title)?;
                text(w, "text", value)
            })?;
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_become_2_25_oids() {
        assert_eq!(uuid_oid("00000000-0000-0000-0000-00000000000a"), "2.25.10");
        assert_eq!(uuid_oid("not a uuid"), "");
    }
}
