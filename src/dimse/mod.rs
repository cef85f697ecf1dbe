//! The DICOM network edge: listeners, association admission and the DIMSE services.
//!
//! Accept loop → one task per connection → admission on the A-ASSOCIATE-RQ header → dicom-ul
//! negotiation → [`service`] for the association's lifetime, which hands each request to
//! `store` (C-STORE into ingest), `find` (C-FIND) or `retrieve` (C-MOVE, C-GET), all reading
//! through the scoped, audited catalog. This module maps domain results to DIMSE statuses and
//! never touches SQL or the object store directly.

mod command;
mod find;
mod identifier;
pub mod policy;
pub mod push;
mod retrieve;
mod send;
mod service;
mod status;
mod store;
mod syntaxes;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dicom_ul::pdu::{Pdu, PDU_HEADER_SIZE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

use crate::audit::AuditTrail;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::index::AuditEvent;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use policy::{Admission, Refusal};

pub use syntaxes::{storage_sop_classes, TRANSFER_SYNTAXES};

/// Bytes of an A-ASSOCIATE-RQ up to the end of the calling AE title (PS3.8 9.3.2).
const RQ_TITLES_END: usize = 42;

/// Everything a connection needs; shared by all of them.
#[derive(Clone)]
pub struct DimseContext {
    pub config: Arc<Config>,
    pub ingest: Ingest,
    pub admission: Admission,
    pub audit: AuditTrail,
    pub catalog: Catalog,
    pub metrics: Metrics,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DimseError {
    #[error("cannot listen for DICOM on {addr}: {source} (another instance? set {setting})")]
    Bind {
        addr: SocketAddr,
        /// Where the port is set, for the message.
        setting: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
}

impl DimseContext {
    pub fn new(
        config: Arc<Config>,
        ingest: Ingest,
        audit: AuditTrail,
        catalog: Catalog,
        metrics: Metrics,
    ) -> Result<DimseContext, DimseError> {
        let tls = if config.dicom.tls.enabled {
            Some(tls::server_config(&config.dicom.tls)?)
        } else {
            None
        };
        Ok(DimseContext {
            admission: Admission::new(config.clone()),
            config,
            ingest,
            audit,
            catalog,
            metrics,
            tls,
        })
    }
}

/// Listens on `addr`, whose port `setting` (a configuration key and a flag) sets.
pub async fn bind(addr: SocketAddr, setting: &'static str) -> Result<TcpListener, DimseError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DimseError::Bind {
            addr,
            setting,
            source,
        })
}

/// Accepts connections until `shutdown` turns true, then waits for open associations to end.
pub async fn serve(
    listener: TcpListener,
    ctx: DimseContext,
    secure: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let span = tracing::info_span!("association", %peer, secure);
                    tasks.spawn(handle_connection(socket, peer, ctx.clone(), secure).instrument(span));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn handle_connection(socket: TcpStream, peer: SocketAddr, ctx: DimseContext, secure: bool) {
    // Without it every small PDU waits on the peer's delayed ACK.
    let _ = socket.set_nodelay(true);
    if secure {
        tls::handle(socket, peer, ctx).await;
        return;
    }
    let artim = Duration::from_secs(ctx.config.dicom.artim_timeout_secs);
    let titles = match tokio::time::timeout(artim, peek_titles(&socket)).await {
        Ok(Ok(Some(titles))) => titles,
        Ok(Ok(None)) => {
            // Not an A-ASSOCIATE-RQ: let dicom-ul answer it with the proper abort.
            let _ = service::negotiate(&ctx, socket, None).await;
            return;
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection closed before association request");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "ARTIM timeout: no association request");
            return;
        }
    };
    let (called, calling) = titles;
    match ctx.admission.admit(&called, &calling, peer.ip()) {
        Ok(admitted) => service::run(ctx, socket, peer, admitted).await,
        Err(refusal) => reject(&ctx, socket, peer, &calling, &called, refusal).await,
    }
}

/// Reads the called and calling AE titles of an A-ASSOCIATE-RQ without consuming it.
async fn peek_titles(socket: &TcpStream) -> std::io::Result<Option<(String, String)>> {
    let mut buf = [0u8; RQ_TITLES_END];
    loop {
        let n = socket.peek(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if buf[0] != 0x01 {
            return Ok(None);
        }
        if n >= RQ_TITLES_END {
            let title = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
            return Ok(Some((title(&buf[10..26]), title(&buf[26..42]))));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Answers with an A-ASSOCIATE-RJ, then records why.
async fn reject(
    ctx: &DimseContext,
    mut socket: TcpStream,
    peer: SocketAddr,
    calling: &str,
    called: &str,
    refusal: Refusal,
) {
    tracing::warn!(%peer, calling, called, reason = %refusal, "association rejected");
    ctx.metrics.association(refusal.label());
    let mut header = [0u8; PDU_HEADER_SIZE as usize];
    if socket.read_exact(&mut header).await.is_ok() {
        let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as u64;
        // Drain the request so the peer reads our answer rather than a reset.
        let _ = tokio::io::copy(
            &mut (&mut socket).take(len.min(1 << 20)),
            &mut tokio::io::sink(),
        )
        .await;
    }
    // Recorded before the answer, so whoever sees the rejection can find it audited.
    audit_rejection(ctx, peer, calling, called, &refusal).await;
    let mut out = Vec::new();
    if dicom_ul::write_pdu(&mut out, &Pdu::AssociationRJ(refusal.pdu())).is_ok() {
        let _ = socket.write_all(&out).await;
        let _ = socket.shutdown().await;
    }
}

/// A refused association as a security event, on the plain port (rejected) and on the TLS
/// port (aborted once established).
async fn audit_rejection(
    ctx: &DimseContext,
    peer: SocketAddr,
    calling: &str,
    called: &str,
    refusal: &Refusal,
) {
    let mut event = AuditEvent::now(
        "dicom_association_rejected",
        calling,
        refusal.institution(),
        &peer.ip().to_string(),
    );
    event.outcome = refusal.label().to_owned();
    event.detail = format!("called AE `{called}`: {refusal}");
    ctx.audit.record(event).await;
}
