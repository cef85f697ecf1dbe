//! The reading workflow over HTTP: `GET /api/worklist`, a case, claiming and releasing it,
//! readers' availability, and administrators' routing. The routing service decides; this maps
//! it to HTTP (409 for a case someone else holds or that is no longer open).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::{Problem, WebState};
use crate::access::Principal;
use crate::index::{now_micros, rfc3339, CaseRow};
use crate::routing::{RoutingError, WorklistQuery};

fn problem(e: RoutingError) -> Problem {
    match e {
        RoutingError::Conflict(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
        RoutingError::Invalid { field, message } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message).with_field(field)
        }
        other => Problem::from_fault(other.fault(), other),
    }
}

fn answer(result: Result<Value, Problem>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(p) => p.into_response(),
    }
}

pub(super) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    body.map(|Json(b)| b)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
}

/// A case as the API shows it: clocks as RFC 3339, how long it has waited, and its claim.
pub fn view(c: &CaseRow) -> Value {
    let now = now_micros();
    let time = |t: Option<i64>| t.map(rfc3339);
    let claim_active = !c.claimed_by.is_empty() && c.claim_expires_at.is_some_and(|t| t > now);
    json!({
        "id": c.id,
        "status": c.status,
        "referral_id": c.referral_id,
        "study_uid": c.study_uid,
        "clinic_id": c.clinic_id,
        "centre_id": c.centre_id,
        "assigned_to": c.reader,
        "examination": c.examination,
        "urgency": c.urgency,
        "patient": {"id": c.patient_id, "name": c.patient_name, "birth_date": c.birth_date},
        "rule": c.rule,
        "claim": {
            "by": c.claimed_by,
            "expires_at": time(c.claim_expires_at),
            "active": claim_active,
        },
        "waiting_minutes": (now - c.ready_at).max(0) / 60_000_000,
        "clocks": {
            "referral_written": c.referral_written,
            "referral_received": time(c.referral_at),
            "data_received": rfc3339(c.data_at),
            "ready": rfc3339(c.ready_at),
            "routed": time(c.routed_at),
            "claimed": time(c.claimed_at),
        },
        "cancelled": c.cancelled_at.map(|at| json!({
            "at": rfc3339(at), "by": c.cancelled_by, "reason": c.cancel_reason,
        })),
    })
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorklistParams {
    status: Option<String>,
    urgency: Option<String>,
    examination: Option<String>,
    mine: Option<bool>,
    centre: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
}

const STATUSES: &[&str] = &["unrouted", "new", "in_progress", "reported", "delivered"];

pub async fn worklist(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<WorklistParams>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(p) = params.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        if let Some(bad) = p.status.as_deref().filter(|s| !STATUSES.contains(s)) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                format!("status `{bad}` is not one of {}", STATUSES.join(", ")),
            )
            .with_field("status"));
        }
        let query = WorklistQuery {
            status: p.status,
            urgency: p.urgency,
            examination: p.examination,
            mine: p.mine.unwrap_or(false),
            centre: p.centre,
            every_status: false,
            offset: p.offset.unwrap_or(0).max(0),
            limit: p.limit,
        };
        let cases = state
            .routing
            .worklist(&who, &query)
            .await
            .map_err(problem)?;
        Ok(json!({ "cases": cases.iter().map(view).collect::<Vec<_>>() }))
    };
    answer(result.await)
}

pub async fn case(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let case = state.routing.case(&who, &id).await.map_err(problem)?;
        let others = state
            .routing
            .same_person(&who, &case)
            .await
            .map_err(problem)?;
        let mut body = view(&case);
        body["same_person"] = json!(others
            .iter()
            .map(|c| json!({
                "id": c.id,
                "clinic_id": c.clinic_id,
                "study_uid": c.study_uid,
                "status": c.status,
                "examination": c.examination,
                "ready": rfc3339(c.ready_at),
            }))
            .collect::<Vec<_>>());
        Ok(body)
    };
    answer(result.await)
}

pub async fn claim(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    answer(
        state
            .routing
            .claim(&who, &id)
            .await
            .map(|c| view(&c))
            .map_err(problem),
    )
}

pub async fn release(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    answer(
        state
            .routing
            .release(&who, &id)
            .await
            .map(|c| view(&c))
            .map_err(problem),
    )
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    away: bool,
}

/// A reader marks themself away or back (administrators may do it for anyone).
pub async fn availability(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    request: Result<Json<Availability>, JsonRejection>,
) -> Response {
    let result = async {
        let a = body(request)?;
        state
            .routing
            .set_away(&who, &name, a.away)
            .await
            .map_err(problem)?;
        Ok(json!({ "reader": name, "away": a.away }))
    };
    answer(result.await)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteStudy {
    reason: String,
}

/// Administrators: route a study that has no referral, by the rules, with the reason.
pub async fn route_study(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(study): Path<String>,
    request: Result<Json<RouteStudy>, JsonRejection>,
) -> Response {
    let result = async {
        let r = body(request)?;
        let case = state
            .routing
            .route_study(&who, &study, &r.reason)
            .await
            .map_err(problem)?;
        Ok(view(&case))
    };
    answer(result.await)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    reason: String,
}

/// A clinic withdraws one of its cases not yet reported (an administrator any), with the reason.
pub async fn cancel(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    request: Result<Json<Cancel>, JsonRejection>,
) -> Response {
    let result = async {
        let r = body(request)?;
        let case = state
            .routing
            .cancel(&who, &id, &r.reason)
            .await
            .map_err(problem)?;
        Ok(view(&case))
    };
    answer(result.await)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reroute {
    centre: String,
    #[serde(default)]
    reader: String,
    reason: String,
}

/// Administrators: send an open case to another centre or reader, with the reason.
pub async fn reroute(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    request: Result<Json<Reroute>, JsonRejection>,
) -> Response {
    let result = async {
        let r = body(request)?;
        let case = state
            .routing
            .reroute(&who, &id, &r.centre, &r.reader, &r.reason)
            .await
            .map_err(problem)?;
        Ok(view(&case))
    };
    answer(result.await)
}
