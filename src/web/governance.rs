//! For auditors and administrators: the archive's own records. `GET /api/fixity/failures`
//! lists the objects whose last fixity check failed; `GET /api/fixity/report` is the fixity
//! report over a period (JSON, CSV or PDF in Lithuanian or English); `GET /api/audit/chain`
//! checks the tamper-evident audit trail, as `telecardio audit verify` does.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::journal::{csv_download, instant, query};
use super::{Problem, WebState};
use crate::access::Principal;
use crate::audit::chain;
use crate::fixity::{PeriodReport, ReportError};
use crate::index::now_micros;

fn catalog_problem(e: crate::catalog::CatalogError) -> Problem {
    Problem::from_fault(e.fault(), e)
}

pub async fn failures(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
) -> Response {
    let answer = async {
        state
            .catalog
            .permit_governance_read(&who, "fixity_failures_read", String::new())
            .await
            .map_err(catalog_problem)?;
        let rows = state
            .index
            .fixity_open_failures(10_000)
            .await
            .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        Ok(Json(json!({ "failures": rows })).into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// RFC 3339 time or a date (from its start, UTC); default: 30 days ago.
    from: Option<String>,
    /// RFC 3339 time or a date (to its end); default: now.
    to: Option<String>,
    /// json (default), csv or pdf.
    format: Option<String>,
    /// lt (default) or en, for the PDF.
    lang: Option<String>,
}

pub async fn report(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<ReportParams>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        let bad = |field: &'static str| {
            move |why: String| Problem::new(StatusCode::BAD_REQUEST, why).with_field(field)
        };
        let to = match p.to.as_deref() {
            Some(t) => instant(t, true).map_err(bad("to"))? + 1,
            None => now_micros() + 1,
        };
        let from = match p.from.as_deref() {
            Some(t) => instant(t, false).map_err(bad("from"))?,
            None => to - 30 * 86_400 * 1_000_000,
        };
        let format = p.format.as_deref().unwrap_or("json");
        if !matches!(format, "json" | "csv" | "pdf") {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                format!("format `{format}` is not offered: json, csv or pdf"),
            )
            .with_field("format"));
        }
        let lang = p.lang.as_deref().unwrap_or("lt");
        if !matches!(lang, "lt" | "en") {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                format!("language `{lang}` is not offered: lt or en"),
            )
            .with_field("lang"));
        }
        state
            .catalog
            .permit_governance_read(
                &who,
                "fixity_report_read",
                format!(
                    "{} to {}",
                    crate::index::rfc3339(from),
                    crate::index::rfc3339(to)
                ),
            )
            .await
            .map_err(catalog_problem)?;
        let report = PeriodReport::build(&state.index, from, to)
            .await
            .map_err(|e| match e {
                ReportError::EmptyPeriod => {
                    Problem::new(StatusCode::BAD_REQUEST, e.to_string()).with_field("to")
                }
                e => Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            })?;
        Ok(match format {
            "csv" => csv_download(
                &PeriodReport::CSV_HEADER,
                &report.csv_rows(),
                "fixity-report.csv",
            ),
            "pdf" => {
                let bytes = report
                    .pdf(lang)
                    .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                (
                    [
                        (header::CONTENT_TYPE, "application/pdf"),
                        (
                            header::CONTENT_DISPOSITION,
                            "attachment; filename=\"fixity-report.pdf\"",
                        ),
                    ],
                    bytes,
                )
                    .into_response()
            }
            _ => Json(report).into_response(),
        })
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

pub async fn audit_chain(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
) -> Response {
    let answer = async {
        state
            .catalog
            .permit_governance_read(&who, "audit_verified", String::new())
            .await
            .map_err(catalog_problem)?;
        let unavailable =
            |e: chain::ChainError| Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        let trusted = chain::trusted_key(&state.config).map_err(unavailable)?;
        let report = chain::verify_chain(&state.index, &state.archive, trusted.as_deref())
            .await
            .map_err(unavailable)?;
        Ok(Json(report).into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// Events after this chain position (default 0: from the first).
    after: Option<i64>,
    /// At most this many (default 1000, at most 10000).
    limit: Option<i64>,
}

/// `GET /api/audit/fhir`: the trail as a FHIR R4 Bundle of AuditEvent resources, in chain
/// order, a page at a time (`after` the last `seq` of the previous page).
pub async fn audit_fhir(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        let after = p.after.unwrap_or(0);
        let limit = p.limit.unwrap_or(1000);
        if after < 0 {
            return Err(
                Problem::new(StatusCode::BAD_REQUEST, "after must be 0 or more")
                    .with_field("after"),
            );
        }
        if !(1..=10_000).contains(&limit) {
            return Err(
                Problem::new(StatusCode::BAD_REQUEST, "limit must be from 1 to 10000")
                    .with_field("limit"),
            );
        }
        state
            .catalog
            .permit_governance_read(&who, "audit_exported", format!("FHIR after {after}"))
            .await
            .map_err(catalog_problem)?;
        let events = state
            .index
            .audit_chain_after(after, limit)
            .await
            .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        let bundle = crate::audit::export::fhir_bundle(&events, &state.config.dicom.ae_title);
        Ok((
            [(header::CONTENT_TYPE, "application/fhir+json")],
            bundle.to_string(),
        )
            .into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}
