//! `POST /api/referrals` (a form 027 CDA document in), `GET /api/referrals/{id}` and its
//! journal. The referral service decides everything; this maps it to HTTP: 201 for a new
//! referral, 200 for a document already received, 413 over the size limit, 415 for a body that
//! is not XML, 400 for XML we cannot read, 422 (with the field) for a referral that lacks what
//! point 12.3 requires.

use axum::body::{to_bytes, Body};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::{Problem, WebState};
use crate::access::Principal;
use crate::index::ReferralRow;
use crate::referral::links::Decision;
use crate::referral::{ReferralError, Source};

const XML_TYPES: &[&str] = &["application/xml", "text/xml", "application/hl7-cda+xml"];

pub(super) fn problem(e: ReferralError) -> Problem {
    match e {
        ReferralError::TooLarge { .. } => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        ReferralError::Conflict(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
        ReferralError::Invalid(invalid) => {
            let field = invalid.field.clone();
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, invalid.message).with_field(field)
        }
        other => Problem::from_fault(other.fault(), other),
    }
}

/// A referral as the API shows it.
pub fn view(r: &ReferralRow) -> Value {
    let list = |text: &str| serde_json::from_str::<Value>(text).unwrap_or_else(|_| json!([]));
    json!({
        "id": r.id,
        "status": r.status,
        "document_id": r.document_id,
        "set_id": r.set_id,
        "version": r.version,
        "effective_time": r.effective_time,
        "patient": {
            "personal_code": r.personal_code,
            "insured_code": r.insured_code,
            "statistical_card": r.statistical_card,
            "family_name": r.family_name,
            "given_names": r.given_names,
            "sex": r.sex,
            "birth_date": r.birth_date,
        },
        "author": {"id": r.author_id, "name": r.author_name, "organisation": r.author_organisation},
        "clinic_id": r.clinic_id,
        "order_number": r.order_number,
        "examination": r.examination,
        "examination_codes": list(&r.examination_codes),
        "urgency": r.urgency,
        "reason": r.reason,
        "warnings": list(&r.warnings),
        "study_uid": r.study_uid,
        "source": r.source,
        "received_by": r.received_by,
        "received_at": r.received_at,
    })
}

pub async fn create(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !XML_TYPES.contains(&media.as_str()) {
        return Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a referral is sent as application/xml or application/hl7-cda+xml",
        )
        .into_response();
    }
    // One byte over the limit is enough to know the document is too large.
    let limit = state.config.referral.max_document_bytes;
    let document = match to_bytes(body, limit + 1).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return problem(ReferralError::TooLarge {
                size: limit + 1,
                limit,
            })
            .into_response()
        }
    };
    match state.referrals.receive(&who, &document, Source::Http).await {
        Ok(received) => {
            let status = if received.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let location = format!("/api/referrals/{}", received.referral.id);
            (
                status,
                [(header::LOCATION, location)],
                Json(view(&received.referral)),
            )
                .into_response()
        }
        Err(e) => problem(e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    status: Option<String>,
    order_number: Option<String>,
    limit: Option<i64>,
}

/// Referrals the caller may see, newest first: `?status=awaiting_examination`, `?order_number=`.
pub async fn list(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    match state
        .referrals
        .list(
            &who,
            params.status.as_deref(),
            params.order_number.as_deref(),
            params.limit.unwrap_or(100),
        )
        .await
    {
        Ok(rows) => {
            Json(json!({ "referrals": rows.iter().map(view).collect::<Vec<_>>() })).into_response()
        }
        Err(e) => problem(e).into_response(),
    }
}

pub async fn show(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match state.referrals.get(&who, &id).await {
        Ok(r) => Json(view(&r)).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionParams {
    status: Option<String>,
}

/// Links left for an administrator (`?status=open`, the default, or `resolved`).
pub async fn exceptions(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<ExceptionParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    let status = params.status.unwrap_or_else(|| "open".into());
    if status != "open" && status != "resolved" {
        return Problem::new(StatusCode::BAD_REQUEST, "status is open or resolved")
            .with_field("status")
            .into_response();
    }
    match state.referrals.exceptions(&who, &status).await {
        Ok(rows) => Json(json!({ "exceptions": rows })).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

/// Studies with no referral linked yet.
pub async fn unlinked(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
) -> Response {
    match state.referrals.unlinked(&who, 1000).await {
        Ok(rows) => Json(json!({ "studies": rows })).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    decision: Decision,
    #[serde(default)]
    note: String,
}

/// An administrator links the pair despite the doubt, or rejects it: `{"decision": "link" |
/// "reject", "note": "..."}`.
pub async fn resolve(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Json<Resolution>, JsonRejection>,
) -> Response {
    let Json(resolution) = match body {
        Ok(b) => b,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    match state
        .referrals
        .resolve(&who, &id, resolution.decision, &resolution.note)
        .await
    {
        Ok(exception) => Json(json!(exception)).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unlink {
    reason: String,
}

/// An administrator undoes a link: `{"reason": "..."}`.
pub async fn unlink(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Json<Unlink>, JsonRejection>,
) -> Response {
    let Json(unlink) = match body {
        Ok(b) => b,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    if unlink.reason.trim().is_empty() {
        return Problem::new(StatusCode::BAD_REQUEST, "say why the link is undone")
            .with_field("reason")
            .into_response();
    }
    match state.referrals.unlink(&who, &id, &unlink.reason).await {
        Ok(r) => Json(view(&r)).into_response(),
        Err(e) => problem(e).into_response(),
    }
}
