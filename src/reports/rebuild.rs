//! Signed reports filed again from the store alone, when the index is rebuilt. The content
//! frozen at signing (`reports/{sha256}.json`) names the report, its version, the case, the
//! study, the referral, the patient and the signer; the answer document (`answers/…`) carries
//! the report's id as its own; the report object is the Encapsulated PDF this service made in
//! the study, in the version's series number, dated at the signature. That is enough to give
//! each signed version back its row and each reported case its case, under the ids they had.
//!
//! What is not in the store is not made up: claims, drafts and deliveries stay empty, and the
//! case's routing times are unknown (only its data, readiness and signature times are set).

use dicom_dictionary_std::tags;
use time::format_description::well_known::Rfc3339;

use super::answer::uuid_oid;
use super::document::{ENCAPSULATED_PDF, FIRST_SERIES_NUMBER};
use crate::archive::{Archive, ObjectKey};
use crate::index::{CaseRow, Index, IndexError, JournalEntry, ReportRow};

/// The content frozen at signing, as `Reports::sign` writes it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Frozen {
    pub report_id: String,
    pub case_id: String,
    pub version: i64,
    #[serde(default)]
    pub amends: String,
    #[serde(default)]
    pub amendment_reason: String,
    pub study_uid: String,
    #[serde(default)]
    pub referral_id: String,
    pub clinic_id: String,
    pub patient: Patient,
    #[serde(default)]
    pub examination: String,
    #[serde(default)]
    pub findings: String,
    pub conclusion: String,
    #[serde(default)]
    pub recommendations: String,
    #[serde(default)]
    pub free_text: String,
    #[serde(default)]
    pub non_diagnostic: bool,
    pub signer: Signer,
    pub signed_at: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Patient {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub birth_date: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Signer {
    pub user: String,
    pub name: String,
    pub licence: String,
    pub centre: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("not a signed report's frozen content: {0}")]
    Malformed(String),
    #[error("study {0} is not in the store")]
    NoStudy(String),
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Reads frozen content; its signing time in microseconds since the epoch.
pub fn frozen(bytes: &[u8]) -> Result<(Frozen, i64), RebuildError> {
    let f: Frozen =
        serde_json::from_slice(bytes).map_err(|e| RebuildError::Malformed(e.to_string()))?;
    let at = time::OffsetDateTime::parse(&f.signed_at, &Rfc3339)
        .map_err(|e| RebuildError::Malformed(format!("signed_at `{}`: {e}", f.signed_at)))?;
    let micros = i64::try_from(at.unix_timestamp_nanos() / 1000)
        .map_err(|_| RebuildError::Malformed(format!("signed_at `{}`", f.signed_at)))?;
    if f.report_id.is_empty() || f.case_id.is_empty() || f.version < 1 {
        return Err(RebuildError::Malformed(
            "no report id, case id or version".into(),
        ));
    }
    Ok((f, micros))
}

/// The id an answer document gives itself (its `ClinicalDocument/id/@root`): the OID of the
/// report version it answers with.
pub fn answer_id(xml: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(xml).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    doc.root_element()
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == "id")
        .and_then(|n| n.attribute("root"))
        .map(str::to_owned)
}

/// The answer document's OID for a report version.
pub fn answer_oid(report_id: &str) -> String {
    uuid_oid(report_id)
}

/// A stored object's key and SHA-256.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    pub key: String,
    pub sha256: String,
}

/// Files one signed version again with its case; `false` when it was in the index already.
/// `answer` is the answer document found for it, if any.
pub async fn refile(
    index: &Index,
    archive: &Archive,
    own_ae: &str,
    (f, signed_at): (&Frozen, i64),
    content: Kept,
    answer: Option<Kept>,
) -> Result<bool, RebuildError> {
    let study = index
        .study(&f.study_uid)
        .await?
        .ok_or_else(|| RebuildError::NoStudy(f.study_uid.clone()))?;
    // A case is of the clinic whose study it reads: content naming another clinic is not
    // filed into this one's study.
    if study.study.clinic_id != f.clinic_id {
        return Err(RebuildError::Malformed(format!(
            "it names clinic `{}`, but study {} is of clinic `{}`",
            f.clinic_id, f.study_uid, study.study.clinic_id
        )));
    }
    let referral = if f.referral_id.is_empty() {
        None
    } else {
        index.referral(&f.referral_id).await?
    };
    let (uid, key) = report_object(archive, own_ae, &study, f.version, signed_at).await;
    let data_at = study.study.last_received_at;
    let case = CaseRow {
        id: f.case_id.clone(),
        referral_id: referral.as_ref().map_or(String::new(), |r| r.id.clone()),
        study_uid: f.study_uid.clone(),
        clinic_id: f.clinic_id.clone(),
        centre_id: f.signer.centre.clone(),
        reader: f.signer.user.clone(),
        status: "reported".into(),
        examination: f.examination.clone(),
        urgency: referral
            .as_ref()
            .map_or("routine".into(), |r| r.urgency.clone()),
        patient_id: f.patient.id.clone(),
        patient_name: f.patient.name.clone(),
        birth_date: f.patient.birth_date.clone(),
        rule: "rebuilt from the store: the routing is not known".into(),
        referral_written: referral
            .as_ref()
            .map_or(String::new(), |r| r.effective_time.clone()),
        referral_at: referral.as_ref().map(|r| r.received_at),
        data_at,
        ready_at: referral
            .as_ref()
            .map_or(data_at, |r| r.received_at.max(data_at)),
        created_at: signed_at,
        updated_at: signed_at,
        ..CaseRow::default()
    };
    let answer = answer.unwrap_or_default();
    let signed = ReportRow {
        id: f.report_id.clone(),
        case_id: f.case_id.clone(),
        version: f.version,
        status: "signed".into(),
        findings: f.findings.clone(),
        conclusion: f.conclusion.clone(),
        recommendations: f.recommendations.clone(),
        free_text: f.free_text.clone(),
        non_diagnostic: f.non_diagnostic,
        author: f.signer.user.clone(),
        amends: f.amends.clone(),
        amendment_reason: f.amendment_reason.clone(),
        signer: f.signer.user.clone(),
        signer_name: f.signer.name.clone(),
        signer_licence: f.signer.licence.clone(),
        signer_centre: f.signer.centre.clone(),
        signed_at: Some(signed_at),
        content_key: content.key,
        content_sha256: content.sha256,
        answer_key: answer.key,
        answer_sha256: answer.sha256,
        document_uid: uid,
        document_key: key,
        created_at: signed_at,
        updated_at: signed_at,
    };
    let kind = if f.amends.is_empty() {
        "report_signed"
    } else {
        "report_amended"
    };
    let mut journal = JournalEntry::of_case(
        &case,
        kind,
        &f.signer.centre,
        &f.signer.user,
        &f.report_id,
        format!(
            "version {} signed by {} ({}); filed again from the store",
            f.version, f.signer.name, f.signer.licence
        ),
    );
    journal.at = signed_at;
    Ok(index.restore_signed(&case, &signed, &journal).await?)
}

/// The report object of version `version` signed at `signed_at`: the Encapsulated PDF this
/// service made in the study, in the version's series, dated at the signature (a second,
/// unsigned attempt at the same version is dated otherwise). Its SOP Instance UID and key, or
/// empty ones when none is found.
async fn report_object(
    archive: &Archive,
    own_ae: &str,
    study: &crate::index::StudyDetail,
    version: i64,
    signed_at: i64,
) -> (String, String) {
    let stamp = crate::index::hl7_timestamp(signed_at);
    let (date, time) = (&stamp[..8], &stamp[8..14]);
    for i in study
        .instances
        .iter()
        .filter(|i| i.sop_class_uid == ENCAPSULATED_PDF && i.calling_ae == own_ae)
    {
        let Ok(bytes) = archive.read(&ObjectKey::from(i.object_key.as_str())).await else {
            continue;
        };
        let Ok(object) = dicom_object::OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Always)
            .read_until(tags::ENCAPSULATED_DOCUMENT)
            .from_reader(&bytes[..])
        else {
            continue;
        };
        let text = |tag| {
            object
                .element(tag)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        if text(tags::SERIES_NUMBER) == (FIRST_SERIES_NUMBER + version).to_string()
            && text(tags::CONTENT_DATE) == date
            && text(tags::CONTENT_TIME) == time
        {
            return (i.sop_instance_uid.clone(), i.object_key.clone());
        }
    }
    (String::new(), String::new())
}
