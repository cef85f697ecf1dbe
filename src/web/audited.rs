//! The audit trail's safety net for HTTP: every authenticated request leaves at least one
//! audit record, allowed or refused, whatever the route. Handlers and the domain record what
//! they do in detail (the patient, the study, the outcome); a request that recorded nothing
//! (a refusal before the domain was reached, a route that forgot) is recorded here with its
//! method, path and answer. A success that cannot be recorded is not answered.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Problem, WebState};
use crate::access::Principal;
use crate::audit;
use crate::catalog;

pub async fn every_request(
    State(state): State<WebState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(who) = request.extensions().get::<Principal>().cloned() else {
        // Only authenticated requests come through this layer.
        return next.run(request).await;
    };
    // The path names resources (UIDs, ids), never patient data; the query may (names in a
    // search), so it stays out of the record.
    let what = format!("{} {}", request.method(), request.uri().path());
    let (response, recorded) = audit::watched(next.run(request)).await;
    if recorded {
        return response;
    }
    let mut event = catalog::event(&who, "http_request");
    event.detail = what;
    event.outcome = format!("answered {}", response.status().as_u16());
    if let Err(e) = state.audit.record_required(event).await {
        if response.status().is_success() {
            return Problem::from_fault(
                crate::fault::Fault::Unavailable,
                format!("access cannot be audited: {e}"),
            )
            .into_response();
        }
    }
    response
}
