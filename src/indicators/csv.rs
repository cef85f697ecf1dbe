//! The report as CSV: one row per indicator × period × stratum, in the columns of the
//! platform's exchange (`code, period_start, period_end, reporter_id, partner_id, kind,
//! priority, b, p, score_pct, median_min, p90_min, target, direction, target_met,
//! generated_at`), then what the platform's columns leave out: the cases excluded and the
//! unique persons. An empty reporter, partner, kind or priority means all of them.

use super::compute::{Stratum, Value};
use super::definitions::Direction;
use super::report::Report;

pub const HEADER: &str = "code,period_start,period_end,reporter_id,partner_id,kind,priority,b,p,\
score_pct,median_min,p90_min,target,direction,target_met,generated_at,excluded,persons_b,persons_p";

pub fn render(report: &Report) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    let overall = report
        .values
        .iter()
        .filter(|v| !matches!(v.stratum, Stratum::Centre(_)));
    for v in overall {
        row(&mut out, report, "", v);
    }
    for centre in &report.centres {
        let own = centre
            .values
            .iter()
            .filter(|v| !matches!(v.stratum, Stratum::Centre(_)));
        for v in own {
            row(&mut out, report, &centre.centre, v);
        }
    }
    out
}

fn row(out: &mut String, report: &Report, reporter: &str, v: &Value) {
    let (mut partner, mut kind, mut priority) = ("", "", "");
    match &v.stratum {
        Stratum::Clinic(c) => partner = c,
        Stratum::Kind(k) => kind = k,
        Stratum::Priority(p) => priority = p,
        Stratum::Total | Stratum::Centre(_) => {}
    }
    let direction = report
        .definitions
        .iter()
        .find(|d| d.code == v.code)
        .map_or("", |d| match d.direction {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Monitored => "monitored",
        });
    let number = |x: Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
    let count = |x: Option<u64>| x.map(|x| x.to_string()).unwrap_or_default();
    let fields = [
        v.code.clone(),
        report.period.first_day.to_string(),
        report.period.last_day.to_string(),
        reporter.to_owned(),
        partner.to_owned(),
        kind.to_owned(),
        priority.to_owned(),
        v.b.to_string(),
        count(v.p),
        number(v.score_pct),
        number(v.median_min),
        number(v.p90_min),
        v.target.clone().unwrap_or_default(),
        direction.to_owned(),
        v.target_met.map(|m| m.to_string()).unwrap_or_default(),
        report.generated_at.clone(),
        v.excluded.to_string(),
        v.persons_b.to_string(),
        count(v.persons_p),
    ];
    let line: Vec<String> = fields.iter().map(|f| quoted(f)).collect();
    out.push_str(&line.join(","));
    out.push('\n');
}

/// The settlement between institutions: one row per consulting centre, sending clinic and
/// kind, the examinations read in the period and the cases behind the number (ids separated
/// by spaces).
pub fn settlement(report: &Report) -> String {
    let mut out =
        String::from("period_start,period_end,centre_id,clinic_id,kind,examinations_read,cases\n");
    for s in &report.settlement {
        let fields = [
            report.period.first_day.to_string(),
            report.period.last_day.to_string(),
            s.centre.clone(),
            s.clinic.clone(),
            s.kind.clone(),
            s.cases.len().to_string(),
            s.cases.join(" "),
        ];
        let line: Vec<String> = fields.iter().map(|f| quoted(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
fn quoted(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}
