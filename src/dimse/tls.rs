//! DICOM over TLS (PS3.15 B.1) with rustls: server configuration and the TLS accept path.
//!
//! The handshake runs under our own timeout (dicom-ul's read timeout does not cover it). Titles
//! are checked inside negotiation; the association limits are applied once it is established,
//! since nothing can be read before the handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dicom_ul::association::Association;
use tokio::net::TcpStream;

use super::policy::{Admitted, Refusal};
use super::service::{self, Gate};
use super::DimseContext;
use crate::config::DicomTlsConfig;
pub use crate::tls::TlsSetupError;

/// Builds the rustls server configuration, requiring client certificates when a CA is given.
pub fn server_config(tls: &DicomTlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let client_ca = (!tls.client_ca.as_os_str().is_empty()).then_some(tls.client_ca.as_path());
    crate::tls::server_config(&tls.certificate, &tls.private_key, client_ca)
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
    let mut association =
        match tokio::time::timeout(limit, options.establish_tls_async(socket)).await {
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
    let certificate = association
        .inner_stream()
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .cloned();
    let admitted = ctx
        .admission
        .admit(&called, &calling, peer.ip())
        .and_then(|admitted| bound(&ctx, admitted, certificate.as_ref()));
    match admitted {
        Ok(admitted) => service::serve(ctx, association, peer, admitted).await,
        Err(refusal) => {
            tracing::warn!(%peer, %calling, reason = %refusal, "TLS association refused, aborting");
            ctx.metrics.association(refusal.label());
            super::audit_rejection(&ctx, peer, &calling, &called, &refusal).await;
            let _ = association.abort().await;
        }
    }
}

/// With client certificates required, the certificate must carry one of the names of the
/// institution whose AE title is calling: a certificate of clinic A cannot call as clinic B.
fn bound(
    ctx: &DimseContext,
    admitted: Admitted,
    certificate: Option<&rustls::pki_types::CertificateDer<'static>>,
) -> Result<Admitted, Refusal> {
    if ctx.config.dicom.tls.client_ca.as_os_str().is_empty() {
        return Ok(admitted);
    }
    let names = &admitted.institution.certificate_names;
    match certificate {
        Some(cert) if crate::tls::carries_any_name(cert, names) => Ok(admitted),
        _ => Err(Refusal::CertificateNotBound {
            institution: admitted.institution.id.clone(),
        }),
    }
}
