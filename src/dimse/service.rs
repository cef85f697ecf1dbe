//! One association from negotiation to release: reading PDUs, assembling commands and data
//! sets, and handing each DIMSE request to its service (`store`, `find`, `retrieve`).
//!
//! P-DATA values are handled as they arrive: a C-STORE data set fragment goes straight into
//! the ingest pipeline, so an object is never held whole in memory; query identifiers are
//! small and collected. The peer acts as the [`Principal`] of its institution (a clinic's AE
//! for the clinic, a centre's reading station for its cardiologists) for every service.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use dicom_ul::association::server::{
    AccessControl, AsyncServerAssociation, Negotiation, ServerAssociationOptions,
};
use dicom_ul::association::Association;
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PDataValue, PDataValueType, Pdu,
    PresentationContextResultReason, RequestorRoles, UserIdentity,
};
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::command::{
    self, Request, SubOperations, C_CANCEL_RQ, C_ECHO_RQ, C_FIND_RQ, C_GET_RQ, C_MOVE_RQ,
    C_STORE_RQ,
};
use super::policy::{Admission, Admitted};
use super::store::Transfer;
use super::syntaxes::{storage_sop_classes, QUERY_RETRIEVE, TRANSFER_SYNTAXES, VERIFICATION};
use super::DimseContext;
use crate::access::Principal;
use crate::index::AuditEvent;

pub(super) const STATUS_SUCCESS: u16 = 0x0000;
pub(super) const STATUS_CANNOT_UNDERSTAND: u16 = 0xC000;
const STATUS_UNRECOGNIZED_OPERATION: u16 = 0x0211;
/// Identifiers are a few hundred bytes; anything past this is not a query.
const MAX_IDENTIFIER_BYTES: usize = 1 << 20;

/// Re-checks the titles inside dicom-ul's negotiation (and, for TLS, is the only check).
pub(super) struct Gate {
    pub admission: Admission,
    pub peer: SocketAddr,
}

impl AccessControl for Gate {
    fn check_access(
        &self,
        _this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        match self
            .admission
            .identify(called_ae_title, calling_ae_title, self.peer.ip())
        {
            Ok(_) => Ok(()),
            Err(super::policy::Refusal::CalledAeUnknown(_)) => {
                Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized)
            }
            Err(_) => Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized),
        }
    }
}

/// Accepts the SCP role a C-GET requester asks for on storage classes, so that it can receive
/// the C-STORE sub-operations on the same association (PS3.4 C.4.3, PS3.7 D.3.3.4).
pub(super) struct Roles {
    storage: Vec<String>,
}

impl Negotiation for Roles {
    fn negotiate_roles(
        &self,
        sop_class_uid: &str,
        scu_role: bool,
        scp_role: bool,
    ) -> Option<RequestorRoles> {
        self.storage
            .iter()
            .any(|c| c == sop_class_uid)
            .then_some(RequestorRoles {
                scu: scu_role,
                scp: scp_role,
            })
    }
}

pub(super) fn options(
    ctx: &DimseContext,
    gate: Gate,
) -> ServerAssociationOptions<'static, Gate, Roles> {
    let dicom = &ctx.config.dicom;
    let storage = storage_sop_classes(&dicom.extra_sop_classes);
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(gate)
        .ae_title(dicom.ae_title.clone())
        .max_pdu_length(dicom.max_pdu_bytes)
        .with_abstract_syntax(VERIFICATION);
    for uid in QUERY_RETRIEVE {
        options = options.with_abstract_syntax(*uid);
    }
    for uid in &storage {
        options = options.with_abstract_syntax(uid.clone());
    }
    for ts in TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(*ts);
    }
    if let Some(tls) = &ctx.tls {
        options = options.tls_config(tls.clone());
    }
    options.with_negotiation(Roles { storage })
}

/// Lets dicom-ul answer a connection that did not start with an A-ASSOCIATE-RQ.
pub(super) async fn negotiate(ctx: &DimseContext, socket: TcpStream, peer: Option<SocketAddr>) {
    let peer = peer
        .or_else(|| socket.peer_addr().ok())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let gate = Gate {
        admission: ctx.admission.clone(),
        peer,
    };
    let artim = Duration::from_secs(ctx.config.dicom.artim_timeout_secs);
    match tokio::time::timeout(artim, options(ctx, gate).establish_async(socket)).await {
        Ok(Ok(_)) => tracing::warn!(%peer, "association established without a request"),
        Ok(Err(e)) => tracing::info!(%peer, error = %e, "association not established"),
        Err(_) => tracing::info!(%peer, "ARTIM timeout during negotiation"),
    }
}

/// Negotiates an admitted association over plain TCP and serves it.
pub(super) async fn run(
    ctx: DimseContext,
    socket: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
) {
    let gate = Gate {
        admission: ctx.admission.clone(),
        peer,
    };
    // dicom-ul's own read timeout would also cut idle associations short; ARTIM is ours.
    let artim = Duration::from_secs(ctx.config.dicom.artim_timeout_secs);
    match tokio::time::timeout(artim, options(&ctx, gate).establish_async(socket)).await {
        Ok(Ok(association)) => serve(ctx, association, peer, admitted).await,
        Ok(Err(e)) => tracing::info!(%peer, error = %e, "association not established"),
        Err(_) => tracing::info!(%peer, "ARTIM timeout during negotiation"),
    }
}

/// A data set arriving after a command.
pub(super) enum Incoming {
    /// A C-STORE data set, streamed into ingest.
    Store(Box<Transfer>),
    /// A query or retrieve identifier, collected.
    Identifier {
        request: Request,
        context_id: u8,
        bytes: Vec<u8>,
    },
    /// A data set we will not use (refused request); answered with `status` once complete.
    Discard {
        request: Request,
        context_id: u8,
        status: u16,
        comment: String,
    },
}

#[derive(Default)]
pub(super) struct Tally {
    pub stored: u64,
    pub failed: u64,
    pub bytes: u64,
    pub queries: u64,
    pub sent: u64,
}

pub(super) struct Session<'a, S> {
    pub ctx: &'a DimseContext,
    pub association: AsyncServerAssociation<S>,
    pub principal: Principal,
    pub calling: String,
    /// Accepted presentation contexts: id → (abstract syntax, transfer syntax).
    pub contexts: HashMap<u8, (String, String)>,
    command: Vec<u8>,
    pub incoming: Option<Incoming>,
    pub tally: Tally,
}

#[derive(Debug)]
pub(super) struct ProtocolViolation(pub String);

pub(super) async fn serve<S>(
    ctx: DimseContext,
    association: AsyncServerAssociation<S>,
    peer: SocketAddr,
    admitted: Admitted,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let _active = ctx.metrics.association_open();
    ctx.metrics.association("accepted");
    let contexts = association
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| {
            (
                pc.id,
                (pc.abstract_syntax.clone(), pc.transfer_syntax.clone()),
            )
        })
        .collect();
    let calling = association.peer_ae_title().trim().to_owned();
    let institution = admitted.institution.id.clone();
    tracing::info!(%peer, calling = %calling, institution = %institution, "association accepted");
    let principal = Principal::dicom_peer(&calling, &admitted.institution, &peer.ip().to_string());
    let mut session = Session {
        ctx: &ctx,
        association,
        principal,
        calling,
        contexts,
        command: Vec::new(),
        incoming: None,
        tally: Tally::default(),
    };
    let ending = session.pump().await;
    let (tally, calling) = (std::mem::take(&mut session.tally), session.calling.clone());
    session.close(ending).await;
    tracing::info!(%peer, stored = tally.stored, failed = tally.failed, bytes = tally.bytes,
        queries = tally.queries, sent = tally.sent, "association ended");
    let mut event = AuditEvent::now(
        "dicom_association",
        &calling,
        &institution,
        &peer.ip().to_string(),
    );
    event.outcome = format!(
        "stored {} failed {} queries {} sent {}",
        tally.stored, tally.failed, tally.queries, tally.sent
    );
    event.detail = format!("{} bytes", tally.bytes);
    ctx.audit.record(event).await;
}

/// How an association ended.
enum Ending {
    Released,
    PeerAborted,
    Lost(String),
    Violation(String),
    Idle,
}

impl<S> Session<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn pump(&mut self) -> Ending {
        let idle = Duration::from_secs(self.ctx.config.dicom.idle_timeout_secs);
        loop {
            let pdu = match tokio::time::timeout(idle, self.association.receive()).await {
                Err(_) => return Ending::Idle,
                Ok(Err(e)) => return Ending::Lost(e.to_string()),
                Ok(Ok(pdu)) => pdu,
            };
            match pdu {
                Pdu::PData { data } => {
                    for value in data {
                        if let Err(ProtocolViolation(why)) = self.on_value(value).await {
                            return Ending::Violation(why);
                        }
                    }
                }
                Pdu::ReleaseRQ => return Ending::Released,
                Pdu::AbortRQ { .. } => return Ending::PeerAborted,
                other => return Ending::Violation(format!("unexpected PDU {other:?}")),
            }
        }
    }

    async fn close(mut self, ending: Ending) {
        if let Some(Incoming::Store(transfer)) = self.incoming.take() {
            transfer.receiving.abort().await;
        }
        match ending {
            Ending::Released => {
                let _ = self.association.send(&Pdu::ReleaseRP).await;
            }
            Ending::PeerAborted => tracing::info!("peer aborted the association"),
            Ending::Lost(why) => tracing::info!(reason = %why, "association lost"),
            Ending::Violation(why) => {
                tracing::warn!(reason = %why, "protocol violation, aborting");
                let _ = self.association.abort().await;
            }
            Ending::Idle => {
                tracing::warn!("idle timeout, aborting");
                let _ = self.association.abort().await;
            }
        }
    }

    async fn on_value(&mut self, value: PDataValue) -> Result<(), ProtocolViolation> {
        match value.value_type {
            PDataValueType::Command => self.on_command(value).await,
            PDataValueType::Data => self.on_data(value).await,
        }
    }

    async fn on_command(&mut self, value: PDataValue) -> Result<(), ProtocolViolation> {
        if self.incoming.is_some() {
            return Err(ProtocolViolation(
                "command received while a data set was still arriving".into(),
            ));
        }
        self.command.extend_from_slice(&value.data);
        if !value.is_last {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.command);
        let request = Request::parse(&bytes).map_err(|e| ProtocolViolation(e.to_string()))?;
        let context_id = value.presentation_context_id;
        if !self.contexts.contains_key(&context_id) {
            return Err(ProtocolViolation(format!(
                "request on presentation context {context_id}, which was not accepted"
            )));
        }
        match request.command_field {
            C_ECHO_RQ => {
                self.respond(context_id, &request, STATUS_SUCCESS, None)
                    .await
            }
            C_STORE_RQ => self.begin_store(context_id, request).await,
            C_FIND_RQ | C_MOVE_RQ | C_GET_RQ if request.has_data_set => {
                self.incoming = Some(Incoming::Identifier {
                    request,
                    context_id,
                    bytes: Vec::new(),
                });
                Ok(())
            }
            C_FIND_RQ | C_MOVE_RQ | C_GET_RQ => {
                let comment = "request without an identifier";
                self.respond(
                    context_id,
                    &request,
                    STATUS_CANNOT_UNDERSTAND,
                    Some(comment),
                )
                .await
            }
            // Nothing is running to cancel; a C-CANCEL gets no response (PS3.7 9.3.2.3).
            C_CANCEL_RQ => Ok(()),
            _ => {
                self.respond(context_id, &request, STATUS_UNRECOGNIZED_OPERATION, None)
                    .await
            }
        }
    }

    async fn on_data(&mut self, value: PDataValue) -> Result<(), ProtocolViolation> {
        let Some(incoming) = self.incoming.as_mut() else {
            return Err(ProtocolViolation("data set without a request".into()));
        };
        let expected = match incoming {
            Incoming::Store(t) => t.context_id,
            Incoming::Identifier { context_id, .. } | Incoming::Discard { context_id, .. } => {
                *context_id
            }
        };
        if value.presentation_context_id != expected {
            return Err(ProtocolViolation(format!(
                "data set fragment on presentation context {} for a request on {expected}",
                value.presentation_context_id
            )));
        }
        match incoming {
            Incoming::Store(_) => return self.on_store_data(value).await,
            Incoming::Identifier { bytes, .. } => {
                bytes.extend_from_slice(&value.data);
                if bytes.len() > MAX_IDENTIFIER_BYTES {
                    let Some(Incoming::Identifier {
                        request,
                        context_id,
                        ..
                    }) = self.incoming.take()
                    else {
                        unreachable!("matched above");
                    };
                    self.incoming = Some(Incoming::Discard {
                        request,
                        context_id,
                        status: STATUS_CANNOT_UNDERSTAND,
                        comment: "identifier too large".into(),
                    });
                }
            }
            Incoming::Discard { .. } => {}
        }
        if !value.is_last {
            return Ok(());
        }
        match self.incoming.take() {
            Some(Incoming::Identifier {
                request,
                context_id,
                bytes,
            }) => self.on_identifier(request, context_id, bytes).await,
            Some(Incoming::Discard {
                request,
                context_id,
                status,
                comment,
            }) => {
                self.respond(context_id, &request, status, Some(&comment))
                    .await
            }
            _ => Ok(()),
        }
    }

    async fn on_identifier(
        &mut self,
        request: Request,
        context_id: u8,
        bytes: Vec<u8>,
    ) -> Result<(), ProtocolViolation> {
        match request.command_field {
            C_FIND_RQ => self.find(request, context_id, bytes).await,
            C_MOVE_RQ => self.retrieve_move(request, context_id, bytes).await,
            _ => self.retrieve_get(request, context_id, bytes).await,
        }
    }

    /// Records a request of this association refused before it reached the catalog (which
    /// audits what it answers itself).
    pub(super) async fn audit_refused(&mut self, kind: &str, detail: String, outcome: String) {
        let mut event = crate::catalog::event(&self.principal, kind);
        event.detail = detail;
        event.outcome = outcome;
        self.ctx.audit.record(event).await;
    }

    pub(super) async fn respond(
        &mut self,
        context_id: u8,
        request: &Request,
        status: u16,
        comment: Option<&str>,
    ) -> Result<(), ProtocolViolation> {
        let data = command::response(request, status, comment);
        self.send_message(context_id, data, None).await
    }

    /// A C-FIND/C-MOVE/C-GET response, with its identifier data set when there is one.
    pub(super) async fn respond_with(
        &mut self,
        context_id: u8,
        request: &Request,
        status: u16,
        comment: Option<&str>,
        sub_operations: Option<SubOperations>,
        data_set: Option<Vec<u8>>,
    ) -> Result<(), ProtocolViolation> {
        let command =
            command::response_with(request, status, comment, sub_operations, data_set.is_some());
        self.send_message(context_id, command, data_set).await
    }

    /// Sends a command and optionally a small data set, fragmented to the peer's PDU size.
    async fn send_message(
        &mut self,
        context_id: u8,
        command: Vec<u8>,
        data_set: Option<Vec<u8>>,
    ) -> Result<(), ProtocolViolation> {
        let send_err = |e: dicom_ul::association::Error| {
            ProtocolViolation(format!("cannot send response: {e}"))
        };
        let mut values = vec![PDataValue {
            presentation_context_id: context_id,
            value_type: PDataValueType::Command,
            is_last: true,
            data: command,
        }];
        let max = super::send::max_fragment(self.association.peer_max_pdu_length());
        match data_set {
            Some(data) if data.len() + values[0].data.len() + 12 <= max + 6 => {
                values.push(PDataValue {
                    presentation_context_id: context_id,
                    value_type: PDataValueType::Data,
                    is_last: true,
                    data,
                });
                self.association
                    .send(&Pdu::PData { data: values })
                    .await
                    .map_err(send_err)
            }
            Some(data) => {
                self.association
                    .send(&Pdu::PData { data: values })
                    .await
                    .map_err(send_err)?;
                let chunks: Vec<&[u8]> = data.chunks(max).collect();
                for (i, chunk) in chunks.iter().enumerate() {
                    let value = PDataValue {
                        presentation_context_id: context_id,
                        value_type: PDataValueType::Data,
                        is_last: i + 1 == chunks.len(),
                        data: chunk.to_vec(),
                    };
                    self.association
                        .send(&Pdu::PData { data: vec![value] })
                        .await
                        .map_err(send_err)?;
                }
                Ok(())
            }
            None => self
                .association
                .send(&Pdu::PData { data: values })
                .await
                .map_err(send_err),
        }
    }

    /// Whether the peer has sent a C-CANCEL for `message_id`, looking without waiting.
    /// Anything else arriving while a request is being answered breaks the protocol (we do
    /// not negotiate asynchronous operations).
    pub(super) async fn cancelled(&mut self, message_id: u16) -> Result<bool, ProtocolViolation> {
        // Receiving is cancel-safe: a partly read PDU stays in dicom-ul's buffer.
        let Some(received) = self.association.receive().now_or_never() else {
            return Ok(false);
        };
        let pdu = received.map_err(|e| ProtocolViolation(format!("association lost: {e}")))?;
        self.on_interrupt(pdu, message_id)
    }

    /// Handles a PDU that arrived in the middle of answering `message_id`.
    pub(super) fn on_interrupt(
        &mut self,
        pdu: Pdu,
        message_id: u16,
    ) -> Result<bool, ProtocolViolation> {
        let Pdu::PData { data } = pdu else {
            return Err(ProtocolViolation(format!(
                "unexpected PDU while answering a request: {pdu:?}"
            )));
        };
        let mut cancel = false;
        for value in data {
            if value.value_type != PDataValueType::Command {
                return Err(ProtocolViolation(
                    "data set received while answering a request".into(),
                ));
            }
            self.command.extend_from_slice(&value.data);
            if value.is_last {
                let bytes = std::mem::take(&mut self.command);
                let request =
                    Request::parse(&bytes).map_err(|e| ProtocolViolation(e.to_string()))?;
                if request.command_field != C_CANCEL_RQ || request.message_id != message_id {
                    return Err(ProtocolViolation(format!(
                        "command {:#06X} received while answering message {message_id}",
                        request.command_field
                    )));
                }
                cancel = true;
            }
        }
        Ok(cancel)
    }
}
