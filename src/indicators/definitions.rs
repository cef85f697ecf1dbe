//! Indicator definitions as data: the shipped set lives in `config/indicators.toml`, and
//! adding an indicator or changing a target is an edit there, not a change of code. Each
//! definition says what its base (B) counts and when a member of it falls in a period, what
//! its numerator (P) asks of each member, or which interval it measures, its direction and
//! target.

use serde::Deserialize;

use super::targets::TargetRule;
use super::IndicatorError;

/// The case clocks, in UTC: T0 referral written … T6 report delivered.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// T0: the referral's own date (CDA effectiveTime, HL7 ORC-9).
    Written,
    /// T1: the examination (latest acquisition or content time; Holter: start + duration).
    Examined,
    /// T2: the clinic's last object durably stored.
    Received,
    /// T3: data received and a valid referral linked.
    Ready,
    /// T4: first claimed by a reader.
    Claimed,
    /// T5: first signed.
    Signed,
    /// T6: first delivered to the clinic.
    Delivered,
}

/// What an indicator's base counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Population {
    /// Cases, in the period by one of their clocks.
    Cases,
    /// Signed report versions, in the period by their signature.
    Reports,
    /// Studies received, in the period by their first object.
    Studies,
    /// Objects checked by fixity, in the period by the check.
    FixityChecks,
}

/// A yes-or-no fact about a member of the base, for numerators that are not intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// No valid referral linked within 24 hours of the data's arrival.
    ReferralLate,
    /// The study's link to its referral needed a person's decision.
    Reconciled,
    /// The version amends an earlier signed one.
    Amendment,
    /// Read as non-diagnostic, a repeat requested.
    NonDiagnostic,
    /// The object's SHA-256 matched.
    FixityMatched,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// P / B × 100.
    Proportion,
    /// Median and 90th percentile of an interval, in minutes.
    Continuous,
    /// Counts: cases signed and unique persons with a signed case.
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Higher is better.
    Up,
    /// Lower is better.
    Down,
    /// Watched, no better side.
    Monitored,
}

/// What the numerator of a proportion asks of each member of the base.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Numerator {
    /// An interval between two clocks, met within the contract target or within `hours`.
    #[serde(default)]
    pub from: Option<Clock>,
    #[serde(default)]
    pub to: Option<Clock>,
    #[serde(default)]
    pub within_contract: bool,
    #[serde(default)]
    pub within_hours: Option<u32>,
    /// Or a fact about the member.
    #[serde(default)]
    pub flag: Option<Flag>,
}

/// The base: whom the indicator counts, and by which clock they fall in a period.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    pub of: Population,
    #[serde(default)]
    pub by: Option<Clock>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub code: String,
    pub name_lt: String,
    pub name_en: String,
    pub kind: Kind,
    pub unit: String,
    pub base: Base,
    #[serde(default)]
    pub numerator: Option<Numerator>,
    /// For continuous indicators: the interval measured.
    #[serde(default)]
    pub interval: Option<(Clock, Clock)>,
    pub direction: Direction,
    /// For proportions: the share to reach (`up`) or stay under (`down`), in %.
    #[serde(default)]
    pub target_pct: Option<f64>,
    /// For continuous indicators: the median is held against the contract target.
    #[serde(default)]
    pub target_contract: bool,
}

/// The whole file: the definitions and the contract targets.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definitions {
    #[serde(rename = "indicator")]
    pub indicators: Vec<Definition>,
    #[serde(rename = "target")]
    pub targets: Vec<TargetRule>,
}

/// The set shipped with telecardio.
pub const SHIPPED: &str = include_str!("../../config/indicators.toml");

impl Definitions {
    pub fn parse(text: &str) -> Result<Definitions, IndicatorError> {
        let d: Definitions = toml::from_str(text)
            .map_err(|e| IndicatorError::Definitions(e.message().to_owned()))?;
        d.check()?;
        Ok(d)
    }

    fn check(&self) -> Result<(), IndicatorError> {
        let bad = |code: &str, why: &str| {
            Err(IndicatorError::Definitions(format!(
                "indicator {code}: {why}"
            )))
        };
        let mut seen = std::collections::HashSet::new();
        for d in &self.indicators {
            if !seen.insert(d.code.as_str()) {
                return bad(&d.code, "defined twice");
            }
            if d.base.of == Population::Cases && d.base.by.is_none() {
                return bad(
                    &d.code,
                    "a base of cases needs `by`, the clock that places them",
                );
            }
            match d.kind {
                Kind::Proportion => {
                    let Some(n) = &d.numerator else {
                        return bad(&d.code, "a proportion needs a numerator");
                    };
                    let interval = n.from.is_some() && n.to.is_some();
                    let within = n.within_contract || n.within_hours.is_some();
                    if interval == n.flag.is_some() || interval != within {
                        return bad(
                            &d.code,
                            "a numerator is either an interval (`from`, `to` and \
                             `within_contract` or `within_hours`) or a `flag`",
                        );
                    }
                }
                Kind::Continuous if d.interval.is_none() => {
                    return bad(&d.code, "a continuous indicator needs an `interval`");
                }
                _ => {}
            }
            if d.target_pct.is_some_and(|t| !(0.0..=100.0).contains(&t)) {
                return bad(&d.code, "`target_pct` is a share between 0 and 100");
            }
        }
        for (n, rule) in self.targets.iter().enumerate() {
            if rule.target().is_none() {
                return Err(IndicatorError::Definitions(format!(
                    "target rule {}: give either `hours` or `business_days`",
                    n + 1
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_set() {
        let d = Definitions::parse(SHIPPED).unwrap();
        let codes: Vec<&str> = d.indicators.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "TC-01", "TC-02", "TC-03", "TC-04", "TC-05", "TC-06", "TC-07", "TC-08", "TC-T1",
                "TC-T2", "TC-T3", "TC-V1"
            ]
        );
        assert!(d.indicators.iter().all(|i| !i.name_lt.is_empty()));
        assert_eq!(d.targets.len(), 5);
    }

    #[test]
    fn wrong_definitions_say_what_is_wrong() {
        let one = |body: &str| {
            Definitions::parse(&format!(
                "target = []\n[[indicator]]\ncode = \"X\"\nname_lt = \"x\"\nname_en = \"x\"\n\
                 unit = \"%\"\ndirection = \"up\"\n{body}"
            ))
            .unwrap_err()
            .to_string()
        };
        let e = one("kind = \"proportion\"\nbase = { of = \"cases\", by = \"ready\" }");
        assert!(e.contains("needs a numerator"), "{e}");
        let e = one("kind = \"proportion\"\nbase = { of = \"cases\" }\nnumerator = { flag = \"amendment\" }");
        assert!(e.contains("needs `by`"), "{e}");
        let e = one(
            "kind = \"proportion\"\nbase = { of = \"cases\", by = \"ready\" }\n\
             numerator = { from = \"ready\", to = \"signed\" }",
        );
        assert!(e.contains("either an interval"), "{e}");
        let e = one("kind = \"sometimes\"\nbase = { of = \"cases\", by = \"ready\" }");
        assert!(e.contains("sometimes"), "{e}");
    }
}
