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
        let period =
            match (&p.period, &p.from, &p.to) {
                (Some(period), None, None) => Period::parse(period),
                (None, Some(from), Some(to)) => Period::range(from, to),
                _ => return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "give `period` (2026, 2026-Q3, 2026-11) or both `from` and `to` (YYYY-MM-DD)",
                )
                .with_field("period")),
            }
            .map_err(|e| problem(e).with_field("period"))?;
        let format = Format::parse(p.format.as_deref().unwrap_or("json"))
            .map_err(|e| problem(e).with_field("format"))?;
        state
            .catalog
            .permit_governance_read(&who, "indicators_read", format!("period {}", period.name))
            .await
            .map_err(|e| Problem::from_fault(e.fault(), e))?;
        let report = state.indicators.report(&period).await.map_err(problem)?;
        let body = render(
            &state.indicators,
            &report,
            format,
            p.person_keys.unwrap_or(false),
        );
        let mut response = ([(header::CONTENT_TYPE, format.content_type())], body).into_response();
        if format == Format::Csv {
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
