//! Authentication for every HTTP route but the open ones: one middleware layer resolves the
//! caller from a session cookie or a bearer credential (API token or IdP JWT) and puts the
//! [`Principal`] into the request; handlers take it from there and pass it to the catalog,
//! which applies the caller's scope. A request without valid credentials never reaches a
//! handler: the API answers 401, a page sends the browser to the sign-in page.
//!
//! Cross-site request forgery: a browser sends the session cookie by itself, so a request that
//! changes state with it (any method but GET, HEAD, OPTIONS) must also carry the session's
//! anti-forgery token ([`crate::accounts::secret::csrf_token`]), in the `X-CSRF-Token` header
//! (our scripts) or the `csrf` field of a form. The token is derived from the cookie's secret,
//! which scripts of another site can neither read nor guess. Bearer credentials are not sent
//! by a browser on its own and need no token.

use std::net::SocketAddr;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::problem::Problem;
use super::{constant_time_eq, WebState};
use crate::accounts::secret::csrf_token;
use crate::accounts::AuthError;
use crate::fault::Fault;
use crate::index::AuditEvent;

/// Name of the browser session cookie.
pub const SESSION_COOKIE: &str = "tc_session";
/// The header our scripts send the anti-forgery token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body read to find its anti-forgery token.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// The anti-forgery token of the request's session, for pages to embed.
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

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
    cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `wanted` from the Cookie headers, if any.
pub fn cookie(headers: &HeaderMap, wanted: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.to_owned())
}

/// How a request without valid credentials is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// 401 with a problem body (the API, DICOMweb).
    Unauthorized,
    /// A redirect to the sign-in page (pages).
    SignIn,
}

pub async fn require(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    authenticate(state, peer, request, next, Refusal::Unauthorized).await
}

/// As [`require`], for pages: a browser without a valid session is sent to sign in.
pub async fn require_page(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    authenticate(state, peer, request, next, Refusal::SignIn).await
}

async fn authenticate(
    state: WebState,
    peer: SocketAddr,
    mut request: Request,
    next: Next,
    refusal: Refusal,
) -> Response {
    let address = peer.ip().to_string();
    let credential = credential(request.headers());
    let secret = match &credential {
        Credential::Session(secret) => Some(secret.clone()),
        _ => None,
    };
    let result = match credential {
        Credential::None => Err(AuthError::Missing),
        Credential::Bearer(token) => state.accounts.bearer(&token, &address).await,
        Credential::Session(secret) => state.accounts.session(&secret, &address).await,
    };
    let principal = match result {
        Ok(principal) => principal,
        Err(AuthError::Index(e)) => {
            return Problem::from_fault(Fault::Unavailable, e).into_response()
        }
        Err(e) => {
            if !matches!(e, AuthError::Missing) {
                tracing::info!(%address, path = %request.uri().path(), reason = %e, "credentials rejected");
                let mut event = AuditEvent::now("authentication_failed", "", "", &address);
                event.outcome = "rejected".into();
                event.detail = format!("{} {}: {e}", request.method(), request.uri().path());
                state.audit.record(event).await;
            }
            return match refusal {
                Refusal::Unauthorized => Problem::unauthenticated().into_response(),
                Refusal::SignIn => Redirect::to("/login").into_response(),
            };
        }
    };
    tracing::debug!(user = %principal.name, role = %principal.role, "authenticated");
    if let Some(secret) = secret {
        let token = csrf_token(&secret);
        request = match forgery_checked(request, &token).await {
            Ok(request) => request,
            Err(why) => {
                let mut event = crate::catalog::event(&principal, "forgery_refused");
                event.outcome = "refused".into();
                event.detail = why.to_owned();
                state.audit.record(event).await;
                return Problem::new(StatusCode::FORBIDDEN, why).into_response();
            }
        };
        request.extensions_mut().insert(Csrf(token));
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The request, if it does not change state or carries the session's anti-forgery token.
async fn forgery_checked(request: Request, token: &str) -> Result<Request, &'static str> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(request);
    }
    let presented = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok());
    if let Some(presented) = presented {
        return if constant_time_eq(presented, token) {
            Ok(request)
        } else {
            Err("the anti-forgery token does not match this session")
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err("a request that changes something needs the page's anti-forgery token");
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| "the form is too large")?;
    let field = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned());
    match field {
        Some(presented) if constant_time_eq(&presented, token) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err("the form's anti-forgery token is missing or does not match this session"),
    }
}
