//! Delivery of a frozen indicator report to the national quality platform: its FHIR Bundle
//! POSTed to the configured endpoint with the report's id as Idempotency-Key, so a retry after
//! an answer that never arrived is recognised there, not counted twice.

use std::time::Duration;

use super::{Deliveries, DeliveryError};
use crate::archive::ObjectKey;
use crate::index::DeliveryRow;

impl Deliveries {
    pub(super) async fn to_platform(&self, row: &DeliveryRow) -> Result<String, DeliveryError> {
        let platform = &self.config.indicators.platform;
        if platform.url.is_empty() {
            return Err(DeliveryError::NotConfigured(
                "the quality platform (indicators.platform.url)".into(),
            ));
        }
        let report = self
            .index
            .indicator_report(&row.report_id)
            .await?
            .ok_or_else(|| DeliveryError::Missing(format!("indicator report {}", row.report_id)))?;
        let bundle = self
            .archive
            .read(&ObjectKey::from(report.bundle_key.as_str()))
            .await?;
        let mut client = reqwest::Client::builder()
            .timeout(Duration::from_secs(self.config.delivery.timeout_seconds))
            .tcp_nodelay(true);
        if !platform.ca.is_empty() || !platform.certificate.is_empty() {
            let ca = self.config.data_path(&platform.ca);
            let identity = (!platform.certificate.is_empty()).then(|| {
                (
                    self.config.data_path(&platform.certificate),
                    self.config.data_path(&platform.private_key),
                )
            });
            let tls = crate::tls::client_config(
                &ca,
                identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            )
            .map_err(|e| DeliveryError::Platform {
                status: 0,
                detail: format!("TLS setup: {e}"),
            })?;
            client = client.tls_backend_preconfigured((*tls).clone());
        }
        let client = client.build().map_err(|e| DeliveryError::Platform {
            status: 0,
            detail: e.to_string(),
        })?;
        let mut request = client
            .post(&platform.url)
            .header("Content-Type", "application/fhir+json")
            .header("Idempotency-Key", &report.id)
            .body(bundle);
        if !platform.token.is_empty() {
            request = request.bearer_auth(&platform.token);
        }
        let answer = request.send().await.map_err(|e| DeliveryError::Platform {
            status: 0,
            detail: with_causes(&e),
        })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(format!(
                "{} version {} accepted: HTTP {}",
                report.period,
                report.version,
                status.as_u16()
            ));
        }
        let body = answer.text().await.unwrap_or_default();
        Err(DeliveryError::Platform {
            status: status.as_u16(),
            detail: body.chars().take(300).collect(),
        })
    }
}

/// An error with the errors that caused it: "error sending request" alone does not tell an
/// operator that the platform refused the handshake for want of a client certificate.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
