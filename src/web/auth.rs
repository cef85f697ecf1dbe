//! Authentication for every HTTP route but the open ones: one middleware layer resolves the
//! caller from a session cookie or a bearer credential (API token or IdP JWT) and puts the
//! [`Principal`] into the request; handlers take it from there and pass it to the catalog,
//! which applies the caller's scope. A request without valid credentials never reaches a
//! handler.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use super::WebState;
use crate::accounts::AuthError;
use crate::fault::Fault;
use crate::index::AuditEvent;

/// Name of the browser session cookie.
pub const SESSION_COOKIE: &str = "tc_session";

enum Credential {
    None,
    Bearer(String),
    Session(String),
}

fn credential(headers: &HeaderMap) -> Credential {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        {
            return Credential::Bearer(token.trim().to_owned());
        }
    }
    match session_cookie(headers) {
        Some(secret) => Credential::Session(secret),
        None => Credential::None,
    }
}

/// The session secret from the Cookie header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

pub async fn require(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let address = peer.ip().to_string();
    let result = match credential(request.headers()) {
        Credential::None => Err(AuthError::Missing),
        Credential::Bearer(token) => state.accounts.bearer(&token, &address).await,
        Credential::Session(secret) => state.accounts.session(&secret, &address).await,
    };
    match result {
        Ok(principal) => {
            tracing::debug!(user = %principal.name, role = %principal.role, "authenticated");
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(AuthError::Missing) => Problem::unauthenticated().into_response(),
        Err(AuthError::Index(e)) => Problem::from_fault(Fault::Unavailable, e).into_response(),
        Err(e) => {
            tracing::info!(%address, path = %request.uri().path(), reason = %e, "credentials rejected");
            let mut event = AuditEvent::now("authentication_failed", "", "", &address);
            event.outcome = "rejected".into();
            event.detail = format!("{} {}: {e}", request.method(), request.uri().path());
            state.audit.record(event).await;
            Problem::unauthenticated().into_response()
        }
    }
}
