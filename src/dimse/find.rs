//! C-FIND SCP (PS3.4 C.4.1) for the Patient Root and Study Root information models.
//!
//! Matches stream from the catalog one at a time and each is sent as a pending response before
//! the next is read, so a query matching the whole archive costs no memory. Between matches we
//! look for a C-CANCEL and stop with status Cancel when one has come.

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};

use super::command::Request;
use super::identifier::{self, IdentifierError};
use super::service::{ProtocolViolation, Session, STATUS_SUCCESS};
use super::status;
use super::syntaxes::{PATIENT_ROOT_FIND, STUDY_ROOT_FIND};
use crate::query::{self, attributes, Model};

/// Pending: matches are continuing.
const STATUS_PENDING: u16 = 0xFF00;
/// Pending, but one or more optional keys were not supported (they are returned empty).
const STATUS_PENDING_UNSUPPORTED_KEYS: u16 = 0xFF01;
const STATUS_CANCEL: u16 = 0xFE00;
/// Identifier does not match SOP Class.
const STATUS_IDENTIFIER_MISMATCH: u16 = 0xA900;
const STATUS_SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;

impl<S> Session<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn find(
        &mut self,
        request: Request,
        context_id: u8,
        identifier: Vec<u8>,
    ) -> Result<(), ProtocolViolation> {
        let (abstract_syntax, ts) = self.contexts.get(&context_id).cloned().unwrap_or_default();
        let model = match abstract_syntax.as_str() {
            PATIENT_ROOT_FIND => Model::PatientRoot,
            STUDY_ROOT_FIND => Model::StudyRoot,
            _ => {
                let comment = "C-FIND on a presentation context that is not a FIND model";
                self.audit_refused("query", comment.into(), "refused".into())
                    .await;
                return self
                    .respond(
                        context_id,
                        &request,
                        STATUS_SOP_CLASS_NOT_SUPPORTED,
                        Some(comment),
                    )
                    .await;
            }
        };
        self.tally.queries += 1;
        let (query, charset) = match identifier::parse_find(&identifier, &ts, model) {
            Ok(parsed) => parsed,
            Err(e) => {
                let status = match e {
                    IdentifierError::Query(_) => STATUS_IDENTIFIER_MISMATCH,
                    _ => super::service::STATUS_CANNOT_UNDERSTAND,
                };
                tracing::info!(error = %e, "C-FIND identifier refused");
                let detail = "C-FIND identifier".to_owned();
                self.audit_refused("query", detail, format!("refused: {e}"))
                    .await;
                return self
                    .respond(context_id, &request, status, Some(&e.to_string()))
                    .await;
            }
        };
        tracing::info!(query = %query.log_summary(), "C-FIND");
        let catalog = self.ctx.catalog.clone();
        let mut matches = match catalog.find(&self.principal, &query, None, 0).await {
            Ok(matches) => matches,
            Err(e) => {
                tracing::warn!(error = %e, "C-FIND refused");
                let status = status::of_catalog(&e);
                return self
                    .respond(context_id, &request, status, Some(&e.to_string()))
                    .await;
            }
        };
        let pending = if has_unsupported_keys(&query) {
            STATUS_PENDING_UNSUPPORTED_KEYS
        } else {
            STATUS_PENDING
        };
        let ae_title = self.ctx.config.dicom.ae_title.clone();
        let mut count = 0u64;
        while let Some(hit) = matches.next().await {
            let hit = match hit {
                Ok(hit) => hit,
                Err(e) => {
                    tracing::error!(error = %e, "C-FIND failed while matching");
                    let status = status::of_catalog(&e);
                    return self
                        .respond(context_id, &request, status, Some(&e.to_string()))
                        .await;
                }
            };
            let answers = query::answer(&query, &hit, &ae_title);
            let data =
                match identifier::write_answer(query.level, &answers, charset.as_deref(), &ts) {
                    Ok(data) => data,
                    Err(e) => {
                        tracing::error!(error = %e, "C-FIND answer cannot be encoded");
                        return self
                            .respond(context_id, &request, 0xC001, Some(&e.to_string()))
                            .await;
                    }
                };
            self.respond_with(context_id, &request, pending, None, None, Some(data))
                .await?;
            count += 1;
            if self.cancelled(request.message_id).await? {
                tracing::info!(matches = count, "C-FIND cancelled by the peer");
                return self
                    .respond(context_id, &request, STATUS_CANCEL, None)
                    .await;
            }
        }
        tracing::info!(matches = count, "C-FIND done");
        self.respond(context_id, &request, STATUS_SUCCESS, None)
            .await
    }
}

/// Keys we neither match nor return with a value (they go back empty).
fn has_unsupported_keys(query: &query::Query) -> bool {
    use dicom_dictionary_std::tags;
    query.keys.iter().any(|k| {
        attributes::attribute(k.tag).is_none()
            && ![tags::RETRIEVE_AE_TITLE, tags::INSTANCE_AVAILABILITY].contains(&k.tag)
    })
}
