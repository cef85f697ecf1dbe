//! Archive governance: the audit chain's signing key, and the pace of the fixity worker that
//! re-reads every stored object.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Config, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// PKCS#8 PEM file of the Ed25519 key that signs the audit chain's head each day; relative
    /// paths are under `service.data_dir`. Made on first start when missing.
    pub signing_key: String,
    /// The public key (hex) `audit verify` trusts; empty: the signing key's own. Set it to a
    /// copy kept apart from this machine so a replaced key file is noticed.
    pub public_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixityConfig {
    /// Whether this node re-reads the archive in the background.
    pub enabled: bool,
    /// Days one pass over the whole archive should take; the worker reads just fast enough.
    pub cycle_days: f64,
    /// Upper bound on the worker's reading, bytes per second (0: only the cycle sets the pace).
    pub max_bytes_per_second: u64,
}

impl FixityConfig {
    pub fn cycle(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64((self.cycle_days * 86_400.0).clamp(1.0, 1e10))
    }
}

impl Config {
    pub fn audit_signing_key(&self) -> PathBuf {
        self.data_path(&self.audit.signing_key)
    }

    pub(super) fn validate_archive(&self) -> Result<(), ConfigError> {
        if self.audit.signing_key.trim().is_empty() {
            return Err(ConfigError::key("audit.signing_key", "must name a file"));
        }
        let pk = self.audit.public_key.trim();
        if !pk.is_empty() && (pk.len() != 64 || !pk.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(ConfigError::key(
                "audit.public_key",
                "must be an Ed25519 public key as 64 hexadecimal digits, or empty",
            ));
        }
        if !(self.fixity.cycle_days.is_finite() && self.fixity.cycle_days > 0.0) {
            return Err(ConfigError::key(
                "fixity.cycle_days",
                "must be a number of days above 0",
            ));
        }
        Ok(())
    }
}
