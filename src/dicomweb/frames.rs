//! WADO-RS pixel and bulk data (PS3.18 10.4.1.1.3–5): frames, bulk data and rendered frames.
//!
//! Frames are read by byte range from the stored object (see [`crate::pixels::layout`]) and
//! served as stored: native frames as `application/octet-stream` in Explicit VR Little Endian
//! byte order, encapsulated ones with their compressed media type. Nothing is transcoded; a
//! caller that will take nothing we have gets 406. Rendering decodes one frame only.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;

use super::accept;
use super::metadata::{parse_path, Step};
use super::{problem_of, DicomWebState};
use crate::access::{Action, Principal};
use crate::catalog::{CatalogError, Selection};
use crate::index::Hit;
use crate::pixels::render::{self, Format, FrameBytes};
use crate::pixels::{self, Geometry, Layout, PixelData, PixelError};
use crate::web::Problem;

/// The most frames one request may list.
const MAX_FRAMES_PER_REQUEST: usize = 10_000;

fn instance_selection(study: String, series: String, instance: String) -> Selection {
    Selection {
        study_uids: vec![study],
        series_uids: vec![series],
        sop_instance_uids: vec![instance],
    }
}

/// The retrieved instance and its layout, or the problem to answer.
async fn open(
    state: &DicomWebState,
    who: &Principal,
    selection: Selection,
    purpose: &str,
) -> Result<(Hit, Layout), Response> {
    let hits = state
        .catalog
        .retrieve(who, &selection, Action::ReadPixels, purpose)
        .await
        .map_err(|e| problem_of(e).into_response())?;
    let Some(hit) = hits.into_iter().next() else {
        return Err(Problem::new(StatusCode::NOT_FOUND, "no such instance").into_response());
    };
    let layout = state
        .catalog
        .layout(&hit)
        .await
        .map_err(|e| pixel_problem(e).into_response())?;
    Ok((hit, layout))
}

/// Pixel errors a client can act on (406 for what we do not produce) before the general map.
fn pixel_problem(e: CatalogError) -> Problem {
    match &e {
        CatalogError::Pixels(p) if p.not_acceptable() => {
            Problem::new(StatusCode::NOT_ACCEPTABLE, e.to_string())
        }
        _ => problem_of(e),
    }
}

/// The frames of `layout` (1-based numbers) as byte ranges.
fn frame_ranges(
    layout: &Layout,
    numbers: &[u32],
) -> Result<Vec<Vec<std::ops::Range<u64>>>, PixelError> {
    let object = pixels::header_object(layout)?;
    let geometry = Geometry::of(&object)?;
    numbers
        .iter()
        .map(|n| layout.frame(*n, geometry.frames, geometry.frame_bytes()))
        .collect()
}

/// `1,3,5` → frame numbers; anything else is a 400.
fn frame_list(text: &str) -> Result<Vec<u32>, Problem> {
    let numbers: Result<Vec<u32>, _> = text.split(',').map(|n| n.trim().parse::<u32>()).collect();
    match numbers {
        Ok(n) if !n.is_empty() && n.len() <= MAX_FRAMES_PER_REQUEST && !n.contains(&0) => Ok(n),
        _ => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("frame list `{text}` is not a comma-separated list of frame numbers from 1"),
        )),
    }
}

/// A multipart body: one part per entry, each a stream of bytes.
fn multipart_response(
    media: &str,
    transfer_syntax: &str,
    parts: Vec<BoxStream<'static, Result<Bytes, std::io::Error>>>,
) -> Response {
    let boundary = format!("telecardio-{}", uuid::Uuid::new_v4().simple());
    let head = format!("Content-Type: {media}; transfer-syntax={transfer_syntax}\r\n\r\n");
    let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    let body = stream::iter(parts.into_iter().enumerate().map({
        let boundary = boundary.clone();
        move |(i, part)| {
            let lead = if i == 0 { "" } else { "\r\n" };
            let head = Bytes::from(format!("{lead}--{boundary}\r\n{head}"));
            stream::once(async move { Ok(head) }).chain(part).boxed()
        }
    }))
    .flatten()
    .chain(stream::once(async move { Ok(closing) }));
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/related; type=\"{media}\"; boundary={boundary}"),
        )
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "response").into_response()
        })
}

/// The media type frames of `layout` are labelled with for this caller, or 406.
fn negotiate(headers: &HeaderMap, layout: &Layout) -> Result<&'static str, Problem> {
    let ts = pixels::frame_transfer_syntax(layout);
    let (media, native) = match layout.pixel_data {
        Some(PixelData::Encapsulated { .. }) => (pixels::frame_media_type(ts), false),
        _ => ("application/octet-stream", true),
    };
    accept::ranges(headers)
        .iter()
        .find_map(|r| r.part_media(media, ts, native))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "frames are stored as {media} in transfer syntax {ts} and are not transcoded"
                ),
            )
        })
}

fn io_stream(
    s: BoxStream<'static, Result<Bytes, crate::archive::ArchiveError>>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    s.map(|r| r.map_err(std::io::Error::other)).boxed()
}

pub async fn frames(
    State(state): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let numbers = match frame_list(&list) {
        Ok(n) => n,
        Err(p) => return p.into_response(),
    };
    let selection = instance_selection(study, series, instance);
    let (hit, layout) = match open(&state, &who, selection, "WADO-RS frames").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let media = match negotiate(&headers, &layout) {
        Ok(m) => m,
        Err(p) => return p.into_response(),
    };
    let ranges = match frame_ranges(&layout, &numbers) {
        Ok(r) => r,
        Err(e) => return pixel_problem(e.into()).into_response(),
    };
    let parts = ranges
        .into_iter()
        .map(|r| io_stream(state.catalog.ranges(&hit, r)))
        .collect();
    multipart_response(media, pixels::frame_transfer_syntax(&layout), parts)
}

pub async fn bulk(
    State(state): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Path((study, series, instance, path)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(steps) = parse_path(&path) else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            format!("`{path}` is not a bulk data path (GGGGEEEE[/item/GGGGEEEE…])"),
        )
        .into_response();
    };
    let selection = instance_selection(study, series, instance);
    let (hit, layout) = match open(&state, &who, selection, "WADO-RS bulk data").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let pixel_tag = Step::Attribute(dicom_dictionary_std::tags::PIXEL_DATA);
    if steps == [pixel_tag] {
        let media = match negotiate(&headers, &layout) {
            Ok(m) => m,
            Err(p) => return p.into_response(),
        };
        let ts = pixels::frame_transfer_syntax(&layout).to_owned();
        return match &layout.pixel_data {
            None => problem_of(PixelError::NoPixelData.into()).into_response(),
            Some(PixelData::Native { value, .. }) => {
                let part = io_stream(state.catalog.ranges(&hit, vec![value.clone()]));
                multipart_response(media, &ts, vec![part])
            }
            Some(PixelData::Encapsulated { .. }) => {
                let frames = match frame_count(&layout) {
                    Ok(n) => n,
                    Err(e) => return pixel_problem(e.into()).into_response(),
                };
                let numbers: Vec<u32> = (1..=frames).collect();
                match frame_ranges(&layout, &numbers) {
                    Ok(ranges) => multipart_response(
                        media,
                        &ts,
                        ranges
                            .into_iter()
                            .map(|r| io_stream(state.catalog.ranges(&hit, r)))
                            .collect(),
                    ),
                    Err(e) => pixel_problem(e.into()).into_response(),
                }
            }
        };
    }
    let bytes = match element_bytes(&layout, &steps) {
        Ok(b) => b,
        Err(e) => return pixel_problem(e.into()).into_response(),
    };
    let wanted = accept::ranges(&headers)
        .iter()
        .find_map(|r| r.part_media("application/octet-stream", "1.2.840.10008.1.2.1", true));
    let Some(media) = wanted else {
        return Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "bulk data is served as application/octet-stream",
        )
        .into_response();
    };
    let part = stream::once(async move { Ok(bytes) }).boxed();
    multipart_response(media, "1.2.840.10008.1.2.1", vec![part])
}

fn frame_count(layout: &Layout) -> Result<u32, PixelError> {
    Ok(Geometry::of(&pixels::header_object(layout)?)?.frames)
}

/// The value bytes of the (non-pixel) attribute at `steps`.
fn element_bytes(layout: &Layout, steps: &[Step]) -> Result<Bytes, PixelError> {
    let object = pixels::header_object(layout)?;
    let missing = || PixelError::NoAttribute(super::metadata::path_text(steps));
    let mut here = &object;
    let mut steps = steps.iter().peekable();
    while let Some(step) = steps.next() {
        let Step::Attribute(tag) = step else {
            return Err(missing());
        };
        let element = here.get(*tag).ok_or_else(missing)?;
        match steps.next() {
            None => {
                let value = element.value().primitive().ok_or_else(missing)?;
                return Ok(Bytes::copy_from_slice(&value.to_bytes()));
            }
            Some(Step::Item(i)) => {
                here = element
                    .items()
                    .and_then(|items| items.get(*i))
                    .ok_or_else(missing)?;
            }
            Some(Step::Attribute(_)) => return Err(missing()),
        }
    }
    Err(missing())
}

#[derive(Debug, Deserialize)]
pub struct RenderParams {
    quality: Option<u8>,
}

/// Which image format the caller takes, in its order of preference; JPEG when it does not say.
fn render_format(headers: &HeaderMap, quality: Option<u8>) -> Result<Format, Problem> {
    let jpeg = Format::Jpeg {
        quality: quality.unwrap_or(90),
    };
    for range in accept::ranges(headers) {
        if range.admits("image/jpeg") {
            return Ok(jpeg);
        }
        if range.admits("image/png") {
            return Ok(Format::Png);
        }
    }
    Err(Problem::new(
        StatusCode::NOT_ACCEPTABLE,
        "rendered frames are served as image/jpeg or image/png",
    ))
}

async fn rendered(
    state: DicomWebState,
    who: Principal,
    selection: Selection,
    frame: Option<u32>,
    headers: HeaderMap,
    params: RenderParams,
) -> Response {
    let (hit, layout) = match open(&state, &who, selection, "WADO-RS rendered").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // An Encapsulated PDF's rendered form is its PDF (PS3.18 9.5.1.2.1), for a reader to open.
    if hit.sop_class_uid == ENCAPSULATED_PDF && frame.is_none() {
        return pdf(&state, &hit, &headers).await;
    }
    let format = match render_format(&headers, params.quality) {
        Ok(f) => f,
        Err(p) => return p.into_response(),
    };
    match render_frame(&state, &hit, layout, frame, format).await {
        Ok(image) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, format.media_type())],
            image,
        )
            .into_response(),
        Err(e) => pixel_problem(e).into_response(),
    }
}

const ENCAPSULATED_PDF: &str = "1.2.840.10008.5.1.4.1.1.104.1";

async fn pdf(state: &DicomWebState, hit: &Hit, headers: &HeaderMap) -> Response {
    if !accept::ranges(headers)
        .iter()
        .any(|r| r.admits("application/pdf"))
    {
        return Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "an Encapsulated PDF is rendered as application/pdf",
        )
        .into_response();
    }
    match state.catalog.document(hit).await {
        Ok(document) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/pdf"),
                // Saved, not shown inline: our pages' policy forbids plugins, and a reader
                // opens it in the PDF reader they trust.
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"document.pdf\"",
                ),
            ],
            document,
        )
            .into_response(),
        Err(e) => pixel_problem(e).into_response(),
    }
}

async fn render_frame(
    state: &DicomWebState,
    hit: &Hit,
    layout: Layout,
    frame: Option<u32>,
    format: Format,
) -> Result<Vec<u8>, CatalogError> {
    let object = pixels::header_object(&layout)?;
    let geometry = Geometry::of(&object)?;
    let number = match frame {
        Some(n) => n,
        None if geometry.frames == 1 => 1,
        None => {
            return Err(PixelError::Unsupported(format!(
                "the instance has {} frames; ask for one with /frames/{{n}}/rendered",
                geometry.frames
            ))
            .into())
        }
    };
    let pixels = layout.pixel_data.clone().ok_or(PixelError::NoPixelData)?;
    let ranges = layout.frame(number, geometry.frames, geometry.frame_bytes())?;
    let chunks = state.catalog.read_ranges(hit, &ranges).await?;
    let bytes = match pixels {
        PixelData::Native { .. } => FrameBytes::Native(chunks.concat()),
        PixelData::Encapsulated { .. } => {
            FrameBytes::Fragments(chunks.into_iter().map(|c| c.to_vec()).collect())
        }
    };
    let ts = layout.transfer_syntax.clone();
    tokio::task::spawn_blocking(move || render::render(object, &ts, &pixels, bytes, format))
        .await
        .map_err(|e| PixelError::Decode(e.to_string()))?
        .map_err(CatalogError::from)
}

pub async fn instance_rendered(
    State(state): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Path((study, series, instance)): Path<(String, String, String)>,
    Query(params): Query<RenderParams>,
    headers: HeaderMap,
) -> Response {
    let selection = instance_selection(study, series, instance);
    rendered(state, who, selection, None, headers, params).await
}

pub async fn frame_rendered(
    State(state): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Path((study, series, instance, frame)): Path<(String, String, String, String)>,
    Query(params): Query<RenderParams>,
    headers: HeaderMap,
) -> Response {
    let number = match frame_list(&frame) {
        Ok(n) if n.len() == 1 => n[0],
        _ => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                format!("`{frame}` is not one frame number; /rendered takes a single frame"),
            )
            .into_response()
        }
    };
    let selection = instance_selection(study, series, instance);
    rendered(state, who, selection, Some(number), headers, params).await
}
