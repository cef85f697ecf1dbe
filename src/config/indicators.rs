//! The quality indicators: where their definitions are and the secret persons are keyed by.
//! Institutions are named to the platform under `referral.oids.institution`, the register
//! form 027 names them by.

use serde::Deserialize;

use super::{Config, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorsConfig {
    /// The definitions and contract targets (TOML); empty: the set shipped inside the binary,
    /// the same as `config/indicators.toml`.
    pub definitions: String,
    /// File holding the secret persons are keyed by (HMAC-SHA-256 of the personal code),
    /// relative to data_dir. Institutions that pool their counts on the platform share it;
    /// made on first use when missing, and then only this archive's counts can be pooled.
    pub person_secret: String,
    pub platform: PlatformConfig,
}

/// The national quality platform: where the yearly MeasureReport bundle is delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// The endpoint bundles are POSTed to (https); empty: nothing is delivered.
    pub url: String,
    /// Bearer token sent with each delivery; empty: none.
    pub token: String,
    /// Mutual TLS: our certificate and key (PEM, relative to data_dir); empty: none.
    pub certificate: String,
    pub private_key: String,
    /// PEM file of the authority the platform's certificate is checked against (relative to
    /// data_dir); empty: the system's trusted authorities.
    pub ca: String,
    /// From this day of January on, last year's report is frozen and delivered (the platform
    /// takes last year's values until 28 February); 0: only on demand.
    pub freeze_day: u8,
}

impl Config {
    pub(super) fn validate_indicators(&self) -> Result<(), ConfigError> {
        let p = &self.indicators.platform;
        let web = p.url.starts_with("https://") || p.url.starts_with("http://");
        if !(p.url.is_empty() || web) {
            return Err(ConfigError::key(
                "indicators.platform.url",
                "must be an http(s) URL or empty",
            ));
        }
        if p.certificate.is_empty() != p.private_key.is_empty() {
            return Err(ConfigError::key(
                "indicators.platform.private_key",
                "a client certificate and its key go together",
            ));
        }
        if p.freeze_day > 31 {
            return Err(ConfigError::key(
                "indicators.platform.freeze_day",
                "is a day of January (1–31), or 0",
            ));
        }
        if self.indicators.person_secret.trim().is_empty() {
            return Err(ConfigError::key(
                "indicators.person_secret",
                "must name a file",
            ));
        }
        Ok(())
    }

    pub fn person_secret_path(&self) -> std::path::PathBuf {
        self.data_path(&self.indicators.person_secret)
    }
}
