//! The DICOM query model shared by C-FIND and QIDO-RS: which level, which keys, how they match,
//! and what each match answers.
//!
//! Edges parse their wire form (a C-FIND identifier, QIDO-RS query parameters) into a
//! [`Query`]; this module turns it into an index [`Search`] and each [`Hit`] back into answer
//! attributes. It knows no protocol encoding and never decides who may see what: the scope it
//! is given comes from the access policy.

pub mod attributes;
mod matching;

use std::fmt::Write as _;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};

use crate::fault::Fault;
use crate::index::{Condition, Field, Filter, Hit, Level, Scope, Search};
use attributes::{attribute, Matching};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("Query/Retrieve Level `{0}` is not one of PATIENT, STUDY, SERIES, IMAGE")]
    Level(String),
    #[error("level {level} is not part of the {model} information model")]
    LevelNotInModel {
        level: &'static str,
        model: &'static str,
    },
    #[error("{keyword}: `{value}` is {why}")]
    BadValue {
        keyword: String,
        value: String,
        why: String,
    },
    #[error("`{0}` is not a DICOM attribute keyword or tag")]
    UnknownAttribute(String),
}

impl QueryError {
    pub fn fault(&self) -> Fault {
        Fault::BadInput
    }
}

/// The information model a query was asked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    PatientRoot,
    StudyRoot,
    /// QIDO-RS: study root levels, with patient attributes at every level.
    Web,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::PatientRoot => "Patient Root",
            Model::StudyRoot => "Study Root",
            Model::Web => "QIDO-RS",
        }
    }
}

/// One key of a query: its matching value (empty for universal matching or a pure return key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub tag: Tag,
    pub vr: VR,
    pub value: String,
    /// For a sequence key: the keys of its one item (empty: universal, every item returned).
    pub items: Vec<Key>,
}

impl Key {
    pub fn new(tag: Tag, vr: VR, value: impl Into<String>) -> Key {
        Key {
            tag,
            vr,
            value: value.into(),
            items: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub model: Model,
    pub level: Level,
    pub keys: Vec<Key>,
}

pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Patient => "PATIENT",
        Level::Study => "STUDY",
        Level::Series => "SERIES",
        Level::Instance => "IMAGE",
    }
}

pub fn parse_level(text: &str) -> Result<Level, QueryError> {
    match text.trim_matches(|c: char| c == ' ' || c == '\0') {
        "PATIENT" => Ok(Level::Patient),
        "STUDY" => Ok(Level::Study),
        "SERIES" => Ok(Level::Series),
        "IMAGE" => Ok(Level::Instance),
        other => Err(QueryError::Level(other.to_owned())),
    }
}

/// The keyword of a tag for messages and audit records.
pub fn keyword(tag: Tag) -> String {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_owned())
        .unwrap_or_else(|| format!("({:04X},{:04X})", tag.group(), tag.element()))
}

/// An attribute named by keyword (`PatientName`) or tag (`00100010`, `0010,0010`).
pub fn resolve_attribute(name: &str) -> Result<(Tag, VR), QueryError> {
    let unknown = || QueryError::UnknownAttribute(name.to_owned());
    let tag = if name.len() == 8 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        let group = u16::from_str_radix(&name[..4], 16).map_err(|_| unknown())?;
        let element = u16::from_str_radix(&name[4..], 16).map_err(|_| unknown())?;
        Tag(group, element)
    } else {
        let entry = StandardDataDictionary.by_expr(name).ok_or_else(unknown)?;
        entry.tag_range().inner()
    };
    let vr = match attribute(tag) {
        Some(a) => a.vr,
        None => StandardDataDictionary
            .by_tag(tag)
            .map(|e| e.vr().relaxed())
            .unwrap_or(VR::UN),
    };
    Ok((tag, vr))
}

impl Query {
    /// Checks the level against the model.
    pub fn new(model: Model, level: Level, keys: Vec<Key>) -> Result<Query, QueryError> {
        if level == Level::Patient && model != Model::PatientRoot {
            return Err(QueryError::LevelNotInModel {
                level: level_name(level),
                model: model.name(),
            });
        }
        Ok(Query { model, level, keys })
    }

    /// Whether a key at `level` takes part in matching at this query's level. Keys below the
    /// query level are only returned (empty); patient keys match at every level of the Study
    /// Root model, where they are study attributes.
    fn matches_at(&self, level: Level) -> bool {
        level <= self.level
    }

    /// The index search for this query within `scope`.
    pub fn search(
        &self,
        scope: Scope,
        limit: Option<i64>,
        offset: i64,
    ) -> Result<Search, QueryError> {
        let mut filters = Vec::new();
        for key in &self.keys {
            let Some(attr) = attribute(key.tag) else {
                continue;
            };
            if !self.matches_at(attr.level) || attr.matching == Matching::ReturnOnly {
                continue;
            }
            if attr.matching == Matching::Sequence {
                filters.extend(item_filters(key, attr.field)?);
                continue;
            }
            let Some(field) = attr.field else { continue };
            if let Some(condition) =
                matching::condition(&keyword(key.tag), attr.matching, &key.value)?
            {
                filters.push(Filter { field, condition });
            }
        }
        Ok(Search {
            level: self.level,
            filters,
            scope,
            limit,
            offset,
        })
    }

    /// The item keys asked for under sequence `tag` (empty: all we keep).
    fn item_keys(&self, tag: Tag) -> Vec<(Tag, VR)> {
        let asked: Vec<(Tag, VR)> = self
            .keys
            .iter()
            .find(|k| k.tag == tag)
            .map(|k| k.items.iter().map(|i| (i.tag, i.vr)).collect())
            .unwrap_or_default();
        if asked.is_empty() {
            attributes::item_attributes(tag)
                .iter()
                .map(|(t, vr, _)| (*t, *vr))
                .collect()
        } else {
            asked
        }
    }

    /// The value of a single-valued key, if the query names exactly one (for the audit trail).
    pub fn single_value(&self, tag: Tag) -> String {
        self.keys
            .iter()
            .find(|k| k.tag == tag)
            .map(|k| k.value.trim().to_owned())
            .filter(|v| !v.is_empty() && !v.contains(['*', '?', '\\', '-']))
            .unwrap_or_default()
    }

    /// What was asked, for the audit trail: level and the keys that carried a value.
    pub fn summary(&self) -> String {
        self.describe(false)
    }

    /// [`Query::summary`] for the service log, which never carries names: person-name values
    /// are masked.
    pub fn log_summary(&self) -> String {
        self.describe(true)
    }

    fn describe(&self, mask_names: bool) -> String {
        let mut out = level_name(self.level).to_owned();
        let nested = self.keys.iter().flat_map(|k| {
            k.items
                .iter()
                .map(move |i| (format!("{}.{}", keyword(k.tag), keyword(i.tag)), i))
        });
        let keys = self
            .keys
            .iter()
            .map(|k| (keyword(k.tag), k))
            .chain(nested)
            .filter(|(_, k)| !k.value.trim().is_empty());
        for (name, key) in keys {
            let value = if mask_names && key.vr == VR::PN {
                "…"
            } else {
                key.value.trim()
            };
            let _ = write!(out, " {name}={value}");
        }
        out
    }

    /// The tags an answer carries: the keys asked for, plus the unique keys of this level and
    /// the levels above it (PS3.4 C.4.1.2.1.4), in ascending tag order.
    pub fn return_tags(&self) -> Vec<(Tag, VR)> {
        let mut out: Vec<(Tag, VR)> = self
            .keys
            .iter()
            .filter(|k| {
                k.tag != tags::SPECIFIC_CHARACTER_SET && k.tag != tags::QUERY_RETRIEVE_LEVEL
            })
            .map(|k| (k.tag, k.vr))
            .collect();
        let mut unique = vec![(tags::STUDY_INSTANCE_UID, VR::UI)];
        if self.model == Model::PatientRoot {
            unique.push((tags::PATIENT_ID, VR::LO));
        }
        if self.level >= Level::Series {
            unique.push((tags::SERIES_INSTANCE_UID, VR::UI));
        }
        if self.level >= Level::Instance {
            unique.push((tags::SOP_INSTANCE_UID, VR::UI));
        }
        if self.level == Level::Patient {
            unique = vec![(tags::PATIENT_ID, VR::LO)];
        }
        for (tag, vr) in unique {
            if !out.iter().any(|(t, _)| *t == tag) {
                out.push((tag, vr));
            }
        }
        out.sort_by_key(|(t, _)| *t);
        out.dedup_by_key(|(t, _)| *t);
        out
    }
}

/// The filters of a sequence key (PS3.4 C.2.2.2.6): its item's keys must hold in one stored
/// item. Item attributes we do not keep are returned but not matched.
fn item_filters(key: &Key, field: Option<Field>) -> Result<Vec<Filter>, QueryError> {
    let mut inner = Vec::new();
    for item_key in &key.items {
        let Some((_, _, item_field)) = attributes::item_attributes(key.tag)
            .iter()
            .find(|(t, _, _)| *t == item_key.tag)
        else {
            continue;
        };
        let name = format!("{}.{}", keyword(key.tag), keyword(item_key.tag));
        if let Some(condition) = matching::condition(&name, Matching::Text, &item_key.value)? {
            inner.push(Filter {
                field: *item_field,
                condition,
            });
        }
    }
    Ok(match field {
        // Kept item by item: one EXISTS over the items.
        Some(field) if !inner.is_empty() => vec![Filter {
            field,
            condition: Condition::Item(inner),
        }],
        Some(_) => vec![],
        // A sequence of at most one item, kept as plain columns.
        None => inner,
    })
}

/// One answer attribute: string values in DICOM form (empty: present with no value); for a
/// sequence, its items instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub tag: Tag,
    pub vr: VR,
    pub values: Vec<String>,
    pub items: Vec<Vec<Answered>>,
}

impl Answered {
    pub fn new(tag: Tag, vr: VR, values: Vec<String>) -> Answered {
        Answered {
            tag,
            vr,
            values,
            items: Vec::new(),
        }
    }
}

/// The answer to `query` for one hit. `retrieve_ae` fills Retrieve AE Title.
pub fn answer(query: &Query, hit: &Hit, retrieve_ae: &str) -> Vec<Answered> {
    query
        .return_tags()
        .into_iter()
        .map(|(tag, vr)| {
            let below_level = attribute(tag).is_some_and(|a| a.level > query.level);
            if vr == VR::SQ {
                let wanted = query.item_keys(tag);
                let items = if below_level {
                    vec![]
                } else {
                    attributes::items(tag, hit)
                        .into_iter()
                        .map(|stored| {
                            wanted
                                .iter()
                                .map(|(t, vr)| {
                                    let values = stored
                                        .iter()
                                        .find(|(st, _)| st == t)
                                        .map(|(_, v)| v.clone())
                                        .unwrap_or_default();
                                    Answered::new(*t, *vr, values)
                                })
                                .collect()
                        })
                        .collect()
                };
                return Answered {
                    tag,
                    vr,
                    values: vec![],
                    items,
                };
            }
            let values = if below_level {
                vec![]
            } else if tag == tags::RETRIEVE_AE_TITLE {
                vec![retrieve_ae.to_owned()]
            } else {
                attributes::value(tag, hit)
            };
            Answered::new(tag, vr, values)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tag: Tag, vr: VR, value: &str) -> Key {
        Key::new(tag, vr, value)
    }

    #[test]
    fn study_query_matches_patient_and_study_keys_but_not_below() {
        let q = Query::new(
            Model::StudyRoot,
            Level::Study,
            vec![
                key(tags::PATIENT_NAME, VR::PN, "Žuk*"),
                key(tags::STUDY_DATE, VR::DA, "20240101-"),
                key(tags::MODALITY, VR::CS, "US"),
                key(tags::STUDY_DESCRIPTION, VR::LO, ""),
            ],
        )
        .unwrap();
        let s = q.search(Scope::Everything, None, 0).unwrap();
        assert_eq!(
            s.filters,
            vec![
                Filter {
                    field: Field::PatientName,
                    condition: Condition::Wildcard("zuk*".into())
                },
                Filter {
                    field: Field::StudyDate,
                    condition: Condition::Range {
                        from: Some("20240101".into()),
                        to: None
                    }
                },
            ]
        );
        let tags: Vec<Tag> = q.return_tags().into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            tags,
            vec![
                tags::STUDY_DATE,
                tags::MODALITY,
                tags::STUDY_DESCRIPTION,
                tags::PATIENT_NAME,
                tags::STUDY_INSTANCE_UID
            ]
        );
    }

    #[test]
    fn sequence_keys_match_within_one_item() {
        let mut other_ids = key(tags::OTHER_PATIENT_I_DS_SEQUENCE, VR::SQ, "");
        other_ids.items = vec![
            key(tags::PATIENT_ID, VR::LO, "LT-38*"),
            key(tags::ISSUER_OF_PATIENT_ID, VR::LO, "VLK"),
            key(tags::TYPE_OF_PATIENT_ID, VR::CS, "TEXT"),
        ];
        let mut accession_issuer = key(tags::ISSUER_OF_ACCESSION_NUMBER_SEQUENCE, VR::SQ, "");
        accession_issuer.items = vec![key(tags::LOCAL_NAMESPACE_ENTITY_ID, VR::UT, "VULSK")];
        let q = Query::new(
            Model::StudyRoot,
            Level::Study,
            vec![other_ids, accession_issuer],
        )
        .unwrap();
        let s = q.search(Scope::Everything, None, 0).unwrap();
        assert_eq!(
            s.filters,
            vec![
                Filter {
                    field: Field::OtherPatientIds,
                    condition: Condition::Item(vec![
                        Filter {
                            field: Field::OtherPatientId,
                            condition: Condition::Wildcard("LT-38*".into())
                        },
                        Filter {
                            field: Field::OtherPatientIssuer,
                            condition: Condition::Equals("VLK".into())
                        },
                    ])
                },
                Filter {
                    field: Field::AccessionIssuer,
                    condition: Condition::Equals("VULSK".into())
                },
            ]
        );
        assert_eq!(
            q.summary(),
            "STUDY OtherPatientIDsSequence.PatientID=LT-38* \
             OtherPatientIDsSequence.IssuerOfPatientID=VLK \
             OtherPatientIDsSequence.TypeOfPatientID=TEXT \
             IssuerOfAccessionNumberSequence.LocalNamespaceEntityID=VULSK"
        );
        // Answers carry every stored item, with the item attributes asked for.
        let hit = Hit {
            other_patient_ids: "LT-380101^^^VLK\\PSDF-77^^^SODRA".into(),
            ..Hit::default()
        };
        let answers = answer(&q, &hit, "TELECARDIO");
        let sequence = answers
            .iter()
            .find(|a| a.tag == tags::OTHER_PATIENT_I_DS_SEQUENCE)
            .unwrap();
        assert_eq!(sequence.items.len(), 2);
        assert_eq!(sequence.items[1][0].values, vec!["PSDF-77".to_owned()]);
        assert_eq!(sequence.items[1][2].values, Vec::<String>::new());
    }

    #[test]
    fn patient_level_only_in_patient_root() {
        assert!(Query::new(Model::StudyRoot, Level::Patient, vec![]).is_err());
        assert!(Query::new(Model::PatientRoot, Level::Patient, vec![]).is_ok());
    }

    #[test]
    fn attributes_resolve_by_keyword_and_tag() {
        assert_eq!(
            resolve_attribute("PatientName").unwrap(),
            (tags::PATIENT_NAME, VR::PN)
        );
        assert_eq!(
            resolve_attribute("0020000D").unwrap(),
            (tags::STUDY_INSTANCE_UID, VR::UI)
        );
        assert!(resolve_attribute("NoSuchThing").is_err());
    }

    #[test]
    fn summary_names_keys_with_values() {
        let q = Query::new(
            Model::PatientRoot,
            Level::Study,
            vec![
                key(tags::PATIENT_ID, VR::LO, "3900101"),
                key(tags::STUDY_DATE, VR::DA, ""),
            ],
        )
        .unwrap();
        assert_eq!(q.summary(), "STUDY PatientID=3900101");
        assert_eq!(q.single_value(tags::PATIENT_ID), "3900101");
    }
}
