//! `POST /api/holter` (a recorder's file with its referral, `multipart/form-data`),
//! `GET /api/holter/{series}` (what was made from it) and `GET /api/holter/{series}/original`
//! (the file as sent). The upload is spooled to disk as it arrives, never held in memory,
//! and refused with 413 once it passes `holter.max_recording_bytes`; the import service
//! decides the rest: 201 for a new copy, 200 for one already made from the same file, 404 for
//! a referral not among the clinic's, 422 naming the field or header entry at fault.

use std::path::{Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::TryStreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::{Problem, WebState};
use crate::access::{Action, Principal};
use crate::holter::{ImportError, Imported, Target, Upload};
use crate::index::HolterOriginal;

/// Largest ISHNE annotation file taken with an upload.
const MAX_ANNOTATION_BYTES: u64 = 64 * 1024 * 1024;
/// Largest text field (a referral id, a code, an order number).
const MAX_FIELD_BYTES: usize = 256;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/holter", post(upload))
        .route("/api/holter/{series}", get(show))
        .route("/api/holter/{series}/original", get(original))
}

fn problem(e: ImportError) -> Problem {
    match (&e, e.field()) {
        (ImportError::TooLarge { .. }, _) => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        (_, Some(field)) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).with_field(field)
        }
        _ => Problem::from_fault(e.fault(), e),
    }
}

fn view(o: &HolterOriginal) -> Value {
    json!({
        "series_uid": o.series_uid,
        "study_uid": o.study_uid,
        "referral_id": o.referral_id,
        "clinic_id": o.clinic_id,
        "instances": o.instances,
        "channels": o.channels,
        "sampling_rate": o.rate,
        "samples": o.samples,
        "started": o.started,
        "annotations": o.annotations,
        "original": {
            "file_name": o.file_name,
            "format": o.format,
            "size_bytes": o.size_bytes,
            "sha256": o.sha256,
            "object_key": o.object_key,
            "href": format!("/api/holter/{}/original", o.series_uid),
        },
        "received_by": o.received_by,
        "received_at": o.received_at,
    })
}

/// Spooled parts, removed when the request is done with them.
struct Spool(Vec<PathBuf>);

impl Drop for Spool {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The request's parts: the recording, its annotations, the text fields.
#[derive(Default)]
struct Form {
    file: Option<(PathBuf, String)>,
    annotations: Option<PathBuf>,
    referral: String,
    patient_code: String,
    order_number: String,
}

fn bad(field: &str, message: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message).with_field(field.to_owned())
}

/// Writes one part to a new file under `dir`, refusing it past `limit` bytes.
async fn spool(
    field: &mut multer::Field<'_>,
    dir: &FsPath,
    spooled: &mut Spool,
    limit: u64,
) -> Result<PathBuf, Problem> {
    let path = dir.join(format!("upload-{}", uuid::Uuid::now_v7()));
    spooled.0.push(path.clone());
    let unavailable = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot spool a Holter upload");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the upload cannot be kept for import now; try again",
        )
    };
    let mut file = tokio::fs::File::create(&path).await.map_err(unavailable)?;
    let mut written = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("multipart body: {e}")))?
    {
        written += chunk.len() as u64;
        if written > limit {
            return Err(problem(ImportError::TooLarge { limit }));
        }
        file.write_all(&chunk).await.map_err(unavailable)?;
    }
    file.flush().await.map_err(unavailable)?;
    Ok(path)
}

async fn read_form(
    state: &WebState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Form, Spool), Problem> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(media).map_err(|_| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data: a `file` part and `referral` (or `patient_code` and `order_number`)",
        )
    })?;
    let dir = crate::holter::import::spool_dir(&state.config);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        tracing::error!(dir = %dir.display(), error = %e, "cannot make the Holter spool");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "uploads cannot be kept now",
        )
    })?;
    let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
    let (mut form, mut spooled) = (Form::default(), Spool(Vec::new()));
    let limit = state.config.holter.max_recording_bytes;
    while let Some(mut field) = parts
        .next_field()
        .await
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let file_name = field
                    .file_name()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned())
                    .unwrap_or_else(|| "recording".into());
                let path = spool(&mut field, &dir, &mut spooled, limit).await?;
                form.file = Some((path, file_name));
            }
            "annotations" => {
                let path = spool(&mut field, &dir, &mut spooled, MAX_ANNOTATION_BYTES).await?;
                form.annotations = Some(path);
            }
            "referral" | "patient_code" | "order_number" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| bad(&name, format!("{name}: {e}")))?;
                if text.len() > MAX_FIELD_BYTES {
                    return Err(bad(
                        &name,
                        format!("{name}: longer than {MAX_FIELD_BYTES} bytes"),
                    ));
                }
                let text = text.trim().to_owned();
                match name.as_str() {
                    "referral" => form.referral = text,
                    "patient_code" => form.patient_code = text,
                    _ => form.order_number = text,
                }
            }
            other => return Err(bad(other, format!("unknown part `{other}`"))),
        }
    }
    Ok((form, spooled))
}

async fn upload(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (form, _spooled) = match read_form(&state, &headers, body).await {
        Ok(read) => read,
        Err(p) => return p.into_response(),
    };
    let Some((path, file_name)) = form.file else {
        return bad("file", "file: the recording is missing").into_response();
    };
    let target = match (form.referral.is_empty(), form.order_number.is_empty()) {
        (false, _) => Target::Referral(form.referral),
        (true, false) if !form.patient_code.is_empty() => Target::Order {
            patient_code: form.patient_code,
            order_number: form.order_number,
        },
        (true, false) => {
            return bad(
                "patient_code",
                "patient_code: an order number goes with the patient's code",
            )
            .into_response()
        }
        (true, true) => {
            return bad(
                "referral",
                "referral: name the referral, or give patient_code and order_number",
            )
            .into_response()
        }
    };
    let upload = Upload {
        path,
        file_name,
        annotations: form.annotations,
    };
    match state.holter.import(&who, &target, &upload).await {
        Ok(done) => answer(&done).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

fn answer(done: &Imported) -> (StatusCode, Json<Value>) {
    let mut body = view(&done.original);
    body["linked"] = json!(done.linked);
    body["left_out"] = json!(done.left_out);
    let code = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (code, Json(body))
}

async fn show(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(series): Path<String>,
) -> Response {
    match state.holter.original(&who, &series, Action::Query).await {
        Ok(o) => Json(view(&o)).into_response(),
        Err(e) => problem(e).into_response(),
    }
}

async fn original(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(series): Path<String>,
) -> Response {
    let found = state
        .holter
        .original(&who, &series, Action::ReadPixels)
        .await;
    let o = match found {
        Ok(o) => o,
        Err(e) => return problem(e).into_response(),
    };
    let stream = match state.holter.original_bytes(&o).await {
        Ok(s) => s,
        Err(e) => return problem(e).into_response(),
    };
    let name: String = o
        .file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, o.size_bytes.to_string())
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        )
        .header("x-content-sha256", o.sha256.clone())
        .body(Body::from_stream(stream.map_err(std::io::Error::other)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The OpenAPI description of these routes, added to the service's document.
pub(super) fn describe(spec: &mut Value) {
    let problem = super::openapi::problem;
    let paths = json!({
        "/api/holter": {"post": {
            "summary": "Import a Holter recording (ISHNE 1.0, EDF, EDF+) for one of the clinic's referrals; clinics only",
            "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "annotations": {"type": "string", "format": "binary", "description": "ISHNE beat annotations (.ann)"},
                    "referral": {"type": "string", "description": "the referral's id"},
                    "patient_code": {"type": "string", "description": "with order_number, instead of referral"},
                    "order_number": {"type": "string"}
                }}}}},
            "responses": {
                "201": {"description": "Imported: the original kept, the DICOM copy stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HolterCopy"}}}},
                "200": {"description": "This file was already imported for this referral", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HolterCopy"}}}},
                "400": problem(), "403": problem(), "404": problem(), "413": problem(), "415": problem(),
                "422": {"description": "Not an acceptable recording; `field` names the header entry or part at fault",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                "503": problem()
            }
        }},
        "/api/holter/{series}": {"get": {
            "summary": "The Holter copy whose DICOM series this is, and its original",
            "parameters": [{"name": "series", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The copy", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HolterCopy"}}}}, "403": problem(), "404": problem()}
        }},
        "/api/holter/{series}/original": {"get": {
            "summary": "The recording as the clinic sent it, byte for byte (its SHA-256 in x-content-sha256)",
            "parameters": [{"name": "series", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The file", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "403": problem(), "404": problem()}
        }}
    });
    let schema = json!({
        "HolterCopy": {
            "type": "object",
            "properties": {
                "series_uid": {"type": "string"}, "study_uid": {"type": "string"},
                "referral_id": {"type": "string"}, "clinic_id": {"type": "string"},
                "instances": {"type": "integer"}, "channels": {"type": "integer"},
                "sampling_rate": {"type": "integer"}, "samples": {"type": "integer"},
                "started": {"type": "string"}, "annotations": {"type": "integer"},
                "linked": {"type": "boolean"},
                "left_out": {"type": "array", "items": {"type": "string"}},
                "original": {"type": "object", "properties": {
                    "file_name": {"type": "string"}, "format": {"type": "string"},
                    "size_bytes": {"type": "integer"}, "sha256": {"type": "string"},
                    "object_key": {"type": "string"}, "href": {"type": "string"}
                }},
                "received_by": {"type": "string"}, "received_at": {"type": "integer"}
            }
        }
    });
    if let (Some(all), Some(ours)) = (spec["paths"].as_object_mut(), paths.as_object()) {
        all.extend(ours.clone());
    }
    if let (Some(all), Some(ours)) = (
        spec["components"]["schemas"].as_object_mut(),
        schema.as_object(),
    ) {
        all.extend(ours.clone());
    }
}
