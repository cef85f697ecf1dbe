//! The patient registration journal over HTTP: `GET /api/journal?patient=&from=&to=` across
//! cases and `GET /api/referrals/{id}/journal` for one case, as JSON or, with `format=csv` (or
//! `Accept: text/csv`), as CSV for a spreadsheet. Times in `from`/`to` are RFC 3339 or a
//! calendar date (a whole day, UTC).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, Time};

use super::referrals::problem;
use super::{Problem, WebState};
use crate::access::Principal;
use crate::index::{rfc3339, JournalEntry};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    patient: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    format: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseParams {
    format: Option<String>,
}

/// Entries of one patient and/or period, oldest first.
pub async fn search(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        let csv = wants_csv(p.format.as_deref(), &headers)?;
        let bound = |text: Option<&str>, end: bool, field: &str| {
            text.map(|t| instant(t, end))
                .transpose()
                .map_err(|why| Problem::new(StatusCode::BAD_REQUEST, why).with_field(field))
        };
        let from = bound(p.from.as_deref(), false, "from")?;
        let to = bound(p.to.as_deref(), true, "to")?;
        let patient = p
            .patient
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let entries = state
            .referrals
            .journal_search(&who, patient, from, to, p.limit.unwrap_or(10_000))
            .await
            .map_err(problem)?;
        Ok(if csv {
            csv_response(&entries, "journal.csv")
        } else {
            Json(json!({ "entries": entries })).into_response()
        })
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

/// One case's entries: its referral's and its study's.
pub async fn case(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<CaseParams>, QueryRejection>,
) -> Response {
    let answer = async {
        let csv = wants_csv(query(params)?.format.as_deref(), &headers)?;
        let entries = state.referrals.journal(&who, &id).await.map_err(problem)?;
        Ok(if csv {
            csv_response(&entries, &format!("journal-{id}.csv"))
        } else {
            Json(json!({ "referral": id, "entries": entries })).into_response()
        })
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

/// A query string's parameters, or 400 naming what is wrong with them.
pub(super) fn query<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    params
        .map(|Query(p)| p)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
}

fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> Result<bool, Problem> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("format `{other}` is not offered: json or csv"),
        )
        .with_field("format")),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv"))),
    }
}

/// Microseconds since the epoch of an RFC 3339 time, or of the start (or end) of a date.
pub(crate) fn instant(text: &str, end_of_day: bool) -> Result<i64, String> {
    let text = text.trim();
    let at = if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        t
    } else {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = Date::parse(text, &format)
            .map_err(|_| format!("`{text}` is neither an RFC 3339 time nor a date (YYYY-MM-DD)"))?;
        let time = if end_of_day {
            Time::from_hms_micro(23, 59, 59, 999_999).unwrap_or(Time::MIDNIGHT)
        } else {
            Time::MIDNIGHT
        };
        date.with_time(time).assume_utc()
    };
    i64::try_from(at.unix_timestamp_nanos() / 1000).map_err(|_| format!("`{text}` is out of range"))
}

/// A cell a spreadsheet will not run: values from outside (an actor from MSH-3, a Patient ID)
/// that start like a formula get a leading apostrophe.
fn inert(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

fn csv_response(entries: &[JournalEntry], filename: &str) -> Response {
    let header = [
        "at",
        "kind",
        "clinic_id",
        "institution",
        "actor",
        "patient_id",
        "referral_id",
        "study_uid",
        "report_id",
        "detail",
    ];
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                rfc3339(e.at),
                e.kind.clone(),
                e.clinic_id.clone(),
                e.institution.clone(),
                e.actor.clone(),
                e.patient_id.clone(),
                e.referral_id.clone(),
                e.study_uid.clone(),
                e.report_id.clone(),
                e.detail.clone(),
            ]
        })
        .collect();
    csv_download(&header, &rows, filename)
}

/// A CSV file to download: a header line, then the rows, every cell made inert.
pub(crate) fn csv_download(header: &[&str], rows: &[Vec<String>], filename: &str) -> Response {
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut written = vec![out.write_record(header)];
    for row in rows {
        written.push(out.write_record(row.iter().map(|cell| inert(cell))));
    }
    let body = match (
        written.into_iter().collect::<Result<Vec<_>, _>>(),
        out.into_inner(),
    ) {
        (Ok(_), Ok(body)) => body,
        _ => {
            return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "could not write the CSV")
                .into_response()
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_made_inert() {
        assert_eq!(inert("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(inert("48507120013"), "48507120013");
    }

    #[test]
    fn dates_cover_whole_days_and_rfc3339_is_exact() {
        let start = instant("2026-11-30", false).unwrap();
        let end = instant("2026-11-30", true).unwrap();
        assert_eq!(end - start, 86_400_000_000 - 1);
        assert_eq!(instant("2026-11-30T00:00:00Z", false).unwrap(), start);
        assert_eq!(instant("2026-11-30T02:00:00+02:00", false).unwrap(), start);
        assert!(instant("30.11.2026", false).is_err());
        assert_eq!(rfc3339(start), "2026-11-30T00:00:00Z");
    }
}
