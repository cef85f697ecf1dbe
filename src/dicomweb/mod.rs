//! The DICOMweb edge (PS3.18) under `/dicom-web`: QIDO-RS search, WADO-RS retrieval and
//! STOW-RS storage.
//!
//! Routes sit behind the HTTP authentication layer like every other; each handler takes the
//! caller's [`Principal`](crate::access::Principal) to the catalog (reads) or to ingest
//! (STOW-RS), so scope, audit and durability are those of the DICOM edge. This module maps
//! results to HTTP and DICOM JSON only.

mod json;
mod qido;
mod stow;
mod wado;

use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;

use crate::catalog::CatalogError;
use crate::web::{Problem, WebState};

pub type DicomWebState = WebState;

/// The DICOMweb routes, to be mounted behind authentication.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/dicom-web/studies", get(qido::studies).post(stow::studies))
        .route("/dicom-web/series", get(qido::all_series))
        .route("/dicom-web/instances", get(qido::all_instances))
        .route(
            "/dicom-web/studies/{study}",
            get(wado::study).post(stow::study),
        )
        .route("/dicom-web/studies/{study}/series", get(qido::study_series))
        .route(
            "/dicom-web/studies/{study}/instances",
            get(qido::study_instances),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}",
            get(wado::series),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances",
            get(qido::series_instances),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}",
            get(wado::instance),
        )
}

/// Where this service's DICOMweb root is, as the caller reached it (for RetrieveURL).
fn base_url(state: &WebState, headers: &HeaderMap) -> String {
    let scheme = if state.config.http.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| state.config.http.listen.to_string());
    format!("{scheme}://{host}/dicom-web")
}

/// QIDO-RS and metadata answer DICOM JSON; anything else the caller insists on is 406.
fn accept_json(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ok = accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim();
        matches!(
            media,
            "application/dicom+json" | "application/json" | "*/*" | "application/*"
        )
    });
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "search results are served as application/dicom+json",
        ))
    }
}

fn problem_of(e: CatalogError) -> Problem {
    Problem::from_fault(e.fault(), e)
}
