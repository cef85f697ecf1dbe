//! Sending a stored instance as a C-STORE sub-operation: on our own association to a C-MOVE
//! destination, or back on the requester's association for C-GET.
//!
//! The data set is streamed from the object store into P-DATA fragments of the peer's maximum
//! PDU size, so an instance of any size costs one PDU of memory. It goes out exactly as stored;
//! a peer that did not accept the stored transfer syntax does not get it at all.

use bytes::Bytes;
use dicom_ul::association::{Association, AsyncAssociation};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("reading the stored object failed: {0}")]
    Archive(#[from] ArchiveError),
    #[error("the peer connection failed: {0}")]
    Wire(String),
    #[error("the peer broke the protocol: {0}")]
    Protocol(String),
}

/// The largest P-DATA value we put in one PDU for a peer announcing `peer_max` (0: no limit).
pub fn max_fragment(peer_max: u32) -> usize {
    if peer_max == 0 {
        1 << 20
    } else {
        // The PDU length covers the value's 6-byte item header.
        (peer_max as usize).saturating_sub(6).max(64)
    }
}

/// Sends a C-STORE request: its command set, then the data set streamed from `data`.
pub async fn store<A, S>(
    association: &mut A,
    context_id: u8,
    command: Vec<u8>,
    mut data: BoxStream<'static, Result<Bytes, ArchiveError>>,
) -> Result<u64, SendError>
where
    A: AsyncAssociation<S> + Association + Send,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let wire = |e: dicom_ul::association::Error| SendError::Wire(e.to_string());
    AsyncAssociation::send(
        association,
        &Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        },
    )
    .await
    .map_err(wire)?;
    let max = max_fragment(association.peer_max_pdu_length());
    let mut pending: Vec<u8> = Vec::with_capacity(max * 2);
    let mut sent = 0u64;
    while let Some(chunk) = data.next().await {
        pending.extend_from_slice(&chunk?);
        // Keep at least one byte back: the last fragment must carry the "last" flag.
        while pending.len() > max {
            let rest = pending.split_off(max);
            let fragment = std::mem::replace(&mut pending, rest);
            sent += fragment.len() as u64;
            send_data(association, context_id, fragment, false).await?;
        }
    }
    sent += pending.len() as u64;
    send_data(association, context_id, pending, true).await?;
    Ok(sent)
}

async fn send_data<A, S>(
    association: &mut A,
    context_id: u8,
    data: Vec<u8>,
    is_last: bool,
) -> Result<(), SendError>
where
    A: AsyncAssociation<S> + Send,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    AsyncAssociation::send(
        association,
        &Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: PDataValueType::Data,
                is_last,
                data,
            }],
        },
    )
    .await
    .map_err(|e| SendError::Wire(e.to_string()))
}

/// Reads PDUs until a whole command set has arrived (a response to our request).
pub async fn next_command<A, S>(association: &mut A) -> Result<Vec<u8>, SendError>
where
    A: AsyncAssociation<S> + Send,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut command = Vec::new();
    loop {
        let pdu = AsyncAssociation::receive(association)
            .await
            .map_err(|e| SendError::Wire(e.to_string()))?;
        let Pdu::PData { data } = pdu else {
            return Err(SendError::Protocol(format!(
                "expected a response, got {pdu:?}"
            )));
        };
        for value in data {
            if value.value_type != PDataValueType::Command {
                return Err(SendError::Protocol(
                    "data set where a response was due".into(),
                ));
            }
            command.extend_from_slice(&value.data);
            if value.is_last {
                return Ok(command);
            }
        }
    }
}
