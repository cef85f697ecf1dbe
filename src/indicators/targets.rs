//! Contract targets: how soon a case is to be read, per clinic, centre, kind and priority. A
//! target is a number of hours, or the end of the n-th business day after the day the clock
//! started (in Vilnius, with Lithuania's public holidays). The most specific rule that matches
//! a case wins; the shipped rules are the documented defaults.

use serde::Deserialize;

use super::calendar::business_days_after;
use super::period::day_of;

/// A target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Hours(u32),
    /// By the end of the n-th business day after the start (0: of the start day, or of the
    /// next business day when it started on a day off).
    BusinessDays(u32),
}

impl Target {
    /// The last instant (exclusive) that still meets the target for a clock started at
    /// `start` (microseconds since the epoch).
    pub fn deadline(self, start: i64) -> i64 {
        match self {
            Target::Hours(h) => start.saturating_add(i64::from(h) * 3_600_000_000),
            Target::BusinessDays(n) => {
                let last = business_days_after(day_of(start), n);
                let next = last.tomorrow().unwrap_or(last);
                next.to_zoned_datetime(super::period::vilnius())
                    .map(|z| z.timestamp().as_microsecond())
                    .unwrap_or(i64::MAX)
            }
        }
    }

    pub fn met(self, start: i64, end: i64) -> bool {
        end >= start && end < self.deadline(start)
    }

    /// How the target reads in a report: `4 h`, `1 business day`.
    pub fn text(self) -> String {
        match self {
            Target::Hours(h) => format!("{h} h"),
            Target::BusinessDays(1) => "end of next business day".into(),
            Target::BusinessDays(n) => format!("end of business day {n}"),
        }
    }

    /// In minutes, for comparing a median with it: a business day counts as 24 hours.
    pub fn minutes(self) -> f64 {
        match self {
            Target::Hours(h) => f64::from(h) * 60.0,
            Target::BusinessDays(n) => f64::from(n.max(1)) * 24.0 * 60.0,
        }
    }
}

/// One rule of the configuration: whom it is for (any field left out matches all) and the
/// target, as `hours` or `business_days`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TargetRule {
    #[serde(default)]
    pub clinic: Option<String>,
    #[serde(default)]
    pub centre: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub hours: Option<u32>,
    #[serde(default)]
    pub business_days: Option<u32>,
}

impl TargetRule {
    pub fn target(&self) -> Option<Target> {
        match (self.hours, self.business_days) {
            (Some(h), None) => Some(Target::Hours(h)),
            (None, Some(d)) => Some(Target::BusinessDays(d)),
            _ => None,
        }
    }

    /// How many of its fields name something: the more, the more specific.
    fn specificity(&self) -> usize {
        [&self.clinic, &self.centre, &self.kind, &self.priority]
            .iter()
            .filter(|f| f.is_some())
            .count()
    }

    fn matches(&self, clinic: &str, centre: &str, kind: &str, priority: &str) -> bool {
        let ok = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        ok(&self.clinic, clinic)
            && ok(&self.centre, centre)
            && ok(&self.kind, kind)
            && ok(&self.priority, priority)
    }
}

/// The target for a case: the most specific matching rule (the first of equals).
pub fn target_for(
    rules: &[TargetRule],
    clinic: &str,
    centre: &str,
    kind: &str,
    priority: &str,
) -> Option<Target> {
    let mut best: Option<&TargetRule> = None;
    for rule in rules
        .iter()
        .filter(|r| r.matches(clinic, centre, kind, priority))
    {
        if best.is_none_or(|b| rule.specificity() > b.specificity()) {
            best = Some(rule);
        }
    }
    best.and_then(TargetRule::target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    #[test]
    fn deadlines() {
        let start = at("2026-11-27T15:00:00Z"); // Friday 17:00 in Vilnius
        assert_eq!(Target::Hours(4).deadline(start), at("2026-11-27T19:00:00Z"));
        // The next business day is Monday 30 November; it ends at midnight Vilnius.
        assert_eq!(
            Target::BusinessDays(1).deadline(start),
            at("2026-11-30T22:00:00Z")
        );
        assert!(Target::BusinessDays(1).met(start, at("2026-11-30T21:59:59Z")));
        assert!(!Target::BusinessDays(1).met(start, at("2026-11-30T22:00:00Z")));
        // Before Christmas: Wednesday 23 December → Monday 28th.
        let start = at("2026-12-23T10:00:00Z");
        assert_eq!(
            Target::BusinessDays(1).deadline(start),
            at("2026-12-28T22:00:00Z")
        );
        // An end before its start never meets a target.
        assert!(!Target::Hours(4).met(start, start - 1));
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let rules: Vec<TargetRule> = toml::from_str::<toml::Table>(
            r#"
            rules = [
              { priority = "urgent", hours = 4 },
              { kind = "echo", priority = "routine", business_days = 1 },
              { kind = "holter", priority = "routine", business_days = 3 },
              { clinic = "far", kind = "holter", priority = "routine", business_days = 5 },
            ]"#,
        )
        .unwrap()["rules"]
            .clone()
            .try_into()
            .unwrap();
        let t = |clinic, kind, priority| target_for(&rules, clinic, "c", kind, priority);
        assert_eq!(t("near", "echo", "urgent"), Some(Target::Hours(4)));
        assert_eq!(t("near", "echo", "routine"), Some(Target::BusinessDays(1)));
        assert_eq!(
            t("near", "holter", "routine"),
            Some(Target::BusinessDays(3))
        );
        assert_eq!(t("far", "holter", "routine"), Some(Target::BusinessDays(5)));
        assert_eq!(t("near", "other", "routine"), None);
    }
}
