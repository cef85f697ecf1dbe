//! WADO-RS (PS3.18 10.4): studies, series and instances as `multipart/related;
//! type="application/dicom"`, each part a stored Part 10 object exactly as archived.
//!
//! The body is a stream: part headers are interleaved with object streams from the store, so a
//! study of any size is served with a few buffers of memory. Objects are never transcoded: a
//! caller that will accept only another transfer syntax gets 406 (PS3.18 8.7.3.5).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures::stream::{self, StreamExt};

use super::{problem_of, DicomWebState, Target};
use crate::access::{Action, Principal};
use crate::catalog::Selection;
use crate::index::Hit;
use crate::web::Problem;

/// What the caller will take, from its Accept header.
enum Wanted {
    /// Any transfer syntax (ours as stored).
    AsStored,
    /// Only these transfer syntaxes.
    Only(Vec<String>),
}

/// Reads `Accept` for `multipart/related; type="application/dicom"` (the default when absent).
fn wanted(headers: &HeaderMap) -> Result<Wanted, Problem> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Wanted::AsStored);
    };
    let mut syntaxes = Vec::new();
    let mut acceptable = false;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_owned(),
                )
            })
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let dicom_part = match media.as_str() {
            "*/*" | "multipart/*" => true,
            "multipart/related" => param("type").is_none_or(|t| t == "application/dicom"),
            _ => false,
        };
        if !dicom_part {
            continue;
        }
        acceptable = true;
        match param("transfer-syntax") {
            None => return Ok(Wanted::AsStored),
            Some(ts) if ts == "*" => return Ok(Wanted::AsStored),
            Some(ts) => syntaxes.push(ts),
        }
    }
    if !acceptable {
        return Err(Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "instances are served as multipart/related; type=\"application/dicom\"",
        ));
    }
    Ok(Wanted::Only(syntaxes))
}

async fn send(
    state: DicomWebState,
    who: Principal,
    headers: HeaderMap,
    selection: Selection,
) -> Response {
    let wanted = match wanted(&headers) {
        Ok(w) => w,
        Err(p) => return p.into_response(),
    };
    let hits = match state
        .catalog
        .retrieve(&who, &selection, Action::ReadPixels, "WADO-RS")
        .await
    {
        Ok(hits) => hits,
        Err(e) => return problem_of(e).into_response(),
    };
    if let Wanted::Only(syntaxes) = &wanted {
        if let Some(hit) = hits.iter().find(|h| !syntaxes.contains(&h.transfer_syntax)) {
            return Problem::new(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "instance {} is stored in transfer syntax {} and is not transcoded; \
                     accept transfer-syntax=* or that syntax",
                    hit.sop_instance_uid, hit.transfer_syntax
                ),
            )
            .into_response();
        }
    }
    let boundary = format!("telecardio-{}", uuid::Uuid::new_v4().simple());
    let body = multipart(state, hits, boundary.clone());
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "response").into_response()
        })
}

/// The multipart body: for each object a part header, then the object streamed from the store.
fn multipart(
    state: DicomWebState,
    hits: Vec<Hit>,
    boundary: String,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    stream::iter(hits.into_iter().enumerate())
        .then(move |(i, hit)| {
            let state = state.clone();
            let boundary = boundary.clone();
            async move {
                // The CRLF before a boundary belongs to the delimiter (RFC 2046 5.1.1).
                let lead = if i == 0 { "" } else { "\r\n" };
                let head = Bytes::from(format!(
                    "{lead}--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={}\r\n\r\n",
                    hit.transfer_syntax
                ));
                match state.catalog.object(&hit).await {
                    Ok(object) => stream::once(async move { Ok(head) })
                        .chain(object.map(|chunk| chunk.map_err(std::io::Error::other)))
                        .boxed(),
                    Err(e) => {
                        // The status line is gone: ending the body early is the only signal left.
                        tracing::error!(key = %hit.object_key, error = %e, "stored object unreadable during WADO-RS");
                        stream::once(async move { Err(std::io::Error::other(e.to_string())) }).boxed()
                    }
                }
            }
        })
        .flatten()
        .chain(stream::once(async move { Ok(closing) }))
}

/// A study, series or instance, as named by the path.
pub async fn retrieve(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Target(selection): Target,
    headers: HeaderMap,
) -> Response {
    send(s, who, headers, selection).await
}
