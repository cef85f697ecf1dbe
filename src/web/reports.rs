//! Reports over HTTP: `PUT /api/cases/{id}/report` saves the caller's draft,
//! `POST /api/cases/{id}/report/sign` signs it, `GET /api/cases/{id}/reports` lists the
//! versions. 409 when someone else holds the case or its draft; 422 naming the field for what a
//! signature needs.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::{Problem, WebState};
use crate::access::Principal;
use crate::index::{rfc3339, DeliveryRow, ReportRow};
use crate::reports::{ReportError, Text};

fn problem(e: ReportError) -> Problem {
    match e {
        ReportError::Conflict(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
        ReportError::Invalid { field, message } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message).with_field(field)
        }
        other => Problem::from_fault(other.fault(), other),
    }
}

fn view(r: &ReportRow) -> Value {
    json!({
        "id": r.id,
        "case_id": r.case_id,
        "version": r.version,
        "status": r.status,
        "findings": r.findings,
        "conclusion": r.conclusion,
        "recommendations": r.recommendations,
        "free_text": r.free_text,
        "non_diagnostic": r.non_diagnostic,
        "author": r.author,
        "amends": r.amends,
        "amendment_reason": r.amendment_reason,
        "signer": {
            "user": r.signer,
            "name": r.signer_name,
            "licence": r.signer_licence,
            "centre": r.signer_centre,
        },
        "signed_at": r.signed_at.map(rfc3339),
        "content_sha256": r.content_sha256,
        "answer_sha256": r.answer_sha256,
    })
}

fn answer(result: Result<Value, ReportError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

pub async fn save_draft(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Json<Text>, JsonRejection>,
) -> Response {
    let Json(text) = match body {
        Ok(b) => b,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    answer(
        state
            .reports
            .save_draft(&who, &id, &text)
            .await
            .map(|r| view(&r)),
    )
}

pub async fn sign(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    answer(state.reports.sign(&who, &id).await.map(|r| view(&r)))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinceParams {
    since: Option<String>,
    limit: Option<i64>,
}

/// The pull channel: signed report versions since a time (RFC 3339 or a date), oldest first,
/// each with the address of its answer document and whether the clinic fetched it.
pub async fn since(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<axum::extract::Query<SinceParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let p = match super::journal::query(params) {
        Ok(p) => p,
        Err(problem) => return problem.into_response(),
    };
    let since = match p
        .since
        .as_deref()
        .map(|t| super::journal::instant(t, false))
    {
        None => 0,
        Some(Ok(t)) => t,
        Some(Err(why)) => {
            return Problem::new(StatusCode::BAD_REQUEST, why)
                .with_field("since")
                .into_response()
        }
    };
    answer(
        state
            .reports
            .since(&who, since, p.limit.unwrap_or(1000))
            .await
            .map(|list| {
                let reports: Vec<Value> = list
                    .iter()
                    .map(|r| {
                        json!({
                            "report_id": r.report_id,
                            "case_id": r.case_id,
                            "version": r.version,
                            "amends": r.amends,
                            "clinic_id": r.clinic_id,
                            "study_uid": r.study_uid,
                            "referral_id": r.referral_id,
                            "signer_name": r.signer_name,
                            "signed_at": rfc3339(r.signed_at),
                            "fetched_at": r.pulled_at.map(rfc3339),
                            "answer": format!("/api/cases/{}/reports/{}/answer", r.case_id, r.report_id),
                        })
                    })
                    .collect();
                json!({ "reports": reports })
            }),
    )
}

/// The answer document (form 027 answer, HL7 CDA) of a signed report version.
pub async fn answer_document(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    method: axum::http::Method,
    Path((id, report)): Path<(String, String)>,
) -> Response {
    // A HEAD request receives no document, so it delivers nothing.
    let delivering = method != axum::http::Method::HEAD;
    match state.reports.answer(&who, &id, &report, delivering).await {
        Ok(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/hl7-cda+xml")],
            bytes,
        )
            .into_response(),
        Err(e) => problem(e).into_response(),
    }
}

/// The printed report (PDF) of a signed version, for people to keep or print.
pub async fn pdf(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path((id, report)): Path<(String, String)>,
) -> Response {
    match state.reports.pdf(&who, &id, &report).await {
        Ok(bytes) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/pdf".to_owned(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"report-{report}.pdf\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => problem(e).into_response(),
    }
}

pub async fn versions(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    answer(
        state.reports.versions(&who, &id).await.map(
            |list| json!({ "case_id": id, "reports": list.iter().map(view).collect::<Vec<_>>() }),
        ),
    )
}

fn delivery_view(d: &DeliveryRow) -> Value {
    json!({
        "id": d.id,
        "report_id": d.report_id,
        "case_id": d.case_id,
        "clinic_id": d.clinic_id,
        "channel": d.channel,
        "target": d.target,
        "status": d.status,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "delivered_at": d.delivered_at.map(rfc3339),
        "next_attempt_at": d.next_attempt_at.filter(|_| d.status == "pending").map(rfc3339),
        "last_attempt_at": d.last_attempt_at.map(rfc3339),
        "requested_by": d.requested_by,
        "created_at": rfc3339(d.created_at),
    })
}

/// Delivery status of a case's reports, per channel.
pub async fn case_deliveries(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    answer(state.reports.deliveries_of_case(&who, &id).await.map(|list| {
        json!({ "case_id": id, "deliveries": list.iter().map(delivery_view).collect::<Vec<_>>() })
    }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    status: Option<String>,
    limit: Option<i64>,
}

/// Deliveries by status, newest first: `?status=failed` is what needs an administrator.
pub async fn deliveries(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<axum::extract::Query<DeliveryParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let p = match super::journal::query(params) {
        Ok(p) => p,
        Err(problem) => return problem.into_response(),
    };
    answer(
        state
            .reports
            .deliveries(
                &who,
                p.status.as_deref().unwrap_or(""),
                p.limit.unwrap_or(500),
            )
            .await
            .map(
                |list| json!({ "deliveries": list.iter().map(delivery_view).collect::<Vec<_>>() }),
            ),
    )
}

pub async fn retry_delivery(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    answer(
        state
            .reports
            .retry_delivery(&who, &id)
            .await
            .map(|d| delivery_view(&d)),
    )
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendAgain {
    channel: String,
}

/// Queues a signed version again on a push channel: 202, the new delivery.
pub async fn send_again(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path((id, report)): Path<(String, String)>,
    body: Result<Json<SendAgain>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    match state
        .reports
        .send_again(&who, &id, &report, &body.channel)
        .await
    {
        Ok(d) => (StatusCode::ACCEPTED, Json(delivery_view(&d))).into_response(),
        Err(e) => problem(e).into_response(),
    }
}
