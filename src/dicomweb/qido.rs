//! QIDO-RS (PS3.18 10.6): search for studies, series and instances.
//!
//! Query parameters become the same [`Query`] C-FIND uses, so matching (wildcards, ranges,
//! names without case and diacritics) is identical on both edges; the catalog applies the
//! caller's scope and audits the search. Answers are DICOM JSON, paged by `limit`/`offset`.

use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use futures::StreamExt;
use serde_json::Value;

use super::{base_url, json, problem_of, DicomWebState};
use crate::access::Principal;
use crate::index::Level;
use crate::query::{self, attributes, Key, Model, Query};
use crate::web::Problem;

/// Largest page; a caller asking for more gets this many and a Warning saying more exist.
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Default)]
struct Params {
    keys: Vec<Key>,
    include_all: bool,
    include: Vec<(Tag, VR)>,
    limit: i64,
    offset: i64,
    /// Keys we do not match on (reported in a Warning header, PS3.18 8.3.4.4).
    unsupported: Vec<String>,
}

fn bad(message: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, message)
}

fn parse(level: Level, pairs: &[(String, String)]) -> Result<Params, Problem> {
    let mut p = Params {
        limit: MAX_LIMIT,
        ..Params::default()
    };
    for (name, value) in pairs {
        match name.as_str() {
            "limit" => {
                p.limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(format!("limit `{value}` is not a positive integer")))?
                    .min(MAX_LIMIT)
            }
            "offset" => {
                p.offset = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad(format!("offset `{value}` is not a non-negative integer")))?
            }
            // Names are always matched without case and diacritics; nothing fuzzier is offered.
            "fuzzymatching" => match value.as_str() {
                "true" | "false" => {}
                _ => return Err(bad("fuzzymatching must be true or false")),
            },
            "includefield" => {
                for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if field == "all" {
                        p.include_all = true;
                    } else {
                        let resolved = query::resolve_attribute(field)
                            .map_err(|e| bad(e.to_string()).with_field("includefield"))?;
                        p.include.push(resolved);
                    }
                }
            }
            other => {
                let unknown =
                    |e: query::QueryError| bad(e.to_string()).with_field(other.to_owned());
                // `Sequence.Attribute=value`: a key of the sequence's item (PS3.18 8.3.4.1).
                let (name, item) = match other.split_once('.') {
                    Some((seq, item)) => (seq, Some(item)),
                    None => (other, None),
                };
                let (tag, vr) = query::resolve_attribute(name).map_err(unknown)?;
                let attribute = attributes::attribute(tag).filter(|a| a.level <= level);
                let Some(item) = item else {
                    let matched = attribute.is_some_and(|a| {
                        a.field.is_some() && a.matching != attributes::Matching::Sequence
                    });
                    if !matched {
                        p.unsupported.push(other.to_owned());
                    }
                    p.keys.push(Key::new(tag, vr, value.clone()));
                    continue;
                };
                let (item_tag, item_vr) = query::resolve_attribute(item).map_err(unknown)?;
                let matched = attribute.is_some()
                    && attributes::item_attributes(tag)
                        .iter()
                        .any(|(t, _, _)| *t == item_tag);
                if !matched {
                    p.unsupported.push(other.to_owned());
                }
                let position = match p.keys.iter().position(|k| k.tag == tag) {
                    Some(i) => i,
                    None => {
                        p.keys.push(Key::new(tag, VR::SQ, ""));
                        p.keys.len() - 1
                    }
                };
                p.keys[position]
                    .items
                    .push(Key::new(item_tag, item_vr, value.clone()));
            }
        }
    }
    Ok(p)
}

/// The attributes answered without `includefield` at `level`.
fn defaults(level: Level, include_all: bool) -> Vec<(Tag, VR)> {
    let mut out: Vec<(Tag, VR)> = attributes::ATTRIBUTES
        .iter()
        .filter(|a| {
            let own_level =
                a.level == level || (level == Level::Study && a.level == Level::Patient);
            (include_all && a.level <= level) || (own_level && a.qido_default)
        })
        .map(|a| (a.tag, a.vr))
        .collect();
    out.push((tags::INSTANCE_AVAILABILITY, VR::CS));
    if level >= Level::Series {
        out.push((tags::STUDY_INSTANCE_UID, VR::UI));
    }
    if level >= Level::Instance {
        out.push((tags::SERIES_INSTANCE_UID, VR::UI));
    }
    out
}

async fn search(
    state: DicomWebState,
    who: Principal,
    headers: HeaderMap,
    level: Level,
    path_keys: Vec<(Tag, String)>,
    pairs: Vec<(String, String)>,
) -> Response {
    if let Err(p) = super::accept_json(&headers) {
        return p.into_response();
    }
    let mut params = match parse(level, &pairs) {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    for (tag, value) in path_keys {
        params.keys.retain(|k| k.tag != tag);
        params.keys.push(Key::new(tag, VR::UI, value));
    }
    let mut keys = params.keys.clone();
    for (tag, vr) in defaults(level, params.include_all)
        .into_iter()
        .chain(params.include.iter().copied())
    {
        if !keys.iter().any(|k| k.tag == tag) {
            keys.push(Key::new(tag, vr, ""));
        }
    }
    let query = match Query::new(Model::Web, level, keys) {
        Ok(q) => q,
        Err(e) => return bad(e.to_string()).into_response(),
    };
    let base = base_url(&state, &headers);
    // One extra match tells whether more pages exist.
    let matches = match state
        .catalog
        .find(&who, &query, Some(params.limit + 1), params.offset)
        .await
    {
        Ok(m) => m,
        Err(e) => return problem_of(e).into_response(),
    };
    let hits: Vec<_> = matches.collect().await;
    let mut results: Vec<Value> = Vec::with_capacity(hits.len());
    let more = hits.len() as i64 > params.limit;
    for hit in hits.into_iter().take(params.limit as usize) {
        let hit = match hit {
            Ok(hit) => hit,
            Err(e) => return problem_of(e).into_response(),
        };
        let answers = query::answer(&query, &hit, "");
        let url = match level {
            Level::Patient | Level::Study => format!("{base}/studies/{}", hit.study_uid),
            Level::Series => format!("{base}/studies/{}/series/{}", hit.study_uid, hit.series_uid),
            Level::Instance => format!(
                "{base}/studies/{}/series/{}/instances/{}",
                hit.study_uid, hit.series_uid, hit.sop_instance_uid
            ),
        };
        results.push(json::dataset(
            &answers,
            &[(tags::RETRIEVE_URL, VR::UR, url)],
        ));
    }
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/dicom+json")],
        Value::Array(results).to_string(),
    )
        .into_response();
    let mut warnings = Vec::new();
    if more {
        warnings.push(
            "299 telecardio \"There are additional results that can be requested\"".to_owned(),
        );
    }
    if !params.unsupported.is_empty() {
        warnings.push(format!(
            "299 telecardio \"The following attributes were not supported for matching: {}\"",
            params.unsupported.join(", ")
        ));
    }
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&w) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

type Pairs = UrlQuery<Vec<(String, String)>>;

pub async fn studies(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    UrlQuery(q): Pairs,
) -> Response {
    search(s, who, headers, Level::Study, vec![], q).await
}

pub async fn all_series(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    UrlQuery(q): Pairs,
) -> Response {
    search(s, who, headers, Level::Series, vec![], q).await
}

pub async fn study_series(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Path(study): Path<String>,
    headers: HeaderMap,
    UrlQuery(q): Pairs,
) -> Response {
    let keys = vec![(tags::STUDY_INSTANCE_UID, study)];
    search(s, who, headers, Level::Series, keys, q).await
}

pub async fn all_instances(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    UrlQuery(q): Pairs,
) -> Response {
    search(s, who, headers, Level::Instance, vec![], q).await
}

pub async fn study_instances(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Path(study): Path<String>,
    headers: HeaderMap,
    UrlQuery(q): Pairs,
) -> Response {
    let keys = vec![(tags::STUDY_INSTANCE_UID, study)];
    search(s, who, headers, Level::Instance, keys, q).await
}

pub async fn series_instances(
    State(s): State<DicomWebState>,
    Extension(who): Extension<Principal>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
    UrlQuery(q): Pairs,
) -> Response {
    let keys = vec![
        (tags::STUDY_INSTANCE_UID, study),
        (tags::SERIES_INSTANCE_UID, series),
    ];
    search(s, who, headers, Level::Instance, keys, q).await
}
