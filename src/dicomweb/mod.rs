//! The DICOMweb edge (PS3.18) under `/dicom-web`: QIDO-RS search, WADO-RS retrieval (objects,
//! metadata, frames, bulk data, rendered frames) and STOW-RS storage.
//!
//! Routes sit behind the HTTP authentication layer like every other; each handler takes the
//! caller's [`Principal`](crate::access::Principal) to the catalog (reads) or to ingest
//! (STOW-RS), so scope, audit and durability are those of the DICOM edge. This module maps
//! results to HTTP and DICOM JSON only.

mod accept;
mod frames;
mod json;
mod metadata;
mod qido;
mod stow;
mod wado;

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::catalog::{CatalogError, Selection};
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
            get(wado::retrieve).post(stow::study),
        )
        .route("/dicom-web/studies/{study}/series", get(qido::study_series))
        .route(
            "/dicom-web/studies/{study}/instances",
            get(qido::study_instances),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}",
            get(wado::retrieve),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances",
            get(qido::series_instances),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}",
            get(wado::retrieve),
        )
        .route(
            "/dicom-web/studies/{study}/metadata",
            get(metadata::metadata),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/metadata",
            get(metadata::metadata),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(metadata::metadata),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            get(frames::frames),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
            get(frames::frame_rendered),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/rendered",
            get(frames::instance_rendered),
        )
        .route(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/bulk/{*path}",
            get(frames::bulk),
        )
}

/// Where this service's DICOMweb root is, as the caller reached it (for RetrieveURL and
/// BulkDataURI): the configured public address, else the request's Host.
fn base_url(state: &WebState, headers: &HeaderMap) -> String {
    let public = state.config.http.public_url.trim_end_matches('/');
    if !public.is_empty() {
        return format!("{public}/dicom-web");
    }
    let (scheme, default_port) = if state.config.http.tls_enabled() {
        ("https", 443)
    } else {
        ("http", 80)
    };
    let port = state.config.http.listen.port();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map(|h| {
            // Some clients (dicomweb-client among them) send Host without the port they
            // connected to; the URL must still lead back here.
            let has_port = h.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']'));
            if has_port || port == default_port {
                h.to_owned()
            } else {
                format!("{h}:{port}")
            }
        })
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

/// The study, series and instance a resource path names, as a catalog selection.
pub struct Target(pub Selection);

impl<S: Send + Sync> FromRequestParts<S> for Target {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let one = |name: &str| params.get(name).cloned().into_iter().collect();
        Ok(Target(Selection {
            study_uids: one("study"),
            series_uids: one("series"),
            sop_instance_uids: one("instance"),
        }))
    }
}

fn problem_of(e: CatalogError) -> Problem {
    Problem::from_fault(e.fault(), e)
}
