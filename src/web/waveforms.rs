//! `GET /api/waveforms/{study}/{series}/{instance}`: a DICOM waveform object's groups and
//! channels, and a window of samples for a viewer: raw values when they fit in `points`, else
//! min/max pairs per span (an overview of a whole 24-hour Holter recording). Only the headers
//! and the asked-for samples are read from the store. Scoped and audited like any retrieval:
//! another clinic's recording is not found.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::journal::query;
use super::{Problem, WebState};
use crate::access::{Action, Principal};
use crate::catalog::{CatalogError, Selection};

/// Most points per channel one answer carries.
const MAX_POINTS: u64 = 20_000;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Multiplex group, from 0.
    group: Option<usize>,
    /// Start, in seconds from the beginning of the recording.
    start: Option<f64>,
    /// Length, in seconds; default: to the end.
    seconds: Option<f64>,
    /// Points per channel wanted (default 2,000; at most 20,000).
    points: Option<u64>,
}

fn problem(e: CatalogError) -> Problem {
    match e {
        CatalogError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
        other => Problem::from_fault(other.fault(), other),
    }
}

pub async fn window(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path((study, series, instance)): Path<(String, String, String)>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let answer = async {
        let p = query(params)?;
        let selection = Selection {
            study_uids: vec![study],
            series_uids: vec![series],
            sop_instance_uids: vec![instance],
        };
        let hit = state
            .catalog
            .retrieve(&who, &selection, Action::ReadPixels, "waveform view")
            .await
            .map_err(problem)?
            .into_iter()
            .next()
            .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no such instance"))?;
        let recording = state.catalog.waveforms(&hit).await.map_err(problem)?;
        let groups = &recording.groups;
        if groups.is_empty() {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the instance holds no waveform",
            ));
        }
        let index = p.group.unwrap_or(0);
        let group = groups.get(index).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                format!("the instance has {} waveform groups", groups.len()),
            )
            .with_field("group")
        })?;
        let start = p.start.unwrap_or(0.0);
        let seconds = p.seconds.unwrap_or(group.seconds());
        if !(start.is_finite() && seconds.is_finite() && start >= 0.0 && seconds > 0.0) {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "start must be 0 or more and seconds more than 0",
            ));
        }
        let points = p.points.unwrap_or(2_000).clamp(1, MAX_POINTS);
        let first = (start * group.frequency) as u64;
        let count = (seconds * group.frequency).ceil() as u64;
        let window = state
            .catalog
            .waveform_window(&hit, group, first, count, points)
            .await
            .map_err(problem)?;
        let from = window.first as f64 / group.frequency;
        let to = (window.first + window.count) as f64 / group.frequency;
        let channel_label = |&(g, c): &(usize, usize)| {
            groups
                .get(g)
                .and_then(|g| g.channels.get(c))
                .map(|c| c.label.clone())
        };
        // The annotations on this group within the window: the whole recording's for an
        // overview, a strip's own for a strip.
        let annotations: Vec<_> = recording
            .annotations
            .iter()
            .filter(|a| a.concerns(index) && a.overlaps(from, to))
            .map(|a| {
                json!({
                    "label": a.label,
                    "start": a.start,
                    "end": a.end,
                    "channels": a.channels.iter().filter_map(channel_label).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(Json(json!({
            "groups": groups.iter().map(|g| json!({
                "label": g.label,
                "frequency": g.frequency,
                "samples": g.samples,
                "seconds": g.seconds(),
                "channels": g.channels.iter().map(|c| json!({"label": c.label, "unit": c.unit})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "group": index,
            "start": from,
            "samples": window.count,
            "samples_per_point": window.per_point,
            "mode": if window.per_point > 1 { "minmax" } else { "raw" },
            "values": window.values,
            "annotations": annotations,
            "annotations_total": recording.annotations_total,
        }))
        .into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}
