//! An HL7 v2 order read as the form 027 it stands for, so that one validation judges orders
//! and CDA documents alike.
//!
//! Patient identifiers get their meaning from the assigning authority's universal id (CX-4.2,
//! an OID, as in CDA), else from the identifier type code: `NNLTU` (national person
//! identifier, Lithuania) is the personal code, `MR` (medical record number) the statistical
//! card number, `HC` (health card number) the insured person's code.

use super::message::{Order, PatientId};
use crate::config::ReferralOids;
use crate::referral::cda::{Code, Document027, Id};
use crate::referral::ORDER_DOCUMENT_ROOT;

fn is_oid(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').count() > 1
        && text
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The OID root an identifier stands under.
fn root_of(id: &PatientId, oids: &ReferralOids) -> String {
    if is_oid(&id.universal_id) {
        return id.universal_id.clone();
    }
    if is_oid(&id.namespace) {
        return id.namespace.clone();
    }
    match id.type_code.as_str() {
        "NNLTU" => oids.personal_code.clone(),
        "MR" => oids.statistical_card.clone(),
        "HC" => oids.insured_code.clone(),
        _ => id.namespace.clone(),
    }
}

/// The identifier a patient is filed under: the personal code when the list has one, else the
/// first identifier.
pub fn primary_id(ids: &[PatientId], oids: &ReferralOids) -> String {
    ids.iter()
        .find(|i| root_of(i, oids) == oids.personal_code)
        .or_else(|| ids.first())
        .map(|i| i.id.clone())
        .unwrap_or_default()
}

pub fn document_of(order: &Order, clinic_id: &str, oids: &ReferralOids) -> Document027 {
    let p = &order.patient;
    Document027 {
        // One referral per clinic and order number: the order is its own document id until a
        // CDA document for it arrives.
        id: Id {
            root: format!("{ORDER_DOCUMENT_ROOT}{clinic_id}"),
            extension: order.placer_number.clone(),
        },
        set_id: Id::default(),
        version: None,
        effective_time: order.time.clone(),
        patient_ids: p
            .ids
            .iter()
            .map(|i| Id {
                root: root_of(i, oids),
                extension: i.id.clone(),
            })
            .collect(),
        family_name: p.family_name.clone(),
        given_names: p.given_names.clone(),
        sex: p.sex.clone(),
        birth_date: p.birth_date.clone(),
        author_id: Id {
            root: String::new(),
            extension: order.provider_id.clone(),
        },
        author_name: order.provider_name.clone(),
        author_organisation_id: Id::default(),
        author_organisation: order.facility.clone(),
        custodian_id: Id {
            root: String::new(),
            extension: clinic_id.to_owned(),
        },
        custodian_name: String::new(),
        order_id: Id {
            root: oids.order.clone(),
            extension: order.placer_number.clone(),
        },
        order_codes: order
            .services
            .iter()
            .map(|s| Code {
                code: s.code.clone(),
                system: s.system.clone(),
                display: s.text.clone(),
            })
            .collect(),
        service_codes: Vec::new(),
        priority: order.priority.clone(),
        reason: order.reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oids() -> ReferralOids {
        ReferralOids {
            personal_code: "2.999.370.1".into(),
            insured_code: "2.999.370.2".into(),
            statistical_card: "2.999.370.3".into(),
            institution: "2.999.370.4".into(),
            order: "2.999.370.5".into(),
            practitioner: "2.999.370.6".into(),
        }
    }

    fn id(id: &str, namespace: &str, universal: &str, type_code: &str) -> PatientId {
        PatientId {
            id: id.into(),
            namespace: namespace.into(),
            universal_id: universal.into(),
            type_code: type_code.into(),
        }
    }

    #[test]
    fn identifiers_take_their_root_from_oid_or_type() {
        let o = oids();
        assert_eq!(
            root_of(&id("1", "LT", "2.999.370.1", ""), &o),
            "2.999.370.1"
        );
        assert_eq!(root_of(&id("1", "2.999.370.3", "", ""), &o), "2.999.370.3");
        assert_eq!(root_of(&id("1", "LT", "", "NNLTU"), &o), "2.999.370.1");
        assert_eq!(root_of(&id("1", "", "", "MR"), &o), "2.999.370.3");
        assert_eq!(root_of(&id("1", "HIS", "", "PI"), &o), "HIS");
        let ids = [id("ST-1", "", "", "MR"), id("48507120013", "", "", "NNLTU")];
        assert_eq!(primary_id(&ids, &o), "48507120013");
        assert_eq!(primary_id(&ids[..1], &o), "ST-1");
    }
}
