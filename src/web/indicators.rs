//! `GET /api/indicators`: the quality indicators of a period for administrators and auditors,
//! as JSON, CSV or a FHIR Bundle, the same report `telecardio indicators` prints.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::journal::query;
use super::{Problem, WebState};
use crate::access::Principal;
use crate::indicators::export::{render, Format};
use crate::indicators::{IndicatorError, Period};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `2026`, `2026-Q3` or `2026-11`.
    period: Option<String>,
    /// A range of days (`YYYY-MM-DD`, both included), instead of a period.
    from: Option<String>,
    to: Option<String>,
    /// json (default), csv or fhir.
    format: Option<String>,
    /// JSON: the persons' keyed hashes, for pooling.
    person_keys: Option<bool>,
}

fn problem(e: IndicatorError) -> Problem {
    Problem::from_fault(e.fault(), e)
}

pub async fn report(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        let period = period_of(&p.period, &p.from, &p.to)?;
        let format = Format::parse(p.format.as_deref().unwrap_or("json"))
            .map_err(|e| problem(e).with_field("format"))?;
        state
            .catalog
            .permit_governance_read(&who, "indicators_read", format!("period {}", period.name))
            .await
            .map_err(catalog)?;
        let report = state.indicators.report(&period).await.map_err(problem)?;
        let body = render(
            &state.indicators,
            &report,
            format,
            p.person_keys.unwrap_or(false),
        );
        let mut response = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
        if matches!(format, Format::Csv | Format::Settlement) {
            if let Ok(v) = format!(
                "attachment; filename=\"indicators-{}.csv\"",
                period.name.replace("..", "_")
            )
            .parse()
            {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, v);
            }
        }
        Ok(response)
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeBody {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn period_of(
    period: &Option<String>,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<Period, Problem> {
    match (period, from, to) {
        (Some(period), None, None) => Period::parse(period),
        (None, Some(from), Some(to)) => Period::range(from, to),
        _ => {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "give `period` (2026, 2026-Q3, 2026-11) or both `from` and `to` (YYYY-MM-DD)",
            )
            .with_field("period"))
        }
    }
    .map_err(|e| problem(e).with_field("period"))
}

fn catalog(e: crate::catalog::CatalogError) -> Problem {
    Problem::from_fault(e.fault(), e)
}

/// Administrators: freeze a period's report as a new immutable version (or answer the latest
/// when nothing changed).
pub async fn freeze(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    request: Result<axum::Json<FreezeBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let answer = async {
        let body = super::worklist::body(request)?;
        let period = period_of(&body.period, &body.from, &body.to)?;
        state
            .catalog
            .permit_administration(&who, "indicators_frozen", format!("period {}", period.name))
            .await
            .map_err(catalog)?;
        let frozen = state
            .indicators
            .freeze(&period, &who.name)
            .await
            .map_err(problem)?;
        let status = if frozen.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, axum::Json(view(&frozen.report))).into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

fn view(r: &crate::index::IndicatorReportRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "period": r.period,
        "version": r.version,
        "generated_at": crate::index::rfc3339(r.generated_at),
        "generated_by": r.generated_by,
        "definitions_version": r.definitions_version,
        "content_sha256": r.content_sha256,
        "bundle_sha256": r.bundle_sha256,
        "changes": r.changes.lines().collect::<Vec<_>>(),
    })
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    period: Option<String>,
}

/// Auditors and administrators: the frozen versions, newest first, with their deliveries.
pub async fn versions(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        state
            .catalog
            .permit_governance_read(&who, "indicator_reports_read", String::new())
            .await
            .map_err(catalog)?;
        let rows = state
            .index
            .indicator_reports(p.period.as_deref())
            .await
            .map_err(|e| problem(e.into()))?;
        let mut out = Vec::new();
        for r in &rows {
            let deliveries = state
                .index
                .platform_deliveries(&r.id)
                .await
                .map_err(|e| problem(e.into()))?;
            let mut v = view(r);
            v["deliveries"] = serde_json::json!(deliveries
                .iter()
                .map(|d| serde_json::json!({
                    "id": d.id, "status": d.status, "attempts": d.attempts,
                    "last_error": d.last_error, "target": d.target,
                    "delivered_at": d.delivered_at.map(crate::index::rfc3339),
                    "next_attempt_at": d.next_attempt_at.map(crate::index::rfc3339),
                }))
                .collect::<Vec<_>>());
            out.push(v);
        }
        Ok(axum::Json(serde_json::json!({ "reports": out })).into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionParams {
    /// json (the report, default) or fhir (the Bundle as delivered).
    format: Option<String>,
}

/// Auditors and administrators: a frozen version exactly as stored.
pub async fn version(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    axum::extract::Path(id): axum::extract::Path<String>,
    params: Result<Query<VersionParams>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        state
            .catalog
            .permit_governance_read(&who, "indicator_report_read", format!("report {id}"))
            .await
            .map_err(catalog)?;
        let row = state
            .index
            .indicator_report(&id)
            .await
            .map_err(|e| problem(e.into()))?
            .ok_or_else(|| {
                Problem::new(StatusCode::NOT_FOUND, format!("no indicator report {id}"))
            })?;
        let (key, format) = match p.format.as_deref().unwrap_or("json") {
            "json" => (&row.content_key, Format::Json),
            "fhir" => (&row.bundle_key, Format::Fhir),
            other => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("format `{other}` is not offered: json or fhir"),
                )
                .with_field("format"))
            }
        };
        let bytes = state.indicators.frozen(key).await.map_err(problem)?;
        Ok(([(header::CONTENT_TYPE, format.content_type())], bytes).into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

/// Administrators: deliver a frozen version to the quality platform (again).
pub async fn deliver(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let answer = async {
        state
            .catalog
            .permit_administration(
                &who,
                "indicators_delivery_requested",
                format!("report {id}"),
            )
            .await
            .map_err(catalog)?;
        let row = state
            .indicators
            .deliver(&id, &who.name)
            .await
            .map_err(problem)?;
        Ok((
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({
                "delivery": row.id, "status": row.status, "target": row.target,
            })),
        )
            .into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}
