//! Pushing one stored instance to a clinic's PACS: our own association as a storage SCU, one
//! C-STORE, the peer's status checked, then release. Used by report delivery.

use std::time::Duration;

use bytes::Bytes;
use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::pdu::PresentationContextResultReason;

use super::command;
use super::send;
use crate::archive::ArchiveError;
use crate::config::PacsTarget;

const C_STORE_RSP: u16 = 0x8001;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("association with {target} failed: {message}")]
    Associate { target: String, message: String },
    #[error("{target} accepts no {sop_class} in transfer syntax {transfer_syntax}")]
    NotAccepted {
        target: String,
        sop_class: String,
        transfer_syntax: String,
    },
    #[error("sending to {target} failed: {message}")]
    Send { target: String, message: String },
    #[error("{target} answered C-STORE with status {status:04X}H {comment}")]
    Refused {
        target: String,
        status: u16,
        comment: String,
    },
    #[error("{target} did not answer within {seconds} s")]
    Timeout { target: String, seconds: u64 },
}

/// What to send: one instance's data set, as stored.
pub struct Instance {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax: String,
    /// The data set without the Part 10 header.
    pub dataset: Bytes,
}

/// Sends `instance` to `target` as `calling_ae`; success or warning statuses are delivery.
pub async fn store_instance(
    calling_ae: &str,
    max_pdu: u32,
    target: &PacsTarget,
    instance: Instance,
    timeout: Duration,
) -> Result<u16, PushError> {
    let name = target.describe();
    match tokio::time::timeout(
        timeout,
        attempt(calling_ae, max_pdu, target, instance, timeout),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(PushError::Timeout {
            target: name,
            seconds: timeout.as_secs(),
        }),
    }
}

async fn attempt(
    calling_ae: &str,
    max_pdu: u32,
    target: &PacsTarget,
    instance: Instance,
    timeout: Duration,
) -> Result<u16, PushError> {
    let name = target.describe();
    let address = format!("{}:{}", target.host, target.port);
    let mut peer = ClientAssociationOptions::new()
        .calling_ae_title(calling_ae.to_owned())
        .called_ae_title(target.ae_title.clone())
        .max_pdu_length(max_pdu)
        .connection_timeout(timeout)
        .with_presentation_context(
            instance.sop_class_uid.clone(),
            vec![instance.transfer_syntax.clone()],
        )
        .establish_async(address.as_str())
        .await
        .map_err(|e| PushError::Associate {
            target: name.clone(),
            message: e.to_string(),
        })?;
    let _ = peer.inner_stream().set_nodelay(true);
    let context = peer
        .presentation_contexts()
        .iter()
        .find(|pc| {
            pc.reason == PresentationContextResultReason::Acceptance
                && pc.abstract_syntax == instance.sop_class_uid
        })
        .map(|pc| pc.id);
    let Some(context) = context else {
        let _ = peer.release().await;
        return Err(PushError::NotAccepted {
            target: name,
            sop_class: instance.sop_class_uid,
            transfer_syntax: instance.transfer_syntax,
        });
    };
    let request = command::store_request(
        1,
        &instance.sop_class_uid,
        &instance.sop_instance_uid,
        0,
        None,
    );
    let data = futures::stream::once(async move { Ok::<Bytes, ArchiveError>(instance.dataset) });
    let sent = async {
        send::store(&mut peer, context, request, Box::pin(data)).await?;
        let reply = send::next_command(&mut peer).await?;
        command::Reply::parse(&reply).map_err(|e| send::SendError::Protocol(e.to_string()))
    }
    .await;
    let reply = match sent {
        Ok(reply) => reply,
        Err(e) => {
            let _ = peer.abort().await;
            return Err(PushError::Send {
                target: name,
                message: e.to_string(),
            });
        }
    };
    let _ = peer.release().await;
    if reply.command_field != C_STORE_RSP || reply.message_id_responded_to != 1 {
        return Err(PushError::Send {
            target: name,
            message: format!(
                "answered command {:04X}H to message {} instead of a C-STORE response",
                reply.command_field, reply.message_id_responded_to
            ),
        });
    }
    // Success, or a warning (coercion, elements discarded): the object is stored.
    if reply.status == 0x0000 || (reply.status & 0xF000) == 0xB000 || reply.status == 0x0107 {
        Ok(reply.status)
    } else {
        Err(PushError::Refused {
            target: name,
            status: reply.status,
            comment: reply.comment,
        })
    }
}
