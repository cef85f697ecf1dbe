//! A generated indicator report: every indicator of the set over one period, in total and per
//! stratum, with the data-quality exceptions; and the same computed for each consulting centre
//! on its own, as the platform takes it (one reporter per MeasureReport).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Notify;

use super::compute::{compute, Computed, Exception, Facts, Value};
use super::definitions::{Definition, Definitions, SHIPPED};
use super::facts::facts;
use super::period::Period;
use super::IndicatorError;
use crate::archive::Archive;
use crate::config::Config;
use crate::index::{now_micros, rfc3339, Index};

/// What one consulting centre reports: its own cases, the studies of the clinics it reads and
/// the archive's fixity.
#[derive(Debug, Clone, Serialize)]
pub struct CentreReport {
    pub centre: String,
    pub name: String,
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub period: Period,
    pub generated_at: String,
    pub definitions: Vec<Definition>,
    pub values: Vec<Value>,
    pub exceptions: Vec<Exception>,
    pub centres: Vec<CentreReport>,
    /// Examinations read, per consulting centre, sending clinic and kind, with their cases:
    /// what two institutions settle between them.
    #[serde(skip)]
    pub settlement: Vec<Settled>,
}

/// One line of the settlement: a centre read `cases` of a clinic's examinations of a kind.
#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    pub centre: String,
    pub clinic: String,
    pub kind: String,
    pub cases: Vec<String>,
}

/// The examinations read in the period (first signed in it, not cancelled), grouped.
fn settlement(facts: &Facts, period: &Period) -> Vec<Settled> {
    let mut groups: std::collections::BTreeMap<(String, String, String), Vec<String>> =
        std::collections::BTreeMap::new();
    for c in &facts.cases {
        let signed = c.clocks.get(&super::definitions::Clock::Signed);
        if c.cancelled || !signed.is_some_and(|t| period.contains(*t)) {
            continue;
        }
        groups
            .entry((c.centre.clone(), c.clinic.clone(), c.kind.clone()))
            .or_default()
            .push(c.case_id.clone());
    }
    groups
        .into_iter()
        .map(|((centre, clinic, kind), cases)| Settled {
            centre,
            clinic,
            kind,
            cases,
        })
        .collect()
}

/// Computes reports from the index.
#[derive(Clone)]
pub struct Indicators {
    index: Index,
    config: Arc<Config>,
    definitions: Arc<Definitions>,
    /// The definitions' version: the start of their SHA-256, so a Measure changes version
    /// exactly when its definition file does.
    version: String,
    secret: Arc<Vec<u8>>,
    /// Where versions are frozen; `None` where only computing is asked.
    archive: Option<Archive>,
    /// Wakes the delivery queue's worker when a delivery is queued here.
    wake: Option<Arc<Notify>>,
}

impl Indicators {
    /// Reads the definitions (the configured file or the shipped set) and the person secret
    /// (made when missing).
    pub fn new(index: Index, config: Arc<Config>) -> Result<Indicators, IndicatorError> {
        let text = match config.indicators.definitions.trim() {
            "" => SHIPPED.to_owned(),
            path => std::fs::read_to_string(path)
                .map_err(|e| IndicatorError::Definitions(format!("cannot read {path}: {e}")))?,
        };
        let definitions = Definitions::parse(&text)?;
        let version = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(text.as_bytes()))[..12].to_owned()
        };
        let secret = person_secret(&config.person_secret_path())?;
        Ok(Indicators {
            index,
            config,
            definitions: Arc::new(definitions),
            version,
            secret: Arc::new(secret),
            archive: None,
            wake: None,
        })
    }

    /// With the store versions are frozen in.
    pub fn with_archive(mut self, archive: Archive) -> Indicators {
        self.archive = Some(archive);
        self
    }

    /// With the delivery worker to wake when a delivery is queued.
    pub fn with_wake(mut self, wake: Arc<Notify>) -> Indicators {
        self.wake = Some(wake);
        self
    }

    pub(super) fn index(&self) -> &Index {
        &self.index
    }

    pub(super) fn archive(&self) -> Result<&Archive, IndicatorError> {
        self.archive
            .as_ref()
            .ok_or_else(|| IndicatorError::Store("no object store opened".into()))
    }

    pub(super) fn wake_deliveries(&self) {
        if let Some(wake) = &self.wake {
            wake.notify_one();
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The identifier system institutions are named by: the register form 027 uses.
    pub fn institutions(&self) -> String {
        format!("urn:oid:{}", self.config.referral.oids.institution)
    }

    /// The report of `period` as the index stands now.
    pub async fn report(&self, period: &Period) -> Result<Report, IndicatorError> {
        let now = now_micros();
        let facts = self.facts(period).await?;
        let Computed { values, exceptions } = compute(
            &self.definitions.indicators,
            &self.definitions.targets,
            &facts,
            period,
            now,
        );
        let mut centres: BTreeSet<String> =
            self.config.centres.iter().map(|c| c.id.clone()).collect();
        centres.extend(
            facts
                .cases
                .iter()
                .filter(|c| !c.centre.is_empty())
                .map(|c| c.centre.clone()),
        );
        let centres = centres
            .into_iter()
            .map(|centre| {
                let own = self.of_centre(&facts, &centre);
                let computed = compute(
                    &self.definitions.indicators,
                    &self.definitions.targets,
                    &own,
                    period,
                    now,
                );
                CentreReport {
                    name: self
                        .config
                        .centre(&centre)
                        .map_or_else(|| centre.clone(), |c| c.name.clone()),
                    centre,
                    values: computed.values,
                }
            })
            .collect();
        Ok(Report {
            settlement: settlement(&facts, period),
            period: period.clone(),
            generated_at: rfc3339(now),
            definitions: self.definitions.indicators.clone(),
            values,
            exceptions,
            centres,
        })
    }

    pub(super) async fn facts(&self, period: &Period) -> Result<Facts, IndicatorError> {
        let (from, to) = (period.start, period.end);
        let cases = self.index.indicator_cases(from, to).await?;
        let versions = self.index.indicator_versions(from, to).await?;
        let studies = self.index.indicator_studies(from, to).await?;
        // The tally is kept per UTC day; a day a little either side is read and placed by
        // its Vilnius date.
        let wide = |d: jiff::civil::Date, by: i64| {
            d.checked_add(jiff::Span::new().days(by))
                .unwrap_or(d)
                .to_string()
        };
        let days = self
            .index
            .indicator_fixity(&wide(period.first_day, -1), &wide(period.last_day, 1))
            .await?;
        Ok(facts(&cases, &versions, &studies, &days, &self.secret))
    }

    /// The facts a centre reports: its cases and their versions, the studies of the clinics
    /// it reads, the archive's fixity.
    fn of_centre(&self, all: &Facts, centre: &str) -> Facts {
        let reads: BTreeSet<&str> = self
            .config
            .centre(centre)
            .map(|c| c.reads.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let cases: Vec<_> = all
            .cases
            .iter()
            .filter(|c| c.centre == centre)
            .cloned()
            .collect();
        let ids: BTreeSet<&str> = cases.iter().map(|c| c.case_id.as_str()).collect();
        Facts {
            versions: all
                .versions
                .iter()
                .filter(|v| ids.contains(v.case_id.as_str()))
                .cloned()
                .collect(),
            studies: all
                .studies
                .iter()
                .filter(|s| reads.contains(s.clinic.as_str()))
                .cloned()
                .collect(),
            checks: all.checks.clone(),
            cases,
        }
    }
}

/// The secret persons are keyed by: read from `path`, or made (32 random bytes, hex) when
/// the file does not exist yet.
fn person_secret(path: &Path) -> Result<Vec<u8>, IndicatorError> {
    let secret_error =
        |e: std::io::Error| IndicatorError::Secret(format!("{}: {e}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(IndicatorError::Secret(format!(
            "{} is empty: put the platform's shared secret in it, or remove it to have one made",
            path.display()
        )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(secret_error(e)),
    }
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| IndicatorError::Secret("no randomness for a new secret".into()))?;
    let text = hex::encode(bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(secret_error)?;
    }
    write_private(path, text.as_bytes()).map_err(secret_error)?;
    tracing::warn!(
        path = %path.display(),
        "made a person secret of this archive's own: its person counts cannot be pooled with \
         another institution's until the platform's shared secret replaces it"
    );
    Ok(text.into_bytes())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
