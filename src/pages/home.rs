//! Signing in and out, the language switch, and each role's start page.
//!
//! The sign-in form has no session to derive an anti-forgery token from, so it carries its own:
//! a random value set as a cookie when the form is shown and repeated in a hidden field; a
//! form posted from another site has the field but cannot know the cookie (login CSRF).

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;

use super::i18n::{Lang, Words};
use super::{html, lang_of, start_page, PageLang, LANG_COOKIE};
use crate::access::Principal;
use crate::accounts::secret::random_hex;
use crate::web::auth::cookie;
use crate::web::session::{sign_in as open_session, sign_out as close_session, SignInRefused};
use crate::web::WebState;

const LOGIN_COOKIE: &str = "tc_login";

#[derive(Template)]
#[template(path = "login.html")]
struct SignInPage {
    w: Words,
    other: Lang,
    other_key: &'static str,
    token: String,
    name: String,
    message: &'static str,
    style: String,
}

fn sign_in_form(lang: Lang, name: &str, message: &'static str, status: StatusCode) -> Response {
    let token = match random_hex(16) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for the sign-in form");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response();
        }
    };
    let other = match lang {
        Lang::Lt => Lang::En,
        Lang::En => Lang::Lt,
    };
    let page = SignInPage {
        w: Words::new(lang),
        other,
        other_key: match other {
            Lang::Lt => "lang.name_lt",
            Lang::En => "lang.name_en",
        },
        token: token.clone(),
        name: name.to_owned(),
        message,
        style: super::assets::path("style.css"),
    };
    let mut response = html(&page);
    *response.status_mut() = status;
    let cookie = format!("{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict");
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub async fn sign_in_page(PageLang(lang): PageLang) -> Response {
    sign_in_form(lang, "", "", StatusCode::OK)
}

#[derive(serde::Deserialize)]
pub struct SignIn {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
}

pub async fn sign_in(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let lang = lang_of(&headers);
    let Ok(Form(form)) = form else {
        return sign_in_form(lang, "", "login.failed", StatusCode::BAD_REQUEST);
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !crate::web::constant_time_eq(&expected, &form.token) {
        return sign_in_form(lang, &form.name, "login.expired", StatusCode::FORBIDDEN);
    }
    let address = peer.ip().to_string();
    match open_session(&state, &form.name, &form.password, &address).await {
        Ok((principal, session)) => {
            let mut response = Redirect::to(start_page(principal.role)).into_response();
            if let Ok(value) = header::HeaderValue::from_str(&session) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(SignInRefused::Rejected) => {
            sign_in_form(lang, &form.name, "login.failed", StatusCode::UNAUTHORIZED)
        }
        Err(SignInRefused::Throttled(_)) => sign_in_form(
            lang,
            &form.name,
            "login.throttled",
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(SignInRefused::Unavailable(e)) => {
            tracing::error!(error = %e, "sign-in: index unavailable");
            sign_in_form(
                lang,
                &form.name,
                "login.unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

pub async fn sign_out(
    State(state): State<WebState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    match close_session(&state, &who, &headers).await {
        Ok(expired) => {
            let mut response = Redirect::to("/login").into_response();
            if let Ok(value) = header::HeaderValue::from_str(&expired) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-out failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response()
        }
    }
}

pub async fn start(Extension(who): Extension<Principal>) -> Response {
    Redirect::to(start_page(who.role)).into_response()
}

#[derive(serde::Deserialize)]
pub struct Back {
    back: Option<String>,
}

/// Remembers a language for a year and returns to the page the person was on (only a path of
/// this site: never an address elsewhere).
pub async fn language(Path(code): Path<String>, Query(back): Query<Back>) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return (StatusCode::NOT_FOUND, "no such language").into_response();
    };
    let target = back
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".to_owned());
    let mut response = Redirect::to(&target).into_response();
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
        lang.code()
    );
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
