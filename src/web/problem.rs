//! The one mapping from domain faults to HTTP responses: a status and a JSON problem body
//! `{"error": "...", "field": "..."}` that says what is wrong in words a caller can act on.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::fault::Fault;

/// An error answer.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Problem {
        Problem {
            status,
            message: message.into(),
            field: None,
        }
    }

    /// The status for a fault; internal details of unavailable or buggy parts stay in the log.
    pub fn from_fault(fault: Fault, message: impl std::fmt::Display) -> Problem {
        let (status, text) = match fault {
            Fault::BadInput => (StatusCode::BAD_REQUEST, message.to_string()),
            Fault::NotFound => (StatusCode::NOT_FOUND, message.to_string()),
            Fault::Forbidden => (StatusCode::FORBIDDEN, message.to_string()),
            Fault::Conflict => (StatusCode::CONFLICT, message.to_string()),
            Fault::Unavailable => {
                tracing::warn!(error = %message, "request failed: dependency unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the archive is temporarily unavailable; retry later".to_owned(),
                )
            }
            Fault::Bug => {
                tracing::error!(error = %message, "request failed: internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; it has been logged".to_owned(),
                )
            }
        };
        Problem::new(status, text)
    }

    pub fn unauthenticated() -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "authentication required")
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"telecardio\""),
            );
        }
        response
    }
}
