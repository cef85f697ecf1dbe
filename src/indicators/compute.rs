//! Computing the indicators of a period from the facts read out of the index: pure functions,
//! so what the platform receives is exactly what a test can recompute by other means.
//!
//! Every indicator is computed in total and per stratum: consulting centre, sending clinic,
//! kind and priority, one dimension at a time. A case whose clocks are impossible (a clock
//! before the one it follows, an examination in the future) is listed as a data-quality
//! exception with the reason and left out of every indicator that uses the clock in doubt, and
//! counted there as excluded; so is a cancelled case, everywhere.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::definitions::{Clock, Definition, Direction, Flag, Kind, Population};
use super::period::Period;
use super::stats::{median_p90, share};
use super::targets::{target_for, Target, TargetRule};

/// What the index knows of one case, as the indicators need it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFacts {
    pub case_id: String,
    pub clinic: String,
    pub centre: String,
    /// echo, holter or other.
    pub kind: String,
    /// routine or urgent.
    pub priority: String,
    /// The person's key (HMAC of the personal code); empty when the case names no code.
    pub person: String,
    pub cancelled: bool,
    /// T0 … T6 in microseconds since the epoch.
    pub clocks: BTreeMap<Clock, i64>,
    pub referral_late: bool,
    pub non_diagnostic: bool,
}

/// A signed report version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionFacts {
    pub case_id: String,
    pub signed_at: i64,
    pub amendment: bool,
}

/// A study received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudyFacts {
    pub clinic: String,
    pub received_at: i64,
    pub reconciled: bool,
}

/// A fixity run: when it ended, the objects it checked and how many did not match (missing
/// or altered).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckFacts {
    pub checked_at: i64,
    pub objects: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub cases: Vec<CaseFacts>,
    pub versions: Vec<VersionFacts>,
    pub studies: Vec<StudyFacts>,
    pub checks: Vec<CheckFacts>,
}

/// One dimension a value is cut by, or none (the total).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum Stratum {
    Total,
    Centre(String),
    Clinic(String),
    Kind(String),
    Priority(String),
}

/// One indicator in one stratum.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value {
    pub code: String,
    pub stratum: Stratum,
    /// The base (B) and the numerator (P); for continuous indicators B is the cases measured
    /// and P is empty; for the volume, P is the unique persons.
    pub b: u64,
    pub p: Option<u64>,
    pub score_pct: Option<f64>,
    /// Unique persons in the base, and those all of whose cases met the criterion.
    pub persons_b: u64,
    pub persons_p: Option<u64>,
    pub median_min: Option<f64>,
    pub p90_min: Option<f64>,
    /// The target as text (`98 %`, `end of next business day`), when there is one.
    pub target: Option<String>,
    pub target_met: Option<bool>,
    /// Left out: cancelled, or a clock it needs is in doubt.
    pub excluded: u64,
    /// The volume's persons by key, in total: what two institutions pool to count persons
    /// seen at both once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_keys: Option<Vec<String>>,
}

/// A case whose clocks cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exception {
    pub case_id: String,
    pub clinic: String,
    pub reason: String,
    /// The clocks in doubt.
    #[serde(skip)]
    pub clocks: Vec<Clock>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Computed {
    pub values: Vec<Value>,
    pub exceptions: Vec<Exception>,
}

/// The order clocks must keep; a later one before an earlier one is impossible.
const ORDER: [(Clock, Clock); 5] = [
    (Clock::Examined, Clock::Received),
    (Clock::Received, Clock::Ready),
    (Clock::Ready, Clock::Claimed),
    (Clock::Claimed, Clock::Signed),
    (Clock::Signed, Clock::Delivered),
];

/// The clocks of `c` in doubt, and why.
pub fn doubts(c: &CaseFacts, now: i64) -> Option<Exception> {
    let mut reasons = Vec::new();
    let mut clocks = Vec::new();
    if let Some(&t1) = c.clocks.get(&Clock::Examined) {
        if t1 > now {
            reasons.push("the examination time is in the future".to_owned());
            clocks.push(Clock::Examined);
        }
    }
    for (before, after) in ORDER {
        if let (Some(&a), Some(&b)) = (c.clocks.get(&before), c.clocks.get(&after)) {
            if b < a {
                reasons.push(format!(
                    "{} ({}) is before {} ({})",
                    name(after),
                    crate::index::rfc3339(b),
                    name(before),
                    crate::index::rfc3339(a)
                ));
                clocks.extend([before, after]);
            }
        }
    }
    (!reasons.is_empty()).then(|| Exception {
        case_id: c.case_id.clone(),
        clinic: c.clinic.clone(),
        reason: reasons.join("; "),
        clocks,
    })
}

fn name(clock: Clock) -> &'static str {
    match clock {
        Clock::Written => "T0 written",
        Clock::Examined => "T1 examined",
        Clock::Received => "T2 received",
        Clock::Ready => "T3 ready",
        Clock::Claimed => "T4 claimed",
        Clock::Signed => "T5 signed",
        Clock::Delivered => "T6 delivered",
    }
}

fn strata_of(c: &CaseFacts) -> [Stratum; 5] {
    [
        Stratum::Total,
        Stratum::Centre(c.centre.clone()),
        Stratum::Clinic(c.clinic.clone()),
        Stratum::Kind(c.kind.clone()),
        Stratum::Priority(c.priority.clone()),
    ]
}

/// The clocks an indicator reads.
fn clocks_of(d: &Definition) -> Vec<Clock> {
    let mut out: Vec<Clock> = d.base.by.into_iter().collect();
    if let Some(n) = &d.numerator {
        out.extend(n.from);
        out.extend(n.to);
    }
    if let Some((a, b)) = d.interval {
        out.extend([a, b]);
    }
    out
}

/// One stratum's members as they accumulate.
#[derive(Default)]
struct Tally {
    b: u64,
    p: u64,
    excluded: u64,
    /// Person → whether all of their cases met the criterion so far.
    persons: BTreeMap<String, bool>,
    minutes: Vec<f64>,
    targets: BTreeSet<String>,
    target_minutes: Option<f64>,
    mixed: bool,
}

impl Tally {
    fn person(&mut self, person: &str, met: bool) {
        if person.is_empty() {
            return;
        }
        let all = self.persons.entry(person.to_owned()).or_insert(true);
        *all &= met;
    }

    fn target(&mut self, t: Option<Target>) {
        match t {
            Some(t) => {
                self.targets.insert(t.text());
                match self.target_minutes {
                    None => self.target_minutes = Some(t.minutes()),
                    Some(m) if m != t.minutes() => self.mixed = true,
                    Some(_) => {}
                }
            }
            None => self.mixed = true,
        }
    }
}

/// Computes every definition over `facts` for `period`; `now` bounds the examination times.
pub fn compute(
    definitions: &[Definition],
    targets: &[TargetRule],
    facts: &Facts,
    period: &Period,
    now: i64,
) -> Computed {
    let exceptions: Vec<Exception> = facts
        .cases
        .iter()
        .filter(|c| !c.cancelled)
        .filter_map(|c| doubts(c, now))
        .collect();
    let doubted: BTreeMap<&str, &Exception> =
        exceptions.iter().map(|e| (e.case_id.as_str(), e)).collect();
    let cases: BTreeMap<&str, &CaseFacts> = facts
        .cases
        .iter()
        .map(|c| (c.case_id.as_str(), c))
        .collect();
    let mut values = Vec::new();
    for d in definitions {
        let mut tallies: BTreeMap<Stratum, Tally> = BTreeMap::new();
        tallies.entry(Stratum::Total).or_default();
        match d.base.of {
            Population::Cases => {
                for c in &facts.cases {
                    case_member(d, targets, c, period, &doubted, &mut tallies);
                }
            }
            Population::Reports => {
                for v in facts
                    .versions
                    .iter()
                    .filter(|v| period.contains(v.signed_at))
                {
                    let Some(c) = cases.get(v.case_id.as_str()) else {
                        continue;
                    };
                    let met = v.amendment;
                    for s in strata_of(c) {
                        let t = tallies.entry(s).or_default();
                        if c.cancelled {
                            t.excluded += 1;
                            continue;
                        }
                        t.b += 1;
                        t.p += u64::from(met);
                        t.person(&c.person, met);
                    }
                }
            }
            Population::Studies => {
                for s in facts
                    .studies
                    .iter()
                    .filter(|s| period.contains(s.received_at))
                {
                    for stratum in [Stratum::Total, Stratum::Clinic(s.clinic.clone())] {
                        let t = tallies.entry(stratum).or_default();
                        t.b += 1;
                        t.p += u64::from(s.reconciled);
                    }
                }
            }
            Population::FixityChecks => {
                let t = tallies.entry(Stratum::Total).or_default();
                for c in facts
                    .checks
                    .iter()
                    .filter(|c| period.contains(c.checked_at))
                {
                    t.b += c.objects;
                    t.p += c.objects.saturating_sub(c.failed);
                }
            }
        }
        for (stratum, t) in tallies {
            values.push(value(d, stratum, t));
        }
    }
    Computed { values, exceptions }
}

/// Adds case `c` to the tallies of `d` when its base clock falls in the period.
fn case_member(
    d: &Definition,
    targets: &[TargetRule],
    c: &CaseFacts,
    period: &Period,
    doubted: &BTreeMap<&str, &Exception>,
    tallies: &mut BTreeMap<Stratum, Tally>,
) {
    let Some(by) = d.base.by else { return };
    let Some(&at) = c.clocks.get(&by) else { return };
    if !period.contains(at) {
        return;
    }
    let in_doubt = doubted
        .get(c.case_id.as_str())
        .is_some_and(|e| clocks_of(d).iter().any(|k| e.clocks.contains(k)));
    let target = target_for(targets, &c.clinic, &c.centre, &c.kind, &c.priority);
    let clock = |k: Clock| c.clocks.get(&k).copied();
    for s in strata_of(c) {
        let t = tallies.entry(s).or_default();
        if c.cancelled || in_doubt {
            t.excluded += 1;
            continue;
        }
        match d.kind {
            Kind::Proportion => {
                let met = d.numerator.as_ref().is_some_and(|n| match n.flag {
                    Some(Flag::ReferralLate) => c.referral_late,
                    Some(Flag::NonDiagnostic) => c.non_diagnostic,
                    // Flags of other populations say nothing about a case.
                    Some(_) => false,
                    None => match (n.from.and_then(clock), n.to.and_then(clock)) {
                        (Some(a), Some(b)) => match n.within_hours {
                            Some(h) => Target::Hours(h).met(a, b),
                            None => target.is_some_and(|t| t.met(a, b)),
                        },
                        _ => false,
                    },
                });
                if n_within_contract(d) {
                    t.target(target);
                }
                t.b += 1;
                t.p += u64::from(met);
                t.person(&c.person, met);
            }
            Kind::Continuous => {
                let Some((from, to)) = d.interval else {
                    continue;
                };
                let (Some(a), Some(b)) = (clock(from), clock(to)) else {
                    t.excluded += 1;
                    continue;
                };
                if d.target_contract {
                    t.target(target);
                }
                t.b += 1;
                t.minutes.push((b - a) as f64 / 60_000_000.0);
                t.person(&c.person, true);
            }
            Kind::Count => {
                t.b += 1;
                t.person(&c.person, true);
            }
        }
    }
}

fn n_within_contract(d: &Definition) -> bool {
    d.numerator.as_ref().is_some_and(|n| n.within_contract)
}

fn value(d: &Definition, stratum: Stratum, mut t: Tally) -> Value {
    let persons_b = t.persons.len() as u64;
    let persons_met = t.persons.values().filter(|all| **all).count() as u64;
    let mut v = Value {
        code: d.code.clone(),
        stratum,
        b: t.b,
        p: None,
        score_pct: None,
        persons_b,
        persons_p: None,
        median_min: None,
        p90_min: None,
        target: None,
        target_met: None,
        excluded: t.excluded,
        person_keys: None,
    };
    match d.kind {
        Kind::Proportion => {
            v.p = Some(t.p);
            v.persons_p = Some(persons_met);
            v.score_pct = share(t.p, t.b);
            if let Some(target) = d.target_pct {
                v.target = Some(format!("{target} %"));
                v.target_met = v.score_pct.and_then(|s| match d.direction {
                    Direction::Up => Some(s >= target),
                    Direction::Down => Some(s < target),
                    Direction::Monitored => None,
                });
            } else if n_within_contract(d) && !t.targets.is_empty() {
                v.target = Some(t.targets.iter().cloned().collect::<Vec<_>>().join(" / "));
            }
        }
        Kind::Continuous => {
            if let Some((median, p90)) = median_p90(&mut t.minutes) {
                v.median_min = Some(round2(median));
                v.p90_min = Some(round2(p90));
            }
            if d.target_contract && !t.targets.is_empty() {
                v.target = Some(t.targets.iter().cloned().collect::<Vec<_>>().join(" / "));
                // One target for the whole stratum: its median can be held against it.
                if !t.mixed {
                    v.target_met = t
                        .target_minutes
                        .zip(v.median_min)
                        .map(|(target, median)| median <= target);
                }
            }
        }
        Kind::Count => {
            v.p = Some(persons_b);
            if v.stratum == Stratum::Total {
                v.person_keys = Some(t.persons.keys().cloned().collect());
            }
        }
    }
    v
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::definitions::{Definitions, SHIPPED};

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    fn case(id: &str, person: &str, priority: &str, clocks: &[(Clock, &str)]) -> CaseFacts {
        CaseFacts {
            case_id: id.into(),
            clinic: "a".into(),
            centre: "c".into(),
            kind: "echo".into(),
            priority: priority.into(),
            person: person.into(),
            clocks: clocks.iter().map(|(k, t)| (*k, at(t))).collect(),
            ..CaseFacts::default()
        }
    }

    fn total<'a>(c: &'a Computed, code: &str) -> &'a Value {
        c.values
            .iter()
            .find(|v| v.code == code && v.stratum == Stratum::Total)
            .unwrap()
    }

    #[test]
    fn reading_on_time_and_turnaround() {
        let d = Definitions::parse(SHIPPED).unwrap();
        let period = Period::parse("2026-11").unwrap();
        let facts = Facts {
            cases: vec![
                // Ready Friday 10:00 Vilnius, signed Monday 12:00: by the end of the next
                // business day.
                case(
                    "1",
                    "p1",
                    "routine",
                    &[
                        (Clock::Ready, "2026-11-27T08:00:00Z"),
                        (Clock::Signed, "2026-11-30T10:00:00Z"),
                        (Clock::Delivered, "2026-11-30T11:00:00Z"),
                    ],
                ),
                // Urgent, signed after 5 hours: late.
                case(
                    "2",
                    "p1",
                    "urgent",
                    &[
                        (Clock::Ready, "2026-11-10T08:00:00Z"),
                        (Clock::Signed, "2026-11-10T13:00:00Z"),
                    ],
                ),
                // Delivered before it was signed: an exception, out of TC-02 and TC-01.
                case(
                    "3",
                    "p2",
                    "routine",
                    &[
                        (Clock::Ready, "2026-11-10T08:00:00Z"),
                        (Clock::Signed, "2026-11-10T09:00:00Z"),
                        (Clock::Delivered, "2026-11-10T08:30:00Z"),
                    ],
                ),
                CaseFacts {
                    cancelled: true,
                    ..case(
                        "4",
                        "p3",
                        "routine",
                        &[(Clock::Ready, "2026-11-11T08:00:00Z")],
                    )
                },
            ],
            ..Facts::default()
        };
        let c = compute(
            &d.indicators,
            &d.targets,
            &facts,
            &period,
            at("2026-12-01T00:00:00Z"),
        );
        assert_eq!(c.exceptions.len(), 1);
        assert!(
            c.exceptions[0].reason.contains("T6 delivered"),
            "{:?}",
            c.exceptions
        );
        let tc01 = total(&c, "TC-01");
        assert_eq!((tc01.b, tc01.p, tc01.excluded), (2, Some(1), 2));
        assert_eq!(tc01.score_pct, Some(50.0));
        // Person p1 had a late case: not all of their cases met it.
        assert_eq!((tc01.persons_b, tc01.persons_p), (1, Some(0)));
        let tc02 = total(&c, "TC-02");
        assert_eq!((tc02.b, tc02.p, tc02.excluded), (2, Some(1), 1));
        assert_eq!(tc02.target_met, Some(false));
        let t1 = total(&c, "TC-T1");
        assert_eq!(t1.b, 2);
        // 300 minutes and 4,440 (Friday 10:00 to Monday 12:00).
        assert_eq!(t1.median_min, Some(2370.0));
        assert_eq!(t1.p90_min, Some(4440.0));
        assert_eq!(t1.target_met, None, "routine and urgent mixed");
        let urgent = c
            .values
            .iter()
            .find(|v| v.code == "TC-T1" && v.stratum == Stratum::Priority("urgent".into()))
            .unwrap();
        assert_eq!(urgent.target_met, Some(false));
        let volume = total(&c, "TC-V1");
        assert_eq!((volume.b, volume.p), (2, Some(1)));
    }
}
