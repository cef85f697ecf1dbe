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
}

impl Config {
    pub(super) fn validate_indicators(&self) -> Result<(), ConfigError> {
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
