//! Administrators manage accounts over HTTP as they do with `telecardio user …`: list, add,
//! disable, set a new password, set the name and licence reports carry, issue an API token.
//! The policy decides who may (administrators only); every call, allowed or refused, is
//! audited. Passwords and tokens never appear in the audit or the logs.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::{Problem, WebState};
use crate::access::{Action, Principal};
use crate::accounts::AccountError;
use crate::fault::Fault;

/// Lets `who` administer accounts, auditing the attempt either way.
async fn administer(
    state: &WebState,
    who: &Principal,
    kind: &str,
    detail: String,
) -> Result<(), Problem> {
    let mut event = crate::catalog::event(who, kind);
    event.detail = detail;
    if let Err(denied) = state.catalog.policy().permit(who, Action::Administer) {
        event.outcome = format!("denied: {denied}");
        state.audit.record(event).await;
        return Err(Problem::new(StatusCode::FORBIDDEN, denied.to_string()));
    }
    event.outcome = "allowed".into();
    state
        .audit
        .record_required(event)
        .await
        .map_err(|e| Problem::from_fault(Fault::Unavailable, e))
}

fn problem(e: AccountError) -> Problem {
    match e {
        AccountError::NoUser(_) => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
        AccountError::Exists(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
        AccountError::Index(_) | AccountError::Secret(_) => Problem::from_fault(e.fault(), e),
        other => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    }
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    body.map(|Json(b)| b)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
}

pub async fn list(State(state): State<WebState>, Extension(who): Extension<Principal>) -> Response {
    let answer = async {
        administer(&state, &who, "users_read", "every account".into()).await?;
        let users = state.accounts.users().await.map_err(problem)?;
        Ok(Json(json!({ "users": users.iter().map(|u| json!({
            "name": u.name,
            "role": u.role,
            "institution": u.institution,
            "full_name": u.full_name,
            "licence": u.licence,
            "disabled": u.disabled_at.is_some(),
        })).collect::<Vec<_>>() }))
        .into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    role: String,
    #[serde(default)]
    institution: String,
    /// Left out: the account signs in with API tokens only.
    password: Option<String>,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    licence: String,
}

pub async fn add(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    request: Result<Json<NewUser>, JsonRejection>,
) -> Response {
    let answer = async {
        let u = body(request)?;
        let detail = format!("add `{}` as {} of `{}`", u.name, u.role, u.institution);
        administer(&state, &who, "user_added", detail).await?;
        let institution = u.institution.trim();
        state
            .accounts
            .add_user(&u.name, &u.role, institution, u.password.as_deref(), false)
            .await
            .map_err(problem)?;
        if !u.full_name.trim().is_empty() || !u.licence.trim().is_empty() {
            state
                .accounts
                .set_profile(&u.name, &u.full_name, &u.licence)
                .await
                .map_err(problem)?;
        }
        Ok((StatusCode::CREATED, Json(json!({ "name": u.name }))).into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

pub async fn disable(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let answer = async {
        administer(&state, &who, "user_disabled", format!("disable `{name}`")).await?;
        state.accounts.disable(&name).await.map_err(problem)?;
        Ok(Json(json!({ "name": name, "disabled": true })).into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Password {
    password: String,
}

pub async fn password(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    request: Result<Json<Password>, JsonRejection>,
) -> Response {
    let answer = async {
        let p = body(request)?;
        let detail = format!("new password for `{name}`");
        administer(&state, &who, "user_password_set", detail).await?;
        state
            .accounts
            .set_password(&name, &p.password)
            .await
            .map_err(problem)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    label: String,
    valid_days: Option<u32>,
}

/// Issues an API token for the account; the token is in this answer and nowhere else.
pub async fn token(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    request: Result<Json<NewToken>, JsonRejection>,
) -> Response {
    let answer = async {
        let t = body(request)?;
        let detail = format!("API token `{}` for `{name}`", t.label);
        administer(&state, &who, "token_created", detail).await?;
        let issued = state
            .accounts
            .create_token(&name, &t.label, t.valid_days)
            .await
            .map_err(problem)?;
        Ok((
            StatusCode::CREATED,
            Json(json!({ "id": issued.row.id, "user": name, "token": issued.token })),
        )
            .into_response())
    };
    answer.await.unwrap_or_else(|p: Problem| p.into_response())
}
