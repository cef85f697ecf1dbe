//! Pages for people: server-rendered HTML in Lithuanian and English over the same services,
//! scoping and audit as the JSON API, with small scripts of our own for what must happen in the
//! browser (uploads with progress, autosave, claims). Templates (`templates/`), styles, scripts
//! and the message catalogue are compiled into the binary; nothing is fetched from elsewhere.
//!
//! Open: the sign-in page, the language switch and the static assets. Every other page sits
//! behind [`crate::web::auth::require_page`] (a browser without a session is sent to sign in)
//! and the audit net. No patient name or personal code ever appears in a URL or a title:
//! pages are addressed by case ids, filters over names run in the browser.

mod admin;
mod assets;
mod audit;
mod charts;
mod clinic;
mod dashboard;
mod home;
pub mod i18n;
mod reading;
mod viewer;

use askama::Template;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::access::{Principal, Role};
use crate::web::auth::Csrf;
use crate::web::WebState;
use i18n::{Lang, Words};

/// Name of the cookie that remembers the language a person chose.
pub const LANG_COOKIE: &str = "tc_lang";

/// Pages anyone may ask for: sign-in, the language switch, static assets.
pub fn open() -> Router<WebState> {
    Router::new()
        .route("/login", get(home::sign_in_page).post(home::sign_in))
        .route("/lang/{code}", get(home::language))
        .route("/assets/{name}", get(assets::serve))
}

/// Pages for signed-in people; the web edge puts authentication and the audit net around them.
pub fn protected() -> Router<WebState> {
    Router::new()
        .route("/", get(home::start))
        .route("/logout", post(home::sign_out))
        .route("/clinic", get(clinic::cases))
        .route("/clinic/send", get(clinic::send))
        .route("/worklist", get(reading::worklist))
        .route("/cases/{id}", get(reading::case))
        .route("/audit", get(audit::show).post(audit::search))
        .route("/admin", get(admin::show))
        .route("/indicators", get(dashboard::show))
        .route(
            "/waveform/{study}/{series}/{instance}",
            get(reading::waveform),
        )
}

/// The diagnostic viewer's files, for signed-in people; the web edge puts authentication around
/// them (no audit record per file: the files hold no patient data, and every study, series and
/// frame the viewer then loads through DICOMweb is audited there).
pub fn viewer() -> Router<WebState> {
    Router::new()
        .route("/viewer", get(viewer::root))
        .route("/viewer/", get(viewer::root))
        .route("/viewer/{*rest}", get(viewer::serve))
}

/// Security headers on every answer: a strict Content-Security-Policy (only our own scripts
/// and styles, none inline; no framing), no MIME sniffing, no referrer leaving the site.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The language of the request: the remembered choice, else the browser's, else Lithuanian.
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PageLang(lang_of(&parts.headers)))
    }
}

pub fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    let chosen = crate::web::auth::cookie(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v));
    chosen.unwrap_or_else(|| {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(Lang::from_accept)
            .unwrap_or(Lang::Lt)
    })
}

/// A signed-in person asking for a page: who, in which language, at which address, and the
/// session's anti-forgery token for the page's forms and scripts.
pub struct Visit {
    pub who: Principal,
    pub csrf: String,
    pub lang: Lang,
    pub path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let who = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(StatusCode::UNAUTHORIZED)?;
        let csrf = parts
            .extensions
            .get::<Csrf>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        Ok(Visit {
            who,
            csrf,
            lang: lang_of(&parts.headers),
            path: parts.uri.path().to_owned(),
        })
    }
}

impl Visit {
    pub fn chrome(&self, title: &'static str, page: &'static str) -> Chrome {
        Chrome::new(self.lang, &self.who, &self.csrf, title, page, &self.path)
    }
}

/// What every signed-in page shows around its content: who is signed in, the menu of their
/// role, the language switch, the anti-forgery token for scripts and forms.
pub struct Chrome {
    pub w: Words,
    pub csrf: String,
    pub title: &'static str,
    pub page: &'static str,
    pub section: &'static str,
    pub back: String,
    pub nav: Vec<(&'static str, &'static str)>,
    pub user: String,
    pub role_key: &'static str,
    pub institution: String,
    pub other_lang: Lang,
    pub other_lang_key: &'static str,
    pub style: String,
    pub script: String,
    /// The messages scripts show (`js.*`), as JSON safe inside a `<script>` element.
    pub script_words: String,
}

impl Chrome {
    pub fn new(
        lang: Lang,
        who: &Principal,
        csrf: &str,
        title: &'static str,
        page: &'static str,
        here: &str,
    ) -> Chrome {
        let w = Words::new(lang);
        let other_lang = match lang {
            Lang::Lt => Lang::En,
            Lang::En => Lang::Lt,
        };
        let nav = menu(who.role);
        // The menu entry whose address is the longest prefix of this page's.
        let section = nav
            .iter()
            .map(|item| item.0)
            .filter(|path| here == *path || here.starts_with(&format!("{path}/")))
            .max_by_key(|path| path.len())
            .unwrap_or("");
        Chrome {
            w,
            csrf: csrf.to_owned(),
            title,
            page,
            section,
            back: form_urlencoded::byte_serialize(here.as_bytes()).collect(),
            nav,
            user: who.name.clone(),
            role_key: role_key(who.role),
            institution: who.institution.clone(),
            other_lang,
            other_lang_key: lang_key(other_lang),
            style: assets::path("style.css"),
            script: assets::path("app.js"),
            script_words: script_words(lang),
        }
    }
}

fn lang_key(lang: Lang) -> &'static str {
    match lang {
        Lang::Lt => "lang.name_lt",
        Lang::En => "lang.name_en",
    }
}

fn role_key(role: Role) -> &'static str {
    match role {
        Role::Clinic => "role.clinic",
        Role::Cardiologist => "role.cardiologist",
        Role::Auditor => "role.auditor",
        Role::Admin => "role.admin",
    }
}

/// Where each role goes: its start page first.
fn menu(role: Role) -> Vec<(&'static str, &'static str)> {
    match role {
        Role::Clinic => vec![("/clinic", "nav.cases"), ("/clinic/send", "nav.send")],
        Role::Cardiologist => vec![("/worklist", "nav.worklist")],
        Role::Auditor => vec![
            ("/audit", "nav.audit"),
            ("/worklist", "nav.worklist"),
            ("/indicators", "nav.indicators"),
        ],
        Role::Admin => vec![
            ("/admin", "nav.admin"),
            ("/worklist", "nav.worklist"),
            ("/audit", "nav.audit"),
            ("/indicators", "nav.indicators"),
        ],
    }
}

/// The start page of a role.
pub fn start_page(role: Role) -> &'static str {
    menu(role)[0].0
}

fn script_words(lang: Lang) -> String {
    let words: serde_json::Map<_, _> = i18n::Catalogue::get()
        .of(lang)
        .into_iter()
        .filter(|(k, _)| k.starts_with("js."))
        .collect();
    // Inside <script> only `</` could end the element early; JSON allows `\u003c` for `<`.
    serde_json::Value::Object(words)
        .to_string()
        .replace('<', "\\u003c")
}

/// A rendered page, never cached (it may carry patient data).
pub fn html(template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Html(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page that tells the person what went wrong, in their language.
#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage {
    pub c: Chrome,
    pub message: &'static str,
}

pub fn problem(c: Chrome, status: StatusCode, message: &'static str) -> Response {
    let mut response = html(&ProblemPage { c, message });
    *response.status_mut() = status;
    response
}
