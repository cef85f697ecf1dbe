//! The command line: every command and option `telecardio` takes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "telecardio",
    version,
    about = "Telecardiology archive and workflow service"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "config/telecardio.toml")]
    pub config: PathBuf,
    /// Directory for the default SQLite index and object store (overrides service.data_dir).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the service: DICOM, HTTP and HL7 listeners.
    Serve(Ports),
    /// Quality indicators of a period (turnaround, volume, data quality), in total and per
    /// centre, clinic, kind and priority, with their targets.
    Indicators {
        /// A year (2026), quarter (2026-Q3) or month (2026-11), cut in Vilnius.
        #[arg(long, conflicts_with_all = ["year", "from", "to"])]
        period: Option<String>,
        /// A calendar year: the same as --period YYYY.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        year: Option<i16>,
        /// First day of a range (YYYY-MM-DD), with --to.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// Last day of a range (YYYY-MM-DD), included.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// json, csv, fhir (a Bundle of Measures and MeasureReports) or settlement (CSV of the
        /// examinations read per centre, clinic and kind, with their cases).
        #[arg(long, default_value = "json")]
        format: String,
        /// JSON: include the keyed hashes of the persons counted, for pooling with another
        /// institution's.
        #[arg(long)]
        person_keys: bool,
        /// Freeze the period's report as a new immutable version (when anything changed since
        /// the latest) and print the version.
        #[arg(long)]
        freeze: bool,
        /// Freeze as --freeze does, then queue the version's delivery to the quality platform
        /// (the running service sends it).
        #[arg(long)]
        deliver: bool,
    },
    /// List received studies, most recent first.
    Studies {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// At most this many studies.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one study with its series and instances.
    Show {
        /// Study Instance UID.
        study_uid: String,
        #[arg(long)]
        json: bool,
    },
    /// List studies no referral is linked to yet, most recent first.
    Unlinked {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// List referral–study links left for an administrator, with the reason.
    Exceptions {
        #[arg(long)]
        json: bool,
        /// Show resolved exceptions instead of open ones.
        #[arg(long)]
        resolved: bool,
    },
    /// List objects refused because they named another clinic's study, series or instance.
    Refusals {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Fixity: read every stored object back and compare its SHA-256 with the one recorded on
    /// arrival. Exits 1 when any object is altered, missing or unreadable.
    Verify {
        /// Every object in the archive.
        #[arg(long, conflicts_with_all = ["study", "since"])]
        all: bool,
        /// One study's objects (Study Instance UID).
        #[arg(long)]
        study: Option<String>,
        /// Objects received since this day (YYYY-MM-DD, from midnight in Vilnius).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Copy a consistent snapshot of the index and every object not copied yet to a second
    /// object store (a local directory or s3://bucket), verifying each object's hash.
    Backup {
        /// The backup store: a directory, or s3://bucket (reached with the store.s3 settings).
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
    /// Build a working archive on an empty index and store from a backup: every object copied
    /// back and verified, then the index loaded from the backup's snapshot.
    Restore {
        /// The backup store: a directory, or s3://bucket.
        #[arg(long)]
        from: String,
        /// The snapshot to restore (its name, as `backup` printed it); default: the latest.
        #[arg(long)]
        snapshot: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the index of DICOM objects from the object store alone, into an empty index;
    /// reports every object it could not place. Exits 1 when any was left out.
    RebuildIndex {
        #[arg(long)]
        json: bool,
    },
    /// The tamper-evident audit trail: check it, sign its head, show the signing key.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Decide about a leftover `verify --all` named (an object no index row names, or a report
    /// object no signed report names): adopt it into the index or move it to quarantine/.
    Orphans {
        #[command(subcommand)]
        action: OrphanAction,
    },
    /// Retention: a study's dates and holds, the list of what expires soon, deletion
    /// requests and tombstones. Holds and deletions are made over the API by named accounts
    /// (deletion takes an administrator and an auditor).
    Retention {
        #[command(subcommand)]
        action: RetentionAction,
    },
    /// Import a Holter recording (ISHNE 1.0, EDF, EDF+) for a referral on its clinic's
    /// behalf: the original kept, a DICOM Ambulatory ECG copy made in the referral's study.
    /// Exits 2 when the file is refused, with the reason.
    ImportHolter {
        /// The recording.
        file: PathBuf,
        /// The referral's id.
        #[arg(long)]
        referral: String,
        /// An ISHNE annotation file (.ann) for it.
        #[arg(long)]
        annotations: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Write deterministic test objects (the committed set, or a larger benchmark corpus).
    Generate(telecardio::synth::GenerateArgs),
    /// Benchmarks only: fill the configured index with rows for `--count` synthetic instances
    /// (the `tiny` corpus, without objects), to measure queries at archive scale.
    BenchIndex {
        #[arg(long)]
        count: usize,
        /// The clinic the rows belong to.
        #[arg(long, default_value = "demo")]
        clinic: String,
    },
    /// Manage local accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API tokens for machines.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand)]
pub enum UserAction {
    /// Create an account. Without a password it signs in with API tokens only.
    Add {
        name: String,
        /// clinic, cardiologist, auditor or admin.
        #[arg(long)]
        role: String,
        /// The clinic (role clinic) or consulting centre (role cardiologist) it belongs to.
        #[arg(long, default_value = "")]
        institution: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Auditors only: may also see pixel data.
        #[arg(long)]
        pixel_access: bool,
    },
    /// Set a new password.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account and end its sessions (its history stays).
    Disable { name: String },
    /// Set the full name and licence (or staff) number a cardiologist's signed reports carry.
    Profile {
        name: String,
        #[arg(long)]
        full_name: String,
        #[arg(long)]
        licence: String,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditAction {
    /// Walk the audit chain from its first event and check every signed head; names the first
    /// event where the trail was edited, removed, reordered or inserted into. Exits 1 then.
    Verify {
        #[arg(long)]
        json: bool,
        /// The Ed25519 public key (hex) to check signed heads with, instead of audit.public_key
        /// or the signing key's own.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Sign the chain's head now (the service does it once a day) and keep it in the store.
    Sign,
    /// Print the public half of the signing key, to keep apart from this machine.
    PublicKey,
    /// Print the trail for an audit repository: a FHIR R4 Bundle of AuditEvent resources, or
    /// DICOM audit messages (PS3.15 A.5), one per line.
    Export {
        /// fhir or dicom.
        #[arg(long, default_value = "fhir", value_parser = ["fhir", "dicom"])]
        format: String,
        /// Events after this chain position.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100_000)]
        limit: i64,
    },
    /// Benchmarks only: append `--count` synthetic events to the trail, in batches.
    BenchFill {
        #[arg(long)]
        count: usize,
    },
}

#[derive(Subcommand)]
pub enum TokenAction {
    /// Issue a bearer token for an account and print it (shown only this once).
    Create {
        /// The account the token acts as.
        user: String,
        /// What the token is for, e.g. the machine that uses it.
        #[arg(long, default_value = "")]
        label: String,
        /// Days until it expires; without it, until revoked.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
    /// List tokens (ids, owners, use; never secrets).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RetentionAction {
    /// A study's retention date, its objects' dates, holds, extensions and deletion requests.
    Show {
        /// Study Instance UID.
        study_uid: String,
        #[arg(long)]
        json: bool,
    },
    /// Studies whose retention ends within `--days` (those past it included), earliest first.
    Expiring {
        #[arg(long)]
        days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Deletion requests (proposed, rejected, approved, done), newest first.
    Deletions {
        #[arg(long, default_value = "")]
        state: String,
        #[arg(long)]
        json: bool,
    },
    /// What deletions removed: every object with its hash, who proposed and approved, why.
    Tombstones {
        /// Only this study's.
        #[arg(long, default_value = "")]
        study: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum OrphanAction {
    /// Index an unindexed DICOM object as received, or keep a report object as its study's.
    Adopt {
        key: String,
        #[arg(long)]
        reason: String,
    },
    /// Move the object under quarantine/ (and take its index row out, if it has one).
    Quarantine {
        key: String,
        #[arg(long)]
        reason: String,
    },
}

/// A port for each listener; the address stays the configuration's. A second instance on
/// the same machine needs all four (or the configuration's own).
#[derive(Args, Clone, Copy)]
pub struct Ports {
    /// DICOM port (overrides the port of dicom.listen).
    #[arg(long)]
    pub dicom_port: Option<u16>,
    /// DICOM TLS port (overrides the port of dicom.tls.listen).
    #[arg(long)]
    pub dicom_tls_port: Option<u16>,
    /// HTTP or HTTPS port (overrides the port of http.listen).
    #[arg(long)]
    pub http_port: Option<u16>,
    /// HL7 MLLP port (overrides the port of hl7.listen).
    #[arg(long)]
    pub hl7_port: Option<u16>,
}

impl From<Ports> for telecardio::config::Ports {
    fn from(p: Ports) -> Self {
        telecardio::config::Ports {
            dicom: p.dicom_port,
            dicom_tls: p.dicom_tls_port,
            http: p.http_port,
            hl7: p.hl7_port,
        }
    }
}
