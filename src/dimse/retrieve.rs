//! C-MOVE and C-GET SCP (PS3.4 C.4.2, C.4.3) at study, series and image level.
//!
//! The catalog decides what the requester may retrieve (and audits it); each instance then
//! goes out as a C-STORE sub-operation, streamed from the object store as stored. C-MOVE opens
//! our own association to a configured destination of the requester's institution; C-GET sends
//! on the requester's association, on the storage contexts it accepted the SCP role for. A
//! pending response with the counts follows every sub-operation, and a C-CANCEL stops the run.

use std::collections::HashMap;
use std::time::Duration;

use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::association::{Association, AsyncAssociation};
use dicom_ul::pdu::PresentationContextResultReason;
use tokio::io::{AsyncRead, AsyncWrite};

use super::command::{self, Request, SubOperations, C_CANCEL_RQ};
use super::identifier;
use super::send::{self, SendError};
use super::service::{ProtocolViolation, Session, STATUS_SUCCESS};
use super::status;
use super::syntaxes::{GET_MODELS, MOVE_MODELS};
use crate::access::Action;
use crate::catalog::{self, Catalog, CatalogError, Selection};
use crate::index::Hit;

const STATUS_PENDING: u16 = 0xFF00;
const STATUS_CANCEL: u16 = 0xFE00;
/// Sub-operations complete, one or more failures or warnings.
const STATUS_SOME_FAILED: u16 = 0xB000;
/// Refused: out of resources, unable to perform sub-operations.
const STATUS_NONE_DONE: u16 = 0xA702;
/// Refused: move destination unknown.
const STATUS_DESTINATION_UNKNOWN: u16 = 0xA801;
const STATUS_IDENTIFIER_MISMATCH: u16 = 0xA900;
const STATUS_SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;

#[derive(Default)]
struct Progress {
    total: usize,
    completed: u16,
    failed: u16,
    warning: u16,
    failed_uids: Vec<String>,
}

impl Progress {
    fn counts(&self) -> SubOperations {
        let done =
            usize::from(self.completed) + usize::from(self.failed) + usize::from(self.warning);
        SubOperations {
            remaining: u16::try_from(self.total.saturating_sub(done)).unwrap_or(u16::MAX),
            completed: self.completed,
            failed: self.failed,
            warning: self.warning,
        }
    }

    fn fail(&mut self, hit: &Hit, why: &str) {
        tracing::warn!(sop_instance_uid = %hit.sop_instance_uid, reason = %why, "sub-operation failed");
        self.failed = self.failed.saturating_add(1);
        self.failed_uids.push(hit.sop_instance_uid.clone());
    }

    /// Counts a C-STORE response status (PS3.4 B.2.3: 0xB000, 0xB006, 0xB007 are warnings).
    fn record(&mut self, hit: &Hit, status: u16, comment: &str) {
        match status {
            0x0000 => self.completed = self.completed.saturating_add(1),
            0xB000 | 0xB006 | 0xB007 => self.warning = self.warning.saturating_add(1),
            s => self.fail(hit, &format!("status {s:#06X} {comment}")),
        }
    }

    fn final_status(&self) -> u16 {
        if self.failed == 0 && self.warning == 0 {
            STATUS_SUCCESS
        } else if self.completed == 0 && self.warning == 0 {
            STATUS_NONE_DONE
        } else {
            STATUS_SOME_FAILED
        }
    }

    /// Remaining instances count as failed when the run stops early.
    fn abandon_rest(&mut self, hits: &[Hit], from: usize) {
        for hit in &hits[from..] {
            self.failed = self.failed.saturating_add(1);
            self.failed_uids.push(hit.sop_instance_uid.clone());
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Move,
    Get,
}

/// One C-STORE sub-operation on our association to a move destination.
async fn send_to<P, T>(
    catalog: &Catalog,
    peer: &mut P,
    context_id: u8,
    cmd: Vec<u8>,
    hit: &Hit,
) -> Result<command::Reply, SendError>
where
    P: AsyncAssociation<T> + Association + Send,
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let data = catalog.dataset(hit).await.map_err(|e| match e {
        CatalogError::Archive(e) => SendError::Archive(e),
        other => SendError::Protocol(other.to_string()),
    })?;
    send::store(peer, context_id, cmd, data).await?;
    let reply = send::next_command(peer).await?;
    command::Reply::parse(&reply).map_err(|e| SendError::Protocol(e.to_string()))
}

impl<S> Session<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Parses the identifier and asks the catalog for the instances; answers failures itself.
    async fn selected(
        &mut self,
        request: &Request,
        context_id: u8,
        identifier: &[u8],
        kind: Kind,
        purpose: &str,
    ) -> Result<Option<Vec<Hit>>, ProtocolViolation> {
        let (abstract_syntax, ts) = self.contexts.get(&context_id).cloned().unwrap_or_default();
        let models = if kind == Kind::Move {
            MOVE_MODELS
        } else {
            GET_MODELS
        };
        if !models.contains(&abstract_syntax.as_str()) {
            let comment = "request on a presentation context of another service";
            let detail = format!("{purpose}: {comment}");
            self.audit_refused("retrieve", detail, "refused".into())
                .await;
            self.respond(
                context_id,
                request,
                STATUS_SOP_CLASS_NOT_SUPPORTED,
                Some(comment),
            )
            .await?;
            return Ok(None);
        }
        self.tally.queries += 1;
        let selection: Selection = match identifier::parse_retrieve(identifier, &ts) {
            Ok((_, selection)) => selection,
            Err(e) => {
                tracing::info!(error = %e, "retrieve identifier refused");
                let detail = format!("{purpose}: identifier");
                self.audit_refused("retrieve", detail, format!("refused: {e}"))
                    .await;
                self.respond(
                    context_id,
                    request,
                    STATUS_IDENTIFIER_MISMATCH,
                    Some(&e.to_string()),
                )
                .await?;
                return Ok(None);
            }
        };
        let catalog = self.ctx.catalog.clone();
        match catalog
            .retrieve(&self.principal, &selection, Action::ReadPixels, purpose)
            .await
        {
            Ok(hits) => Ok(Some(hits)),
            Err(e) => {
                tracing::info!(error = %e, "retrieve refused");
                let status = status::of_catalog(&e);
                self.respond(context_id, request, status, Some(&e.to_string()))
                    .await?;
                Ok(None)
            }
        }
    }

    pub(super) async fn retrieve_move(
        &mut self,
        request: Request,
        context_id: u8,
        identifier: Vec<u8>,
    ) -> Result<(), ProtocolViolation> {
        let destination = request.move_destination.trim().to_owned();
        let policy = self.ctx.catalog.policy().clone();
        let Some(dest) = policy
            .move_destination(&self.principal, &destination)
            .cloned()
        else {
            let mut event = catalog::event(&self.principal, "retrieve");
            event.outcome = "denied: move destination unknown".into();
            event.detail = format!("C-MOVE to `{destination}`");
            self.ctx.audit.record(event).await;
            let comment = format!("move destination `{destination}` is not one of yours");
            return self
                .respond(
                    context_id,
                    &request,
                    STATUS_DESTINATION_UNKNOWN,
                    Some(&comment),
                )
                .await;
        };
        let purpose = format!("C-MOVE to {destination}");
        let Some(hits) = self
            .selected(&request, context_id, &identifier, Kind::Move, &purpose)
            .await?
        else {
            return Ok(());
        };
        let mut progress = Progress {
            total: hits.len(),
            ..Progress::default()
        };
        let address = format!("{}:{}", dest.host, dest.port);
        let mut pairs: Vec<(String, String)> = Vec::new();
        for hit in &hits {
            let pair = (hit.sop_class_uid.clone(), hit.transfer_syntax.clone());
            if !pairs.contains(&pair) && pairs.len() < 128 {
                pairs.push(pair);
            }
        }
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(self.ctx.config.dicom.ae_title.clone())
            .called_ae_title(dest.ae_title.clone())
            .max_pdu_length(self.ctx.config.dicom.max_pdu_bytes)
            .connection_timeout(Duration::from_secs(10));
        for (class, ts) in &pairs {
            options = options.with_presentation_context(class.clone(), vec![ts.clone()]);
        }
        let mut peer = match options.establish_async(address.as_str()).await {
            Ok(peer) => peer,
            Err(e) => {
                tracing::warn!(destination = %destination, %address, error = %e, "cannot open association to move destination");
                progress.abandon_rest(&hits, 0);
                return self
                    .finish(
                        context_id,
                        &request,
                        &progress,
                        Some(&format!("destination unreachable: {e}")),
                    )
                    .await;
            }
        };
        let _ = peer.inner_stream().set_nodelay(true);
        let accepted: HashMap<(String, String), u8> = peer
            .presentation_contexts()
            .iter()
            .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
            .map(|pc| {
                (
                    (pc.abstract_syntax.clone(), pc.transfer_syntax.clone()),
                    pc.id,
                )
            })
            .collect();
        let mut message_id: u16 = 0;
        for (i, hit) in hits.iter().enumerate() {
            let key = (hit.sop_class_uid.clone(), hit.transfer_syntax.clone());
            match accepted.get(&key) {
                None => progress.fail(
                    hit,
                    "destination does not accept this SOP class in the stored transfer syntax",
                ),
                Some(&pc) => {
                    message_id = message_id.wrapping_add(1).max(1);
                    let cmd = command::store_request(
                        message_id,
                        &hit.sop_class_uid,
                        &hit.sop_instance_uid,
                        request.priority,
                        Some((&self.calling, request.message_id)),
                    );
                    let catalog = self.ctx.catalog.clone();
                    match send_to(&catalog, &mut peer, pc, cmd, hit).await {
                        Ok(reply) => {
                            progress.record(hit, reply.status, &reply.comment);
                            self.tally.sent += 1;
                        }
                        Err(SendError::Archive(e)) => {
                            tracing::error!(error = %e, "stored object unreadable during C-MOVE");
                            let _ = peer.abort().await;
                            progress.fail(hit, "stored object unreadable");
                            progress.abandon_rest(&hits, i + 1);
                            return self.finish(context_id, &request, &progress, None).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "move destination failed");
                            progress.fail(hit, &e.to_string());
                            progress.abandon_rest(&hits, i + 1);
                            return self.finish(context_id, &request, &progress, None).await;
                        }
                    }
                }
            }
            if i + 1 < hits.len() {
                self.respond_with(
                    context_id,
                    &request,
                    STATUS_PENDING,
                    None,
                    Some(progress.counts()),
                    None,
                )
                .await?;
                if self.cancelled(request.message_id).await? {
                    let _ = peer.release().await;
                    return self.cancel(context_id, &request, &progress).await;
                }
            }
        }
        let _ = peer.release().await;
        self.finish(context_id, &request, &progress, None).await
    }

    pub(super) async fn retrieve_get(
        &mut self,
        request: Request,
        context_id: u8,
        identifier: Vec<u8>,
    ) -> Result<(), ProtocolViolation> {
        let Some(hits) = self
            .selected(&request, context_id, &identifier, Kind::Get, "C-GET")
            .await?
        else {
            return Ok(());
        };
        let mut progress = Progress {
            total: hits.len(),
            ..Progress::default()
        };
        let mut message_id: u16 = 0;
        for (i, hit) in hits.iter().enumerate() {
            let Some(pc) = self.storage_context_for(hit) else {
                progress.fail(hit, "requester did not accept this SOP class in the stored transfer syntax as storage SCP");
                continue;
            };
            message_id = message_id.wrapping_add(1).max(1);
            let cmd = command::store_request(
                message_id,
                &hit.sop_class_uid,
                &hit.sop_instance_uid,
                request.priority,
                None,
            );
            let data = match self.ctx.catalog.dataset(hit).await {
                Ok(data) => data,
                Err(e) => {
                    tracing::error!(error = %e, "stored object unreadable during C-GET");
                    progress.fail(hit, "stored object unreadable");
                    continue;
                }
            };
            match send::store(&mut self.association, pc, cmd, data).await {
                Ok(bytes) => self.tally.bytes += bytes,
                Err(SendError::Archive(e)) => {
                    // Part of a data set is on the wire: the association cannot continue.
                    return Err(ProtocolViolation(format!(
                        "stored object unreadable mid-send: {e}"
                    )));
                }
                Err(e) => return Err(ProtocolViolation(e.to_string())),
            }
            let (reply, cancel) = self
                .await_get_store_response(message_id, request.message_id)
                .await?;
            progress.record(hit, reply.status, &reply.comment);
            self.tally.sent += 1;
            if cancel {
                return self.cancel(context_id, &request, &progress).await;
            }
            if i + 1 < hits.len() {
                self.respond_with(
                    context_id,
                    &request,
                    STATUS_PENDING,
                    None,
                    Some(progress.counts()),
                    None,
                )
                .await?;
                if self.cancelled(request.message_id).await? {
                    return self.cancel(context_id, &request, &progress).await;
                }
            }
        }
        self.finish(context_id, &request, &progress, None).await
    }

    /// The presentation context on which the C-GET requester takes the storage SCP role for
    /// this instance's SOP class and stored transfer syntax.
    fn storage_context_for(&self, hit: &Hit) -> Option<u8> {
        let roles = self.association.requestor_roles_for(&hit.sop_class_uid);
        if !roles.scp {
            return None;
        }
        self.contexts
            .iter()
            .filter(|(_, (class, ts))| *class == hit.sop_class_uid && *ts == hit.transfer_syntax)
            .map(|(id, _)| *id)
            .min()
    }

    /// Waits for the C-STORE response to sub-operation `sub_id`; a C-CANCEL for the C-GET may
    /// arrive first.
    async fn await_get_store_response(
        &mut self,
        sub_id: u16,
        get_id: u16,
    ) -> Result<(command::Reply, bool), ProtocolViolation> {
        let mut cancel = false;
        loop {
            let bytes = send::next_command(&mut self.association)
                .await
                .map_err(|e| ProtocolViolation(e.to_string()))?;
            let field =
                command::command_field(&bytes).map_err(|e| ProtocolViolation(e.to_string()))?;
            if field == C_CANCEL_RQ {
                let rq = Request::parse(&bytes).map_err(|e| ProtocolViolation(e.to_string()))?;
                if rq.message_id != get_id {
                    return Err(ProtocolViolation("C-CANCEL for an unknown request".into()));
                }
                cancel = true;
                continue;
            }
            let reply =
                command::Reply::parse(&bytes).map_err(|e| ProtocolViolation(e.to_string()))?;
            if reply.command_field != 0x8001 || reply.message_id_responded_to != sub_id {
                return Err(ProtocolViolation(format!(
                    "expected the C-STORE response to {sub_id}, got command {:#06X}",
                    reply.command_field
                )));
            }
            return Ok((reply, cancel));
        }
    }

    async fn cancel(
        &mut self,
        context_id: u8,
        request: &Request,
        progress: &Progress,
    ) -> Result<(), ProtocolViolation> {
        tracing::info!("retrieve cancelled by the peer");
        let data = self.failed_list(context_id, progress);
        self.respond_with(
            context_id,
            request,
            STATUS_CANCEL,
            None,
            Some(progress.counts()),
            data,
        )
        .await
    }

    async fn finish(
        &mut self,
        context_id: u8,
        request: &Request,
        progress: &Progress,
        comment: Option<&str>,
    ) -> Result<(), ProtocolViolation> {
        let counts = progress.counts();
        tracing::info!(
            completed = counts.completed,
            failed = counts.failed,
            warning = counts.warning,
            "retrieve done"
        );
        let data = self.failed_list(context_id, progress);
        self.respond_with(
            context_id,
            request,
            progress.final_status(),
            comment,
            Some(counts),
            data,
        )
        .await
    }

    fn failed_list(&self, context_id: u8, progress: &Progress) -> Option<Vec<u8>> {
        if progress.failed_uids.is_empty() {
            return None;
        }
        let ts = self
            .contexts
            .get(&context_id)
            .map(|(_, ts)| ts.clone())
            .unwrap_or_default();
        identifier::write_failed_list(&progress.failed_uids, &ts).ok()
    }
}
