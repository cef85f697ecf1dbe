//! Browser sign-in: `POST /api/login` exchanges a name and password for a session cookie
//! (HttpOnly, Secure, SameSite=Strict), `POST /api/logout` ends it, `GET /api/me` says who
//! the caller is.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::{session_cookie, Csrf, SESSION_COOKIE};
use super::problem::Problem;
use super::WebState;
use crate::access::Principal;
use crate::accounts::AuthError;
use crate::fault::Fault;
use crate::index::AuditEvent;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    name: String,
    password: String,
}

fn who(principal: &Principal) -> serde_json::Value {
    json!({
        "name": principal.name,
        "role": principal.role,
        "institution": principal.institution,
        "via": principal.via,
    })
}

/// Why a sign-in was refused.
pub enum SignInRefused {
    Unavailable(String),
    Throttled(u64),
    Rejected,
}

/// Checks a name and password and opens a session: the principal and the `Set-Cookie` value.
/// Audited either way; shared by the API and the sign-in page.
pub async fn sign_in(
    state: &WebState,
    name: &str,
    password: &str,
    address: &str,
) -> Result<(Principal, String), SignInRefused> {
    let mut event = AuditEvent::now("login", name, "", address);
    match state.accounts.login(name, password, address).await {
        Ok((principal, secret)) => {
            event.role = principal.role.as_str().to_owned();
            event.institution = principal.institution.clone();
            event.outcome = "signed in".into();
            state.audit.record(event).await;
            let max_age = state.config.auth.session_hours * 3600;
            let cookie = format!(
                "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}"
            );
            Ok((principal, cookie))
        }
        Err(AuthError::Index(e)) => Err(SignInRefused::Unavailable(e.to_string())),
        Err(AuthError::Throttled(seconds)) => {
            tracing::warn!(%address, %name, "sign-in paused after repeated failures");
            event.outcome = format!("refused: throttled for {seconds} s");
            state.audit.record(event).await;
            Err(SignInRefused::Throttled(seconds))
        }
        Err(e) => {
            tracing::info!(%address, reason = %e, "sign-in refused");
            event.outcome = "refused".into();
            state.audit.record(event).await;
            Err(SignInRefused::Rejected)
        }
    }
}

/// Ends the session the request carries (audited); the `Set-Cookie` value that clears it.
pub async fn sign_out(
    state: &WebState,
    principal: &Principal,
    headers: &HeaderMap,
) -> Result<String, String> {
    if let Some(secret) = session_cookie(headers) {
        state
            .accounts
            .logout(&secret)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut event = AuditEvent::now(
        "logout",
        &principal.name,
        &principal.institution,
        &principal.address,
    );
    event.role = principal.role.as_str().to_owned();
    event.outcome = "signed out".into();
    state.audit.record(event).await;
    Ok(format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"
    ))
}

pub async fn login(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<Login>, JsonRejection>,
) -> Response {
    let Json(login) = match body {
        Ok(body) => body,
        Err(e) => return Problem::new(StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    let address = peer.ip().to_string();
    match sign_in(&state, &login.name, &login.password, &address).await {
        Ok((principal, cookie)) => (
            StatusCode::OK,
            [(header::SET_COOKIE, cookie)],
            Json(who(&principal)),
        )
            .into_response(),
        Err(SignInRefused::Unavailable(e)) => {
            Problem::from_fault(Fault::Unavailable, e).into_response()
        }
        Err(SignInRefused::Throttled(seconds)) => {
            let mut response = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed sign-ins; try again in {seconds} seconds"),
            )
            .into_response();
            if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Err(SignInRefused::Rejected) => {
            Problem::new(StatusCode::UNAUTHORIZED, "wrong user name or password").into_response()
        }
    }
}

pub async fn logout(
    State(state): State<WebState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    match sign_out(&state, &principal, &headers).await {
        Ok(expired) => (StatusCode::NO_CONTENT, [(header::SET_COOKIE, expired)]).into_response(),
        Err(e) => Problem::from_fault(Fault::Unavailable, e).into_response(),
    }
}

/// Who the caller is; for a browser session also the anti-forgery token its scripts send back
/// with every request that changes something.
pub async fn me(
    Extension(principal): Extension<Principal>,
    csrf: Option<Extension<Csrf>>,
) -> Response {
    let mut body = who(&principal);
    if let Some(Extension(Csrf(token))) = csrf {
        body["csrf_token"] = json!(token);
    }
    Json(body).into_response()
}
