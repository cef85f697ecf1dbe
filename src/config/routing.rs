//! Routing configuration: which consulting centre reads which case, and how a case finds its
//! reader there. Rules are tried in order; the first that matches routes the case. A rule
//! routes only within a contract: its centre must read the case's clinic.

use serde::Deserialize;

use super::{Config, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Seconds a study must stay without new objects before its case is routed, so a reader
    /// is not handed a study still arriving.
    pub study_stable_seconds: u64,
    /// Seconds a claim lasts without activity; then any reader of the centre may take the case.
    pub claim_seconds: u64,
    pub rules: Vec<RoutingRule>,
}

impl RoutingConfig {
    /// How long a claim lasts, in index time (microseconds), saturating.
    pub fn claim_micros(&self) -> i64 {
        micros(self.claim_seconds)
    }

    /// How long a study must stay quiet before routing, in microseconds, saturating.
    pub fn stable_micros(&self) -> i64 {
        micros(self.study_stable_seconds)
    }
}

pub(super) fn micros(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1_000_000)).unwrap_or(i64::MAX / 2)
}

/// Which patients a rule is for, by age at the referral (or at routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgeGroup {
    Any,
    /// Under 18.
    Paediatric,
    Adult,
}

/// How a routed case finds its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Assignment {
    /// The case waits on the centre's worklist until a reader picks it.
    Pool,
    /// The case goes to the available reader with the fewest open cases.
    Balance,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// Named in the case, the journal and the logs.
    pub name: String,
    /// Clinic ids the rule is for; empty: every clinic the centre reads.
    pub clinics: Vec<String>,
    /// echo, holter, both, other; empty: any.
    pub examinations: Vec<String>,
    /// routine, urgent, emergency; empty: any.
    pub urgencies: Vec<String>,
    pub patients: AgeGroup,
    pub centre: String,
    /// User names of the readers this rule's cases go to (e.g. paediatric cardiologists);
    /// empty: every cardiologist of the centre.
    pub readers: Vec<String>,
    pub assign: Assignment,
}

const EXAMINATIONS: &[&str] = &["echo", "holter", "both", "other"];
const URGENCIES: &[&str] = &["routine", "urgent", "emergency"];

impl Config {
    pub(super) fn validate_routing(&self) -> Result<(), ConfigError> {
        if self.routing.claim_seconds == 0 {
            return Err(ConfigError::key(
                "routing.claim_seconds",
                "must be at least 1",
            ));
        }
        for (i, rule) in self.routing.rules.iter().enumerate() {
            let key = |field: &str| format!("routing.rules[{i}].{field}");
            if rule.name.trim().is_empty() {
                return Err(ConfigError::key(key("name"), "must be given"));
            }
            let Some(centre) = self.centre(&rule.centre) else {
                return Err(ConfigError::key(
                    key("centre"),
                    format!("`{}` is not a declared centre", rule.centre),
                ));
            };
            for clinic in &rule.clinics {
                if !centre.reads.contains(clinic) {
                    return Err(ConfigError::key(
                        key("clinics"),
                        format!(
                            "centre `{}` has no contract to read clinic `{clinic}` (centres.reads)",
                            centre.id
                        ),
                    ));
                }
            }
            if rule.assign == Assignment::Pool && !rule.readers.is_empty() {
                return Err(ConfigError::key(
                    key("readers"),
                    "named readers need assign = \"balance\": the shared worklist is the whole \
                     centre's",
                ));
            }
            if let Some(bad) = rule
                .examinations
                .iter()
                .find(|e| !EXAMINATIONS.contains(&e.as_str()))
            {
                return Err(ConfigError::key(
                    key("examinations"),
                    format!("`{bad}` is not one of {}", EXAMINATIONS.join(", ")),
                ));
            }
            if let Some(bad) = rule
                .urgencies
                .iter()
                .find(|u| !URGENCIES.contains(&u.as_str()))
            {
                return Err(ConfigError::key(
                    key("urgencies"),
                    format!("`{bad}` is not one of {}", URGENCIES.join(", ")),
                ));
            }
        }
        Ok(())
    }
}
