//! DICOM JSON (PS3.18 F.2) for query answers: one object per match, keyed by tag.

use dicom_core::{Tag, VR};
use serde_json::{json, Map, Value};

use crate::query::Answered;

/// `GGGGEEEE`, upper-case hex, as DICOM JSON keys attributes.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// One attribute as DICOM JSON: person names as `Alphabetic` objects, integer and decimal
/// strings as numbers, everything else as strings; no `Value` when empty.
pub fn attribute(vr: VR, values: &[String]) -> Value {
    let mut out = Map::new();
    out.insert("vr".into(), json!(vr.to_string()));
    if !values.is_empty() {
        let items: Vec<Value> = values
            .iter()
            .map(|v| match vr {
                VR::PN => json!({ "Alphabetic": v }),
                VR::IS | VR::SL | VR::SS | VR::UL | VR::US | VR::SV | VR::UV => v
                    .trim()
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| json!(v)),
                VR::DS | VR::FL | VR::FD => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or_else(|| json!(v)),
                _ => json!(v),
            })
            .collect();
        out.insert("Value".into(), Value::Array(items));
    }
    Value::Object(out)
}

/// A match as a DICOM JSON object.
pub fn dataset(answers: &[Answered], extra: &[(Tag, VR, String)]) -> Value {
    let mut out = Map::new();
    for a in answers {
        if a.vr == VR::SQ {
            let items: Vec<Value> = a.items.iter().map(|i| dataset(i, &[])).collect();
            let mut sq = json!({ "vr": "SQ" });
            if !items.is_empty() {
                sq["Value"] = Value::Array(items);
            }
            out.insert(tag_key(a.tag), sq);
        } else {
            out.insert(tag_key(a.tag), attribute(a.vr, &a.values));
        }
    }
    for (tag, vr, value) in extra {
        out.insert(tag_key(*tag), attribute(*vr, std::slice::from_ref(value)));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn names_numbers_and_empty_values() {
        let answers = vec![
            Answered::new(tags::PATIENT_NAME, VR::PN, vec!["Žukauskienė^Rūta".into()]),
            Answered::new(
                tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
                VR::IS,
                vec!["5".into()],
            ),
            Answered::new(tags::STUDY_DESCRIPTION, VR::LO, vec![]),
        ];
        let v = dataset(&answers, &[]);
        assert_eq!(v["00100010"]["Value"][0]["Alphabetic"], "Žukauskienė^Rūta");
        assert_eq!(v["00201208"]["Value"][0], 5);
        assert_eq!(v["00081030"], json!({"vr": "LO"}));
    }
}
