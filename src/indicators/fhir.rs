//! The report as FHIR R4: one `Measure` per indicator and, for each consulting centre, one
//! summary `MeasureReport` per indicator with the centre as reporter and stratifiers for the
//! sending clinic, the kind and the priority, all in one collection `Bundle`.
//!
//! Proportions carry the populations initial-population, denominator, denominator-exclusion
//! (cancelled cases and clocks in doubt) and numerator, with `measureScore` in %. Turnarounds
//! are continuous-variable: the first group's score is the median in minutes (the
//! `cqfm-aggregateMethod` extension says so), the second group's the 90th percentile. The
//! volume is a cohort: cases signed, then unique persons.

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use super::compute::{Stratum, Value};
use super::definitions::{Clock, Definition, Direction, Flag, Kind, Population};
use super::report::{CentreReport, Report};

const POPULATION: &str = "http://terminology.hl7.org/CodeSystem/measure-population";
const SCORING: &str = "http://terminology.hl7.org/CodeSystem/measure-scoring";
const IMPROVEMENT: &str = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation";
const AGGREGATE: &str =
    "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-aggregateMethod";
const UCUM: &str = "http://unitsofmeasure.org";
/// Our own names: indicator codes, their groups, the strata's dimensions and the target.
const INDICATORS: &str = "urn:lt:telecardio:indicator";
const DIMENSIONS: &str = "urn:lt:telecardio:stratifier";
const PERCENTILE: &str = "urn:lt:telecardio:fhir:percentile";
const TARGET: &str = "urn:lt:telecardio:fhir:target";
const TARGET_MET: &str = "urn:lt:telecardio:fhir:target-met";
const EXCLUDED: &str = "urn:lt:telecardio:fhir:excluded";

/// The canonical URL of an indicator's Measure.
pub fn measure_url(code: &str) -> String {
    format!("urn:lt:telecardio:measure:{code}")
}

/// The `Measure` of one definition.
pub fn measure(d: &Definition, version: &str) -> Json {
    let criteria = |text: String| json!({"language": "text/plain", "expression": text});
    let population = |code: &str, text: String| json!({"code": concept(POPULATION, code), "criteria": criteria(text)});
    let base = base_text(d);
    let groups = match d.kind {
        Kind::Proportion => vec![json!({
            "population": [
                population("initial-population", base.clone()),
                population("denominator", base),
                population("denominator-exclusion", "cancelled cases and cases whose clocks are in doubt".into()),
                population("numerator", numerator_text(d)),
            ],
            "stratifier": stratifiers(),
        })],
        Kind::Continuous => ["median", "p90"]
            .iter()
            .map(|which| {
                let (from, to) = d.interval.map_or(("", ""), |(a, b)| (word(a), word(b)));
                json!({
                    "code": concept(INDICATORS, &format!("{}-{which}", d.code)),
                    "extension": [aggregate(which)],
                    "population": [
                        population("initial-population", base.clone()),
                        population("measure-population", base.clone()),
                        population("measure-population-exclusion", "cancelled cases and cases whose clocks are in doubt".into()),
                        population("measure-observation", format!("minutes from {from} to {to}")),
                    ],
                    "stratifier": stratifiers(),
                })
            })
            .collect(),
        Kind::Count => ["cases", "persons"]
            .iter()
            .map(|which| {
                json!({
                    "code": concept(INDICATORS, &format!("{}-{which}", d.code)),
                    "population": [population("initial-population", format!("{which} with a report signed in the period"))],
                    "stratifier": stratifiers(),
                })
            })
            .collect(),
    };
    let mut m = json!({
        "resourceType": "Measure",
        "id": d.code,
        "url": measure_url(&d.code),
        "identifier": [{"system": INDICATORS, "value": d.code}],
        "version": version,
        "name": d.code.replace('-', ""),
        "title": d.name_en,
        "status": "active",
        "description": format!("{} / {}", d.name_lt, d.name_en),
        "scoring": concept(SCORING, match d.kind {
            Kind::Proportion => "proportion",
            Kind::Continuous => "continuous-variable",
            Kind::Count => "cohort",
        }),
        "group": groups,
    });
    if let Some(notation) = improvement(d.direction) {
        m["improvementNotation"] = notation;
    }
    m
}

/// One centre's `MeasureReport` of one indicator.
pub fn measure_report(
    report: &Report,
    d: &Definition,
    centre: &CentreReport,
    institutions: &str,
    version: &str,
) -> Json {
    let values: Vec<&Value> = centre.values.iter().filter(|v| v.code == d.code).collect();
    let total = values.iter().find(|v| v.stratum == Stratum::Total);
    let groups: Vec<Json> = match d.kind {
        Kind::Proportion => vec![group(d, None, total.copied(), &values, Which::Share)],
        Kind::Continuous => vec![
            group(d, Some("median"), total.copied(), &values, Which::Median),
            group(d, Some("p90"), total.copied(), &values, Which::P90),
        ],
        Kind::Count => vec![
            group(d, Some("cases"), total.copied(), &values, Which::Cases),
            group(d, Some("persons"), total.copied(), &values, Which::Persons),
        ],
    };
    let mut r = json!({
        "resourceType": "MeasureReport",
        "id": format!("mr-{}", &hash(&[&d.code, &centre.centre, &report.period.name])[..24]),
        "status": "complete",
        "type": "summary",
        "measure": format!("{}|{version}", measure_url(&d.code)),
        "date": report.generated_at,
        "reporter": {
            "identifier": {"system": institutions, "value": centre.centre},
            "display": centre.name,
        },
        "period": {
            "start": vilnius(report.period.start),
            "end": vilnius(report.period.end - 1_000_000),
        },
        "group": groups,
    });
    if let Some(notation) = improvement(d.direction) {
        r["improvementNotation"] = notation;
    }
    r
}

/// The whole report as a collection: every Measure, then every centre's MeasureReports.
pub fn bundle(report: &Report, institutions: &str, version: &str) -> Json {
    let mut entries = Vec::new();
    for d in &report.definitions {
        entries.push(measure(d, version));
    }
    for centre in &report.centres {
        for d in &report.definitions {
            entries.push(measure_report(report, d, centre, institutions, version));
        }
    }
    json!({
        "resourceType": "Bundle",
        "id": format!("indicators-{}", &hash(&[&report.period.name, &report.generated_at])[..24]),
        "type": "collection",
        "timestamp": report.generated_at,
        "entry": entries.into_iter().map(|resource| {
            let key = format!("{}/{}", resource["resourceType"].as_str().unwrap_or(""), resource["id"].as_str().unwrap_or(""));
            json!({"fullUrl": format!("urn:uuid:{}", uuid_of(&key, &report.generated_at)), "resource": resource})
        }).collect::<Vec<_>>(),
    })
}

#[derive(Clone, Copy)]
enum Which {
    Share,
    Median,
    P90,
    Cases,
    Persons,
}

fn group(
    d: &Definition,
    suffix: Option<&str>,
    total: Option<&Value>,
    values: &[&Value],
    which: Which,
) -> Json {
    let code = match suffix {
        Some(s) => format!("{}-{s}", d.code),
        None => d.code.clone(),
    };
    let mut g = json!({"code": concept(INDICATORS, &code)});
    if let Some(v) = total {
        fill(&mut g, v, which);
    }
    let strata: Vec<Json> = ["clinic", "kind", "priority"]
        .iter()
        .map(|dimension| {
            let strata: Vec<Json> = values
                .iter()
                .filter_map(|v| match (&v.stratum, *dimension) {
                    (Stratum::Clinic(x), "clinic")
                    | (Stratum::Kind(x), "kind")
                    | (Stratum::Priority(x), "priority") => Some((x, v)),
                    _ => None,
                })
                .map(|(x, v)| {
                    let mut s = json!({"value": {"text": x}});
                    fill(&mut s, v, which);
                    s
                })
                .collect();
            json!({"code": [concept(DIMENSIONS, dimension)], "stratum": strata})
        })
        .collect();
    g["stratifier"] = Json::Array(strata);
    g
}

/// The populations, score and target of one value into a group or stratum.
fn fill(into: &mut Json, v: &Value, which: Which) {
    let count = |code: &str, n: u64| json!({"code": concept(POPULATION, code), "count": n});
    let all = v.b + v.excluded;
    let (populations, score) = match which {
        Which::Share => (
            vec![
                count("initial-population", all),
                count("denominator", all),
                count("denominator-exclusion", v.excluded),
                count("numerator", v.p.unwrap_or(0)),
            ],
            v.score_pct.map(|s| quantity(s, "%")),
        ),
        Which::Median | Which::P90 => (
            vec![
                count("initial-population", all),
                count("measure-population", all),
                count("measure-population-exclusion", v.excluded),
            ],
            match which {
                Which::Median => v.median_min,
                _ => v.p90_min,
            }
            .map(|m| quantity(m, "min")),
        ),
        Which::Cases => (vec![count("initial-population", v.b)], None),
        Which::Persons => (vec![count("initial-population", v.persons_b)], None),
    };
    into["population"] = Json::Array(populations);
    if let Some(score) = score {
        into["measureScore"] = score;
    }
    let mut extensions = vec![json!({"url": EXCLUDED, "valueInteger": v.excluded})];
    if let Some(target) = &v.target {
        extensions.push(json!({"url": TARGET, "valueString": target}));
    }
    if let Some(met) = v.target_met {
        extensions.push(json!({"url": TARGET_MET, "valueBoolean": met}));
    }
    into["extension"] = Json::Array(extensions);
}

fn base_text(d: &Definition) -> String {
    match (d.base.of, d.base.by) {
        (Population::Cases, Some(by)) => format!("cases with {} in the period", word(by)),
        (Population::Cases, None) => "cases".to_owned(),
        (Population::Reports, _) => "report versions signed in the period".to_owned(),
        (Population::Studies, _) => "studies first received in the period".to_owned(),
        (Population::FixityChecks, _) => "objects checked for fixity in the period".to_owned(),
    }
}

fn numerator_text(d: &Definition) -> String {
    let Some(n) = &d.numerator else {
        return String::new();
    };
    if let Some(flag) = n.flag {
        return match flag {
            Flag::ReferralLate => "no valid referral linked within 24 h of the data",
            Flag::Reconciled => "linking to the referral needed a person",
            Flag::Amendment => "amends a signed version",
            Flag::NonDiagnostic => "read as non-diagnostic, a repeat requested",
            Flag::FixityMatched => "SHA-256 matched",
        }
        .to_owned();
    }
    let within = match n.within_hours {
        Some(h) => format!("within {h} h"),
        None => "within the contract target".to_owned(),
    };
    format!(
        "from {} to {} {within}",
        n.from.map_or("", word),
        n.to.map_or("", word)
    )
}

/// A clock as the definitions file names it.
fn word(c: Clock) -> &'static str {
    match c {
        Clock::Written => "written (T0)",
        Clock::Examined => "examined (T1)",
        Clock::Received => "received (T2)",
        Clock::Ready => "ready (T3)",
        Clock::Claimed => "claimed (T4)",
        Clock::Signed => "signed (T5)",
        Clock::Delivered => "delivered (T6)",
    }
}

fn stratifiers() -> Vec<Json> {
    ["clinic", "kind", "priority"]
        .iter()
        .map(|d| {
            json!({
                "code": concept(DIMENSIONS, d),
                "criteria": {"language": "text/plain", "expression": format!("the case's {d}")},
            })
        })
        .collect()
}

fn aggregate(which: &str) -> Json {
    match which {
        "median" => json!({"url": AGGREGATE, "valueCode": "median"}),
        _ => json!({"url": PERCENTILE, "valueInteger": 90}),
    }
}

fn improvement(direction: Direction) -> Option<Json> {
    match direction {
        Direction::Up => Some(concept(IMPROVEMENT, "increase")),
        Direction::Down => Some(concept(IMPROVEMENT, "decrease")),
        Direction::Monitored => None,
    }
}

fn concept(system: &str, code: &str) -> Json {
    json!({"coding": [{"system": system, "code": code}], "text": code})
}

fn quantity(value: f64, unit: &str) -> Json {
    json!({"value": value, "unit": unit, "system": UCUM, "code": unit})
}

/// An instant as a FHIR dateTime in Vilnius time, with its offset.
fn vilnius(micros: i64) -> String {
    let zone = super::period::vilnius();
    jiff::Timestamp::from_microsecond(micros)
        .map(|t| {
            t.to_zoned_datetime(zone)
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_default()
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

/// A UUID-shaped name derived from what it names, so a bundle made again is made the same.
fn uuid_of(key: &str, generated_at: &str) -> String {
    let h = hash(&[key, generated_at]);
    format!(
        "{}-{}-5{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
