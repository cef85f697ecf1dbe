//! The attributes we can match and return, per query level (PS3.4 C.6.1.1 and C.6.2.1 list the
//! keys of the Patient Root and Study Root information models; QIDO-RS uses the same ones).

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;

use crate::index::{Field, Hit, Level};

/// How a key's value is matched (PS3.4 C.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// Single value, wildcard, list of values; case-sensitive.
    Text,
    /// Person name: like text, but without case and diacritics (our choice for Lithuanian).
    Name,
    /// Single UID or a list of UIDs; no wildcards.
    Uid,
    /// Dates: single value or range.
    Date,
    /// Times: single value (to its precision) or range.
    Time,
    /// Integer strings: single value or list.
    Integer,
    /// Return key only: a matching value is ignored (PS3.4 lets the SCP not match on it).
    ReturnOnly,
    /// Sequence matching: the keys of the query's one item must all match in one stored item.
    Sequence,
}

pub struct Attribute {
    pub tag: Tag,
    pub vr: VR,
    pub level: Level,
    pub field: Option<Field>,
    pub matching: Matching,
    /// Returned by QIDO-RS without `includefield` (PS3.18 Tables 10.6.3-3 to -5).
    pub qido_default: bool,
}

const fn attr(
    tag: Tag,
    vr: VR,
    level: Level,
    field: Option<Field>,
    matching: Matching,
    qido_default: bool,
) -> Attribute {
    Attribute {
        tag,
        vr,
        level,
        field,
        matching,
        qido_default,
    }
}

use Level::{Instance, Patient, Series, Study};
use Matching::*;

pub const ATTRIBUTES: &[Attribute] = &[
    attr(
        tags::OTHER_PATIENT_I_DS_SEQUENCE,
        VR::SQ,
        Patient,
        Some(Field::OtherPatientIds),
        Sequence,
        false,
    ),
    attr(
        tags::ISSUER_OF_ACCESSION_NUMBER_SEQUENCE,
        VR::SQ,
        Study,
        None,
        Sequence,
        false,
    ),
    attr(
        tags::PATIENT_NAME,
        VR::PN,
        Patient,
        Some(Field::PatientName),
        Name,
        true,
    ),
    attr(
        tags::PATIENT_ID,
        VR::LO,
        Patient,
        Some(Field::PatientId),
        Text,
        true,
    ),
    attr(
        tags::ISSUER_OF_PATIENT_ID,
        VR::LO,
        Patient,
        Some(Field::PatientIssuer),
        Text,
        false,
    ),
    attr(
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        Patient,
        Some(Field::BirthDate),
        Date,
        true,
    ),
    attr(
        tags::PATIENT_SEX,
        VR::CS,
        Patient,
        Some(Field::Sex),
        Text,
        true,
    ),
    attr(
        tags::NUMBER_OF_PATIENT_RELATED_STUDIES,
        VR::IS,
        Patient,
        None,
        ReturnOnly,
        false,
    ),
    attr(
        tags::NUMBER_OF_PATIENT_RELATED_SERIES,
        VR::IS,
        Patient,
        None,
        ReturnOnly,
        false,
    ),
    attr(
        tags::NUMBER_OF_PATIENT_RELATED_INSTANCES,
        VR::IS,
        Patient,
        None,
        ReturnOnly,
        false,
    ),
    attr(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        Study,
        Some(Field::StudyUid),
        Uid,
        true,
    ),
    attr(
        tags::STUDY_DATE,
        VR::DA,
        Study,
        Some(Field::StudyDate),
        Date,
        true,
    ),
    attr(
        tags::STUDY_TIME,
        VR::TM,
        Study,
        Some(Field::StudyTime),
        Time,
        true,
    ),
    attr(
        tags::ACCESSION_NUMBER,
        VR::SH,
        Study,
        Some(Field::AccessionNumber),
        Text,
        true,
    ),
    attr(
        tags::STUDY_ID,
        VR::SH,
        Study,
        Some(Field::StudyId),
        Text,
        true,
    ),
    attr(
        tags::STUDY_DESCRIPTION,
        VR::LO,
        Study,
        Some(Field::StudyDescription),
        Text,
        false,
    ),
    attr(
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        Study,
        Some(Field::ReferringPhysician),
        Name,
        true,
    ),
    attr(
        tags::MODALITIES_IN_STUDY,
        VR::CS,
        Study,
        Some(Field::ModalitiesInStudy),
        Text,
        true,
    ),
    attr(
        tags::NUMBER_OF_STUDY_RELATED_SERIES,
        VR::IS,
        Study,
        None,
        ReturnOnly,
        true,
    ),
    attr(
        tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
        VR::IS,
        Study,
        None,
        ReturnOnly,
        true,
    ),
    attr(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        Series,
        Some(Field::SeriesUid),
        Uid,
        true,
    ),
    attr(
        tags::MODALITY,
        VR::CS,
        Series,
        Some(Field::Modality),
        Text,
        true,
    ),
    attr(
        tags::SERIES_NUMBER,
        VR::IS,
        Series,
        Some(Field::SeriesNumber),
        Integer,
        true,
    ),
    attr(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        Series,
        Some(Field::SeriesDescription),
        Text,
        false,
    ),
    attr(
        tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
        VR::IS,
        Series,
        None,
        ReturnOnly,
        true,
    ),
    attr(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        Instance,
        Some(Field::SopInstanceUid),
        Uid,
        true,
    ),
    attr(
        tags::SOP_CLASS_UID,
        VR::UI,
        Instance,
        Some(Field::SopClassUid),
        Uid,
        true,
    ),
    attr(
        tags::INSTANCE_NUMBER,
        VR::IS,
        Instance,
        Some(Field::InstanceNumber),
        Integer,
        true,
    ),
    attr(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        Instance,
        None,
        ReturnOnly,
        false,
    ),
    attr(
        tags::AVAILABLE_TRANSFER_SYNTAX_UID,
        VR::UI,
        Instance,
        None,
        ReturnOnly,
        true,
    ),
];

pub fn attribute(tag: Tag) -> Option<&'static Attribute> {
    ATTRIBUTES.iter().find(|a| a.tag == tag)
}

/// The value of an attribute in a hit, as DICOM string values (empty when unknown).
pub fn value(tag: Tag, hit: &Hit) -> Vec<String> {
    let text = |s: &str| {
        if s.is_empty() {
            vec![]
        } else {
            s.split('\\').map(str::to_owned).collect()
        }
    };
    let number = |n: Option<i64>| n.map(|n| vec![n.to_string()]).unwrap_or_default();
    match tag {
        tags::PATIENT_NAME => text(&hit.patient_name),
        tags::PATIENT_ID => text(&hit.patient_id),
        tags::ISSUER_OF_PATIENT_ID => text(&hit.patient_issuer),
        tags::PATIENT_BIRTH_DATE => text(&hit.birth_date),
        tags::PATIENT_SEX => text(&hit.sex),
        tags::NUMBER_OF_PATIENT_RELATED_STUDIES => number(Some(hit.patient_studies)),
        tags::NUMBER_OF_PATIENT_RELATED_SERIES => number(Some(hit.patient_series)),
        tags::NUMBER_OF_PATIENT_RELATED_INSTANCES => number(Some(hit.patient_instances)),
        tags::STUDY_INSTANCE_UID => text(&hit.study_uid),
        tags::STUDY_DATE => text(&hit.study_date),
        tags::STUDY_TIME => text(&hit.study_time),
        tags::ACCESSION_NUMBER => text(&hit.accession_number),
        tags::STUDY_ID => text(&hit.study_id),
        tags::STUDY_DESCRIPTION => text(&hit.study_description),
        tags::REFERRING_PHYSICIAN_NAME => text(&hit.referring_physician),
        tags::MODALITIES_IN_STUDY => text(&hit.modalities),
        tags::NUMBER_OF_STUDY_RELATED_SERIES => number(Some(hit.study_series)),
        tags::NUMBER_OF_STUDY_RELATED_INSTANCES => number(Some(hit.study_instances)),
        tags::SERIES_INSTANCE_UID => text(&hit.series_uid),
        tags::MODALITY => text(&hit.modality),
        tags::SERIES_NUMBER => number(hit.series_number),
        tags::SERIES_DESCRIPTION => text(&hit.series_description),
        tags::NUMBER_OF_SERIES_RELATED_INSTANCES => number(Some(hit.series_instances)),
        tags::SOP_INSTANCE_UID => text(&hit.sop_instance_uid),
        tags::SOP_CLASS_UID => text(&hit.sop_class_uid),
        tags::INSTANCE_NUMBER => number(hit.instance_number),
        tags::NUMBER_OF_FRAMES => number(hit.number_of_frames),
        tags::AVAILABLE_TRANSFER_SYNTAX_UID => text(&hit.transfer_syntax),
        tags::INSTANCE_AVAILABILITY => vec!["ONLINE".to_owned()],
        _ => vec![],
    }
}

/// The item attributes of a sequence we keep: their VR and the field each matches on.
pub fn item_attributes(sequence: Tag) -> &'static [(Tag, VR, Field)] {
    match sequence {
        tags::OTHER_PATIENT_I_DS_SEQUENCE => &[
            (tags::PATIENT_ID, VR::LO, Field::OtherPatientId),
            (
                tags::ISSUER_OF_PATIENT_ID,
                VR::LO,
                Field::OtherPatientIssuer,
            ),
        ],
        tags::ISSUER_OF_ACCESSION_NUMBER_SEQUENCE => &[(
            tags::LOCAL_NAMESPACE_ENTITY_ID,
            VR::UT,
            Field::AccessionIssuer,
        )],
        _ => &[],
    }
}

/// The stored items of a sequence for `hit`, each as (tag, values) of its item attributes.
pub fn items(sequence: Tag, hit: &Hit) -> Vec<Vec<(Tag, Vec<String>)>> {
    let some = |s: &str| {
        if s.is_empty() {
            vec![]
        } else {
            vec![s.to_owned()]
        }
    };
    match sequence {
        tags::OTHER_PATIENT_I_DS_SEQUENCE => crate::index::other_ids(&hit.other_patient_ids)
            .map(|(id, issuer)| {
                vec![
                    (tags::PATIENT_ID, some(id)),
                    (tags::ISSUER_OF_PATIENT_ID, some(issuer)),
                ]
            })
            .collect(),
        tags::ISSUER_OF_ACCESSION_NUMBER_SEQUENCE if !hit.accession_issuer.is_empty() => {
            vec![vec![(
                tags::LOCAL_NAMESPACE_ENTITY_ID,
                some(&hit.accession_issuer),
            )]]
        }
        _ => vec![],
    }
}
