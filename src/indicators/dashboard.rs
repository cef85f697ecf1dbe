//! What the indicators dashboard draws for one calendar year: the year's values, the same
//! month by month, turnaround per kind and priority (where one contract target holds, so a
//! median can be held against it) and volumes per clinic and kind. Every number comes from
//! [`compute`] over the facts read once for the year, so the dashboard never says something
//! the exported report does not.
//!
//! Which indicator goes on which chart follows its definition, not its code: turnaround is a
//! continuous indicator with a contract target, shares within target are proportions that
//! should go up, volume is the count; an indicator added to the definitions appears by itself.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::compute::{compute, CaseFacts, Exception, Facts, Stratum, Value};
use super::definitions::{Definition, Direction, Kind};
use super::period::Period;
use super::report::Indicators;
use super::targets::{target_for, Target};
use super::IndicatorError;
use crate::index::now_micros;

/// A year on the dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub year: i16,
    /// The months shown: the whole year, or up to this month for the current one.
    pub months: Vec<Period>,
    pub definitions: Vec<Definition>,
    /// Every indicator over the year, in total and per stratum.
    pub year_values: Vec<Value>,
    /// Per month (as [`Dashboard::months`]): every indicator in total and per kind.
    pub monthly: Vec<Vec<Value>>,
    /// Turnaround per kind × priority, month by month.
    pub groups: Vec<Group>,
    /// Cases signed in the year per sending clinic, by kind.
    pub clinics: Vec<ClinicVolume>,
    pub exceptions: Vec<Exception>,
}

/// Cases of one kind and priority: what one contract target is usually set for.
#[derive(Debug, Clone)]
pub struct Group {
    pub kind: String,
    pub priority: String,
    /// The target when every case of the group has the same one; contracts that differ
    /// between clinics leave it empty.
    pub target: Option<Target>,
    /// Per turnaround indicator (code), per month: the group's value, if any case was measured.
    pub series: Vec<(String, Vec<Option<Value>>)>,
}

#[derive(Debug, Clone)]
pub struct ClinicVolume {
    pub clinic: String,
    /// Cases signed, by kind (echo, holter, …).
    pub by_kind: BTreeMap<String, u64>,
    pub cases: u64,
    /// Unique persons with a signed case.
    pub persons: u64,
}

impl Dashboard {
    pub fn definition(&self, code: &str) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.code == code)
    }

    /// The turnaround indicators: continuous, held against the contract.
    pub fn turnaround(&self) -> Vec<&Definition> {
        self.definitions
            .iter()
            .filter(|d| is_turnaround(d))
            .collect()
    }

    /// The shares that should reach their target: proportions that go up.
    pub fn shares(&self) -> Vec<&Definition> {
        self.definitions
            .iter()
            .filter(|d| d.kind == Kind::Proportion && d.direction == Direction::Up)
            .collect()
    }

    /// The rates that should stay low or are watched: the other proportions.
    pub fn rates(&self) -> Vec<&Definition> {
        self.definitions
            .iter()
            .filter(|d| d.kind == Kind::Proportion && d.direction != Direction::Up)
            .collect()
    }

    /// The volume indicator: the count.
    pub fn volume(&self) -> Option<&Definition> {
        self.definitions.iter().find(|d| d.kind == Kind::Count)
    }

    /// The year's value of `code` in `stratum`.
    pub fn of_year(&self, code: &str, stratum: &Stratum) -> Option<&Value> {
        find(&self.year_values, code, stratum)
    }

    /// The value of `code` in `stratum` for each month shown.
    pub fn by_month(&self, code: &str, stratum: &Stratum) -> Vec<Option<&Value>> {
        self.monthly
            .iter()
            .map(|values| find(values, code, stratum))
            .collect()
    }

    /// The kinds that appear in any month, in order.
    pub fn kinds(&self) -> Vec<String> {
        let kinds: BTreeSet<String> = self
            .monthly
            .iter()
            .flatten()
            .filter_map(|v| match &v.stratum {
                Stratum::Kind(k) => Some(k.clone()),
                _ => None,
            })
            .chain(self.clinics.iter().flat_map(|c| c.by_kind.keys().cloned()))
            .collect();
        kinds.into_iter().collect()
    }
}

fn find<'a>(values: &'a [Value], code: &str, stratum: &Stratum) -> Option<&'a Value> {
    values
        .iter()
        .find(|v| v.code == code && &v.stratum == stratum)
}

fn is_turnaround(d: &Definition) -> bool {
    d.kind == Kind::Continuous && d.target_contract
}

impl Indicators {
    /// The dashboard of `year` as the index stands now.
    pub async fn dashboard(&self, year: i16) -> Result<Dashboard, IndicatorError> {
        let period = Period::parse(&format!("{year:04}"))?;
        let now = now_micros();
        let facts = self.facts(&period).await?;
        Ok(assemble(
            &self.definitions().indicators,
            &self.definitions().targets,
            &facts,
            &period,
            now,
        ))
    }
}

/// The dashboard of `year` from its facts: pure, like [`compute`].
pub fn assemble(
    definitions: &[Definition],
    targets: &[super::targets::TargetRule],
    facts: &Facts,
    year: &Period,
    now: i64,
) -> Dashboard {
    let whole = compute(definitions, targets, facts, year, now);
    let months: Vec<Period> = year
        .months()
        .into_iter()
        .filter(|m| m.start <= now)
        .collect();
    let turnaround: Vec<Definition> = definitions
        .iter()
        .filter(|d| is_turnaround(d))
        .cloned()
        .collect();
    // Each group's target, when all its cases share one.
    let mut group_targets: BTreeMap<(String, String), BTreeSet<Option<Target>>> = BTreeMap::new();
    for c in &facts.cases {
        group_targets
            .entry((c.kind.clone(), c.priority.clone()))
            .or_default()
            .insert(target_for(
                targets,
                &c.clinic,
                &c.centre,
                &c.kind,
                &c.priority,
            ));
    }
    let mut series: BTreeMap<(String, String), Vec<Vec<Option<Value>>>> = BTreeMap::new();
    let mut monthly = Vec::with_capacity(months.len());
    for (i, m) in months.iter().enumerate() {
        // A month computed from only what can count in it costs a twelfth of the year.
        let own = within(facts, m);
        let mut values = compute(definitions, targets, &own, m, now).values;
        values.retain(|v| matches!(v.stratum, Stratum::Total | Stratum::Kind(_)));
        monthly.push(values);
        for (group, cases) in split(&own.cases, |c| (c.kind.clone(), c.priority.clone())) {
            let own = Facts {
                cases,
                ..Facts::default()
            };
            let values = compute(&turnaround, targets, &own, m, now).values;
            let per_code = series
                .entry(group)
                .or_insert_with(|| vec![vec![None; months.len()]; turnaround.len()]);
            for (d, per_month) in turnaround.iter().zip(per_code.iter_mut()) {
                per_month[i] = values
                    .iter()
                    .find(|v| v.code == d.code && v.stratum == Stratum::Total && v.b > 0)
                    .cloned();
            }
        }
    }
    let groups = group_targets
        .into_iter()
        .map(|((kind, priority), set)| {
            let target = match set.len() {
                1 => set.into_iter().next().flatten(),
                _ => None,
            };
            let per_code = series
                .remove(&(kind.clone(), priority.clone()))
                .unwrap_or_else(|| vec![vec![None; months.len()]; turnaround.len()]);
            Group {
                series: turnaround
                    .iter()
                    .map(|d| d.code.clone())
                    .zip(per_code)
                    .collect(),
                kind,
                priority,
                target,
            }
        })
        .collect();
    let clinics = match definitions.iter().find(|d| d.kind == Kind::Count) {
        Some(volume) => split(&facts.cases, |c| c.clinic.clone())
            .into_iter()
            .filter_map(|(clinic, cases)| {
                let own = Facts {
                    cases,
                    ..Facts::default()
                };
                let values = compute(std::slice::from_ref(volume), targets, &own, year, now).values;
                let total = values.iter().find(|v| v.stratum == Stratum::Total)?;
                let by_kind = values
                    .iter()
                    .filter_map(|v| match &v.stratum {
                        Stratum::Kind(k) if v.b > 0 => Some((k.clone(), v.b)),
                        _ => None,
                    })
                    .collect();
                Some(ClinicVolume {
                    clinic,
                    by_kind,
                    cases: total.b,
                    persons: total.p.unwrap_or(0),
                })
            })
            .filter(|c| c.cases > 0)
            .collect(),
        None => Vec::new(),
    };
    Dashboard {
        year: year.year(),
        months,
        definitions: definitions.to_vec(),
        year_values: whole.values,
        monthly,
        groups,
        clinics,
        exceptions: whole.exceptions,
    }
}

/// What can count in `period`: the cases with a clock in it or a report version signed in it,
/// and the versions, studies and fixity checks that fall in it. [`compute`] gives the same
/// values for the period from these as from the whole year.
fn within(facts: &Facts, period: &Period) -> Facts {
    let versions: Vec<_> = facts
        .versions
        .iter()
        .filter(|v| period.contains(v.signed_at))
        .cloned()
        .collect();
    let signed: HashSet<&str> = versions.iter().map(|v| v.case_id.as_str()).collect();
    Facts {
        cases: facts
            .cases
            .iter()
            .filter(|c| {
                c.clocks.values().any(|t| period.contains(*t))
                    || signed.contains(c.case_id.as_str())
            })
            .cloned()
            .collect(),
        studies: facts
            .studies
            .iter()
            .filter(|s| period.contains(s.received_at))
            .cloned()
            .collect(),
        checks: facts
            .checks
            .iter()
            .filter(|c| period.contains(c.checked_at))
            .cloned()
            .collect(),
        versions,
    }
}

/// The cases grouped by `key`, in key order.
fn split<K: Ord>(
    cases: &[CaseFacts],
    key: impl Fn(&CaseFacts) -> K,
) -> BTreeMap<K, Vec<CaseFacts>> {
    let mut out: BTreeMap<K, Vec<CaseFacts>> = BTreeMap::new();
    for c in cases {
        out.entry(key(c)).or_default().push(c.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::compute::{StudyFacts, VersionFacts};
    use crate::indicators::definitions::{Clock, Definitions, SHIPPED};

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    fn case(
        id: &str,
        clinic: &str,
        kind: &str,
        priority: &str,
        ready: &str,
        hours: i64,
    ) -> CaseFacts {
        let t3 = at(ready);
        let mut clocks = BTreeMap::new();
        clocks.insert(Clock::Examined, t3 - 3_600_000_000);
        clocks.insert(Clock::Received, t3 - 1_800_000_000);
        clocks.insert(Clock::Ready, t3);
        clocks.insert(Clock::Signed, t3 + hours * 3_600_000_000);
        clocks.insert(Clock::Delivered, t3 + hours * 3_600_000_000 + 60_000_000);
        CaseFacts {
            case_id: id.into(),
            clinic: clinic.into(),
            centre: "centre".into(),
            kind: kind.into(),
            priority: priority.into(),
            person: format!("person-{id}"),
            clocks,
            ..CaseFacts::default()
        }
    }

    #[test]
    fn months_groups_and_clinics_follow_the_facts() {
        let d = Definitions::parse(SHIPPED).unwrap();
        let facts = Facts {
            cases: vec![
                case("a", "north", "echo", "urgent", "2026-01-10T08:00:00Z", 2),
                case("b", "north", "echo", "urgent", "2026-01-20T08:00:00Z", 6),
                case("c", "south", "echo", "urgent", "2026-03-03T08:00:00Z", 3),
                case(
                    "d",
                    "south",
                    "holter",
                    "routine",
                    "2026-03-04T08:00:00Z",
                    30,
                ),
            ],
            // Case a, signed in January, amended in March: March's amendments count it by
            // its kind although none of its clocks is in March.
            versions: vec![
                VersionFacts {
                    case_id: "a".into(),
                    signed_at: at("2026-01-10T10:00:00Z"),
                    amendment: false,
                },
                VersionFacts {
                    case_id: "a".into(),
                    signed_at: at("2026-03-10T10:00:00Z"),
                    amendment: true,
                },
            ],
            studies: vec![StudyFacts {
                clinic: "north".into(),
                received_at: at("2026-02-01T10:00:00Z"),
                reconciled: true,
            }],
            checks: Vec::new(),
        };
        let year = Period::parse("2026").unwrap();
        let board = assemble(
            &d.indicators,
            &d.targets,
            &facts,
            &year,
            at("2026-04-15T00:00:00Z"),
        );
        // The current year: January to April only.
        assert_eq!(board.months.len(), 4);
        let urgent = board
            .groups
            .iter()
            .find(|g| g.kind == "echo" && g.priority == "urgent")
            .unwrap();
        assert_eq!(urgent.target, Some(Target::Hours(4)));
        let reading = &urgent.series.iter().find(|s| s.0 == "TC-T1").unwrap().1;
        // January: 2 h and 6 h, median 4 h; February: nobody; March: 3 h.
        assert_eq!(reading[0].as_ref().unwrap().median_min, Some(240.0));
        assert!(reading[1].is_none());
        assert_eq!(reading[2].as_ref().unwrap().median_min, Some(180.0));
        let south = board.clinics.iter().find(|c| c.clinic == "south").unwrap();
        assert_eq!(south.cases, 2);
        assert_eq!(south.persons, 2);
        assert_eq!(south.by_kind.get("holter"), Some(&1));
        let volume = board.volume().unwrap().code.clone();
        let march = board.by_month(&volume, &Stratum::Total);
        assert_eq!(march[2].unwrap().b, 2);
        assert_eq!(board.kinds(), vec!["echo".to_owned(), "holter".to_owned()]);
        // A month from its own facts says what the month computed from the whole year says.
        for (m, values) in board.months.iter().zip(&board.monthly) {
            let mut full = compute(
                &d.indicators,
                &d.targets,
                &facts,
                m,
                at("2026-04-15T00:00:00Z"),
            )
            .values;
            full.retain(|v| matches!(v.stratum, Stratum::Total | Stratum::Kind(_)));
            assert_eq!(&full, values, "{}", m.name);
        }
        let amended = board.by_month("TC-06", &Stratum::Kind("echo".into()));
        assert_eq!(amended[2].map(|v| (v.b, v.p)), Some((1, Some(1))));
        assert_eq!(
            board
                .turnaround()
                .iter()
                .map(|d| d.code.as_str())
                .collect::<Vec<_>>(),
            ["TC-T1", "TC-T2"]
        );
    }
}
