//! One association from negotiation to release: C-ECHO and C-STORE.
//!
//! P-DATA values are handled as they arrive: a data set fragment goes straight into the ingest
//! pipeline, so an object is never held whole in memory. A C-STORE response is sent only after
//! ingest has made the object durable and indexed it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use dicom_ul::association::server::{
    AccessControl, AsyncServerAssociation, DefaultNegotiation, ServerAssociationOptions,
};
use dicom_ul::association::Association;
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PDataValue, PDataValueType, Pdu,
    PresentationContextResultReason, UserIdentity,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::command::{self, Request, C_CANCEL_RQ, C_ECHO_RQ, C_STORE_RQ};
use super::policy::{Admission, Admitted};
use super::syntaxes::{storage_sop_classes, TRANSFER_SYNTAXES, VERIFICATION};
use super::DimseContext;
use crate::config::Clinic;
use crate::index::{AuditEvent, Recorded};
use crate::ingest::{Declared, IngestError, Origin, Receiving, Stored};

const STATUS_SUCCESS: u16 = 0x0000;
/// Warning: Coercion of Data Elements; used for "kept beside other content under this UID".
const STATUS_WARNING_DUPLICATE: u16 = 0xB000;
const STATUS_OUT_OF_RESOURCES: u16 = 0xA700;
const STATUS_DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
const STATUS_CANNOT_UNDERSTAND: u16 = 0xC000;
const STATUS_UNRECOGNIZED_OPERATION: u16 = 0x0211;

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

pub(super) fn options(
    ctx: &DimseContext,
    gate: Gate,
) -> ServerAssociationOptions<'static, Gate, DefaultNegotiation> {
    let dicom = &ctx.config.dicom;
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(gate)
        .ae_title(dicom.ae_title.clone())
        .max_pdu_length(dicom.max_pdu_bytes)
        .with_abstract_syntax(VERIFICATION);
    for uid in storage_sop_classes(&dicom.extra_sop_classes) {
        options = options.with_abstract_syntax(uid);
    }
    for ts in TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(*ts);
    }
    if let Some(tls) = &ctx.tls {
        options = options.tls_config(tls.clone());
    }
    options
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

/// An object in flight on this association.
struct Transfer {
    request: Request,
    context_id: u8,
    receiving: Receiving,
}

#[derive(Default)]
struct Tally {
    stored: u64,
    failed: u64,
    bytes: u64,
}

struct Session<'a, S> {
    ctx: &'a DimseContext,
    association: AsyncServerAssociation<S>,
    clinic: Clinic,
    calling: String,
    /// Accepted presentation contexts: id → (abstract syntax, transfer syntax).
    contexts: HashMap<u8, (String, String)>,
    command: Vec<u8>,
    transfer: Option<Transfer>,
    tally: Tally,
}

#[derive(Debug)]
struct ProtocolViolation(String);

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
    tracing::info!(%peer, calling = %calling, clinic = %admitted.clinic.id, "association accepted");
    let mut session = Session {
        ctx: &ctx,
        association,
        clinic: admitted.clinic.clone(),
        calling,
        contexts,
        command: Vec::new(),
        transfer: None,
        tally: Tally::default(),
    };
    let ending = session.pump().await;
    let (tally, calling) = (std::mem::take(&mut session.tally), session.calling.clone());
    session.close(ending).await;
    tracing::info!(%peer, stored = tally.stored, failed = tally.failed, bytes = tally.bytes, "association ended");
    let mut event = AuditEvent::now(
        "dicom_association",
        &calling,
        &admitted.clinic.id,
        &peer.ip().to_string(),
    );
    event.outcome = format!("stored {} failed {}", tally.stored, tally.failed);
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
        if let Some(transfer) = self.transfer.take() {
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
        if self.transfer.is_some() {
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
        match request.command_field {
            C_ECHO_RQ => {
                self.respond(context_id, &request, STATUS_SUCCESS, None)
                    .await
            }
            C_STORE_RQ => self.begin_store(context_id, request).await,
            // Nothing of ours is cancellable yet; a C-CANCEL gets no response (PS3.7 9.3.2.3).
            C_CANCEL_RQ => Ok(()),
            _ => {
                self.respond(context_id, &request, STATUS_UNRECOGNIZED_OPERATION, None)
                    .await
            }
        }
    }

    async fn begin_store(
        &mut self,
        context_id: u8,
        request: Request,
    ) -> Result<(), ProtocolViolation> {
        let Some((abstract_syntax, transfer_syntax)) = self.contexts.get(&context_id).cloned()
        else {
            return Err(ProtocolViolation(format!(
                "C-STORE on presentation context {context_id}, which was not accepted"
            )));
        };
        if !request.has_data_set {
            let comment = "C-STORE request without a data set";
            return self
                .respond(
                    context_id,
                    &request,
                    STATUS_CANNOT_UNDERSTAND,
                    Some(comment),
                )
                .await;
        }
        let origin = Origin {
            clinic_id: self.clinic.id.clone(),
            calling_ae: self.calling.clone(),
        };
        let declared = Declared {
            sop_class_uid: request.affected_sop_class_uid.clone(),
            sop_instance_uid: request.affected_sop_instance_uid.clone(),
            transfer_syntax,
            context_sop_class_uid: abstract_syntax,
        };
        let receiving = self.ctx.ingest.begin(origin, declared).await;
        self.transfer = Some(Transfer {
            request,
            context_id,
            receiving,
        });
        Ok(())
    }

    async fn on_data(&mut self, value: PDataValue) -> Result<(), ProtocolViolation> {
        let Some(transfer) = self.transfer.as_mut() else {
            return Err(ProtocolViolation(
                "data set without a C-STORE request".into(),
            ));
        };
        if value.presentation_context_id != transfer.context_id {
            return Err(ProtocolViolation(format!(
                "data set fragment on presentation context {} for a request on {}",
                value.presentation_context_id, transfer.context_id
            )));
        }
        transfer.receiving.write(&value.data).await;
        if !value.is_last {
            return Ok(());
        }
        let Transfer {
            request,
            context_id,
            receiving,
        } = self.transfer.take().expect("checked above");
        let result = receiving.finish().await;
        let (status, comment) = store_status(&result);
        match &result {
            Ok(stored) => {
                self.tally.stored += 1;
                self.tally.bytes += stored.size_bytes;
                tracing::info!(
                    sop_instance_uid = %request.affected_sop_instance_uid,
                    key = %stored.object_key,
                    bytes = stored.size_bytes,
                    status = format_args!("{status:#06X}"),
                    "stored"
                );
            }
            Err(e) => {
                self.tally.failed += 1;
                tracing::warn!(
                    sop_instance_uid = %request.affected_sop_instance_uid,
                    status = format_args!("{status:#06X}"),
                    error = %e,
                    "C-STORE refused"
                );
            }
        }
        self.respond(context_id, &request, status, comment.as_deref())
            .await
    }

    async fn respond(
        &mut self,
        context_id: u8,
        request: &Request,
        status: u16,
        comment: Option<&str>,
    ) -> Result<(), ProtocolViolation> {
        let pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command::response(request, status, comment),
            }],
        };
        self.association
            .send(&pdu)
            .await
            .map_err(|e| ProtocolViolation(format!("cannot send response: {e}")))
    }
}

/// The one mapping from ingest outcomes to C-STORE statuses (PS3.4 B.2.3).
fn store_status(result: &Result<Stored, IngestError>) -> (u16, Option<String>) {
    match result {
        Ok(Stored {
            recorded: Recorded::Conflict { .. },
            ..
        }) => (
            STATUS_WARNING_DUPLICATE,
            Some("SOP Instance UID already stored with other content; both kept".into()),
        ),
        Ok(_) => (STATUS_SUCCESS, None),
        Err(e) => {
            let status = match e {
                IngestError::Mismatch { .. } | IngestError::TransferSyntax(_) => {
                    STATUS_DATA_SET_DOES_NOT_MATCH_SOP_CLASS
                }
                IngestError::TooLarge { .. } => STATUS_OUT_OF_RESOURCES,
                _ => match e.fault() {
                    crate::fault::Fault::BadInput => STATUS_CANNOT_UNDERSTAND,
                    _ => STATUS_OUT_OF_RESOURCES,
                },
            };
            (status, Some(e.to_string()))
        }
    }
}
