//! STOW-RS (PS3.18 10.5): `multipart/related; type="application/dicom"` uploads, each part a
//! Part 10 file streamed straight into ingest: the same checks, the same create-only durable
//! store and index commit as C-STORE, before the answer says "stored". The answer lists every
//! instance: referenced (stored, perhaps with a warning) or failed with a reason.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use dicom_core::VR;
use dicom_dictionary_std::tags;
use futures::StreamExt;
use serde_json::{json, Value};

use super::json::{attribute, tag_key};
use super::{base_url, DicomWebState};
use crate::access::{Action, Principal};
use crate::catalog;
use crate::index::Recorded;
use crate::ingest::{IngestError, Origin, Stored};
use crate::web::Problem;

/// Failure reasons (PS3.4 B.2.3 statuses, as PS3.18 10.5.3 uses them).
const PROCESSING_FAILURE: u16 = 0x0110;
const OUT_OF_RESOURCES: u16 = 0xA700;
const DATA_SET_MISMATCH: u16 = 0xA900;
const CANNOT_UNDERSTAND: u16 = 0xC000;
const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
const NOT_AUTHORIZED: u16 = 0x0124;
/// Warning: coercion of data elements (our "kept beside other content under this UID").
const WARNING_CONFLICT: u16 = 0xB000;

struct Outcome {
    sop_class_uid: String,
    sop_instance_uid: String,
    result: Result<Stored, IngestError>,
}

fn failure_reason(e: &IngestError) -> u16 {
    match e {
        IngestError::Mismatch { .. } | IngestError::TransferSyntax(_) => DATA_SET_MISMATCH,
        IngestError::SopClass(_) => SOP_CLASS_NOT_SUPPORTED,
        IngestError::Foreign { .. } => NOT_AUTHORIZED,
        IngestError::TooLarge { .. } | IngestError::Store(_) | IngestError::Index(_) => {
            OUT_OF_RESOURCES
        }
        IngestError::Internal(_) => PROCESSING_FAILURE,
        _ => CANNOT_UNDERSTAND,
    }
}

/// The boundary of a `multipart/related; type="application/dicom"` body.
fn boundary(headers: &HeaderMap) -> Result<String, Problem> {
    let unsupported = || {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send multipart/related; type=\"application/dicom\" with a boundary",
        )
    };
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsupported)?;
    let mut parts = value.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("multipart/related"))
    {
        return Err(unsupported());
    }
    let mut boundary = None;
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "type" if !v.eq_ignore_ascii_case("application/dicom") => return Err(unsupported()),
                "boundary" => boundary = Some(v.to_owned()),
                _ => {}
            }
        }
    }
    boundary.filter(|b| !b.is_empty()).ok_or_else(unsupported)
}

async fn stow(
    state: DicomWebState,
    who: Principal,
    headers: HeaderMap,
    study: Option<String>,
    body: Body,
) -> Response {
    let mut event = catalog::event(&who, "store");
    event.study_uid = study.clone().unwrap_or_default();
    if let Err(denied) = state.catalog.policy().permit(&who, Action::Store) {
        event.outcome = format!("denied: {denied}");
        state.audit.record(event).await;
        return Problem::new(StatusCode::FORBIDDEN, denied.to_string()).into_response();
    }
    let boundary = match boundary(&headers) {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let limit = state.config.http.max_body_bytes;
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let stream = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        let total = counter.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
        if total > limit {
            return Err(std::io::Error::other(format!(
                "request body exceeds {limit} bytes"
            )));
        }
        Ok(chunk)
    });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let origin = Origin {
        clinic_id: who.institution.clone(),
        calling_ae: "STOW-RS".into(),
        sender: who.clone(),
        made_here: false,
    };
    let mut outcomes = Vec::new();
    let mut broken = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                broken = Some(e.to_string());
                break;
            }
        };
        let mut receiving = state.ingest.begin_part10(origin.clone(), study.clone());
        let mut cut = None;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => receiving.write(&chunk).await,
                Ok(None) => break,
                Err(e) => {
                    cut = Some(e.to_string());
                    break;
                }
            }
        }
        let (sop_class_uid, sop_instance_uid) = receiving
            .declared()
            .map(|d| (d.sop_class_uid.clone(), d.sop_instance_uid.clone()))
            .unwrap_or_default();
        if let Some(why) = cut {
            // The part never arrived whole: store nothing of it.
            receiving.abort().await;
            broken = Some(why);
            outcomes.push(Outcome {
                sop_class_uid,
                sop_instance_uid,
                result: Err(IngestError::NotPart10("the upload was cut short".into())),
            });
            break;
        }
        let result = receiving.finish().await;
        if let Err(e) = &result {
            tracing::info!(sop_instance_uid = %sop_instance_uid, error = %e, "STOW-RS instance refused");
        }
        outcomes.push(Outcome {
            sop_class_uid,
            sop_instance_uid,
            result,
        });
    }
    if outcomes.is_empty() {
        let why = broken.unwrap_or_else(|| "no parts".into());
        event.outcome = format!("refused: {why}");
        state.audit.record(event).await;
        return Problem::new(
            StatusCode::BAD_REQUEST,
            format!("no DICOM instance in the upload: {why}"),
        )
        .into_response();
    }
    answer(&state, &headers, &who, event, study, outcomes).await
}

async fn answer(
    state: &DicomWebState,
    headers: &HeaderMap,
    who: &Principal,
    mut event: crate::index::AuditEvent,
    study: Option<String>,
    outcomes: Vec<Outcome>,
) -> Response {
    let base = base_url(state, headers);
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    // Why each instance failed, in words (PS3.18 8.4.4: a Warning header per problem).
    let mut warnings = Vec::new();
    let mut studies: Vec<String> = Vec::new();
    for o in &outcomes {
        let mut item = json!({
            tag_key(tags::REFERENCED_SOP_CLASS_UID): attribute(VR::UI, std::slice::from_ref(&o.sop_class_uid)),
            tag_key(tags::REFERENCED_SOP_INSTANCE_UID): attribute(VR::UI, std::slice::from_ref(&o.sop_instance_uid)),
        });
        match &o.result {
            Ok(stored) => {
                let m = &stored.meta;
                if !studies.contains(&m.study_uid) {
                    studies.push(m.study_uid.clone());
                }
                let url = format!(
                    "{base}/studies/{}/series/{}/instances/{}",
                    m.study_uid, m.series_uid, m.sop_instance_uid
                );
                item[tag_key(tags::RETRIEVE_URL)] = attribute(VR::UR, &[url]);
                if matches!(stored.recorded, Recorded::Conflict { .. }) {
                    item[tag_key(tags::WARNING_REASON)] =
                        attribute(VR::US, &[WARNING_CONFLICT.to_string()]);
                }
                referenced.push(item);
            }
            Err(e) => {
                item[tag_key(tags::FAILURE_REASON)] =
                    attribute(VR::US, &[failure_reason(e).to_string()]);
                failed.push(item);
                let text = format!("{}: {e}", o.sop_instance_uid).replace(['"', '\\'], "'");
                warnings.push(format!("299 telecardio \"{text}\""));
            }
        }
    }
    let mut body = serde_json::Map::new();
    let study_url = study.or_else(|| (studies.len() == 1).then(|| studies[0].clone()));
    if let Some(uid) = study_url {
        body.insert(
            tag_key(tags::RETRIEVE_URL),
            attribute(VR::UR, &[format!("{base}/studies/{uid}")]),
        );
    }
    if !referenced.is_empty() {
        body.insert(
            tag_key(tags::REFERENCED_SOP_SEQUENCE),
            json!({"vr": "SQ", "Value": referenced}),
        );
    }
    if !failed.is_empty() {
        body.insert(
            tag_key(tags::FAILED_SOP_SEQUENCE),
            json!({"vr": "SQ", "Value": failed}),
        );
    }
    let status = match (referenced.is_empty(), failed.is_empty()) {
        (_, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        (true, false) => StatusCode::CONFLICT,
    };
    event.outcome = format!("stored {} failed {}", referenced.len(), failed.len());
    event.detail = format!("STOW-RS by {} of studies {}", who.name, studies.join(","));
    if studies.len() == 1 {
        event.study_uid = studies[0].clone();
    }
    state.audit.record(event).await;
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/dicom+json")],
        Value::Object(body).to_string(),
    )
        .into_response();
    for warning in warnings {
        // Header values take visible ASCII only; anything else in a reason becomes '?'.
        let ascii: String = warning
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(value) = header::HeaderValue::from_str(&ascii) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

pub async fn studies(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    stow(s, who, headers, None, body).await
}

pub async fn study(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    stow(s, who, headers, Some(study), body).await
}
