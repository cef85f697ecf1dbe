//! WADO-RS metadata (PS3.18 10.4.1.1.2): each instance's data set as DICOM JSON, with pixel
//! data and other large binary values replaced by a `BulkDataURI` that `bulk` serves.
//!
//! Only the data set before Pixel Data is read from the store, and instances are answered one
//! after another into a streamed JSON array, so a study of thousands of instances costs one
//! data set of memory at a time.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::{accept_json, base_url, problem_of, DicomWebState, Target};
use crate::access::{Action, Principal};
use crate::catalog::{CatalogError, Selection};
use crate::index::Hit;
use crate::pixels;
use crate::web::Problem;

/// Binary values longer than this are served as bulk data rather than inline base64.
const INLINE_LIMIT: usize = 1024;

/// One step into a data set: an attribute, then (inside a sequence) an item index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Attribute(Tag),
    Item(usize),
}

/// `GGGGEEEE/item/GGGGEEEE…` as used in our bulk data URIs.
pub fn path_text(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Attribute(t) => format!("{:04X}{:04X}", t.group(), t.element()),
            Step::Item(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Parses [`path_text`]: attributes and item indices alternating, starting and ending with an
/// attribute.
pub fn parse_path(text: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for (i, part) in text.split('/').enumerate() {
        if i % 2 == 0 {
            if part.len() != 8 {
                return None;
            }
            let n = u32::from_str_radix(part, 16).ok()?;
            steps.push(Step::Attribute(Tag((n >> 16) as u16, n as u16)));
        } else {
            steps.push(Step::Item(part.parse().ok()?));
        }
    }
    matches!(steps.last(), Some(Step::Attribute(_))).then_some(steps)
}

fn is_binary(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN
    )
}

/// Empties large binary values in place and returns their paths.
fn strip_bulk(object: &mut InMemDicomObject, prefix: &[Step], found: &mut Vec<Vec<Step>>) {
    let tags: Vec<Tag> = object.tags().collect();
    for tag in tags {
        let Some(element) = object.get(tag) else {
            continue;
        };
        let vr = element.vr();
        let mut path = prefix.to_vec();
        path.push(Step::Attribute(tag));
        let large = element
            .value()
            .primitive()
            .is_some_and(|p| p.calculate_byte_len() > INLINE_LIMIT);
        if is_binary(vr) && large {
            object.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
            found.push(path);
        } else if vr == VR::SQ {
            object.update_value(tag, |value| {
                if let Some(items) = value.items_mut() {
                    for (i, item) in items.iter_mut().enumerate() {
                        let mut inner = path.clone();
                        inner.push(Step::Item(i));
                        strip_bulk(item, &inner, found);
                    }
                }
            });
        }
    }
}

/// The DICOM JSON of one instance; `bulk` is the instance's bulk data URI prefix.
pub fn instance_json(layout: &pixels::Layout, bulk: &str) -> Result<Value, pixels::PixelError> {
    let mut object = pixels::header_object(layout)?;
    let mut stripped = Vec::new();
    strip_bulk(&mut object, &[], &mut stripped);
    let mut value = dicom_json::to_value(&object)
        .map_err(|e| pixels::PixelError::Damaged(format!("not representable as JSON: {e}")))?;
    for path in stripped {
        if let Some(slot) = locate(&mut value, &path) {
            slot["BulkDataURI"] = json!(format!("{bulk}/{}", path_text(&path)));
        }
    }
    if let Some(pixels) = &layout.pixel_data {
        let vr = String::from_utf8_lossy(&pixels.vr()).into_owned();
        value["7FE00010"] = json!({ "vr": vr, "BulkDataURI": format!("{bulk}/7FE00010") });
    }
    Ok(value)
}

/// The JSON attribute object at `path`.
fn locate<'v>(root: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    let mut here = root;
    for step in path {
        here = match step {
            Step::Attribute(t) => here.get_mut(format!("{:04X}{:04X}", t.group(), t.element()))?,
            Step::Item(i) => here.get_mut("Value")?.get_mut(*i)?,
        };
    }
    Some(here)
}

/// The URI prefix for bulk data of `hit`.
pub fn bulk_prefix(base: &str, hit: &Hit) -> String {
    format!(
        "{base}/studies/{}/series/{}/instances/{}/bulk",
        hit.study_uid, hit.series_uid, hit.sop_instance_uid
    )
}

async fn answer(
    state: DicomWebState,
    who: Principal,
    headers: HeaderMap,
    selection: Selection,
) -> Response {
    if let Err(p) = accept_json(&headers) {
        return p.into_response();
    }
    let hits = match state
        .catalog
        .retrieve(&who, &selection, Action::ReadMetadata, "WADO-RS metadata")
        .await
    {
        Ok(hits) => hits,
        Err(e) => return problem_of(e).into_response(),
    };
    // The first instance is answered before the status line, so a damaged store is a clean
    // error rather than a truncated body.
    let base = base_url(&state, &headers);
    let first = match describe(&state, &hits[0], &base).await {
        Ok(v) => v,
        Err(e) => return problem_of(e).into_response(),
    };
    let rest = hits.into_iter().skip(1);
    let body = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(format!("[{first}"))) })
        .chain(stream::iter(rest).then(move |hit| {
            let state = state.clone();
            let base = base.clone();
            async move {
                match describe(&state, &hit, &base).await {
                    Ok(v) => Ok(Bytes::from(format!(",{v}"))),
                    Err(e) => {
                        tracing::error!(key = %hit.object_key, error = %e, "metadata unreadable mid-answer");
                        Err(std::io::Error::other(e.to_string()))
                    }
                }
            }
        }))
        .chain(stream::once(async { Ok(Bytes::from_static(b"]")) }));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/dicom+json")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "response").into_response()
        })
}

async fn describe(state: &DicomWebState, hit: &Hit, base: &str) -> Result<Value, CatalogError> {
    let layout = state.catalog.layout(hit).await?;
    let prefix = bulk_prefix(base, hit);
    tokio::task::spawn_blocking(move || instance_json(&layout, &prefix))
        .await
        .map_err(|e| CatalogError::Pixels(pixels::PixelError::Damaged(e.to_string())))?
        .map_err(CatalogError::from)
}

/// Metadata of a study, series or instance, as named by the path.
pub async fn metadata(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Target(selection): Target,
    headers: HeaderMap,
) -> Response {
    answer(s, who, headers, selection).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_paths_round_trip() {
        let path = vec![
            Step::Attribute(Tag(0x5400, 0x0100)),
            Step::Item(0),
            Step::Attribute(Tag(0x5400, 0x1010)),
        ];
        assert_eq!(path_text(&path), "54000100/0/54001010");
        assert_eq!(parse_path("54000100/0/54001010"), Some(path));
        assert_eq!(
            parse_path("7FE00010"),
            Some(vec![Step::Attribute(Tag(0x7FE0, 0x0010))])
        );
        for bad in ["", "7FE0", "54000100/0", "54000100/x/54001010", "ZZZZZZZZ"] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }
}
