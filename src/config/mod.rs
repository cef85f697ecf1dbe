//! Typed configuration, loaded and validated once at start-up.
//!
//! Owns the shape of `config/telecardio.toml`, the environment overrides and the checks that
//! make a running service trustworthy (AE titles, clinics, networks). It never reads the
//! configuration again after start-up and never touches the network or the disk beyond the file.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

mod archive;
mod delivery;
mod indicators;
mod routing;
pub use archive::{AuditConfig, FixityConfig, RetentionConfig, SyslogConfig};
pub use delivery::{ClinicDelivery, DeliveryConfig, HisTarget, PacsTarget};
pub use indicators::{IndicatorsConfig, PlatformConfig};
pub use routing::{AgeGroup, Assignment, RoutingConfig, RoutingRule};

/// Prefix of environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "TELECARDIO_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("configuration key `{key}`: {message}")]
    Key { key: String, message: String },
}

impl ConfigError {
    fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub service: ServiceConfig,
    pub dicom: DicomConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub store: StoreConfig,
    pub ingest: IngestConfig,
    pub auth: AuthConfig,
    pub referral: ReferralConfig,
    pub hl7: Hl7Config,
    pub routing: RoutingConfig,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
    pub audit: AuditConfig,
    pub fixity: FixityConfig,
    pub indicators: IndicatorsConfig,
    pub log: LogConfig,
    pub holter: HolterConfig,
    pub viewer: ViewerConfig,
    pub clinics: Vec<Clinic>,
    pub centres: Vec<Centre>,
}

/// Form 027 intake.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralConfig {
    /// Largest referral document accepted, in bytes.
    pub max_document_bytes: usize,
    pub oids: ReferralOids,
}

/// The MLLP listener for HL7 v2 orders and patient maintenance from clinics' HIS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hl7Config {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub max_message_bytes: usize,
    /// Seconds a connection may stay silent before we close it.
    pub idle_timeout_secs: u64,
    /// Connections open at once, in total and from one address; more are closed unread.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub senders: Vec<Hl7Sender>,
}

/// A HIS allowed to send HL7 v2: its sending facility (MSH-4) speaks for one clinic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hl7Sender {
    pub facility: String,
    pub clinic: String,
    pub networks: Vec<IpNet>,
}

impl Hl7Sender {
    pub fn allows_address(&self, addr: IpAddr) -> bool {
        allows_address(&self.networks, addr)
    }
}

/// The OID roots that give identifiers their meaning; the national registry publishes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralOids {
    pub personal_code: String,
    pub insured_code: String,
    pub statistical_card: String,
    pub institution: String,
    pub order: String,
    /// Practitioners' licence (or staff) numbers, as signers of report answers.
    pub practitioner: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DicomConfig {
    pub ae_title: String,
    pub listen: SocketAddr,
    pub max_pdu_bytes: u32,
    pub max_associations: usize,
    pub max_associations_per_clinic: usize,
    pub artim_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub extra_sop_classes: Vec<String>,
    pub tls: DicomTlsConfig,
    pub destinations: Vec<Destination>,
}

/// A C-MOVE destination: an AE we open associations to, owned by one institution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub ae_title: String,
    pub host: String,
    pub port: u16,
    /// The clinic or centre this destination belongs to; only its own principals move to it.
    pub institution: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DicomTlsConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub client_ca: PathBuf,
    pub handshake_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub metrics_token: String,
    /// PEM certificate chain and key for HTTPS; both empty: plain HTTP.
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy only).
    pub allow_plain_http: bool,
    /// Largest request body accepted (STOW-RS uploads, JSON), in bytes.
    pub max_body_bytes: u64,
    /// The address clients reach this service at (e.g. behind a reverse proxy), for the URLs
    /// it hands out; empty: taken from each request's Host header.
    pub public_url: String,
}

impl HttpConfig {
    pub fn tls_enabled(&self) -> bool {
        !self.certificate.as_os_str().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Hours a browser session lasts after login.
    pub session_hours: u64,
    /// Minutes a browser session may stay unused before it ends.
    pub idle_minutes: u64,
    /// Shortest password accepted for local accounts.
    pub min_password_length: usize,
    /// Failed sign-ins for one account name before sign-in pauses (four times as many from
    /// one address).
    pub failed_logins_allowed: u32,
    /// The first pause, in seconds; it doubles with each further failure (up to 15 minutes).
    pub lockout_seconds: u64,
    pub oidc: OidcConfig,
}

impl AuthConfig {
    /// How long a browser session may stay unused, in index time units.
    pub fn idle_micros(&self) -> i64 {
        i64::try_from(self.idle_minutes.saturating_mul(60_000_000)).unwrap_or(i64::MAX)
    }
}

/// Bearer JWTs from a hospital's identity provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub enabled: bool,
    pub issuer: String,
    pub audience: String,
    /// JSON Web Key Set file with the provider's public signing keys.
    pub jwks_file: PathBuf,
    /// Claims naming the user, their role and their institution.
    pub name_claim: String,
    pub role_claim: String,
    pub institution_claim: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    /// SQLite: commit instance rows without waiting for the disk; the store holds the object
    /// first, and after a machine crash the rows are made again from it.
    pub relaxed_instance_commits: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub url: String,
    pub fsync: bool,
    pub inline_put_max_bytes: usize,
    pub part_size_bytes: usize,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub allow_http: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub max_object_bytes: u64,
}

/// Holter recordings received as files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolterConfig {
    pub max_recording_bytes: u64,
    /// The clinics' drop folders, relative to `service.data_dir`; empty: none.
    pub inbox: String,
    pub poll_ms: u64,
    pub settle_ms: u64,
}

/// The diagnostic viewer's files (installed by `deploy/viewer.sh`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewerConfig {
    /// Directory of the OHIF Viewer's build; relative paths are under `service.data_dir`.
    pub dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A performing clinic that sends examinations to us.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinic {
    pub id: String,
    pub name: String,
    pub ae_titles: Vec<String>,
    pub networks: Vec<IpNet>,
    /// DNS names (subjectAltName) one of which a client certificate must carry to call as one
    /// of `ae_titles` on the DICOM TLS port; none: the clinic cannot call over TLS.
    #[serde(default)]
    pub certificate_names: Vec<String>,
    /// Where signed reports are pushed; left out, the clinic pulls them.
    #[serde(default)]
    pub delivery: ClinicDelivery,
}

impl Clinic {
    /// Whether a peer at `addr` may speak for this clinic.
    pub fn allows_address(&self, addr: IpAddr) -> bool {
        allows_address(&self.networks, addr)
    }
}

/// A consulting centre whose cardiologists read the cases of the clinics it is contracted with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Centre {
    pub id: String,
    pub name: String,
    /// Ids of the clinics whose cases this centre reads.
    pub reads: Vec<String>,
    /// Reading workstations that query and retrieve over DICOM.
    pub ae_titles: Vec<String>,
    pub networks: Vec<IpNet>,
    /// As for a clinic: the names a client certificate must carry on the DICOM TLS port.
    #[serde(default)]
    pub certificate_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstitutionKind {
    Clinic,
    Centre,
}

/// A clinic or a centre, as far as identifying a peer is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Institution {
    pub id: String,
    pub kind: InstitutionKind,
    pub networks: Vec<IpNet>,
    pub certificate_names: Vec<String>,
}

impl Institution {
    pub fn allows_address(&self, addr: IpAddr) -> bool {
        allows_address(&self.networks, addr)
    }
}

fn allows_address(networks: &[IpNet], addr: IpAddr) -> bool {
    let addr = canonical_ip(addr);
    networks.is_empty() || networks.iter().any(|net| net.contains(&addr))
}

/// IPv4 peers reach a dual-stack socket as IPv4-mapped IPv6; compare them as IPv4.
fn canonical_ip(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Command-line values that take precedence over the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub ports: Ports,
}

/// A port for each listener, replacing the one its `listen` address names: what two
/// instances side by side on one machine need to differ in.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ports {
    pub dicom: Option<u16>,
    pub dicom_tls: Option<u16>,
    pub http: Option<u16>,
    pub hl7: Option<u16>,
}

impl Config {
    /// Reads `path`, applies `TELECARDIO_*` variables from `env` and the command-line overrides,
    /// and validates the result.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path, env, overrides)
    }

    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: e.message().to_owned(),
                })?;
        for (name, value) in env {
            if let Some(key) = name.strip_prefix(ENV_PREFIX) {
                apply_env_override(&mut table, key, &value)?;
            }
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                ConfigError::key(key, e.into_inner().to_string())
            })?;
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    fn apply(&mut self, overrides: &Overrides) {
        if let Some(dir) = &overrides.data_dir {
            self.service.data_dir = dir.clone();
        }
        let ports = overrides.ports;
        for (port, listen) in [
            (ports.dicom, &mut self.dicom.listen),
            (ports.dicom_tls, &mut self.dicom.tls.listen),
            (ports.http, &mut self.http.listen),
            (ports.hl7, &mut self.hl7.listen),
        ] {
            if let Some(port) = port {
                listen.set_port(port);
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_ae_title("dicom.ae_title", &self.dicom.ae_title)?;
        if self.dicom.max_pdu_bytes < 4096 {
            return Err(ConfigError::key(
                "dicom.max_pdu_bytes",
                "must be at least 4096",
            ));
        }
        for (key, value) in [
            ("dicom.max_associations", self.dicom.max_associations),
            (
                "dicom.max_associations_per_clinic",
                self.dicom.max_associations_per_clinic,
            ),
            ("hl7.max_connections", self.hl7.max_connections),
            (
                "hl7.max_connections_per_address",
                self.hl7.max_connections_per_address,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::key(key, "must be at least 1"));
            }
        }
        for (i, uid) in self.dicom.extra_sop_classes.iter().enumerate() {
            if !crate::archive::keys::is_valid_uid(uid) {
                return Err(ConfigError::key(
                    format!("dicom.extra_sop_classes[{i}]"),
                    format!("`{uid}` is not a valid UID"),
                ));
            }
        }
        if self.dicom.tls.enabled {
            for (key, path) in [
                ("dicom.tls.certificate", &self.dicom.tls.certificate),
                ("dicom.tls.private_key", &self.dicom.tls.private_key),
            ] {
                if path.as_os_str().is_empty() {
                    return Err(ConfigError::key(key, "required when dicom.tls.enabled"));
                }
            }
        }
        self.validate_http()?;
        if self.database.max_connections == 0 {
            return Err(ConfigError::key(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::key(
                "database.url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.store.part_size_bytes < 5 * 1024 * 1024 {
            return Err(ConfigError::key(
                "store.part_size_bytes",
                "must be at least 5 MiB (the S3 minimum part size)",
            ));
        }
        if self.store.url.trim().is_empty() {
            return Err(ConfigError::key("store.url", "must not be empty"));
        }
        self.validate_institutions()?;
        self.validate_hl7()?;
        self.validate_routing()?;
        self.validate_delivery()?;
        self.validate_archive()?;
        self.validate_indicators()?;
        self.validate_destinations()
    }

    fn validate_institutions(&self) -> Result<(), ConfigError> {
        let names = self
            .clinics
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("clinics[{i}]"), &c.certificate_names))
            .chain(
                self.centres
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("centres[{i}]"), &c.certificate_names)),
            );
        for (prefix, names) in names {
            for (j, name) in names.iter().enumerate() {
                if rustls::pki_types::DnsName::try_from(name.as_str()).is_err() {
                    return Err(ConfigError::key(
                        format!("{prefix}.certificate_names[{j}]"),
                        format!("`{name}` is not a DNS name"),
                    ));
                }
            }
        }
        let mut ids = HashSet::new();
        let mut titles = HashSet::new();
        let members = self
            .clinics
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("clinics[{i}]"), &c.id, &c.ae_titles, true))
            .chain(
                self.centres
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (format!("centres[{i}]"), &c.id, &c.ae_titles, false)),
            );
        for (prefix, id, ae_titles, needs_title) in members {
            if id.trim().is_empty() || !ids.insert(id.as_str()) {
                return Err(ConfigError::key(
                    format!("{prefix}.id"),
                    format!("`{id}` is empty or declared twice"),
                ));
            }
            // The id names the clinic's part of the object store.
            if !crate::archive::keys::is_valid_institution_id(id) {
                return Err(ConfigError::key(
                    format!("{prefix}.id"),
                    format!(
                        "`{id}`: use ASCII letters, digits, `-`, `_` and `.` (not first),                          at most 64"
                    ),
                ));
            }
            if needs_title && ae_titles.is_empty() {
                return Err(ConfigError::key(
                    format!("{prefix}.ae_titles"),
                    "a clinic needs at least one AE title",
                ));
            }
            for (j, title) in ae_titles.iter().enumerate() {
                let key = format!("{prefix}.ae_titles[{j}]");
                check_ae_title(&key, title)?;
                if !titles.insert(title.trim()) {
                    return Err(ConfigError::key(
                        key,
                        format!("AE title `{title}` belongs to two institutions"),
                    ));
                }
            }
        }
        for (i, centre) in self.centres.iter().enumerate() {
            for (j, clinic) in centre.reads.iter().enumerate() {
                if !self.clinics.iter().any(|c| &c.id == clinic) {
                    return Err(ConfigError::key(
                        format!("centres[{i}].reads[{j}]"),
                        format!("`{clinic}` is not a declared clinic"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let http = &self.http;
        if http.certificate.as_os_str().is_empty() != http.private_key.as_os_str().is_empty() {
            return Err(ConfigError::key(
                "http.private_key",
                "give both http.certificate and http.private_key, or neither",
            ));
        }
        if !http.tls_enabled() && !http.listen.ip().is_loopback() && !http.allow_plain_http {
            return Err(ConfigError::key(
                "http.listen",
                format!(
                    "{} is not a loopback address: configure http.certificate and \
                     http.private_key for HTTPS, or set http.allow_plain_http behind a TLS proxy",
                    http.listen
                ),
            ));
        }
        let oidc = &self.auth.oidc;
        if oidc.enabled {
            for (key, empty) in [
                ("auth.oidc.issuer", oidc.issuer.is_empty()),
                ("auth.oidc.audience", oidc.audience.is_empty()),
                ("auth.oidc.jwks_file", oidc.jwks_file.as_os_str().is_empty()),
            ] {
                if empty {
                    return Err(ConfigError::key(key, "required when auth.oidc.enabled"));
                }
            }
        }
        if self.auth.session_hours == 0 {
            return Err(ConfigError::key("auth.session_hours", "must be at least 1"));
        }
        if self.auth.idle_minutes == 0 {
            return Err(ConfigError::key("auth.idle_minutes", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_hl7(&self) -> Result<(), ConfigError> {
        if self.hl7.max_message_bytes < 1024 {
            return Err(ConfigError::key(
                "hl7.max_message_bytes",
                "must be at least 1024",
            ));
        }
        let mut facilities = HashSet::new();
        for (i, sender) in self.hl7.senders.iter().enumerate() {
            let facility = sender.facility.trim();
            if facility.is_empty() || !facilities.insert(facility) {
                return Err(ConfigError::key(
                    format!("hl7.senders[{i}].facility"),
                    "must be given, and only once",
                ));
            }
            if !self.clinics.iter().any(|c| c.id == sender.clinic) {
                return Err(ConfigError::key(
                    format!("hl7.senders[{i}].clinic"),
                    format!("`{}` is not a declared clinic", sender.clinic),
                ));
            }
        }
        Ok(())
    }

    /// The declared HL7 v2 sender with this sending facility (MSH-4).
    pub fn hl7_sender(&self, facility: &str) -> Option<&Hl7Sender> {
        self.hl7
            .senders
            .iter()
            .find(|s| s.facility.trim() == facility)
    }

    fn validate_destinations(&self) -> Result<(), ConfigError> {
        let mut titles = HashSet::new();
        for (i, dest) in self.dicom.destinations.iter().enumerate() {
            let key = format!("dicom.destinations[{i}].ae_title");
            check_ae_title(&key, &dest.ae_title)?;
            if !titles.insert(dest.ae_title.trim()) {
                return Err(ConfigError::key(key, "declared twice"));
            }
            if self.institution(&dest.institution).is_none() {
                return Err(ConfigError::key(
                    format!("dicom.destinations[{i}].institution"),
                    format!("`{}` is not a declared clinic or centre", dest.institution),
                ));
            }
            if dest.host.trim().is_empty() || dest.port == 0 {
                return Err(ConfigError::key(
                    format!("dicom.destinations[{i}].host"),
                    "host and port are required",
                ));
            }
        }
        Ok(())
    }

    /// The clinic that owns `ae_title`, if any.
    pub fn clinic_by_ae(&self, ae_title: &str) -> Option<&Clinic> {
        self.clinics
            .iter()
            .find(|c| c.ae_titles.iter().any(|t| t.trim() == ae_title))
    }

    /// The clinic or centre that owns `ae_title`, if any.
    pub fn institution_by_ae(&self, ae_title: &str) -> Option<Institution> {
        if let Some(c) = self.clinic_by_ae(ae_title) {
            return self.institution(&c.id);
        }
        let centre = self
            .centres
            .iter()
            .find(|c| c.ae_titles.iter().any(|t| t.trim() == ae_title))?;
        self.institution(&centre.id)
    }

    /// The clinic or centre with this id.
    pub fn institution(&self, id: &str) -> Option<Institution> {
        if let Some(c) = self.clinics.iter().find(|c| c.id == id) {
            return Some(Institution {
                id: c.id.clone(),
                kind: InstitutionKind::Clinic,
                networks: c.networks.clone(),
                certificate_names: c.certificate_names.clone(),
            });
        }
        self.centres
            .iter()
            .find(|c| c.id == id)
            .map(|c| Institution {
                id: c.id.clone(),
                kind: InstitutionKind::Centre,
                networks: c.networks.clone(),
                certificate_names: c.certificate_names.clone(),
            })
    }

    pub fn centre(&self, id: &str) -> Option<&Centre> {
        self.centres.iter().find(|c| c.id == id)
    }

    /// The C-MOVE destination with this AE title.
    pub fn destination(&self, ae_title: &str) -> Option<&Destination> {
        self.dicom
            .destinations
            .iter()
            .find(|d| d.ae_title.trim() == ae_title.trim())
    }

    /// Resolves a path from the configuration against `service.data_dir`.
    pub fn data_path(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.service.data_dir.join(path)
        }
    }

    /// The database URL with a relative SQLite path placed under `service.data_dir`.
    pub fn database_url(&self) -> String {
        match self.database.url.strip_prefix("sqlite:") {
            Some(rest) => {
                let path = rest.trim_start_matches("//");
                if path == ":memory:" {
                    return self.database.url.clone();
                }
                format!("sqlite://{}", self.data_path(path).display())
            }
            None => self.database.url.clone(),
        }
    }
}

/// AE titles are 1–16 characters of the default repertoire without backslash or control
/// characters (PS3.5 6.2); leading and trailing spaces are not significant.
pub fn check_ae_title(key: &str, title: &str) -> Result<(), ConfigError> {
    let trimmed = title.trim();
    let valid = !trimmed.is_empty()
        && title.len() <= 16
        && title
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::key(
            key,
            format!("`{title}` is not a valid AE title (1-16 ASCII characters, no backslash)"),
        ))
    }
}

/// Sets `key` (`SECTION__KEY`, case-insensitive) in `table` to `raw`, read as TOML if it parses.
fn apply_env_override(table: &mut toml::Table, key: &str, raw: &str) -> Result<(), ConfigError> {
    let parts: Vec<String> = key.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let dotted = parts.join(".");
    if parts.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::key(
            dotted,
            format!("{ENV_PREFIX}{key} is not a valid override name"),
        ));
    }
    let value = parse_env_value(raw);
    let (last, sections) = parts.split_last().expect("split yields at least one part");
    let mut current = table;
    for section in sections {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| {
            ConfigError::key(dotted.clone(), format!("`{section}` is not a section"))
        })?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config/telecardio.toml");

    fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::from_toml(SHIPPED, Path::new("t.toml"), env, &Overrides::default())
    }

    #[test]
    fn shipped_config_loads_with_demo_clinic() {
        let config = load(&[]).unwrap();
        assert_eq!(config.dicom.ae_title, "TELECARDIO");
        assert_eq!(config.dicom.listen.port(), 11112);
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
        let demo = config.clinic_by_ae("DEMO_CLINIC").unwrap();
        assert_eq!(demo.id, "demo");
        assert!(demo.allows_address("127.0.0.1".parse().unwrap()));
        assert!(demo.allows_address("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!demo.allows_address("192.0.2.1".parse().unwrap()));
        assert_eq!(config.database_url(), "sqlite://data/telecardio.db");
        assert_eq!(
            config.data_path(&config.store.url),
            Path::new("data/objects")
        );
    }

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let config = load(&[
            ("TELECARDIO_DATABASE__URL", "postgres://db/x"),
            ("TELECARDIO_DICOM__MAX_ASSOCIATIONS", "7"),
            ("TELECARDIO_STORE__S3__ALLOW_HTTP", "true"),
            ("OTHER_VARIABLE", "ignored"),
        ])
        .unwrap();
        assert_eq!(config.database_url(), "postgres://db/x");
        assert_eq!(config.dicom.max_associations, 7);
        assert!(config.store.s3.allow_http);
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = load(&[("TELECARDIO_DICOM__MAX_ASSOCIATIONS", "many")]).unwrap_err();
        assert!(err.to_string().contains("dicom.max_associations"), "{err}");
    }

    #[test]
    fn unknown_key_names_the_key() {
        let err = load(&[("TELECARDIO_DICOM__COLOUR", "blue")]).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn missing_key_names_the_key() {
        let text = SHIPPED.replace("max_pdu_bytes = 262144", "");
        let err = Config::from_toml(&text, Path::new("t"), [], &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("max_pdu_bytes"), "{err}");
    }

    #[test]
    fn invalid_ae_title_rejected() {
        let err = load(&[("TELECARDIO_DICOM__AE_TITLE", "A_TITLE_THAT_IS_TOO_LONG")]).unwrap_err();
        assert!(err.to_string().contains("dicom.ae_title"), "{err}");
    }

    #[test]
    fn command_line_overrides_win() {
        let overrides = Overrides {
            data_dir: Some("/tmp/x".into()),
            ports: Ports {
                dicom: Some(1),
                dicom_tls: Some(3),
                http: Some(2),
                hl7: Some(4),
            },
        };
        let config = Config::from_toml(SHIPPED, Path::new("t"), [], &overrides).unwrap();
        assert_eq!(config.database_url(), "sqlite:///tmp/x/telecardio.db");
        assert_eq!(config.dicom.listen.port(), 1);
        assert_eq!(config.http.listen.port(), 2);
        assert_eq!(config.dicom.tls.listen.port(), 3);
        assert_eq!(config.hl7.listen.port(), 4);
        // The address stays the file's.
        assert_eq!(config.http.listen.ip().to_string(), "127.0.0.1");
    }
}
