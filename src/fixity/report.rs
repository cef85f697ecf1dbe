//! The fixity report over a period, for the auditor's file: objects and bytes checked,
//! every failure found with its key and hashes, failures standing now, objects not yet
//! checked, and where the background pass stands. As JSON, CSV (one row per object to look
//! at) and an A4 PDF in Lithuanian or English.

use std::fmt::Write;

use crate::index::{rfc3339, FixityCursor, FixityFailureRow, FixityTally, Index, IndexError};
use crate::reports::pdf::{self, Layout, PdfError};

/// Unchecked objects named one by one (the count is always whole).
const UNCHECKED_NAMED: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Pdf(#[from] PdfError),
    #[error("the period is empty: `to` must come after `from`")]
    EmptyPeriod,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PeriodReport {
    pub from: String,
    pub to: String,
    pub made_at: String,
    /// Objects and bytes checked, failures found, on the period's days.
    pub checked: FixityTally,
    /// Every failure found in the period, oldest first.
    pub failures: Vec<FixityFailureRow>,
    /// Objects whose last check failed, whenever that was: still to be dealt with.
    pub standing_failures: Vec<FixityFailureRow>,
    /// Objects stored before the period's end that were not checked in it.
    pub not_checked: i64,
    /// The first of them by key.
    pub not_checked_keys: Vec<String>,
    pub background_pass: FixityCursor,
}

impl PeriodReport {
    /// The report for `[from, to)` (microseconds).
    pub async fn build(index: &Index, from: i64, to: i64) -> Result<PeriodReport, ReportError> {
        if to <= from {
            return Err(ReportError::EmptyPeriod);
        }
        let (not_checked, not_checked_keys) =
            index.fixity_unchecked(from, to, UNCHECKED_NAMED).await?;
        Ok(PeriodReport {
            from: rfc3339(from),
            to: rfc3339(to),
            made_at: rfc3339(crate::index::now_micros()),
            checked: index.fixity_tally_between(from, to).await?,
            failures: index.fixity_failures_between(from, to).await?,
            standing_failures: index.fixity_open_failures(10_000).await?,
            not_checked,
            not_checked_keys,
            background_pass: index.fixity_cursor().await?,
        })
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.standing_failures.is_empty()
    }

    /// The columns of [`PeriodReport::csv_rows`].
    pub const CSV_HEADER: [&'static str; 8] = [
        "status",
        "object_key",
        "kind",
        "study_uid",
        "expected_sha256",
        "found_sha256",
        "when",
        "detail",
    ];

    /// One row per object to look at: each failure found in the period, then each object not
    /// checked in it (as far as named).
    pub fn csv_rows(&self) -> Vec<Vec<String>> {
        let mut rows: Vec<Vec<String>> = self
            .failures
            .iter()
            .map(|f| {
                vec![
                    f.problem.clone(),
                    f.key.clone(),
                    f.kind.clone(),
                    f.study_uid.clone(),
                    f.expected_sha256.clone(),
                    f.found_sha256.clone(),
                    rfc3339(f.found_at),
                    f.detail.clone(),
                ]
            })
            .collect();
        rows.extend(self.not_checked_keys.iter().map(|key| {
            let mut row = vec![String::new(); 8];
            row[0] = "not_checked".into();
            row[1] = key.clone();
            row
        }));
        rows
    }

    /// The report as an A4 PDF, in Lithuanian (`lt`) or English.
    pub fn pdf(&self, lang: &str) -> Result<Vec<u8>, ReportError> {
        let lt = lang == "lt";
        let t = |lt_text: &str, en: &str| -> String {
            if lt {
                lt_text.to_owned()
            } else {
                en.to_owned()
            }
        };
        let mut failures = String::new();
        for f in &self.failures {
            let _ = writeln!(
                failures,
                "{} {} — {} ({}), {} {}, {} {}",
                rfc3339(f.found_at),
                f.problem,
                f.key,
                if f.study_uid.is_empty() {
                    "-"
                } else {
                    &f.study_uid
                },
                t("tikėtasi", "expected"),
                f.expected_sha256,
                t("rasta", "found"),
                if f.found_sha256.is_empty() {
                    "-"
                } else {
                    &f.found_sha256
                },
            );
        }
        let mut standing = String::new();
        for f in &self.standing_failures {
            let _ = writeln!(
                standing,
                "{} {} ({})",
                f.problem,
                f.key,
                rfc3339(f.found_at)
            );
        }
        let mut unchecked = self.not_checked_keys.join("\n");
        if self.not_checked > self.not_checked_keys.len() as i64 {
            let _ = write!(
                unchecked,
                "\n… {} {}",
                self.not_checked - self.not_checked_keys.len() as i64,
                t("daugiau", "more")
            );
        }
        let pass = &self.background_pass;
        let layout = Layout {
            title: t("Archyvo vientisumo ataskaita", "Archive fixity report"),
            subtitle: format!("{} — {}", self.from, self.to),
            facts: vec![
                (
                    t("Patikrinta objektų", "Objects checked"),
                    self.checked.objects.to_string(),
                ),
                (
                    t("Patikrinta baitų", "Bytes checked"),
                    self.checked.bytes.to_string(),
                ),
                (
                    t("Rasta pažeidimų", "Failures found"),
                    self.failures.len().to_string(),
                ),
                (
                    t("Neišspręsti pažeidimai", "Failures standing"),
                    self.standing_failures.len().to_string(),
                ),
                (
                    t("Nepatikrinta per laikotarpį", "Not checked in the period"),
                    self.not_checked.to_string(),
                ),
                (
                    t("Foninis patikrinimas", "Background pass"),
                    format!(
                        "{} {} {}, {} {}",
                        t("ciklas", "cycle"),
                        pass.cycle,
                        rfc3339(pass.cycle_started_at),
                        pass.objects,
                        t("objektų", "objects")
                    ),
                ),
            ],
            sections: vec![
                (
                    t("Pažeidimai per laikotarpį", "Failures in the period"),
                    failures,
                ),
                (t("Neišspręsti pažeidimai", "Failures standing"), standing),
                (t("Nepatikrinti objektai", "Objects not checked"), unchecked),
            ],
            signature: vec![format!("{} {}", t("Parengta", "Made"), self.made_at)],
            author: "telecardio".into(),
            created: Some(time::OffsetDateTime::now_utc()),
            file_id: file_id(&self.from, &self.to, &self.made_at),
        };
        Ok(pdf::render(&layout)?)
    }
}

fn file_id(from: &str, to: &str, made: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("fixity {from} {to} {made}"));
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}
