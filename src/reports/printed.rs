//! What the printed report says, in Lithuanian and English: the page a clinician at the clinic
//! reads in their DICOM viewer or prints for the patient's file, made into the study's report
//! object (DICOM Encapsulated PDF).

use crate::index::{CaseRow, ReportRow, StudyRow};

use super::document::{self, ReportObject};
use super::pdf::{self, Layout};

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
    #[error(transparent)]
    Document(#[from] document::DocumentError),
}

/// The facts the page names besides the report's own text.
pub struct Printed<'a> {
    pub report: &'a ReportRow,
    pub case: &'a CaseRow,
    pub study: &'a StudyRow,
    pub clinic_name: &'a str,
    pub centre_name: &'a str,
    /// Signing time, `YYYYMMDDHHMMSS+0000`.
    pub signed: &'a str,
    pub series_uid: &'a str,
    pub sop_instance_uid: &'a str,
}

const TITLE: &str = "Konsultacijos išvada / Consultation report";

fn examination(kind: &str) -> &str {
    match kind {
        "echo" => "Echokardiografija / Echocardiography",
        "holter" => "Holterio monitoravimas / Holter ECG",
        "both" => "Echokardiografija ir Holterio monitoravimas / Echocardiography and Holter ECG",
        other => other,
    }
}

/// `Family^Given^Middle` as a person reads it.
fn person_name(pn: &str) -> String {
    let parts: Vec<&str> = pn.split('=').next().unwrap_or("").split('^').collect();
    let family = parts.first().copied().unwrap_or("");
    let given: Vec<&str> = parts
        .iter()
        .skip(1)
        .take(2)
        .copied()
        .filter(|p| !p.is_empty())
        .collect();
    let mut name = given.join(" ");
    if !family.is_empty() {
        if !name.is_empty() {
            name.push(' ');
        }
        name.push_str(family);
    }
    name
}

/// `YYYYMMDD` as `YYYY-MM-DD`; anything else as it is.
fn date(d: &str) -> String {
    if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
    } else {
        d.to_owned()
    }
}

/// The page.
pub fn layout(p: &Printed) -> Layout {
    let r = p.report;
    let signed = p.signed;
    let when = if signed.len() >= 12 {
        format!(
            "{} {}:{} UTC",
            date(&signed[..8]),
            &signed[8..10],
            &signed[10..12]
        )
    } else {
        signed.to_owned()
    };
    let patient_name = if p.study.patient_name.is_empty() {
        person_name(&p.case.patient_name)
    } else {
        person_name(&p.study.patient_name)
    };
    let mut facts = vec![
        ("Pacientas / Patient".to_owned(), patient_name),
        (
            "Asmens kodas / Patient ID".to_owned(),
            p.study.patient_id.clone(),
        ),
        ("Gimimo data / Born".to_owned(), date(&p.study.birth_date)),
        (
            "Siuntusi įstaiga / Clinic".to_owned(),
            p.clinic_name.to_owned(),
        ),
        (
            "Tyrimas / Examination".to_owned(),
            format!(
                "{} {}",
                examination(&p.case.examination),
                date(&p.study.study_date)
            )
            .trim()
            .to_owned(),
        ),
    ];
    if !p.case.referral_id.is_empty() {
        facts.push((
            "Siuntimas / Referral".to_owned(),
            p.case.referral_id.clone(),
        ));
    }
    if !p.study.accession_number.is_empty() {
        facts.push((
            "Užsakymas / Accession".to_owned(),
            p.study.accession_number.clone(),
        ));
    }
    facts.push((
        "Versija / Version".to_owned(),
        if r.amends.is_empty() {
            r.version.to_string()
        } else {
            format!(
                "{} — pataisyta / amended: {}",
                r.version, r.amendment_reason
            )
        },
    ));
    let mut sections = Vec::new();
    if r.non_diagnostic {
        sections.push((
            "Netinkamas diagnostikai / Non-diagnostic".to_owned(),
            "Tyrimo įvertinti negalima, prašoma jį pakartoti. / The study cannot be read; a \
             repeat examination is requested."
                .to_owned(),
        ));
    }
    sections.extend([
        ("Radiniai / Findings".to_owned(), r.findings.clone()),
        ("Išvada / Conclusion".to_owned(), r.conclusion.clone()),
        (
            "Rekomendacijos / Recommendations".to_owned(),
            r.recommendations.clone(),
        ),
        ("Pastabos / Notes".to_owned(), r.free_text.clone()),
    ]);
    let signature = vec![
        format!(
            "Pasirašė / Signed by: {}, licencija / licence {}",
            r.signer_name, r.signer_licence
        ),
        format!("{}, {when}", p.centre_name),
    ];
    let digest = sha2_16(r.id.as_bytes());
    Layout {
        title: TITLE.to_owned(),
        subtitle: format!("{} — {}", p.centre_name, r.id),
        facts,
        sections,
        signature,
        author: r.signer_name.clone(),
        created: time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(r.signed_at.unwrap_or(0)) * 1000,
        )
        .ok(),
        file_id: digest,
    }
}

fn sha2_16(data: &[u8]) -> [u8; 16] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The report object: the page as a PDF inside a DICOM Part 10 file of the study.
pub fn report_object(p: &Printed) -> Result<Vec<u8>, PrintError> {
    let pdf = pdf::render(&layout(p))?;
    let (date, time) = if p.signed.len() >= 14 {
        (&p.signed[..8], &p.signed[8..14])
    } else {
        ("", "")
    };
    Ok(document::encapsulated_pdf(&ReportObject {
        study: p.study,
        series_uid: p.series_uid,
        sop_instance_uid: p.sop_instance_uid,
        version: p.report.version,
        title: TITLE,
        date,
        time,
        manufacturer: "telecardio",
        institution: p.centre_name,
        pdf: &pdf,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_given_name_first() {
        assert_eq!(person_name("Žukauskienė^Rūta"), "Rūta Žukauskienė");
        assert_eq!(
            person_name("Butkus^Ąžuolas^Jonas=ideographic"),
            "Ąžuolas Jonas Butkus"
        );
        assert_eq!(person_name("Vienas"), "Vienas");
        assert_eq!(date("20261130"), "2026-11-30");
    }
}
