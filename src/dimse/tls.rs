//! DICOM over TLS (PS3.15 B.1) with rustls: server configuration and the TLS accept path.
//!
//! The handshake runs under our own timeout (dicom-ul's read timeout does not cover it). Titles
//! are checked inside negotiation; the association limits are applied once it is established,
//! since nothing can be read before the handshake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dicom_ul::association::Association;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;

use super::service::{self, Gate};
use super::DimseContext;
use crate::config::DicomTlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no {what}")]
    Empty { path: PathBuf, what: &'static str },
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

fn read_pem(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read_pem(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsSetupError::Read {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Empty {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let pem = read_pem(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsSetupError::Read {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsSetupError::Empty {
            path: path.to_owned(),
            what: "private key",
        })
}

/// Builds the rustls server configuration, requiring client certificates when a CA is given.
pub fn server_config(tls: &DicomTlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let builder = if tls.client_ca.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(&tls.client_ca)? {
            roots
                .add(cert)
                .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let config = builder
        .with_single_cert(
            certificates(&tls.certificate)?,
            private_key(&tls.private_key)?,
        )
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    Ok(Arc::new(config))
}

pub(super) async fn handle(socket: TcpStream, peer: SocketAddr, ctx: DimseContext) {
    let gate = Gate {
        admission: ctx.admission.clone(),
        peer,
    };
    let limit = Duration::from_secs(
        ctx.config.dicom.tls.handshake_timeout_secs + ctx.config.dicom.artim_timeout_secs,
    );
    let options = service::options(&ctx, gate);
    let association = match tokio::time::timeout(limit, options.establish_tls_async(socket)).await {
        Ok(Ok(association)) => association,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS association not established");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake or association request timed out");
            return;
        }
    };
    let called = association.called_ae_title().to_owned();
    let calling = association.peer_ae_title().to_owned();
    match ctx.admission.admit(&called, &calling, peer.ip()) {
        Ok(admitted) => service::serve(ctx, association, peer, admitted).await,
        Err(refusal) => {
            tracing::warn!(%peer, %calling, reason = %refusal, "TLS association over limit, aborting");
            ctx.metrics.association(refusal.label());
            let _ = association.abort().await;
        }
    }
}
