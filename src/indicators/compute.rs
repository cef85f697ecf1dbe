//! Computing the indicators of a period from the facts read out of the index: pure functions,
//! so what the platform receives is exactly what a test can recompute by other means.
//!
//! Every indicator is computed in total and per stratum: consulting centre, sending clinic,
//! kind and priority, one dimension at a time. A case whose clocks are impossible (a clock
//! before the one it follows, an examination in the future) is listed as a data-quality
//! exception with the reason and left out of every indicator that uses the clock in doubt, and
//! counted there as excluded; so is a cancelled case, everywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

/// The clocks an indicator reads, as a bit set over [`Clock`]'s order.
fn clocks_of(d: &Definition) -> u8 {
    let mut out: Vec<Clock> = d.base.by.into_iter().collect();
    if let Some(n) = &d.numerator {
        out.extend(n.from);
        out.extend(n.to);
    }
    if let Some((a, b)) = d.interval {
        out.extend([a, b]);
    }
    out.iter().fold(0, |bits, k| bits | bit(*k))
}

fn bit(k: Clock) -> u8 {
    1 << (k as u8)
}

/// One stratum's members as they accumulate.
#[derive(Default)]
struct Tally {
    b: u64,
    p: u64,
    excluded: u64,
    /// Person (interned) → whether all of their cases met the criterion so far.
    persons: HashMap<u32, bool>,
    minutes: Vec<f64>,
    targets: BTreeSet<Target>,
    target_minutes: Option<f64>,
    mixed: bool,
}

impl Tally {
    fn person(&mut self, person: Option<u32>, met: bool) {
        if let Some(person) = person {
            let all = self.persons.entry(person).or_insert(true);
            *all &= met;
        }
    }

    fn target(&mut self, t: Option<Target>) {
        match t {
            Some(t) => {
                self.targets.insert(t);
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

/// A case made ready for counting: its strata and person interned, its clocks by position,
/// its doubted clocks as bits, its contract target looked up once.
struct Prepared<'a> {
    case: &'a CaseFacts,
    strata: [usize; 5],
    person: Option<u32>,
    clocks: [Option<i64>; 7],
    doubted: u8,
    target: Option<Target>,
}

/// Strata and persons by number, so that counting compares integers, not strings.
#[derive(Default)]
struct Interned {
    strata: Vec<Stratum>,
    stratum_index: HashMap<Stratum, usize>,
    persons: Vec<String>,
    person_index: HashMap<String, u32>,
}

impl Interned {
    fn stratum(&mut self, s: Stratum) -> usize {
        if let Some(&i) = self.stratum_index.get(&s) {
            return i;
        }
        self.strata.push(s.clone());
        self.stratum_index.insert(s, self.strata.len() - 1);
        self.strata.len() - 1
    }

    fn person(&mut self, key: &str) -> Option<u32> {
        if key.is_empty() {
            return None;
        }
        if let Some(&i) = self.person_index.get(key) {
            return Some(i);
        }
        let i = u32::try_from(self.persons.len()).ok()?;
        self.persons.push(key.to_owned());
        self.person_index.insert(key.to_owned(), i);
        Some(i)
    }
}

/// Tallies by interned stratum; a stratum appears once a member (counted or excluded) is in it.
struct Tallies(Vec<Option<Tally>>);

impl Tallies {
    fn new(strata: usize) -> Tallies {
        let mut all: Vec<Option<Tally>> = (0..strata).map(|_| None).collect();
        if let Some(total) = all.first_mut() {
            *total = Some(Tally::default());
        }
        Tallies(all)
    }

    fn at(&mut self, i: usize) -> &mut Tally {
        self.0[i].get_or_insert_with(Tally::default)
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
    let doubted: HashMap<&str, &Exception> =
        exceptions.iter().map(|e| (e.case_id.as_str(), e)).collect();
    let mut interned = Interned::default();
    let total = interned.stratum(Stratum::Total);
    let prepared: Vec<Prepared> = facts
        .cases
        .iter()
        .map(|c| {
            let mut clocks = [None; 7];
            for (k, v) in &c.clocks {
                clocks[*k as usize] = Some(*v);
            }
            Prepared {
                case: c,
                strata: [
                    total,
                    interned.stratum(Stratum::Centre(c.centre.clone())),
                    interned.stratum(Stratum::Clinic(c.clinic.clone())),
                    interned.stratum(Stratum::Kind(c.kind.clone())),
                    interned.stratum(Stratum::Priority(c.priority.clone())),
                ],
                person: interned.person(&c.person),
                clocks,
                doubted: doubted
                    .get(c.case_id.as_str())
                    .map_or(0, |e| e.clocks.iter().fold(0, |bits, k| bits | bit(*k))),
                target: target_for(targets, &c.clinic, &c.centre, &c.kind, &c.priority),
            }
        })
        .collect();
    let by_id: HashMap<&str, usize> = prepared
        .iter()
        .enumerate()
        .map(|(i, p)| (p.case.case_id.as_str(), i))
        .collect();
    let clinic_strata: Vec<usize> = facts
        .studies
        .iter()
        .map(|s| interned.stratum(Stratum::Clinic(s.clinic.clone())))
        .collect();
    let mut values = Vec::new();
    for d in definitions {
        let mut tallies = Tallies::new(interned.strata.len());
        match d.base.of {
            Population::Cases => {
                let used = clocks_of(d);
                for c in &prepared {
                    case_member(d, c, used, period, &mut tallies);
                }
            }
            Population::Reports => {
                for v in facts
                    .versions
                    .iter()
                    .filter(|v| period.contains(v.signed_at))
                {
                    let Some(&i) = by_id.get(v.case_id.as_str()) else {
                        continue;
                    };
                    let c = &prepared[i];
                    let met = v.amendment;
                    for s in c.strata {
                        let t = tallies.at(s);
                        if c.case.cancelled {
                            t.excluded += 1;
                            continue;
                        }
                        t.b += 1;
                        t.p += u64::from(met);
                        t.person(c.person, met);
                    }
                }
            }
            Population::Studies => {
                for (s, clinic) in facts.studies.iter().zip(&clinic_strata) {
                    if !period.contains(s.received_at) {
                        continue;
                    }
                    for stratum in [total, *clinic] {
                        let t = tallies.at(stratum);
                        t.b += 1;
                        t.p += u64::from(s.reconciled);
                    }
                }
            }
            Population::FixityChecks => {
                let t = tallies.at(total);
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
        let mut counted: Vec<(Stratum, Tally)> = tallies
            .0
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (interned.strata[i].clone(), t)))
            .collect();
        counted.sort_by(|a, b| a.0.cmp(&b.0));
        for (stratum, t) in counted {
            values.push(value(d, stratum, t, &interned.persons));
        }
    }
    Computed { values, exceptions }
}

/// Adds case `c` to the tallies of `d` when its base clock falls in the period.
fn case_member(d: &Definition, c: &Prepared, used: u8, period: &Period, tallies: &mut Tallies) {
    let Some(by) = d.base.by else { return };
    let Some(at) = c.clocks[by as usize] else {
        return;
    };
    if !period.contains(at) {
        return;
    }
    let in_doubt = c.doubted & used != 0;
    let clock = |k: Clock| c.clocks[k as usize];
    let target = c.target;
    // Whether the case meets the numerator, decided once for all its strata.
    let met = d.kind == Kind::Proportion
        && d.numerator.as_ref().is_some_and(|n| match n.flag {
            Some(Flag::ReferralLate) => c.case.referral_late,
            Some(Flag::NonDiagnostic) => c.case.non_diagnostic,
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
    let interval = d
        .interval
        .and_then(|(from, to)| Some((clock(from)?, clock(to)?)));
    for s in c.strata {
        let t = tallies.at(s);
        if c.case.cancelled || in_doubt {
            t.excluded += 1;
            continue;
        }
        match d.kind {
            Kind::Proportion => {
                if n_within_contract(d) {
                    t.target(target);
                }
                t.b += 1;
                t.p += u64::from(met);
                t.person(c.person, met);
            }
            Kind::Continuous => {
                let Some((a, b)) = interval else {
                    t.excluded += 1;
                    continue;
                };
                if d.target_contract {
                    t.target(target);
                }
                t.b += 1;
                t.minutes.push((b - a) as f64 / 60_000_000.0);
                t.person(c.person, true);
            }
            Kind::Count => {
                t.b += 1;
                t.person(c.person, true);
            }
        }
    }
}

fn n_within_contract(d: &Definition) -> bool {
    d.numerator.as_ref().is_some_and(|n| n.within_contract)
}

fn value(d: &Definition, stratum: Stratum, mut t: Tally, persons: &[String]) -> Value {
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
                v.target = Some(texts(&t.targets));
            }
        }
        Kind::Continuous => {
            if let Some((median, p90)) = median_p90(&mut t.minutes) {
                v.median_min = Some(round2(median));
                v.p90_min = Some(round2(p90));
            }
            if d.target_contract && !t.targets.is_empty() {
                v.target = Some(texts(&t.targets));
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
                let mut keys: Vec<String> = t
                    .persons
                    .keys()
                    .map(|&i| persons[i as usize].clone())
                    .collect();
                keys.sort();
                v.person_keys = Some(keys);
            }
        }
    }
    v
}

/// The targets met in a stratum, as they read, in one line.
fn texts(targets: &BTreeSet<Target>) -> String {
    let texts: BTreeSet<String> = targets.iter().map(|t| t.text()).collect();
    texts.into_iter().collect::<Vec<_>>().join(" / ")
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
