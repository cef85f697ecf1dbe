//! Retention over HTTP, for administrators and auditors.
//!
//! `GET /api/retention/studies/{uid}` a study's retention date, objects, holds, extensions and
//! deletion requests; `POST …/holds` places a legal hold, `POST /api/retention/holds/{id}/release`
//! releases one; `POST …/extend` keeps a study longer; `GET /api/retention/expiring` the daily
//! list; `POST /api/retention/deletions` proposes deleting an expired study (administrators),
//! `POST /api/retention/deletions/{id}/approve` or `/reject` decides (auditors);
//! `GET /api/retention/deletions` and `GET /api/retention/tombstones` the records. 409 says
//! until when a study is kept, or which holds stand.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::worklist::body;
use super::{Problem, WebState};
use crate::access::Principal;
use crate::retention::RetentionError;

fn problem(e: RetentionError) -> Problem {
    match &e {
        RetentionError::Invalid { field, .. } => {
            let field = *field;
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).with_field(field)
        }
        _ => Problem::from_fault(e.fault(), e),
    }
}

fn answer<T: serde::Serialize>(status: StatusCode, result: Result<T, RetentionError>) -> Response {
    match result {
        Ok(value) => (status, Json(value)).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    reason: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extending {
    /// `YYYY-MM-DD`: kept to the end of that day at least.
    until: String,
    reason: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    study_uid: String,
    reason: String,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    note: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFilter {
    state: Option<String>,
    study: Option<String>,
}

pub async fn study(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(uid): Path<String>,
) -> Response {
    answer(StatusCode::OK, state.retention.study(&who, &uid).await)
}

pub async fn place_hold(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(uid): Path<String>,
    reason: Result<Json<Reason>, JsonRejection>,
) -> Response {
    let reason = match body(reason) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    answer(
        StatusCode::CREATED,
        state.retention.place_hold(&who, &uid, &reason.reason).await,
    )
}

pub async fn release_hold(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    reason: Result<Json<Reason>, JsonRejection>,
) -> Response {
    let reason = match body(reason) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    answer(
        StatusCode::OK,
        state
            .retention
            .release_hold(&who, &id, &reason.reason)
            .await,
    )
}

pub async fn extend(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(uid): Path<String>,
    extension: Result<Json<Extending>, JsonRejection>,
) -> Response {
    let e = match body(extension) {
        Ok(e) => e,
        Err(p) => return p.into_response(),
    };
    answer(
        StatusCode::OK,
        state
            .retention
            .extend(&who, &uid, &e.until, &e.reason)
            .await,
    )
}

pub async fn expiring(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
) -> Response {
    let listed = state.retention.notices(&who).await.map(|latest| {
        let (day, studies) = latest.unwrap_or_default();
        json!({ "day": day, "days": state.config.retention.notice_days, "studies": studies })
    });
    answer(StatusCode::OK, listed)
}

pub async fn propose(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    proposal: Result<Json<Proposal>, JsonRejection>,
) -> Response {
    let p = match body(proposal) {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    answer(
        StatusCode::CREATED,
        state.retention.propose(&who, &p.study_uid, &p.reason).await,
    )
}

pub async fn approve(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    decision: Result<Json<Decision>, JsonRejection>,
) -> Response {
    let d = match body(decision) {
        Ok(d) => d,
        Err(p) => return p.into_response(),
    };
    answer(
        StatusCode::OK,
        state.retention.approve(&who, &id, &d.note).await,
    )
}

pub async fn reject(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    decision: Result<Json<Decision>, JsonRejection>,
) -> Response {
    let d = match body(decision) {
        Ok(d) => d,
        Err(p) => return p.into_response(),
    };
    answer(
        StatusCode::OK,
        state.retention.reject(&who, &id, &d.note).await,
    )
}

pub async fn deletions(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    filter: Result<Query<StateFilter>, QueryRejection>,
) -> Response {
    let f = match filter {
        Ok(Query(f)) => f,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    let listed = state
        .retention
        .requests(&who, f.state.as_deref().unwrap_or(""))
        .await
        .map(|rows| json!({ "requests": rows }));
    answer(StatusCode::OK, listed)
}

pub async fn tombstones(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    filter: Result<Query<StateFilter>, QueryRejection>,
) -> Response {
    let f = match filter {
        Ok(Query(f)) => f,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    let listed = state
        .retention
        .tombstones(&who, f.study.as_deref().unwrap_or(""))
        .await
        .map(|rows| json!({ "tombstones": rows }));
    answer(StatusCode::OK, listed)
}
