//! The `telecardio` command: parse arguments, load configuration, call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use telecardio::accounts::{AccountError, Accounts};
use telecardio::audit::AuditTrail;
use telecardio::config::{Config, ConfigError, LogFormat, Overrides};
use telecardio::fault::Fault;
use telecardio::index::AuditEvent;

#[derive(Parser)]
#[command(
    name = "telecardio",
    version,
    about = "Telecardiology archive and workflow service"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "config/telecardio.toml")]
    config: PathBuf,
    /// Directory for the default SQLite index and object store (overrides service.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: DICOM and HTTP listeners.
    Serve {
        /// DICOM port (overrides the port of dicom.listen).
        #[arg(long)]
        dicom_port: Option<u16>,
        /// HTTP port (overrides the port of http.listen).
        #[arg(long)]
        http_port: Option<u16>,
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
enum UserAction {
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
enum AuditAction {
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
    /// Benchmarks only: append `--count` synthetic events to the trail, in batches.
    BenchFill {
        #[arg(long)]
        count: usize,
    },
}

#[derive(Subcommand)]
enum TokenAction {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("telecardio: {e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn load_config(
    cli: &Cli,
    dicom_port: Option<u16>,
    http_port: Option<u16>,
) -> Result<Config, ConfigError> {
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        dicom_port,
        http_port,
    };
    Config::load(&cli.config, std::env::vars(), &overrides)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // dicom-ul's streaming writer needs the multi-threaded runtime.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve {
            dicom_port,
            http_port,
        } => {
            let config = load_config(&cli, *dicom_port, *http_port)?;
            init_logging(&config);
            runtime()?.block_on(telecardio::server::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Studies { json, limit } => {
            let config = load_config(&cli, None, None)?;
            let rows = runtime()?.block_on(async {
                let index = open_index(&config).await?;
                cli_read(&index, "studies_listed", format!("limit {limit}")).await?;
                Ok::<_, anyhow::Error>(index.list_studies(*limit).await?)
            })?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", telecardio::cli::studies_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Unlinked { json, limit } => {
            let config = load_config(&cli, None, None)?;
            let rows = runtime()?.block_on(async {
                let index = open_index(&config).await?;
                cli_read(&index, "unlinked_studies_read", format!("limit {limit}")).await?;
                Ok::<_, anyhow::Error>(
                    index
                        .unlinked_studies(&telecardio::index::Scope::Everything, *limit)
                        .await?,
                )
            })?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", telecardio::cli::unlinked_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Exceptions { json, resolved } => {
            let config = load_config(&cli, None, None)?;
            let status = if *resolved { "resolved" } else { "open" };
            let rows = runtime()?.block_on(async {
                let index = open_index(&config).await?;
                cli_read(&index, "link_exceptions_read", format!("status={status}")).await?;
                Ok::<_, anyhow::Error>(
                    index
                        .link_exceptions(&telecardio::index::Scope::Everything, status)
                        .await?,
                )
            })?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", telecardio::cli::exceptions_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Refusals { json, limit } => {
            let config = load_config(&cli, None, None)?;
            let rows = runtime()?.block_on(async {
                let index = open_index(&config).await?;
                cli_read(&index, "refusals_read", format!("limit {limit}")).await?;
                Ok::<_, anyhow::Error>(index.refusals(0, *limit).await?)
            })?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", telecardio::cli::refusals_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { study_uid, json } => {
            let config = load_config(&cli, None, None)?;
            let detail = runtime()?.block_on(async {
                let index = open_index(&config).await?;
                cli_read(&index, "study_read", format!("study {study_uid}")).await?;
                Ok::<_, anyhow::Error>(index.study(study_uid).await?)
            })?;
            match detail {
                None => {
                    eprintln!("telecardio: no study {study_uid}");
                    Ok(ExitCode::from(3))
                }
                Some(d) if *json => {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                    Ok(ExitCode::SUCCESS)
                }
                Some(d) => {
                    print!("{}", telecardio::cli::study_text(&d));
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Verify {
            all,
            study,
            since,
            json,
        } => {
            let since = match since {
                Some(day) => Some(
                    telecardio::pages::i18n::vilnius_day_start(day)
                        .with_context(|| format!("--since `{day}` is not a date (YYYY-MM-DD)"))?,
                ),
                None => None,
            };
            if !all && study.is_none() && since.is_none() {
                anyhow::bail!("say what to verify: --all, --study UID or --since YYYY-MM-DD");
            }
            let scope = telecardio::index::FixityScope {
                study_uid: study.clone(),
                since,
            };
            let config = load_config(&cli, None, None)?;
            init_logging(&config);
            let report = runtime()?.block_on(async {
                let index = open_index(&config).await?;
                let archive = telecardio::archive::Archive::open(&config)?;
                cli_read(&index, "fixity_verified", format!("{scope:?}")).await?;
                let fixity = telecardio::fixity::Fixity::new(index, archive);
                Ok::<_, anyhow::Error>(fixity.verify(&scope).await)
            })?;
            let report = match report {
                Ok(report) => report,
                Err(telecardio::fixity::FixityError::NoSuchStudy(uid)) => {
                    eprintln!("telecardio: no study {uid}");
                    return Ok(ExitCode::from(3));
                }
                Err(e) => return Err(e.into()),
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", telecardio::cli::fixity_text(&report));
            }
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Backup { to, json } => {
            let config = load_config(&cli, None, None)?;
            if !*json {
                init_logging(&config);
            }
            runtime()?.block_on(backup_command(config, to, None, *json))
        }
        Command::Restore {
            from,
            snapshot,
            json,
        } => {
            let config = load_config(&cli, None, None)?;
            if !*json {
                init_logging(&config);
            }
            runtime()?.block_on(backup_command(
                config,
                from,
                Some(snapshot.as_deref()),
                *json,
            ))
        }
        Command::RebuildIndex { json } => {
            let config = load_config(&cli, None, None)?;
            if !*json {
                init_logging(&config);
            }
            runtime()?.block_on(rebuild_command(config, *json))
        }
        Command::Audit { action } => {
            let config = load_config(&cli, None, None)?;
            if !matches!(action, AuditAction::Verify { json: true, .. }) {
                init_logging(&config);
            }
            runtime()?.block_on(audit_command(config, action))
        }
        Command::Generate(args) => {
            let written = telecardio::synth::generate(args)?;
            eprintln!("wrote {} objects to {}", written, args.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchIndex { count, clinic } => {
            let config = load_config(&cli, None, None)?;
            runtime()?.block_on(async {
                let index = open_index(&config).await?;
                let started = std::time::Instant::now();
                let mut done = 0;
                while done < *count {
                    let end = (done + 5000).min(*count);
                    let batch: Vec<_> = (done..end)
                        .map(|i| telecardio::synth::tiny_index_record(i, clinic))
                        .collect();
                    index.record_batch(&batch).await?;
                    done = end;
                    if done % 100_000 == 0 || done == *count {
                        eprintln!(
                            "{done} instances indexed in {:.0} s",
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                index.analyze().await?;
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { action } => {
            let config = load_config(&cli, None, None)?;
            runtime()?.block_on(user_command(config, action))
        }
        Command::Token { action } => {
            let config = load_config(&cli, None, None)?;
            runtime()?.block_on(token_command(config, action))
        }
    }
}

/// A store named on the command line: a relative directory is taken from where the command
/// runs, not from the data directory.
fn store_url(text: &str) -> anyhow::Result<String> {
    if text.starts_with("s3://") || std::path::Path::new(text).is_absolute() {
        return Ok(text.to_owned());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(text)
        .display()
        .to_string())
}

/// `backup` (restore: `None`) or `restore` (`Some(snapshot)`).
async fn backup_command(
    config: Config,
    other: &str,
    restore: Option<Option<&str>>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use telecardio::archive::Archive;
    let url = store_url(other)?;
    let index = open_index(&config).await?;
    let store = Archive::open(&config)?;
    let other = Archive::open_url(&config, &url)?;
    let (kind, report) = match restore {
        None => (
            "archive_backed_up",
            telecardio::backup::backup(&index, &store, &other).await?,
        ),
        Some(snapshot) => (
            "archive_restored",
            telecardio::backup::restore(&index, &store, &other, snapshot).await?,
        ),
    };
    audit_cli(
        &AuditTrail::new(index),
        kind,
        format!(
            "{url}: snapshot {}, {} objects copied, {} failures",
            report.snapshot,
            report.copied,
            report.failures.len()
        ),
    )
    .await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", telecardio::cli::copy_text(&report));
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn rebuild_command(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let index = open_index(&config).await?;
    let store = telecardio::archive::Archive::open(&config)?;
    let audit = AuditTrail::new(index.clone());
    let ingest = telecardio::ingest::Ingest::new(
        store.clone(),
        index.clone(),
        audit.clone(),
        telecardio::metrics::Metrics::new(),
        config.ingest.max_object_bytes,
    );
    let report =
        telecardio::backup::rebuild_index(&index, &store, &ingest, &config.dicom.ae_title).await?;
    audit_cli(
        &audit,
        "index_rebuilt",
        format!(
            "{} of {} DICOM objects indexed, {} not placed",
            report.indexed,
            report.dicom_objects,
            report.unplaced.len()
        ),
    )
    .await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", telecardio::cli::rebuild_text(&report));
    }
    Ok(if report.unplaced.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn audit_command(config: Config, action: &AuditAction) -> anyhow::Result<ExitCode> {
    use telecardio::audit::chain;
    let index = open_index(&config).await?;
    let key_path = config.audit_signing_key();
    match action {
        AuditAction::Verify { json, public_key } => {
            let trusted = match public_key {
                Some(text) => Some(chain::parse_public_key(text)?),
                None => chain::trusted_key(&config)?,
            };
            let archive = telecardio::archive::Archive::open(&config)?;
            cli_read(&index, "audit_verified", String::new()).await?;
            let report = chain::verify_chain(&index, &archive, trusted.as_deref()).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", telecardio::cli::chain_text(&report));
            }
            Ok(if report.intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditAction::Sign => {
            let (signer, made) = chain::HeadSigner::load_or_create(&key_path)?;
            if made {
                eprintln!("made a new signing key {}", key_path.display());
            }
            let archive = telecardio::archive::Archive::open(&config)?;
            let Some(head) = chain::sign_head(&index, &archive, &signer).await? else {
                println!("the audit trail is empty: nothing to sign");
                return Ok(ExitCode::SUCCESS);
            };
            audit_cli(
                &AuditTrail::new(index),
                "audit_head_signed",
                format!("event {} {}", head.seq, head.hash),
            )
            .await;
            println!(
                "signed event {} ({}) on {}",
                head.seq, head.hash, head.signed_at
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::PublicKey => {
            let signer = chain::HeadSigner::load(&key_path)?;
            println!("{}", signer.public_hex());
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::BenchFill { count } => {
            let started = std::time::Instant::now();
            let mut done = 0;
            while done < *count {
                let end = (done + 5000).min(*count);
                let batch: Vec<AuditEvent> = (done..end)
                    .map(|i| {
                        let mut e = AuditEvent::now(
                            "bench_read",
                            &format!("user{}", i % 50),
                            "demo",
                            "127.0.0.1",
                        );
                        e.role = "cardiologist".into();
                        e.outcome = "answered".into();
                        e.study_uid = format!("2.25.{}", 1000 + i / 20);
                        e.detail = "synthetic event for the audit benchmark".into();
                        e
                    })
                    .collect();
                index.append_audit_batch(&batch).await?;
                done = end;
            }
            eprintln!(
                "appended {done} events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn accounts(config: Config) -> anyhow::Result<(Accounts, AuditTrail)> {
    let index = open_index(&config).await?;
    let accounts = Accounts::new(index.clone(), std::sync::Arc::new(config))?;
    Ok((accounts, AuditTrail::new(index)))
}

/// Account changes made on the command line are audited like those made over the API.
/// Records a read of the index from the command line; nothing is printed unless it is recorded.
async fn cli_read(
    index: &telecardio::index::Index,
    kind: &str,
    detail: String,
) -> anyhow::Result<()> {
    let mut event = cli_event(kind, detail);
    event.outcome = "answered".into();
    AuditTrail::new(index.clone())
        .record_required(event)
        .await
        .context("the read cannot be audited, so nothing is shown")
}

/// An audit event for the operator at this machine's command line.
fn cli_event(kind: &str, detail: String) -> AuditEvent {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default();
    let mut event = AuditEvent::now(kind, &format!("cli:{who}"), "", "local");
    event.role = "admin".into();
    event.detail = detail;
    event
}

async fn audit_cli(audit: &AuditTrail, kind: &str, detail: String) {
    let mut event = cli_event(kind, detail);
    event.outcome = "done".into();
    audit.record(event).await;
}

fn read_password(from_stdin: bool, required: bool) -> anyhow::Result<Option<String>> {
    use std::io::IsTerminal;
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        return Ok(Some(password));
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the passwords differ");
        return Ok(Some(first));
    }
    anyhow::ensure!(!required, "give the password with --password-stdin");
    Ok(None)
}

fn exit_for(e: AccountError) -> anyhow::Result<ExitCode> {
    eprintln!("telecardio: {e}");
    Ok(match e.fault() {
        Fault::NotFound => ExitCode::from(3),
        Fault::BadInput => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    })
}

async fn user_command(config: Config, action: &UserAction) -> anyhow::Result<ExitCode> {
    let (accounts, audit) = accounts(config).await?;
    match action {
        UserAction::Add {
            name,
            role,
            institution,
            password_stdin,
            pixel_access,
        } => {
            let password = read_password(*password_stdin, false)?;
            match accounts
                .add_user(name, role, institution, password.as_deref(), *pixel_access)
                .await
            {
                Ok(user) => {
                    audit_cli(
                        &audit,
                        "user_added",
                        format!("{} as {}", user.name, user.role),
                    )
                    .await;
                    if password.is_none() {
                        eprintln!("user {name} added without a password: it signs in with API tokens only");
                    } else {
                        eprintln!("user {name} added");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => exit_for(e),
            }
        }
        UserAction::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(*password_stdin, true)?.unwrap_or_default();
            match accounts.set_password(name, &password).await {
                Ok(()) => {
                    audit_cli(&audit, "user_password_set", name.clone()).await;
                    eprintln!("password of {name} changed");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => exit_for(e),
            }
        }
        UserAction::Disable { name } => match accounts.disable(name).await {
            Ok(()) => {
                audit_cli(&audit, "user_disabled", name.clone()).await;
                eprintln!("user {name} disabled");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => exit_for(e),
        },
        UserAction::Profile {
            name,
            full_name,
            licence,
        } => match accounts.set_profile(name, full_name, licence).await {
            Ok(()) => {
                audit_cli(
                    &audit,
                    "user_profile_set",
                    format!("{name}: {full_name}, licence {licence}"),
                )
                .await;
                eprintln!("profile of {name} set");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => exit_for(e),
        },
        UserAction::List { json } => {
            let users = accounts.users().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                print!("{}", telecardio::cli::users_table(&users));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn token_command(config: Config, action: &TokenAction) -> anyhow::Result<ExitCode> {
    let (accounts, audit) = accounts(config).await?;
    match action {
        TokenAction::Create { user, label, days } => {
            match accounts.create_token(user, label, *days).await {
                Ok(issued) => {
                    audit_cli(
                        &audit,
                        "token_created",
                        format!("{} for {user}", issued.row.id),
                    )
                    .await;
                    println!("{}", issued.token);
                    eprintln!(
                        "token {} for {user}: keep it secret; it is not shown again",
                        issued.row.id
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => exit_for(e),
            }
        }
        TokenAction::Revoke { id } => match accounts.revoke_token(id).await {
            Ok(()) => {
                audit_cli(&audit, "token_revoked", id.clone()).await;
                eprintln!("token {id} revoked");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => exit_for(e),
        },
        TokenAction::List { json } => {
            let tokens = accounts.tokens().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                print!("{}", telecardio::cli::tokens_table(&tokens));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open_index(config: &Config) -> anyhow::Result<telecardio::index::Index> {
    telecardio::index::Index::open(&config.database_url(), config.database.max_connections)
        .await
        .context("cannot open the index")
}
