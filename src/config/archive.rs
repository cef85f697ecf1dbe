//! Archive governance: how long each kind of stored thing is kept, the audit chain's signing
//! key, and the pace of the fixity worker that re-reads every stored object.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Config, ConfigError};

/// Years each kind of stored thing is kept after the day it was received (order point 14: 15).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// DICOM objects a clinic sent (echocardiography, ECG, Holter).
    pub dicom_years: u32,
    /// Referral documents (form 027, HL7 CDA) and the HL7 v2 orders that carried them.
    pub referral_years: u32,
    /// Signed report versions, their answer documents and their DICOM report objects.
    pub report_years: u32,
    /// Days ahead the daily list of expiring studies looks.
    pub notice_days: u32,
    /// S3 Object Lock mode for new objects where the bucket has Object Lock: compliance (no
    /// one can delete before the date), governance, or off.
    pub object_lock: String,
}

impl RetentionConfig {
    /// Configured years for a stored object's kind (as fixity and the key layout name them).
    pub fn years_for(&self, kind: &str) -> u32 {
        match kind {
            "referral" | "hl7" => self.referral_years,
            "report" | "answer" | "report_object" => self.report_years,
            _ => self.dicom_years,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// PKCS#8 PEM file of the Ed25519 key that signs the audit chain's head each day; relative
    /// paths are under `service.data_dir`. Made on first start when missing.
    pub signing_key: String,
    /// The public key (hex) `audit verify` trusts; empty: the signing key's own. Set it to a
    /// copy kept apart from this machine so a replaced key file is noticed.
    pub public_key: String,
    pub syslog: SyslogConfig,
}

/// Sending every audit event, as a DICOM audit message, to the hospital's audit repository
/// over RFC 5424 syslog on TLS (RFC 5425).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` of the repository (6514 is syslog over TLS); empty: nothing is sent.
    pub target: String,
    /// PEM file of the certificate authority the repository's certificate is checked against
    /// (relative to data_dir).
    pub ca: String,
    /// Our client certificate and key (PEM, relative to data_dir), when the repository asks for
    /// one (ATNA's mutual authentication); empty: none.
    pub certificate: String,
    pub private_key: String,
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
        let r = &self.retention;
        for (key, years) in [
            ("retention.dicom_years", r.dicom_years),
            ("retention.referral_years", r.referral_years),
            ("retention.report_years", r.report_years),
        ] {
            if !(1..=200).contains(&years) {
                return Err(ConfigError::key(
                    key,
                    "must be a number of years from 1 to 200",
                ));
            }
        }
        if r.notice_days > 3650 {
            return Err(ConfigError::key(
                "retention.notice_days",
                "must be at most 3650 days",
            ));
        }
        if !matches!(r.object_lock.as_str(), "compliance" | "governance" | "off") {
            return Err(ConfigError::key(
                "retention.object_lock",
                "must be compliance, governance or off",
            ));
        }
        let syslog = &self.audit.syslog;
        if !syslog.target.trim().is_empty() {
            let valid = syslog
                .target
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(ConfigError::key(
                    "audit.syslog.target",
                    "must be host:port, or empty",
                ));
            }
            if syslog.ca.trim().is_empty() {
                return Err(ConfigError::key(
                    "audit.syslog.ca",
                    "must name the PEM file of the repository's certificate authority",
                ));
            }
            if syslog.certificate.trim().is_empty() != syslog.private_key.trim().is_empty() {
                return Err(ConfigError::key(
                    "audit.syslog.private_key",
                    "a client certificate and its key go together",
                ));
            }
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
