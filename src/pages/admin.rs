//! The administrator's page: what the rules could not settle — link exceptions, studies without
//! a referral, unrouted cases, failed deliveries — each with its action, and what is in force:
//! users, routing rules, and which centre reads which clinic's cases. Actions go through the
//! JSON API (the same checks and audit as any client).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::clinic::{exam_key, person_name};
use super::{html, problem, Visit};
use crate::access::{Action, Role};
use crate::index::{LinkException, StudyForLink};
use crate::routing::WorklistQuery;
use crate::web::WebState;

pub struct Unrouted {
    pub id: String,
    pub clinic: String,
    pub patient: String,
    pub examination: &'static str,
    pub since: String,
}

pub struct Failed {
    pub id: String,
    pub case_id: String,
    pub clinic: String,
    pub channel: String,
    pub target: String,
    pub attempts: i64,
    pub error: String,
}

pub struct User {
    pub name: String,
    pub role: String,
    pub institution: String,
    pub full_name: String,
    pub licence: String,
    pub disabled: bool,
}

pub struct Rule {
    pub name: String,
    pub clinics: String,
    pub examinations: String,
    pub urgencies: String,
    pub patients: String,
    pub centre: String,
    pub readers: String,
    pub assign: String,
}

pub struct Contract {
    pub centre: String,
    pub name: String,
    pub reads: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    c: super::Chrome,
    exceptions: Vec<LinkException>,
    unlinked: Vec<(StudyForLink, String)>,
    unrouted: Vec<Unrouted>,
    failed: Vec<Failed>,
    users: Vec<User>,
    rules: Vec<Rule>,
    contracts: Vec<Contract>,
    centres: Vec<String>,
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "*".into()
    } else {
        items.join(", ")
    }
}

pub async fn show(State(state): State<WebState>, visit: Visit) -> Response {
    let c = visit.chrome("admin.title", "admin");
    let who = &visit.who;
    let w = c.w;
    if who.role != Role::Admin
        || state
            .catalog
            .policy()
            .permit(who, Action::Administer)
            .is_err()
    {
        return problem(c, StatusCode::FORBIDDEN, "problem.role");
    }
    let query = WorklistQuery {
        status: Some("unrouted".into()),
        ..WorklistQuery::default()
    };
    // A study routed by hand stays without a referral but needs nothing more.
    let every = WorklistQuery {
        every_status: true,
        ..WorklistQuery::default()
    };
    let loaded = async {
        let cases = state.routing.worklist(who, &every).await.ok()?;
        let mut unlinked = state.referrals.unlinked(who, 200).await.ok()?;
        unlinked.retain(|s| !cases.iter().any(|c| c.study_uid == s.study_uid));
        Some((
            state.referrals.exceptions(who, "open").await.ok()?,
            unlinked,
            state.routing.worklist(who, &query).await.ok()?,
            state.reports.deliveries(who, "failed", 200).await.ok()?,
            state.accounts.users().await.ok()?,
        ))
    }
    .await;
    let Some((exceptions, unlinked, unrouted, failed, users)) = loaded else {
        return problem(c, StatusCode::SERVICE_UNAVAILABLE, "problem.unavailable");
    };
    let mut event = crate::catalog::event(who, "users_read");
    event.outcome = "answered".into();
    event.detail = format!("{} accounts on the administrators' page", users.len());
    if state.audit.record_required(event).await.is_err() {
        return problem(c, StatusCode::SERVICE_UNAVAILABLE, "problem.unavailable");
    }
    let now = crate::index::now_micros();
    let config = &state.config;
    let page = AdminPage {
        exceptions,
        unlinked: unlinked
            .into_iter()
            .map(|s| {
                let name = person_name(&s.patient_name);
                (s, name)
            })
            .collect(),
        unrouted: unrouted
            .iter()
            .map(|case| Unrouted {
                id: case.id.clone(),
                clinic: case.clinic_id.clone(),
                patient: person_name(&case.patient_name),
                examination: exam_key(&case.examination),
                since: w.minutes((now - case.ready_at).max(0) / 60_000_000),
            })
            .collect(),
        failed: failed
            .iter()
            .map(|d| Failed {
                id: d.id.clone(),
                case_id: d.case_id.clone(),
                clinic: d.clinic_id.clone(),
                channel: d.channel.clone(),
                target: d.target.clone(),
                attempts: d.attempts,
                error: d.last_error.clone(),
            })
            .collect(),
        users: users
            .into_iter()
            .map(|u| User {
                disabled: u.disabled_at.is_some(),
                name: u.name,
                role: u.role,
                institution: u.institution,
                full_name: u.full_name,
                licence: u.licence,
            })
            .collect(),
        rules: config
            .routing
            .rules
            .iter()
            .map(|r| Rule {
                name: r.name.clone(),
                clinics: list(&r.clinics),
                examinations: list(&r.examinations),
                urgencies: list(&r.urgencies),
                patients: format!("{:?}", r.patients).to_lowercase(),
                centre: r.centre.clone(),
                readers: list(&r.readers),
                assign: format!("{:?}", r.assign).to_lowercase(),
            })
            .collect(),
        contracts: config
            .centres
            .iter()
            .map(|centre| Contract {
                centre: centre.id.clone(),
                name: centre.name.clone(),
                reads: list(&centre.reads),
            })
            .collect(),
        centres: config
            .centres
            .iter()
            .map(|centre| centre.id.clone())
            .collect(),
        c,
    };
    html(&page)
}
