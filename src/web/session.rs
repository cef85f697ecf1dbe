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

use super::auth::{session_cookie, SESSION_COOKIE};
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
    let mut event = AuditEvent::now("login", &login.name, "", &address);
    match state
        .accounts
        .login(&login.name, &login.password, &address)
        .await
    {
        Ok((principal, secret)) => {
            event.role = principal.role.as_str().to_owned();
            event.institution = principal.institution.clone();
            event.outcome = "signed in".into();
            state.audit.record(event).await;
            let max_age = state.config.auth.session_hours * 3600;
            let cookie = format!(
                "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}"
            );
            (
                StatusCode::OK,
                [(header::SET_COOKIE, cookie)],
                Json(who(&principal)),
            )
                .into_response()
        }
        Err(AuthError::Index(e)) => Problem::from_fault(Fault::Unavailable, e).into_response(),
        Err(AuthError::Throttled(seconds)) => {
            tracing::warn!(%address, name = %login.name, "sign-in paused after repeated failures");
            event.outcome = format!("refused: throttled for {seconds} s");
            state.audit.record(event).await;
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
        Err(e) => {
            tracing::info!(%address, reason = %e, "sign-in refused");
            event.outcome = "refused".into();
            state.audit.record(event).await;
            Problem::new(StatusCode::UNAUTHORIZED, "wrong user name or password").into_response()
        }
    }
}

pub async fn logout(
    State(state): State<WebState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    if let Some(secret) = session_cookie(&headers) {
        if let Err(e) = state.accounts.logout(&secret).await {
            return Problem::from_fault(Fault::Unavailable, e).into_response();
        }
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
    let expired =
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, expired)]).into_response()
}

pub async fn me(Extension(principal): Extension<Principal>) -> Response {
    Json(who(&principal)).into_response()
}
