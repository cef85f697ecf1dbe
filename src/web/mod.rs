//! The HTTP edge: the routes table, authentication, and the JSON API.
//!
//! Open routes: `/healthz` (load balancers and probes), `/metrics` (loopback clients or a
//! scraper presenting `http.metrics_token`), `POST /api/login`, and the sign-in page with the
//! pages' static assets ([`crate::pages`]). Every other route, the
//! not-found fallback included, sits behind the one authentication layer ([`auth::require`]),
//! so an unauthenticated caller learns nothing but 401; what an authenticated caller may see
//! is decided by the catalog's scope, not by handlers. Behind it, one more layer
//! ([`audited::every_request`]) makes sure every authenticated request leaves an audit record.

pub(crate) mod audit;
mod audited;
pub(crate) mod auth;
mod governance;
mod holter;
mod indicators;
mod journal;
mod openapi;
mod problem;
mod referrals;
mod refusals;
mod reports;
mod retention;
mod serve;
pub(crate) mod session;
mod users;
mod waveforms;
mod worklist;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::json;

use crate::accounts::Accounts;
use crate::archive::Archive;
use crate::audit::AuditTrail;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::index::Index;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::referral::Referrals;
use crate::reports::Reports;
use crate::routing::Routing;
pub use problem::Problem;
pub use serve::{serve, WebError};

#[derive(Clone)]
pub struct WebState {
    pub config: Arc<Config>,
    pub index: Index,
    pub archive: Archive,
    pub metrics: Metrics,
    pub accounts: Accounts,
    pub catalog: Catalog,
    pub ingest: Ingest,
    pub audit: AuditTrail,
    pub referrals: Referrals,
    pub routing: Routing,
    pub reports: Reports,
    pub retention: crate::retention::Retention,
    pub indicators: crate::indicators::Indicators,
    pub holter: crate::holter::Holter,
}

pub fn router(state: WebState) -> Router {
    let protected = Router::new()
        .route("/api/logout", post(session::logout))
        .route("/api/me", get(session::me))
        .route("/api/openapi.json", get(openapi::document))
        .route(
            "/api/referrals",
            post(referrals::create).get(referrals::list),
        )
        .route("/api/referrals/{id}", get(referrals::show))
        .route("/api/link-exceptions", get(referrals::exceptions))
        .route(
            "/api/link-exceptions/{id}/resolve",
            post(referrals::resolve),
        )
        .route("/api/referrals/{id}/unlink", post(referrals::unlink))
        .route("/api/studies/unlinked", get(referrals::unlinked))
        .route("/api/ownership-refusals", get(refusals::list))
        .route("/api/audit/search", post(audit::search))
        .route("/api/users", get(users::list).post(users::add))
        .route("/api/users/{name}/disable", post(users::disable))
        .route("/api/users/{name}/password", post(users::password))
        .route("/api/users/{name}/tokens", post(users::token))
        .route("/api/archive/overview", get(audit::overview))
        .route("/api/fixity/failures", get(governance::failures))
        .route("/api/fixity/report", get(governance::report))
        .route("/api/indicators", get(indicators::report))
        .route(
            "/api/indicators/reports",
            get(indicators::versions).post(indicators::freeze),
        )
        .route("/api/indicators/reports/{id}", get(indicators::version))
        .route(
            "/api/indicators/reports/{id}/deliver",
            post(indicators::deliver),
        )
        .route("/api/audit/chain", get(governance::audit_chain))
        .route("/api/audit/fhir", get(governance::audit_fhir))
        .route("/api/retention/studies/{uid}", get(retention::study))
        .route(
            "/api/retention/studies/{uid}/holds",
            post(retention::place_hold),
        )
        .route(
            "/api/retention/studies/{uid}/extend",
            post(retention::extend),
        )
        .route(
            "/api/retention/holds/{id}/release",
            post(retention::release_hold),
        )
        .route("/api/retention/expiring", get(retention::expiring))
        .route(
            "/api/retention/deletions",
            post(retention::propose).get(retention::deletions),
        )
        .route(
            "/api/retention/deletions/{id}/approve",
            post(retention::approve),
        )
        .route(
            "/api/retention/deletions/{id}/reject",
            post(retention::reject),
        )
        .route("/api/retention/tombstones", get(retention::tombstones))
        .route(
            "/api/waveforms/{study}/{series}/{instance}",
            get(waveforms::window),
        )
        .route("/api/referrals/{id}/journal", get(journal::case))
        .route("/api/journal", get(journal::search))
        .route("/api/worklist", get(worklist::worklist))
        .route("/api/cases/{id}", get(worklist::case))
        .route("/api/cases/{id}/claim", post(worklist::claim))
        .route(
            "/api/cases/{id}/report",
            axum::routing::put(reports::save_draft),
        )
        .route("/api/cases/{id}/report/sign", post(reports::sign))
        .route("/api/cases/{id}/reports", get(reports::versions))
        .route("/api/reports", get(reports::since))
        .route(
            "/api/cases/{id}/reports/{report}/answer",
            get(reports::answer_document),
        )
        .route("/api/cases/{id}/reports/{report}/pdf", get(reports::pdf))
        .route(
            "/api/cases/{id}/reports/{report}/deliveries",
            post(reports::send_again),
        )
        .route("/api/cases/{id}/deliveries", get(reports::case_deliveries))
        .route("/api/deliveries", get(reports::deliveries))
        .route("/api/deliveries/{id}/retry", post(reports::retry_delivery))
        .route("/api/cases/{id}/release", post(worklist::release))
        .route("/api/cases/{id}/route", post(worklist::reroute))
        .route("/api/cases/{id}/cancel", post(worklist::cancel))
        .route("/api/studies/{uid}/route", post(worklist::route_study))
        .route(
            "/api/readers/{name}/availability",
            axum::routing::put(worklist::availability),
        )
        .merge(holter::routes())
        .merge(crate::dicomweb::routes())
        .fallback(not_found)
        // Layers run from the last one added: authentication first, then the audit net.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            audited::every_request,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require));
    let pages = crate::pages::protected()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            audited::every_request,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_page,
        ));
    let viewer = crate::pages::viewer().layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_page,
    ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/login", post(session::login))
        .merge(crate::pages::open())
        .merge(pages)
        .merge(viewer)
        .merge(protected)
        .layer(middleware::from_fn(crate::pages::security_headers))
        .with_state(state)
}

async fn not_found() -> Response {
    Problem::new(StatusCode::NOT_FOUND, "no such resource").into_response()
}

async fn healthz(State(state): State<WebState>) -> Response {
    let (database, store) = tokio::join!(state.index.check(), state.archive.check());
    let status = |r: &Result<(), _>| if r.is_ok() { "ok" } else { "unreachable" };
    let body = json!({
        "status": if database.is_ok() && store.is_ok() { "ok" } else { "degraded" },
        "database": status(&database.as_ref().map(|_| ()).map_err(|_| ())),
        "store": status(&store.as_ref().map(|_| ()).map_err(|_| ())),
    });
    if let Err(e) = &database {
        tracing::warn!(error = %e, "health check: database");
    }
    if let Err(e) = &store {
        tracing::warn!(error = %e, "health check: store");
    }
    let code = if database.is_ok() && store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let token = &state.config.http.metrics_token;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = peer.ip().is_loopback()
        || (!token.is_empty() && presented.is_some_and(|p| constant_time_eq(p, token)));
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need a scrape token from this address\n",
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
