//! Our scripts and styles, compiled into the binary and served with a content hash in the
//! address, so a browser may keep them for a year and still never runs an old one.

use std::sync::OnceLock;

use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/web/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/web/style.css"),
    ),
];

fn versions() -> &'static Vec<String> {
    static VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, body)| hex::encode(&Sha256::digest(body.as_bytes())[..6]))
            .collect()
    })
}

/// The address of an asset, with its content version.
pub fn path(name: &str) -> String {
    match FILES.iter().position(|(n, _, _)| *n == name) {
        Some(i) => format!("/assets/{name}?v={}", versions()[i]),
        None => format!("/assets/{name}"),
    }
}

/// Total size of our own scripts and styles, in bytes.
#[cfg(test)]
fn total_bytes() -> usize {
    FILES.iter().map(|(_, _, body)| body.len()).sum()
}

#[derive(serde::Deserialize)]
pub struct Version {
    v: Option<String>,
}

pub async fn serve(Path(name): Path<String>, Query(version): Query<Version>) -> Response {
    let Some(i) = FILES.iter().position(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let (_, media, body) = FILES[i];
    // Only an address naming the current version may be kept for long.
    let cache = if version.v.as_deref() == Some(versions()[i].as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    /// The budget for what every page makes a browser load of ours.
    #[test]
    fn own_scripts_and_styles_stay_small() {
        assert!(
            super::total_bytes() < 200 * 1024,
            "{}",
            super::total_bytes()
        );
    }
}
