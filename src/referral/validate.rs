//! Whether a read form 027 is a referral we can act on (point 12.3 of the order), and the
//! referral it describes.
//!
//! A referral must identify the patient by personal code or insured person's identification
//! code, carry the patient statistical card number, and name its order (the number the study's
//! accession number will carry). Each refusal names the missing or wrong field, so the sending
//! clinic can fix its document.

use super::cda::{Code, Document027};
use super::personal_code;
use crate::config::ReferralOids;

/// Why a document is not an acceptable referral, and which field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The examination a referral asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Examination {
    Echo,
    Holter,
    Both,
    /// Coded in a way we do not recognise; kept, shown to people, never guessed.
    Other,
}

impl Examination {
    pub fn as_str(self) -> &'static str {
        match self {
            Examination::Echo => "echo",
            Examination::Holter => "holter",
            Examination::Both => "both",
            Examination::Other => "other",
        }
    }
}

/// How soon the referral wants an answer (CDA `priorityCode`, HL7 ActPriority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Routine,
    Urgent,
    Emergency,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Routine => "routine",
            Urgency::Urgent => "urgent",
            Urgency::Emergency => "emergency",
        }
    }

    fn of(code: &str) -> Urgency {
        match code {
            "EM" | "S" | "CR" => Urgency::Emergency,
            "UR" | "A" | "P" | "T" => Urgency::Urgent,
            _ => Urgency::Routine,
        }
    }
}

/// A validated referral's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    pub document_id: String,
    pub set_id: String,
    pub version: i64,
    pub effective_time: String,
    pub personal_code: String,
    pub insured_code: String,
    pub statistical_card: String,
    pub family_name: String,
    pub given_names: String,
    pub sex: String,
    pub birth_date: String,
    pub author_id: String,
    pub author_name: String,
    pub author_organisation: String,
    /// The performing clinic's code (custodian), as the document gives it.
    pub custodian: String,
    pub order_number: String,
    pub examination: Examination,
    pub examination_codes: Vec<Code>,
    pub urgency: Urgency,
    pub reason: String,
    /// Accepted, but worth a person's look (e.g. a personal code without a birth date).
    pub warnings: Vec<String>,
}

/// SNOMED CT and LOINC codes for the examinations we carry (any code system: the codes do not
/// collide between them).
const ECHO_CODES: &[&str] = &["40701008", "433236007", "34552-0", "42148-7", "59282-4"];
const HOLTER_CODES: &[&str] = &["86184003", "164850009", "18754-2"];

fn examination(codes: &[Code]) -> Examination {
    let said = |list: &[&str], word: &str| {
        codes
            .iter()
            .any(|c| list.contains(&c.code.as_str()) || c.display.to_lowercase().contains(word))
    };
    match (said(ECHO_CODES, "echo"), said(HOLTER_CODES, "holter")) {
        (true, true) => Examination::Both,
        (true, false) => Examination::Echo,
        (false, true) => Examination::Holter,
        (false, false) => Examination::Other,
    }
}

pub fn validate(d: &Document027, oids: &ReferralOids) -> Result<Valid, Invalid> {
    if d.id.is_empty() {
        return Err(invalid(
            "id",
            "the document has no id (ClinicalDocument/id)",
        ));
    }
    let with_root = |root: &str| {
        d.patient_ids
            .iter()
            .find(|id| id.root == root && !id.extension.is_empty())
            .map(|id| id.extension.clone())
            .unwrap_or_default()
    };
    let personal_code = with_root(&oids.personal_code);
    let insured_code = with_root(&oids.insured_code);
    let statistical_card = with_root(&oids.statistical_card);
    if personal_code.is_empty() && insured_code.is_empty() {
        return Err(invalid(
            "personal_code",
            format!(
                "the patient has neither a personal code (id root {}) nor an insured person's \
                 identification code (id root {}) in recordTarget/patientRole/id",
                oids.personal_code, oids.insured_code
            ),
        ));
    }
    if statistical_card.is_empty() {
        return Err(invalid(
            "statistical_card",
            format!(
                "the patient's statistical card number (id root {}) is missing from \
                 recordTarget/patientRole/id",
                oids.statistical_card
            ),
        ));
    }
    let mut warnings = Vec::new();
    let mut sex = d.sex.clone();
    let mut birth_date: String = d.birth_date.chars().take(8).collect();
    if !personal_code.is_empty() {
        let parsed = personal_code::parse(&personal_code)
            .map_err(|e| invalid("personal_code", e.to_string()))?;
        if let Some(w) = parsed.warning {
            warnings.push(w);
        }
        // The code and the document must not disagree about who the patient is.
        if !parsed.birth_date.is_empty()
            && !parsed.birth_date.contains("00")
            && !birth_date.is_empty()
            && birth_date != parsed.birth_date
        {
            return Err(invalid(
                "birth_date",
                format!(
                    "birth date {birth_date} disagrees with the personal code, which gives {}",
                    parsed.birth_date
                ),
            ));
        }
        if !parsed.sex.is_empty() && !sex.is_empty() && sex != parsed.sex {
            return Err(invalid(
                "sex",
                format!(
                    "sex {sex} disagrees with the personal code, which gives {}",
                    parsed.sex
                ),
            ));
        }
        if birth_date.is_empty() {
            birth_date = parsed.birth_date.clone();
        }
        if sex.is_empty() {
            sex = parsed.sex.to_owned();
        }
    }
    if d.order_id.extension.is_empty() {
        return Err(invalid(
            "order_number",
            "the referral has no order number (inFulfillmentOf/order/id/@extension)",
        ));
    }
    let codes: Vec<Code> = d
        .order_codes
        .iter()
        .chain(&d.service_codes)
        .cloned()
        .collect();
    let examination = examination(&codes);
    if examination == Examination::Other {
        warnings.push("the requested examination is not coded as echo or Holter".into());
    }
    Ok(Valid {
        document_id: format!("{}^{}", d.id.root, d.id.extension),
        set_id: if d.set_id.is_empty() {
            String::new()
        } else {
            format!("{}^{}", d.set_id.root, d.set_id.extension)
        },
        version: d.version.unwrap_or(1),
        effective_time: d.effective_time.clone(),
        personal_code,
        insured_code,
        statistical_card,
        family_name: d.family_name.clone(),
        given_names: d.given_names.clone(),
        sex,
        birth_date,
        author_id: d.author_id.extension.clone(),
        author_name: d.author_name.clone(),
        author_organisation: d.author_organisation.clone(),
        custodian: if d.custodian_id.root == oids.institution || d.custodian_id.root.is_empty() {
            d.custodian_id.extension.clone()
        } else {
            String::new()
        },
        order_number: d.order_id.extension.clone(),
        examination,
        examination_codes: codes,
        urgency: Urgency::of(&d.priority),
        reason: d.reason.clone(),
        warnings,
    })
}
