//! The clinic's pages: every case the clinic sent, from the referral waiting for an
//! examination to the report delivered, with its waiting time; and sending a referral and a
//! study from the browser.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{html, problem, Chrome, Visit};
use crate::access::Role;
use crate::index::{now_micros, CaseRow};
use crate::routing::WorklistQuery;
use crate::web::WebState;

/// One line of the clinic's list.
pub struct Line {
    /// The case page, when there is a case to open.
    pub href: String,
    pub status: &'static str,
    /// A referral waiting or a study needing attention sorts before the rest.
    pub attention: bool,
    pub patient: String,
    pub birth_date: String,
    pub examination: &'static str,
    pub urgency: String,
    pub since: String,
    pub since_micros: i64,
    pub waiting: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "clinic_cases.html")]
struct CasesPage {
    c: Chrome,
    lines: Vec<Line>,
    statuses: Vec<&'static str>,
}

/// The status a clinic reads for a case.
pub fn case_status(c: &CaseRow) -> &'static str {
    match c.status.as_str() {
        "unrouted" if c.referral_id.is_empty() => "status.data_received",
        "unrouted" => "status.linked",
        "new" => "status.routed",
        "in_progress" => "status.in_reading",
        "reported" => "status.reported",
        "delivered" => "status.delivered",
        "cancelled" => "status.cancelled",
        _ => "status.other",
    }
}

/// The catalogue key naming an examination.
pub fn exam_key(examination: &str) -> &'static str {
    match examination {
        "echo" => "exam.echo",
        "holter" => "exam.holter",
        "both" => "exam.both",
        _ => "exam.other",
    }
}

/// A DICOM person name as people write it: `VARDENIS PAVARDENIS`, every letter kept.
pub fn person_name(dicom: &str) -> String {
    let mut parts = dicom.split('=').next().unwrap_or("").split('^');
    let family = parts.next().unwrap_or("").trim();
    let given = parts.next().unwrap_or("").trim();
    match (given.is_empty(), family.is_empty()) {
        (true, _) => family.to_owned(),
        (_, true) => given.to_owned(),
        _ => format!("{given} {family}"),
    }
}

pub async fn cases(State(state): State<WebState>, visit: Visit) -> Response {
    let c = visit.chrome("clinic.title", "clinic");
    let who = &visit.who;
    if who.role != Role::Clinic {
        return problem(c, StatusCode::FORBIDDEN, "problem.role");
    }
    let w = c.w;
    let now = now_micros();
    let query = WorklistQuery {
        every_status: true,
        ..WorklistQuery::default()
    };
    let loaded = async {
        let cases = state.routing.worklist(who, &query).await.ok()?;
        let referrals = state.referrals.list(who, None, None, 1000).await.ok()?;
        let unlinked = state.referrals.unlinked(who, 500).await.ok()?;
        let exceptions = state.referrals.exceptions(who, "open").await.ok()?;
        Some((cases, referrals, unlinked, exceptions))
    }
    .await;
    let Some((cases, referrals, unlinked, exceptions)) = loaded else {
        return problem(c, StatusCode::SERVICE_UNAVAILABLE, "problem.unavailable");
    };
    let mut lines = Vec::new();
    for case in &cases {
        let since = case.referral_at.unwrap_or(case.data_at);
        lines.push(Line {
            href: format!("/cases/{}", case.id),
            status: case_status(case),
            attention: false,
            patient: person_name(&case.patient_name),
            birth_date: w.dicom_date(&case.birth_date),
            examination: exam_key(&case.examination),
            urgency: case.urgency.clone(),
            since: w.time(since),
            since_micros: since,
            waiting: if matches!(case.status.as_str(), "reported" | "delivered") {
                String::new()
            } else {
                w.minutes((now - case.ready_at).max(0) / 60_000_000)
            },
            detail: String::new(),
        });
    }
    let has_case = |id: &str| cases.iter().any(|c| c.referral_id == id);
    for r in referrals.iter().filter(|r| !has_case(&r.id)) {
        let exception = exceptions.iter().find(|e| e.referral_id == r.id);
        lines.push(Line {
            href: String::new(),
            status: match (exception, r.status.as_str()) {
                (Some(_), _) => "status.exception",
                (None, "awaiting_examination") => "status.awaiting",
                (None, "linked") => "status.linked",
                _ => "status.other",
            },
            attention: exception.is_some(),
            patient: format!("{} {}", r.given_names, r.family_name),
            birth_date: w.dicom_date(&r.birth_date),
            examination: exam_key(&r.examination),
            urgency: r.urgency.clone(),
            since: w.time(r.received_at),
            since_micros: r.received_at,
            waiting: w.minutes((now - r.received_at).max(0) / 60_000_000),
            detail: exception.map(|e| e.reason.clone()).unwrap_or_default(),
        });
    }
    for s in &unlinked {
        let exception = exceptions.iter().find(|e| e.study_uid == s.study_uid);
        lines.push(Line {
            href: String::new(),
            status: if exception.is_some() {
                "status.exception"
            } else {
                "status.data_received"
            },
            attention: true,
            patient: person_name(&s.patient_name),
            birth_date: w.dicom_date(&s.birth_date),
            examination: "exam.other",
            urgency: String::new(),
            since: String::new(),
            since_micros: now,
            waiting: String::new(),
            detail: exception
                .map(|e| e.reason.clone())
                .unwrap_or_else(|| w.t("clinic.no_referral").to_owned()),
        });
    }
    lines.sort_by(|a, b| {
        b.attention
            .cmp(&a.attention)
            .then(b.since_micros.cmp(&a.since_micros))
    });
    let mut statuses: Vec<&'static str> = lines.iter().map(|l| l.status).collect();
    statuses.sort_unstable();
    statuses.dedup();
    html(&CasesPage { c, lines, statuses })
}

#[derive(Template)]
#[template(path = "clinic_send.html")]
struct SendPage {
    c: Chrome,
    max_referral_bytes: usize,
}

pub async fn send(State(state): State<WebState>, visit: Visit) -> Response {
    let c = visit.chrome("send.title", "send");
    let who = &visit.who;
    if who.role != Role::Clinic {
        return problem(c, StatusCode::FORBIDDEN, "problem.role");
    }
    html(&SendPage {
        c,
        max_referral_bytes: state.config.referral.max_document_bytes,
    })
}
