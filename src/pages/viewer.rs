//! The diagnostic viewer: the OHIF Viewer's prebuilt application, installed by
//! `deploy/viewer.sh` (not in the repository), served under `/viewer/` to signed-in people,
//! and configured by us for our own DICOMweb on the same origin, so every study, series and
//! frame it loads goes through the session's scope and the access audit like any other read.
//!
//! Only here does the Content-Security-Policy allow what the viewer needs (its inline start-up
//! script, WebAssembly codecs, workers from blobs); our own pages keep the strict one.

use std::path::{Component, Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream;
use tokio::io::AsyncReadExt;

use super::{problem, Visit};
use crate::web::WebState;

const VIEWER_POLICY: &str = "default-src 'self'; \
    script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:; \
    worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
    font-src 'self' data:; connect-src 'self' data: blob:; media-src 'self' blob:; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The viewer's settings: our DICOMweb root on this origin, studies opened by UID from our
/// case pages (no study list of its own: finding studies is the worklist's job).
const APP_CONFIG: &str = r#"window.config = {
  routerBasename: '/viewer',
  showStudyList: false,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  investigationalUseDialog: { option: 'never' },
  extensions: [],
  modes: [],
  defaultDataSourceName: 'telecardio',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'telecardio',
      configuration: {
        friendlyName: 'telecardio',
        name: 'telecardio',
        wadoUriRoot: '/dicom-web',
        qidoRoot: '/dicom-web',
        wadoRoot: '/dicom-web',
        qidoSupportsIncludeField: false,
        supportsReject: false,
        supportsStow: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'pdf,video',
        omitQuotationForMultipartRequest: true,
        bulkDataURI: { enabled: true },
      },
    },
  ],
};
"#;

fn media_type(path: &FsPath) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "xml" => "application/xml",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `rest` under `root`, or None when it would leave it.
fn inside(root: &FsPath, rest: &str) -> Option<PathBuf> {
    let relative = FsPath::new(rest);
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(relative))
}

fn with_policy(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(VIEWER_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

async fn file(path: &FsPath) -> Option<Response> {
    let opened = tokio::fs::File::open(path).await.ok()?;
    let length = opened.metadata().await.ok().filter(|m| m.is_file())?.len();
    // Streamed in pieces: the viewer's codecs are several megabytes each.
    let body = stream::unfold(Some(opened), |state| async move {
        let mut reader = state?;
        let mut buffer = vec![0; 256 * 1024];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buffer)), Some(reader)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Some(
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(media_type(path)),
                ),
                (header::CONTENT_LENGTH, HeaderValue::from(length)),
            ],
            Body::from_stream(body),
        )
            .into_response(),
    )
}

pub async fn root(state: State<WebState>, visit: Visit) -> Response {
    serve(state, visit, Path(String::new())).await
}

pub async fn serve(
    State(state): State<WebState>,
    visit: Visit,
    Path(rest): Path<String>,
) -> Response {
    let root = state.config.data_path(&state.config.viewer.dir);
    if !root.join("index.html").is_file() {
        let c = visit.chrome("viewer.title", "viewer");
        return problem(c, StatusCode::SERVICE_UNAVAILABLE, "viewer.missing");
    }
    if rest == "app-config.js" {
        let response = (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            APP_CONFIG,
        )
            .into_response();
        return with_policy(response, "no-cache");
    }
    let Some(path) = inside(&root, &rest) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    if !rest.is_empty() && rest != "index.html" {
        if let Some(response) = file(&path).await {
            return with_policy(response, "public, max-age=86400");
        }
        // A missing asset is not found; anything else is one of the viewer's own routes.
        if FsPath::new(&rest).extension().is_some() {
            return (StatusCode::NOT_FOUND, "no such file").into_response();
        }
    }
    match file(&root.join("index.html")).await {
        Some(response) => with_policy(response, "no-cache"),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_viewer() {
        let root = FsPath::new("/srv/viewer");
        assert_eq!(
            inside(root, "assets/a.js"),
            Some(PathBuf::from("/srv/viewer/assets/a.js"))
        );
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", "./x"] {
            assert_eq!(inside(root, bad), None, "{bad}");
        }
    }
}
