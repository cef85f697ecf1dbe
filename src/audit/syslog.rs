//! Sends the audit trail to the hospital's audit repository: every chained event, in chain
//! order, as a DICOM audit message in RFC 5424 syslog over TLS (RFC 5425 framing). The position
//! reached is kept in the index after each batch the connection took, so a restart, a lost
//! connection or a second node resumes there; an event may be sent twice, never skipped.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::export::syslog_frame;
use crate::config::Config;
use crate::index::Index;
use crate::tls::TlsSetupError;

const BATCH: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("audit repository TLS: {0}")]
    Tls(#[from] TlsSetupError),
    #[error("audit repository `{0}`: not a host name TLS can check")]
    Name(String),
}

pub struct Forwarder {
    index: Index,
    target: String,
    server_name: rustls::pki_types::ServerName<'static>,
    tls: tokio_rustls::TlsConnector,
    source: String,
    host: String,
}

impl Forwarder {
    /// The forwarder the configuration asks for; `None` when no repository is named.
    pub fn from_config(index: Index, config: &Config) -> Result<Option<Forwarder>, SyslogError> {
        let s = &config.audit.syslog;
        if s.target.trim().is_empty() {
            return Ok(None);
        }
        let target = s.target.trim().to_owned();
        let host = target
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or("");
        let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| SyslogError::Name(target.clone()))?;
        let identity = if s.certificate.trim().is_empty() {
            None
        } else {
            Some((
                config.data_path(&s.certificate),
                config.data_path(&s.private_key),
            ))
        };
        let tls = crate::tls::client_config(
            &config.data_path(&s.ca),
            identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )?;
        Ok(Some(Forwarder {
            index,
            target,
            server_name,
            tls: tokio_rustls::TlsConnector::from(tls),
            source: config.dicom.ae_title.clone(),
            host: std::env::var("HOSTNAME").unwrap_or_default(),
        }))
    }

    /// Sends until the service stops, reconnecting with a growing pause after a failure.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut pause = Duration::from_secs(1);
        loop {
            match self.session(&mut stopped).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(alert = "audit_repository", target = %self.target, error = %e,
                        "the audit repository cannot be reached; events wait in the trail");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => return,
            }
            pause = (pause * 2).min(Duration::from_secs(60));
        }
    }

    /// One connection: sends what is new until the service stops (`Ok`) or the connection or
    /// the index fails (`Err`).
    async fn session(&self, stopped: &mut watch::Receiver<bool>) -> Result<(), String> {
        let tcp = tokio::net::TcpStream::connect(&self.target)
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let mut stream = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(target = %self.target, "sending the audit trail to the audit repository");
        loop {
            let from = self
                .index
                .audit_forwarded()
                .await
                .map_err(|e| e.to_string())?;
            let events = self
                .index
                .audit_chain_after(from, BATCH)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = events.last().map(|e| e.seq) else {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stopped.changed() => {
                        let _ = stream.shutdown().await;
                        return Ok(());
                    }
                }
            };
            let mut batch = Vec::new();
            for e in &events {
                batch.extend_from_slice(&syslog_frame(e, &self.source, &self.host));
            }
            stream.write_all(&batch).await.map_err(|e| e.to_string())?;
            stream.flush().await.map_err(|e| e.to_string())?;
            self.index
                .advance_audit_forwarded(from, last)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
}
