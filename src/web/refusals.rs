//! `GET /api/ownership-refusals?since=`: objects refused because they named another clinic's
//! study, series or SOP instance, for administrators and auditors (newest first).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::journal::{instant, query};
use super::{Problem, WebState};
use crate::access::Principal;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    since: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        let since = match p.since.as_deref() {
            Some(text) => instant(text, false)
                .map_err(|why| Problem::new(StatusCode::BAD_REQUEST, why).with_field("since"))?,
            None => 0,
        };
        let rows = state
            .catalog
            .refusals(&who, since, p.limit.unwrap_or(1000))
            .await
            .map_err(|e| Problem::from_fault(e.fault(), e))?;
        Ok(Json(json!({ "refusals": rows })).into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}
