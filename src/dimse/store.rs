//! C-STORE SCP: data set fragments go straight into the ingest pipeline as they arrive, and
//! the response is sent only after ingest has made the object durable and indexed it.

use dicom_ul::pdu::PDataValue;
use tokio::io::{AsyncRead, AsyncWrite};

use super::command::Request;
use super::service::{
    Incoming, ProtocolViolation, Session, STATUS_CANNOT_UNDERSTAND, STATUS_SUCCESS,
};
use crate::access::Action;
use crate::index::Recorded;
use crate::ingest::{Declared, IngestError, Origin, Receiving, Stored};

/// Warning: Coercion of Data Elements; used for "kept beside other content under this UID".
const STATUS_WARNING_DUPLICATE: u16 = 0xB000;
const STATUS_OUT_OF_RESOURCES: u16 = 0xA700;
const STATUS_DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
/// Refused: Not Authorized (PS3.7 C.5.3).
pub(super) const STATUS_NOT_AUTHORIZED: u16 = 0x0124;

/// An object in flight on this association.
pub(super) struct Transfer {
    pub request: Request,
    pub context_id: u8,
    pub receiving: Receiving,
}

impl<S> Session<'_, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn begin_store(
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
        if let Err(denied) = self
            .ctx
            .catalog
            .policy()
            .permit(&self.principal, Action::Store)
        {
            tracing::warn!(sop_instance_uid = %request.affected_sop_instance_uid, %denied, "C-STORE refused");
            self.audit_refusal(&request, format!("denied: {denied}"))
                .await;
            self.tally.failed += 1;
            self.incoming = Some(Incoming::Discard {
                request,
                context_id,
                status: STATUS_NOT_AUTHORIZED,
                comment: denied.to_string(),
            });
            return Ok(());
        }
        let origin = Origin {
            clinic_id: self.principal.institution.clone(),
            calling_ae: self.calling.clone(),
            sender: self.principal.clone(),
            made_here: false,
        };
        let declared = Declared {
            sop_class_uid: request.affected_sop_class_uid.clone(),
            sop_instance_uid: request.affected_sop_instance_uid.clone(),
            transfer_syntax,
            context_sop_class_uid: abstract_syntax,
            study_uid: None,
        };
        let receiving = self.ctx.ingest.begin(origin, declared).await;
        self.incoming = Some(Incoming::Store(Box::new(Transfer {
            request,
            context_id,
            receiving,
        })));
        Ok(())
    }

    /// Records a C-STORE this association was refused.
    async fn audit_refusal(&mut self, request: &Request, outcome: String) {
        let detail = format!(
            "C-STORE of SOP Instance {}",
            request.affected_sop_instance_uid
        );
        self.audit_refused("store", detail, outcome).await;
    }

    pub(super) async fn on_store_data(
        &mut self,
        value: PDataValue,
    ) -> Result<(), ProtocolViolation> {
        let Some(Incoming::Store(transfer)) = self.incoming.as_mut() else {
            return Err(ProtocolViolation(
                "data set without a C-STORE request".into(),
            ));
        };
        transfer.receiving.write(&value.data).await;
        if !value.is_last {
            return Ok(());
        }
        let Some(Incoming::Store(transfer)) = self.incoming.take() else {
            unreachable!("matched above");
        };
        let Transfer {
            request,
            context_id,
            receiving,
        } = *transfer;
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
                // A write into another clinic's data is audited by ingest, with both parties.
                if !matches!(e, IngestError::Foreign { .. }) {
                    self.audit_refusal(&request, format!("refused {status:#06X}: {e}"))
                        .await;
                }
            }
        }
        self.respond(context_id, &request, status, comment.as_deref())
            .await
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
                IngestError::Foreign { .. } => STATUS_NOT_AUTHORIZED,
                _ => match e.fault() {
                    crate::fault::Fault::BadInput => STATUS_CANNOT_UNDERSTAND,
                    _ => STATUS_OUT_OF_RESOURCES,
                },
            };
            (status, Some(e.to_string()))
        }
    }
}
