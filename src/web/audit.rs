//! For auditors: `POST /api/audit/search` searches the access audit (who, which patient or
//! study, when, allowed or refused; JSON or CSV), `GET /api/archive/overview` counts what each
//! clinic sent in a period. The search is a POST so that a personal code searched for never
//! sits in a URL.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::journal::{csv_download, instant, query};
use super::{Problem, WebState};
use crate::access::Principal;
use crate::index::{now_micros, rfc3339, AuditEvent, AuditSearch};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub patient_id: String,
    #[serde(default)]
    pub study_uid: String,
    /// RFC 3339 time or a date (from its start).
    #[serde(default)]
    pub from: String,
    /// RFC 3339 time or a date (to its end).
    #[serde(default)]
    pub to: String,
    /// `allowed`, `refused`, or empty for both.
    #[serde(default)]
    pub outcome: String,
    pub limit: Option<i64>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    pub format: String,
}

impl Search {
    /// The index's search, or a problem naming the field that is wrong.
    pub fn parse(&self) -> Result<AuditSearch, Problem> {
        let time = |text: &str, field: &'static str, end: bool| {
            if text.trim().is_empty() {
                return Ok(0);
            }
            instant(text, end)
                .map(|t| if end { t + 1 } else { t })
                .map_err(|why| Problem::new(StatusCode::BAD_REQUEST, why).with_field(field))
        };
        let refused = match self.outcome.as_str() {
            "" => None,
            "refused" => Some(true),
            "allowed" => Some(false),
            other => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    format!("outcome `{other}` is neither `allowed` nor `refused`"),
                )
                .with_field("outcome"))
            }
        };
        Ok(AuditSearch {
            actor: self.actor.trim().to_owned(),
            patient_id: self.patient_id.trim().to_owned(),
            study_uid: self.study_uid.trim().to_owned(),
            from: time(&self.from, "from", false)?,
            to: time(&self.to, "to", true)?,
            refused,
            limit: self.limit.unwrap_or(1000),
        })
    }
}

pub fn event_view(e: &AuditEvent) -> serde_json::Value {
    json!({
        "at": rfc3339(e.at),
        "kind": e.kind,
        "actor": e.actor,
        "role": e.role,
        "institution": e.institution,
        "address": e.address,
        "patient_id": e.patient_id,
        "study_uid": e.study_uid,
        "outcome": e.outcome,
        "detail": e.detail,
    })
}

/// The events as a CSV file, one row each.
pub fn csv(events: &[AuditEvent]) -> Response {
    let header = [
        "at",
        "kind",
        "actor",
        "role",
        "institution",
        "address",
        "patient_id",
        "study_uid",
        "outcome",
        "detail",
    ];
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                rfc3339(e.at),
                e.kind.clone(),
                e.actor.clone(),
                e.role.clone(),
                e.institution.clone(),
                e.address.clone(),
                e.patient_id.clone(),
                e.study_uid.clone(),
                e.outcome.clone(),
                e.detail.clone(),
            ]
        })
        .collect();
    csv_download(&header, &rows, "audit.csv")
}

pub async fn search(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    body: Result<Json<Search>, JsonRejection>,
) -> Response {
    let answer = async {
        let Json(search) =
            body.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        if !matches!(search.format.as_str(), "" | "json" | "csv") {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                format!("format `{}` is not offered: json or csv", search.format),
            )
            .with_field("format"));
        }
        let parsed = search.parse()?;
        let events = state
            .catalog
            .audit_search(&who, &parsed)
            .await
            .map_err(|e| Problem::from_fault(e.fault(), e))?;
        if search.format == "csv" {
            return Ok(csv(&events));
        }
        Ok(
            Json(json!({ "events": events.iter().map(event_view).collect::<Vec<_>>() }))
                .into_response(),
        )
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    from: Option<String>,
    to: Option<String>,
}

pub async fn overview(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<Period>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        let bad = |field: &'static str| {
            move |why: String| Problem::new(StatusCode::BAD_REQUEST, why).with_field(field)
        };
        let from = match p.from.as_deref() {
            Some(t) => instant(t, false).map_err(bad("from"))?,
            None => 0,
        };
        let to = match p.to.as_deref() {
            Some(t) => instant(t, true).map_err(bad("to"))? + 1,
            None => now_micros() + 1,
        };
        let tally = state
            .catalog
            .archive_tally(&who, &[(from, to)])
            .await
            .map_err(|e| Problem::from_fault(e.fault(), e))?
            .pop()
            .unwrap_or_default();
        Ok(Json(json!({
            "from": rfc3339(from),
            "to": rfc3339(to),
            "clinics": tally,
        }))
        .into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}
