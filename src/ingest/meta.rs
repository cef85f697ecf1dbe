//! The attributes we index, decoded from the scanner's raw values into Unicode.
//!
//! Text is decoded by the data set's Specific Character Set (PS3.5 6.1): Lithuanian names arrive
//! as UTF-8 (ISO_IR 192), Latin-4 (ISO_IR 110) or Latin-1 (ISO_IR 100). The stored object keeps
//! the bytes as received; only the index holds the decoded text.

use dicom_encoding::text::{SpecificCharacterSet, TextCodec};

use super::scanner::{
    tag, Kept, Tag, ISSUER_OF_ACCESSION_NUMBER_SEQUENCE, OTHER_PATIENT_IDS_SEQUENCE,
};

pub const SPECIFIC_CHARACTER_SET: Tag = tag(0x0008, 0x0005);
pub const SOP_CLASS_UID: Tag = tag(0x0008, 0x0016);
pub const SOP_INSTANCE_UID: Tag = tag(0x0008, 0x0018);
pub const STUDY_DATE: Tag = tag(0x0008, 0x0020);
pub const STUDY_TIME: Tag = tag(0x0008, 0x0030);
pub const ACCESSION_NUMBER: Tag = tag(0x0008, 0x0050);
pub const MODALITY: Tag = tag(0x0008, 0x0060);
pub const REFERRING_PHYSICIAN_NAME: Tag = tag(0x0008, 0x0090);
pub const STUDY_DESCRIPTION: Tag = tag(0x0008, 0x1030);
pub const SERIES_DESCRIPTION: Tag = tag(0x0008, 0x103E);
pub const PATIENT_NAME: Tag = tag(0x0010, 0x0010);
pub const PATIENT_ID: Tag = tag(0x0010, 0x0020);
pub const ISSUER_OF_PATIENT_ID: Tag = tag(0x0010, 0x0021);
pub const PATIENT_BIRTH_DATE: Tag = tag(0x0010, 0x0030);
pub const PATIENT_SEX: Tag = tag(0x0010, 0x0040);
pub const STUDY_INSTANCE_UID: Tag = tag(0x0020, 0x000D);
pub const SERIES_INSTANCE_UID: Tag = tag(0x0020, 0x000E);
pub const STUDY_ID: Tag = tag(0x0020, 0x0010);
pub const SERIES_NUMBER: Tag = tag(0x0020, 0x0011);
pub const INSTANCE_NUMBER: Tag = tag(0x0020, 0x0013);
pub const NUMBER_OF_FRAMES: Tag = tag(0x0028, 0x0008);
const LOCAL_NAMESPACE_ENTITY_ID: Tag = tag(0x0040, 0x0031);

/// Top-level tags the scanner keeps.
pub fn wanted(t: Tag) -> bool {
    matches!(
        t,
        SPECIFIC_CHARACTER_SET
            | SOP_CLASS_UID
            | SOP_INSTANCE_UID
            | STUDY_DATE
            | STUDY_TIME
            | ACCESSION_NUMBER
            | MODALITY
            | REFERRING_PHYSICIAN_NAME
            | STUDY_DESCRIPTION
            | SERIES_DESCRIPTION
            | PATIENT_NAME
            | PATIENT_ID
            | ISSUER_OF_PATIENT_ID
            | PATIENT_BIRTH_DATE
            | PATIENT_SEX
            | STUDY_INSTANCE_UID
            | SERIES_INSTANCE_UID
            | STUDY_ID
            | SERIES_NUMBER
            | INSTANCE_NUMBER
            | NUMBER_OF_FRAMES
    ) || super::examined::wanted(t)
}

/// Decoded attributes of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceMeta {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_uid: String,
    pub series_uid: String,
    pub patient_id: String,
    pub patient_issuer: String,
    pub patient_name: String,
    pub birth_date: String,
    pub sex: String,
    /// Other Patient IDs Sequence as `(id, issuer)` pairs.
    pub other_patient_ids: Vec<(String, String)>,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub accession_issuer: String,
    pub study_id: String,
    pub study_description: String,
    pub referring_physician: String,
    pub modality: String,
    pub series_number: Option<i64>,
    pub series_description: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    /// When the examination was done (T1), in microseconds since the epoch.
    pub examined_at: Option<i64>,
}

struct Decoder {
    charset: Option<SpecificCharacterSet>,
}

impl Decoder {
    fn new(kept: &Kept) -> Decoder {
        // The last term of a multi-valued Specific Character Set names the extension set that
        // carries the national letters; ISO 2022 escapes are not used by the sets we meet.
        let charset = kept.top.get(&SPECIFIC_CHARACTER_SET).and_then(|raw| {
            let text = String::from_utf8_lossy(raw);
            let term = text
                .split('\\')
                .map(str::trim)
                .rfind(|t| !t.is_empty())
                .unwrap_or("")
                .to_owned();
            if term.is_empty() {
                None
            } else {
                SpecificCharacterSet::from_code(&term)
            }
        });
        Decoder { charset }
    }

    fn decode(&self, raw: &[u8]) -> String {
        let text = match &self.charset {
            Some(cs) => cs
                .decode(raw)
                .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned()),
            // Default repertoire is ASCII; bytes beyond it are most often UTF-8 in practice.
            None => String::from_utf8_lossy(raw).into_owned(),
        };
        text.trim_matches(|c: char| c == ' ' || c == '\0')
            .to_owned()
    }

    fn top(&self, kept: &Kept, t: Tag) -> String {
        kept.top
            .get(&t)
            .map(|raw| self.decode(raw))
            .unwrap_or_default()
    }
}

impl InstanceMeta {
    pub fn from_kept(kept: &Kept) -> InstanceMeta {
        let d = Decoder::new(kept);
        let text = |t| d.top(kept, t);
        let integer = |t| first_value(&text(t)).parse::<i64>().ok();
        InstanceMeta {
            sop_class_uid: text(SOP_CLASS_UID),
            sop_instance_uid: text(SOP_INSTANCE_UID),
            study_uid: text(STUDY_INSTANCE_UID),
            series_uid: text(SERIES_INSTANCE_UID),
            patient_id: text(PATIENT_ID),
            patient_issuer: text(ISSUER_OF_PATIENT_ID),
            patient_name: text(PATIENT_NAME),
            birth_date: text(PATIENT_BIRTH_DATE),
            sex: text(PATIENT_SEX),
            other_patient_ids: other_ids(kept, &d),
            study_date: text(STUDY_DATE),
            study_time: text(STUDY_TIME),
            accession_number: text(ACCESSION_NUMBER),
            accession_issuer: kept
                .nested
                .iter()
                .find(|v| {
                    v.sequence == ISSUER_OF_ACCESSION_NUMBER_SEQUENCE
                        && v.tag == LOCAL_NAMESPACE_ENTITY_ID
                })
                .map(|v| d.decode(&v.value))
                .unwrap_or_default(),
            study_id: text(STUDY_ID),
            study_description: text(STUDY_DESCRIPTION),
            referring_physician: text(REFERRING_PHYSICIAN_NAME),
            modality: text(MODALITY),
            series_number: integer(SERIES_NUMBER),
            series_description: text(SERIES_DESCRIPTION),
            instance_number: integer(INSTANCE_NUMBER),
            number_of_frames: integer(NUMBER_OF_FRAMES),
            examined_at: super::examined::examined_at(kept),
        }
    }
}

fn first_value(text: &str) -> &str {
    text.split('\\').next().unwrap_or("").trim()
}

fn other_ids(kept: &Kept, d: &Decoder) -> Vec<(String, String)> {
    let mut items: Vec<(usize, String, String)> = Vec::new();
    for v in kept
        .nested
        .iter()
        .filter(|v| v.sequence == OTHER_PATIENT_IDS_SEQUENCE)
    {
        let pos = match items.iter().position(|(i, _, _)| *i == v.item) {
            Some(p) => p,
            None => {
                items.push((v.item, String::new(), String::new()));
                items.len() - 1
            }
        };
        match v.tag {
            PATIENT_ID => items[pos].1 = d.decode(&v.value),
            ISSUER_OF_PATIENT_ID => items[pos].2 = d.decode(&v.value),
            _ => {}
        }
    }
    items
        .into_iter()
        .filter(|(_, id, _)| !id.is_empty())
        .map(|(_, id, issuer)| (id, issuer))
        .collect()
}

pub use crate::index::demographics::search_form;

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(pairs: &[(Tag, &[u8])]) -> Kept {
        let mut k = Kept::default();
        for (t, v) in pairs {
            k.top.insert(*t, v.to_vec());
        }
        k
    }

    #[test]
    fn decodes_latin4_names() {
        // "ŽUKAUSKAS^RŪTA" in ISO 8859-4: Ž = 0xAE, Ū = 0xDE.
        let k = kept(&[
            (SPECIFIC_CHARACTER_SET, b"ISO_IR 110"),
            (PATIENT_NAME, b"\xAEUKAUSKAS^R\xDETA "),
        ]);
        assert_eq!(InstanceMeta::from_kept(&k).patient_name, "ŽUKAUSKAS^RŪTA");
    }

    #[test]
    fn decodes_utf8_names() {
        let k = kept(&[
            (SPECIFIC_CHARACTER_SET, b"ISO_IR 192"),
            (PATIENT_NAME, "Čiurlionytė^Ąžuolė".as_bytes()),
        ]);
        assert_eq!(
            InstanceMeta::from_kept(&k).patient_name,
            "Čiurlionytė^Ąžuolė"
        );
    }

    #[test]
    fn decodes_latin1_and_numbers() {
        let k = kept(&[
            (SPECIFIC_CHARACTER_SET, b"ISO_IR 100"),
            (PATIENT_NAME, b"M\xFCller^J"),
            (SERIES_NUMBER, b"3 "),
            (NUMBER_OF_FRAMES, b"120\\"),
            (SOP_INSTANCE_UID, b"1.2.3\0"),
        ]);
        let m = InstanceMeta::from_kept(&k);
        assert_eq!(m.patient_name, "Müller^J");
        assert_eq!(m.series_number, Some(3));
        assert_eq!(m.number_of_frames, Some(120));
        assert_eq!(m.sop_instance_uid, "1.2.3");
    }

    #[test]
    fn search_form_folds_case_and_diacritics() {
        assert_eq!(search_form("Žukauskas^Rūta"), "zukauskas^ruta");
        assert_eq!(search_form("ĄČĘĖĮŠŲŪŽ"), "aceeisuuz");
    }
}
