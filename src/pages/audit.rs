//! The auditor's page: who saw what (search by actor, patient, study, period, outcome; shown
//! or exported as CSV) and what the archive holds per clinic and month. The search is a POST
//! form, so a personal code searched for never appears in an address.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::i18n::{vilnius_day_start, vilnius_months, Words};
use super::{html, problem, Chrome, Visit};
use crate::index::{now_micros, rfc3339, AuditEvent};
use crate::web::audit::{csv, Search};
use crate::web::WebState;

pub struct Row {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub address: String,
    pub kind: String,
    pub patient_id: String,
    pub study_uid: String,
    pub outcome: String,
    pub refused: bool,
    pub detail: String,
}

pub struct Month {
    pub label: String,
    pub clinic: String,
    pub studies: String,
    pub objects: String,
    pub bytes: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    form: Fields,
    searched: bool,
    rows: Vec<Row>,
    months: Vec<Month>,
    error: String,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Fields {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub patient_id: String,
    #[serde(default)]
    pub study_uid: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub format: String,
}

fn refused(outcome: &str) -> bool {
    ["refused", "denied", "rejected", "not found"]
        .iter()
        .any(|p| outcome.starts_with(p))
}

fn row(e: &AuditEvent, w: Words) -> Row {
    Row {
        at: w.time(e.at),
        actor: e.actor.clone(),
        role: e.role.clone(),
        address: e.address.clone(),
        kind: e.kind.clone(),
        patient_id: e.patient_id.clone(),
        study_uid: e.study_uid.clone(),
        refused: refused(&e.outcome),
        outcome: e.outcome.clone(),
        detail: e.detail.clone(),
    }
}

async fn months(state: &WebState, visit: &Visit, w: Words) -> Option<Vec<Month>> {
    let periods = vilnius_months(now_micros(), 12);
    let spans: Vec<(i64, i64)> = periods.iter().map(|p| (p.1, p.2)).collect();
    let tallies = state.catalog.archive_tally(&visit.who, &spans).await.ok()?;
    let mut months = Vec::new();
    for ((label, _, _), tally) in periods.iter().zip(tallies).rev() {
        for t in tally {
            months.push(Month {
                label: label.clone(),
                clinic: t.clinic_id,
                studies: w.number(t.studies),
                objects: w.number(t.objects),
                bytes: w.bytes(t.bytes),
            });
        }
    }
    Some(months)
}

async fn page(
    state: &WebState,
    visit: &Visit,
    form: Fields,
    rows: Option<Vec<Row>>,
    error: String,
) -> Response {
    let c = visit.chrome("audit.title", "audit");
    let Some(months) = months(state, visit, c.w).await else {
        return problem(c, StatusCode::FORBIDDEN, "problem.role");
    };
    html(&AuditPage {
        c,
        form,
        searched: rows.is_some(),
        rows: rows.unwrap_or_default(),
        months,
        error,
    })
}

pub async fn show(State(state): State<WebState>, visit: Visit) -> Response {
    page(&state, &visit, Fields::default(), None, String::new()).await
}

/// A date field as the search takes it: the start (or end) of that day in Vilnius.
fn day(text: &str, end: bool) -> Result<String, ()> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    let start = vilnius_day_start(text).ok_or(())?;
    let at = if end {
        start + 24 * 3_600_000_000 - 1
    } else {
        start
    };
    Ok(rfc3339(at))
}

pub async fn search(
    State(state): State<WebState>,
    visit: Visit,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let Ok(Form(fields)) = form else {
        return page(&state, &visit, Fields::default(), None, "audit.bad".into()).await;
    };
    let (Ok(from), Ok(to)) = (day(&fields.from, false), day(&fields.to, true)) else {
        return page(&state, &visit, fields, None, "audit.bad_date".into()).await;
    };
    let search = Search {
        actor: fields.actor.clone(),
        patient_id: fields.patient_id.clone(),
        study_uid: fields.study_uid.clone(),
        from,
        to,
        outcome: fields.outcome.clone(),
        limit: Some(if fields.format == "csv" { 100_000 } else { 500 }),
        format: String::new(),
    };
    let Ok(parsed) = search.parse() else {
        return page(&state, &visit, fields, None, "audit.bad".into()).await;
    };
    let events = match state.catalog.audit_search(&visit.who, &parsed).await {
        Ok(events) => events,
        Err(_) => {
            let c = visit.chrome("audit.title", "audit");
            return problem(c, StatusCode::FORBIDDEN, "problem.role");
        }
    };
    if fields.format == "csv" {
        return csv(&events);
    }
    let w = Words::new(visit.lang);
    let rows = events.iter().map(|e| row(e, w)).collect();
    page(&state, &visit, fields, Some(rows), String::new()).await
}
