//! The indicators dashboard for administrators and auditors: a year of the quality indicators
//! as charts — turnaround medians month by month against the contract target, shares within
//! target, volumes per clinic and month, the rates that should stay low, and the cases whose
//! clocks cannot be right. The numbers are the exported report's (the same computation); the
//! exports themselves are a link away.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::charts::{self, Bar, Cell, Frame, Key, Series, Table};
use super::clinic::exam_key;
use super::i18n::{Lang, Words};
use super::{html, problem, Chrome, Visit};
use crate::fault::Fault;
use crate::indicators::compute::{Stratum, Value};
use crate::indicators::dashboard::{Dashboard, Group};
use crate::indicators::definitions::Definition;
use crate::indicators::targets::Target;
use crate::web::WebState;

/// Colours of series, in order; the same with a dashed line for the 90th percentile.
const SOLID: [&str; 6] = ["s0", "s1", "s2", "s3", "s4", "s5"];
const DASHED: [&str; 6] = [
    "s0 dash", "s1 dash", "s2 dash", "s3 dash", "s4 dash", "s5 dash",
];

/// How many years back the year list offers.
const YEARS_BACK: i16 = 5;

/// The cases with impossible clocks listed on the page; the exports list them all.
const EXCEPTIONS_SHOWN: usize = 100;

#[derive(serde::Deserialize)]
pub struct YearQuery {
    year: Option<String>,
}

pub struct Tile {
    pub label: String,
    pub value: String,
    pub note: String,
    /// `met`, `missed` or empty.
    pub state: &'static str,
}

pub struct ExceptionRow {
    pub case_id: String,
    pub clinic: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    c: Chrome,
    year: i16,
    years: Vec<i16>,
    tiles: Vec<Tile>,
    turnaround: Vec<String>,
    shares: Vec<String>,
    volumes: Vec<String>,
    rates: Vec<String>,
    exceptions: Vec<ExceptionRow>,
    exception_count: usize,
    /// Format, the key of its name, the address.
    downloads: Vec<(&'static str, &'static str, String)>,
}

pub async fn show(
    State(state): State<WebState>,
    visit: Visit,
    Query(query): Query<YearQuery>,
) -> Response {
    let c = visit.chrome("dash.title", "dashboard");
    let who = &visit.who;
    let this_year = this_year();
    let year = match query.year.as_deref().map(str::trim) {
        None | Some("") => this_year,
        Some(text) => match text.parse::<i16>() {
            Ok(y) if (2000..=this_year + 1).contains(&y) => y,
            _ => return problem(c, StatusCode::BAD_REQUEST, "dash.bad_year"),
        },
    };
    // Only administrators and auditors read the indicators; a refusal is on record too.
    if let Err(e) = state
        .catalog
        .permit_governance_read(who, "indicators_read", format!("dashboard {year}"))
        .await
    {
        let (status, message) = match e.fault() {
            Fault::Forbidden => (StatusCode::FORBIDDEN, "problem.role"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "problem.unavailable"),
        };
        return problem(c, status, message);
    }
    let board = match state.indicators.dashboard(year).await {
        Ok(board) => board,
        Err(e) => {
            tracing::error!(error = %e, year, "the indicators dashboard could not be computed");
            return problem(c, StatusCode::SERVICE_UNAVAILABLE, "problem.unavailable");
        }
    };
    let w = c.w;
    let mut years: Vec<i16> = (this_year - YEARS_BACK..=this_year).rev().collect();
    if !years.contains(&year) {
        years.insert(0, year);
    }
    let page = DashboardPage {
        year,
        years,
        tiles: tiles(&w, &board),
        turnaround: board
            .groups
            .iter()
            .filter(|g| g.series.iter().any(|(_, m)| m.iter().any(Option::is_some)))
            .map(|g| turnaround(&w, &board, g))
            .collect(),
        shares: shares(&w, &board),
        volumes: volumes(&w, &board),
        rates: rates(&w, &board),
        exception_count: board.exceptions.len(),
        exceptions: board
            .exceptions
            .iter()
            .take(EXCEPTIONS_SHOWN)
            .map(|e| ExceptionRow {
                case_id: e.case_id.clone(),
                clinic: e.clinic.clone(),
                reason: e.reason.clone(),
            })
            .collect(),
        downloads: [
            ("csv", "dash.format_csv"),
            ("fhir", "dash.format_fhir"),
            ("json", "dash.format_json"),
            ("settlement", "dash.format_settlement"),
        ]
        .into_iter()
        .map(|(f, key)| (f, key, format!("/api/indicators?period={year}&format={f}")))
        .collect(),
        c,
    };
    html(&page)
}

fn this_year() -> i16 {
    jiff::Timestamp::now()
        .to_zoned_datetime(crate::indicators::period::vilnius())
        .year()
}

fn name(w: &Words, d: &Definition) -> String {
    match w.lang {
        Lang::Lt => d.name_lt.clone(),
        Lang::En => d.name_en.clone(),
    }
}

/// A safe element id from data (kinds and priorities come from referrals).
fn id_of(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn month_labels(w: &Words, board: &Dashboard) -> Vec<String> {
    let names: Vec<&str> = w.t("dash.months").split(',').collect();
    board
        .months
        .iter()
        .map(|m| {
            names
                .get(usize::from(m.first_day.month().unsigned_abs()).saturating_sub(1))
                .map_or_else(|| m.name.clone(), |n| (*n).to_owned())
        })
        .collect()
}

fn urgency_key(priority: &str) -> &'static str {
    match priority {
        "urgent" => "urgency.urgent",
        "emergency" => "urgency.emergency",
        _ => "urgency.routine",
    }
}

fn hours_unit(w: &Words) -> &'static str {
    match w.lang {
        Lang::Lt => "val.",
        Lang::En => "h",
    }
}

/// A target as a person reads it, with its length in hours for the chart.
fn target_text(w: &Words, t: Target) -> String {
    match t {
        Target::Hours(h) => format!("{h} {}", hours_unit(w)),
        Target::BusinessDays(n) => w
            .t("dash.target_days")
            .replace("{n}", &n.to_string())
            .replace("{h}", &(t.minutes() / 60.0).to_string()),
    }
}

fn count_text(w: &Words, v: Option<&Value>) -> String {
    v.map_or_else(|| "—".into(), |v| w.number(v.b as i64))
}

fn tiles(w: &Words, board: &Dashboard) -> Vec<Tile> {
    let mut out = Vec::new();
    if let Some(volume) = board.volume() {
        let total = board.of_year(&volume.code, &Stratum::Total);
        out.push(Tile {
            label: w.t("dash.cases_signed").to_owned(),
            value: count_text(w, total),
            note: volume.code.clone(),
            state: "",
        });
        out.push(Tile {
            label: w.t("dash.persons").to_owned(),
            value: total
                .and_then(|v| v.p)
                .map_or_else(|| "—".into(), |p| w.number(p as i64)),
            note: volume.code.clone(),
            state: "",
        });
    }
    for d in board.shares() {
        let v = board.of_year(&d.code, &Stratum::Total);
        let (note, state) = match (d.target_pct, v.and_then(|v| v.target_met)) {
            (Some(t), Some(true)) => (format!("{} ≥ {}", w.t("dash.met"), w.percent(t)), "met"),
            (Some(t), Some(false)) => (
                format!("{} ≥ {}", w.t("dash.missed"), w.percent(t)),
                "missed",
            ),
            _ => (w.t("dash.by_contract").to_owned(), ""),
        };
        out.push(Tile {
            label: format!("{} · {}", d.code, name(w, d)),
            value: v
                .and_then(|v| v.score_pct)
                .map_or_else(|| "—".into(), |s| w.percent(s)),
            note,
            state,
        });
    }
    for d in board.turnaround() {
        let v = board.of_year(&d.code, &Stratum::Total);
        out.push(Tile {
            label: format!("{} · {}", d.code, name(w, d)),
            value: v
                .and_then(|v| v.median_min)
                .map_or_else(|| "—".into(), |m| w.minutes(m.round() as i64)),
            note: w.t("dash.median").to_owned(),
            state: "",
        });
    }
    out.push(Tile {
        label: w.t("dash.exceptions").to_owned(),
        value: w.number(board.exceptions.len() as i64),
        note: w.t("dash.exceptions_note").to_owned(),
        state: if board.exceptions.is_empty() {
            ""
        } else {
            "missed"
        },
    });
    out
}

/// One kind and priority: each turnaround indicator's median (solid) and 90th percentile
/// (dashed) by month, in hours, against the group's target.
fn turnaround(w: &Words, board: &Dashboard, g: &Group) -> String {
    let id = id_of(&["turnaround", &g.kind, &g.priority]);
    let caption = format!(
        "{} · {}",
        w.t(exam_key(&g.kind)),
        w.t(urgency_key(&g.priority))
    );
    let target = g.target.map(|t| charts::Target {
        value: t.minutes() / 60.0,
        label: format!("{}: {}", w.t("dash.target"), target_text(w, t)),
    });
    let desc = format!(
        "{} {}",
        w.t("dash.turnaround_desc"),
        match g.target {
            Some(t) => format!("{}: {}.", w.t("dash.target"), target_text(w, t)),
            None => w.t("dash.targets_differ").to_owned(),
        }
    );
    let months = month_labels(w, board);
    let mut series = Vec::new();
    let mut keys = Vec::new();
    let mut head = vec![w.t("dash.month").to_owned()];
    for (i, (code, per_month)) in g.series.iter().enumerate() {
        let label = board
            .definition(code)
            .map_or_else(|| code.clone(), |d| name(w, d));
        let hours = |pick: fn(&Value) -> Option<f64>| -> Vec<Option<f64>> {
            per_month
                .iter()
                .map(|v| v.as_ref().and_then(pick).map(|m| m / 60.0))
                .collect()
        };
        for (what, class, shape, pick) in [
            (
                "dash.median",
                SOLID[i % 6],
                "line",
                median as fn(&Value) -> _,
            ),
            ("dash.p90", DASHED[i % 6], "line dash", p90),
        ] {
            let label = format!("{label} ({})", w.t(what));
            series.push(Series {
                label: label.clone(),
                class,
                points: hours(pick),
            });
            keys.push(Key {
                label,
                class: SOLID[i % 6],
                shape,
            });
        }
        head.extend([
            format!("{code} · {}", w.t("dash.cases")),
            format!("{code} · {}", w.t("dash.median")),
            format!("{code} · {}", w.t("dash.p90")),
        ]);
    }
    if let Some(t) = g.target {
        keys.push(Key {
            label: format!("{}: {}", w.t("dash.target"), target_text(w, t)),
            class: "target",
            shape: "line target",
        });
    }
    let rows = months
        .iter()
        .enumerate()
        .map(|(m, label)| {
            let cells = g
                .series
                .iter()
                .flat_map(|(_, per_month)| {
                    let v = per_month.get(m).and_then(Option::as_ref);
                    let minutes = |x: Option<f64>| {
                        Cell::new(
                            x.map_or_else(|| "—".into(), |x| w.minutes(x.round() as i64)),
                            x,
                        )
                    };
                    [
                        Cell::new(count_text(w, v), v.map(|v| v.b as f64)),
                        minutes(v.and_then(|v| v.median_min)),
                        minutes(v.and_then(|v| v.p90_min)),
                    ]
                })
                .collect();
            (label.clone(), cells)
        })
        .collect();
    let unit = hours_unit(w);
    let tick = |v: f64| format!("{} {unit}", trim_decimal(w, v));
    let frame = Frame {
        id: &id,
        title: &caption,
        desc: &desc,
        tick: &tick,
    };
    let svg = charts::lines(&frame, &months, &series, target, None);
    let table = Table {
        summary: w.t("dash.table").to_owned(),
        head,
        rows,
    };
    charts::figure(&id, &caption, &svg, &keys, &table)
}

fn median(v: &Value) -> Option<f64> {
    v.median_min
}

fn p90(v: &Value) -> Option<f64> {
    v.p90_min
}

/// A tick's number without needless decimals: `24`, `2,5`.
fn trim_decimal(w: &Words, v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        w.number(v.round() as i64)
    } else {
        w.decimal(v, 1)
    }
}

/// The shares in total by month on one chart, then each share per clinic for the year against
/// its target.
fn shares(w: &Words, board: &Dashboard) -> Vec<String> {
    let defs = board.shares();
    let months = month_labels(w, board);
    let tick = |v: f64| format!("{}\u{a0}%", trim_decimal(w, v));
    let mut out = Vec::new();
    let series: Vec<Series> = defs
        .iter()
        .enumerate()
        .map(|(i, d)| Series {
            label: format!("{} · {}", d.code, name(w, d)),
            class: SOLID[i % 6],
            points: board
                .by_month(&d.code, &Stratum::Total)
                .into_iter()
                .map(|v| v.and_then(|v| v.score_pct))
                .collect(),
        })
        .collect();
    let keys: Vec<Key> = series
        .iter()
        .map(|s| Key {
            label: s.label.clone(),
            class: s.class,
            shape: "line",
        })
        .collect();
    let table = Table {
        summary: w.t("dash.table").to_owned(),
        head: std::iter::once(w.t("dash.month").to_owned())
            .chain(defs.iter().map(|d| d.code.clone()))
            .collect(),
        rows: months
            .iter()
            .enumerate()
            .map(|(m, label)| {
                let cells = series
                    .iter()
                    .map(|s| {
                        let v = s.points.get(m).copied().flatten();
                        Cell::new(v.map_or_else(|| "—".into(), |v| w.percent(v)), v)
                    })
                    .collect();
                (label.clone(), cells)
            })
            .collect(),
    };
    let caption = w.t("dash.shares_by_month").to_owned();
    let frame = Frame {
        id: "shares-by-month",
        title: &caption,
        desc: w.t("dash.shares_desc"),
        tick: &tick,
    };
    let svg = charts::lines(&frame, &months, &series, None, Some(100.0));
    out.push(charts::figure(
        "shares-by-month",
        &caption,
        &svg,
        &keys,
        &table,
    ));
    for d in defs {
        out.push(per_stratum(w, board, d, &tick));
    }
    out
}

/// One share for the year: the total and each clinic as a bar, the target as a line.
fn per_stratum(
    w: &Words,
    board: &Dashboard,
    d: &Definition,
    tick: &dyn Fn(f64) -> String,
) -> String {
    let id = id_of(&["share", &d.code]);
    let mut values: Vec<&Value> = board
        .year_values
        .iter()
        .filter(|v| v.code == d.code && matches!(v.stratum, Stratum::Total | Stratum::Clinic(_)))
        .collect();
    values.sort_by_key(|v| match &v.stratum {
        Stratum::Total => String::new(),
        Stratum::Clinic(c) => c.clone(),
        _ => String::new(),
    });
    let label = |v: &Value| match &v.stratum {
        Stratum::Clinic(c) => c.clone(),
        _ => w.t("dash.total").to_owned(),
    };
    let text = |v: &Value| match (v.score_pct, v.p) {
        (Some(s), Some(p)) => format!(
            "{} ({} / {})",
            w.percent(s),
            w.number(p as i64),
            w.number(v.b as i64)
        ),
        _ => "—".into(),
    };
    let bars: Vec<Bar> = values
        .iter()
        .map(|v| Bar {
            label: label(v),
            value: v.score_pct,
            text: text(v),
            class: if v.stratum == Stratum::Total {
                "s1"
            } else {
                "s0"
            },
        })
        .collect();
    let target = d.target_pct.map(|t| charts::Target {
        value: t,
        label: format!("{}: {}", w.t("dash.target"), w.percent(t)),
    });
    let caption = format!("{} · {} · {}", d.code, name(w, d), board.year);
    let desc = match d.target_pct {
        Some(t) => format!(
            "{} {}: {}.",
            w.t("dash.share_desc"),
            w.t("dash.target"),
            w.percent(t)
        ),
        None => format!("{} {}", w.t("dash.share_desc"), w.t("dash.by_contract")),
    };
    let frame = Frame {
        id: &id,
        title: &caption,
        desc: &desc,
        tick,
    };
    let svg = charts::bars(&frame, &bars, 100.0, target);
    let met = |v: &Value| match v.target_met {
        Some(true) => w.t("dash.met"),
        Some(false) => w.t("dash.missed"),
        None => "—",
    };
    let table = share_table(
        w,
        "dash.stratum",
        values
            .iter()
            .map(|v| (label(v), Some(*v), met(v).to_owned()))
            .collect(),
    );
    charts::figure(&id, &caption, &svg, &[], &table)
}

/// The numbers of shares: per row its base, numerator, share and what is said of the target.
fn share_table(w: &Words, first: &str, rows: Vec<(String, Option<&Value>, String)>) -> Table {
    let number = |n: Option<u64>| {
        Cell::new(
            n.map_or_else(|| "—".into(), |n| w.number(n as i64)),
            n.map(|n| n as f64),
        )
    };
    Table {
        summary: w.t("dash.table").to_owned(),
        head: [
            first,
            "dash.base",
            "dash.numerator",
            "dash.share",
            "dash.target",
        ]
        .iter()
        .map(|k| w.t(k).to_owned())
        .collect(),
        rows: rows
            .into_iter()
            .map(|(header, v, target)| {
                let score = v.and_then(|v| v.score_pct);
                (
                    header,
                    vec![
                        number(v.map(|v| v.b)),
                        number(v.and_then(|v| v.p)),
                        Cell::new(score.map_or_else(|| "—".into(), |s| w.percent(s)), score),
                        Cell::new(target, None),
                    ],
                )
            })
            .collect(),
    }
}

/// Cases signed per clinic for the year and per month, by kind.
fn volumes(w: &Words, board: &Dashboard) -> Vec<String> {
    let Some(volume) = board.volume() else {
        return Vec::new();
    };
    let kinds = board.kinds();
    let keys: Vec<(String, &'static str)> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| (w.t(exam_key(k)).to_owned(), SOLID[i % 6]))
        .collect();
    let legend: Vec<Key> = keys
        .iter()
        .map(|(label, class)| Key {
            label: label.clone(),
            class,
            shape: "box",
        })
        .collect();
    let tick = |v: f64| trim_decimal(w, v);
    let mut head = vec![w.t("worklist.clinic").to_owned()];
    head.extend(keys.iter().map(|(k, _)| k.clone()));
    head.extend([w.t("dash.cases").to_owned(), w.t("dash.persons").to_owned()]);
    let rows: Vec<(String, Vec<f64>)> = board
        .clinics
        .iter()
        .map(|c| {
            (
                c.clinic.clone(),
                kinds
                    .iter()
                    .map(|k| c.by_kind.get(k).copied().unwrap_or(0) as f64)
                    .collect(),
            )
        })
        .collect();
    let number = |n: u64| Cell::new(w.number(n as i64), Some(n as f64));
    let table = Table {
        summary: w.t("dash.table").to_owned(),
        head,
        rows: board
            .clinics
            .iter()
            .map(|c| {
                let mut cells: Vec<Cell> = kinds
                    .iter()
                    .map(|k| number(c.by_kind.get(k).copied().unwrap_or(0)))
                    .collect();
                cells.extend([number(c.cases), number(c.persons)]);
                (c.clinic.clone(), cells)
            })
            .collect(),
    };
    let caption = format!("{} · {}", w.t("dash.volume_by_clinic"), board.year);
    let frame = Frame {
        id: "volume-by-clinic",
        title: &caption,
        desc: w.t("dash.volume_desc"),
        tick: &tick,
    };
    let by_clinic = charts::figure(
        "volume-by-clinic",
        &caption,
        &charts::stacked_bars(&frame, &rows, &keys),
        &legend,
        &table,
    );
    let months = month_labels(w, board);
    let parts: Vec<Vec<f64>> = (0..months.len())
        .map(|m| {
            kinds
                .iter()
                .map(|k| {
                    board
                        .by_month(&volume.code, &Stratum::Kind(k.clone()))
                        .get(m)
                        .copied()
                        .flatten()
                        .map_or(0.0, |v| v.b as f64)
                })
                .collect()
        })
        .collect();
    let mut head = vec![w.t("dash.month").to_owned()];
    head.extend(keys.iter().map(|(k, _)| k.clone()));
    let table = Table {
        summary: w.t("dash.table").to_owned(),
        head,
        rows: months
            .iter()
            .zip(&parts)
            .map(|(label, p)| (label.clone(), p.iter().map(|n| number(*n as u64)).collect()))
            .collect(),
    };
    let caption = w.t("dash.volume_by_month").to_owned();
    let frame = Frame {
        id: "volume-by-month",
        title: &caption,
        desc: w.t("dash.volume_desc"),
        tick: &tick,
    };
    let by_month = charts::figure(
        "volume-by-month",
        &caption,
        &charts::columns(&frame, &months, &keys, &parts),
        &legend,
        &table,
    );
    vec![by_clinic, by_month]
}

/// The rates that should stay low (or are watched), for the year, each with its target.
fn rates(w: &Words, board: &Dashboard) -> Vec<String> {
    let defs = board.rates();
    if defs.is_empty() {
        return Vec::new();
    }
    let values: Vec<(&Definition, Option<&Value>)> = defs
        .iter()
        .map(|d| (*d, board.of_year(&d.code, &Stratum::Total)))
        .collect();
    let target_words = |d: &Definition| match d.target_pct {
        Some(t) => format!("{} < {}", w.t("dash.target"), w.percent(t)),
        None => w.t("dash.monitored").to_owned(),
    };
    let bars: Vec<Bar> = values
        .iter()
        .map(|(d, v)| Bar {
            label: d.code.clone(),
            value: v.and_then(|v| v.score_pct),
            text: format!(
                "{} · {}",
                v.and_then(|v| v.score_pct)
                    .map_or_else(|| "—".into(), |s| w.percent(s)),
                target_words(d)
            ),
            class: match v.and_then(|v| v.target_met) {
                Some(false) => "s5",
                _ => "s0",
            },
        })
        .collect();
    let top = values
        .iter()
        .filter_map(|(d, v)| {
            v.and_then(|v| v.score_pct)
                .map(|s| s.max(d.target_pct.unwrap_or(0.0)))
        })
        .fold(0.0, f64::max);
    let (top, _) = charts::nice_scale((top * 1.15).max(5.0));
    let tick = |v: f64| format!("{}\u{a0}%", trim_decimal(w, v));
    let caption = format!("{} · {}", w.t("dash.rates"), board.year);
    let frame = Frame {
        id: "rates",
        title: &caption,
        desc: w.t("dash.rates_desc"),
        tick: &tick,
    };
    let table = share_table(
        w,
        "dash.indicator",
        values
            .iter()
            .map(|(d, v)| (format!("{} · {}", d.code, name(w, d)), *v, target_words(d)))
            .collect(),
    );
    vec![charts::figure(
        "rates",
        &caption,
        &charts::bars(&frame, &bars, top, None),
        &[],
        &table,
    )]
}
