//! Delivery configuration: how signed reports go back to each clinic, and how hard the queue
//! tries. Pull (the clinic fetching from the API) is always available; a clinic's push channels
//! are its PACS (C-STORE of the report object) and its HIS (ORU^R01 over MLLP).

use serde::Deserialize;

use super::{check_ae_title, Config, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Seconds between looks at the queue when nothing woke the worker (other nodes' work,
    /// retries coming due).
    pub poll_seconds: u64,
    /// Deliveries one node works at once.
    pub concurrency: usize,
    /// Attempts before a delivery is given up as failed and an alert raised.
    pub max_attempts: u32,
    /// Wait before the second attempt; each further wait doubles, up to `retry_max_seconds`.
    pub retry_first_seconds: u64,
    pub retry_max_seconds: u64,
    /// Seconds a connection, association or answer may take before the attempt fails.
    pub timeout_seconds: u64,
}

impl DeliveryConfig {
    /// How long a node holds a delivery it works: longer than an attempt can last, so a live
    /// node never loses one it is still trying; a dead node's lapse and another node retries.
    pub fn lease_micros(&self) -> i64 {
        super::routing::micros(self.timeout_seconds.saturating_mul(4).saturating_add(60))
    }

    /// When the attempt after `attempts` failed ones is due, from `now` (microseconds).
    pub fn retry_at(&self, now: i64, attempts: i64) -> i64 {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let wait = self
            .retry_first_seconds
            .saturating_mul(1u64 << doublings)
            .min(self.retry_max_seconds.max(self.retry_first_seconds));
        now.saturating_add(super::routing::micros(wait))
    }
}

/// A clinic's push channels; none configured means the clinic pulls.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicDelivery {
    #[serde(default)]
    pub pacs: Option<PacsTarget>,
    #[serde(default)]
    pub his: Option<HisTarget>,
}

/// The clinic's PACS: a storage SCP that takes the report object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacsTarget {
    pub ae_title: String,
    pub host: String,
    pub port: u16,
}

impl PacsTarget {
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.ae_title, self.host, self.port)
    }
}

/// The clinic's HIS: an MLLP listener that takes ORU^R01 and answers with an ACK.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HisTarget {
    pub host: String,
    pub port: u16,
    /// MSH-5 and MSH-6 of what we send.
    pub application: String,
    pub facility: String,
}

impl HisTarget {
    pub fn describe(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl Config {
    pub(super) fn validate_delivery(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        for (key, value) in [
            ("delivery.poll_seconds", d.poll_seconds),
            ("delivery.concurrency", d.concurrency as u64),
            ("delivery.max_attempts", u64::from(d.max_attempts)),
            ("delivery.retry_first_seconds", d.retry_first_seconds),
            ("delivery.timeout_seconds", d.timeout_seconds),
        ] {
            if value == 0 {
                return Err(ConfigError::key(key, "must be at least 1"));
            }
        }
        for (i, clinic) in self.clinics.iter().enumerate() {
            if let Some(pacs) = &clinic.delivery.pacs {
                let key = format!("clinics[{i}].delivery.pacs");
                check_ae_title(&format!("{key}.ae_title"), &pacs.ae_title)?;
                if pacs.host.trim().is_empty() || pacs.port == 0 {
                    return Err(ConfigError::key(key, "needs a host and a port"));
                }
            }
            if let Some(his) = &clinic.delivery.his {
                if his.host.trim().is_empty() || his.port == 0 {
                    return Err(ConfigError::key(
                        format!("clinics[{i}].delivery.his"),
                        "needs a host and a port",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_the_cap() {
        let d = DeliveryConfig {
            poll_seconds: 5,
            concurrency: 4,
            max_attempts: 10,
            retry_first_seconds: 30,
            retry_max_seconds: 600,
            timeout_seconds: 60,
        };
        let waits: Vec<i64> = (1..=7).map(|a| d.retry_at(0, a) / 1_000_000).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(d.retry_at(0, i64::MAX) / 1_000_000, 600);
    }
}
