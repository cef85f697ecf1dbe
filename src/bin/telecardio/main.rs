//! The `telecardio` command: parse arguments, load configuration, call into the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use telecardio::audit::AuditTrail;
use telecardio::config::{Config, ConfigError, LogFormat, Overrides, Ports};
use telecardio::index::AuditEvent;

use args::{AuditAction, Cli, Command};

mod accounts;
mod args;
mod governance;

fn main() -> ExitCode {
    fixed_mmap_threshold();
    quiet_library_backtraces();
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

/// With `RUST_BACKTRACE` set (common on a developer's machine), every error a library makes
/// captures a backtrace, and the DICOM parser finds the end of each C-STORE's command set
/// through an end-of-input error: a stack walk per object, about 1 % of the ingest's CPU.
/// Library errors stop capturing unless `RUST_LIB_BACKTRACE` asks for it; panics keep their
/// backtraces, which only `RUST_BACKTRACE` governs.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // Still single-threaded here: nothing else reads the environment meanwhile.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}

fn load_config(cli: &Cli, ports: Ports) -> Result<Config, ConfigError> {
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        ports,
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
        Command::Serve(ports) => {
            let config = load_config(&cli, (*ports).into())?;
            init_logging(&config);
            runtime()?.block_on(telecardio::server::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Indicators {
            period,
            year,
            from,
            to,
            format,
            person_keys,
            freeze,
            deliver,
        } => {
            let config = load_config(&cli, Ports::default())?;
            let period = match (period, year, from, to) {
                (Some(p), _, _, _) => telecardio::indicators::Period::parse(p),
                (None, Some(y), _, _) => telecardio::indicators::Period::parse(&y.to_string()),
                (None, None, Some(f), Some(t)) => telecardio::indicators::Period::range(f, t),
                _ => {
                    eprintln!("telecardio: give --period, --year or --from and --to");
                    return Ok(ExitCode::from(2));
                }
            };
            let period = match period {
                Ok(p) => p,
                Err(e) => return Ok(refused(e.fault(), e)),
            };
            runtime()?.block_on(governance::indicators_command(
                config,
                period,
                format,
                *person_keys,
                *freeze || *deliver,
                *deliver,
            ))
        }
        Command::Studies { json, limit } => {
            let config = load_config(&cli, Ports::default())?;
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
            let config = load_config(&cli, Ports::default())?;
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
            let config = load_config(&cli, Ports::default())?;
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
            let config = load_config(&cli, Ports::default())?;
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
            let config = load_config(&cli, Ports::default())?;
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
            let config = load_config(&cli, Ports::default())?;
            init_logging(&config);
            runtime()?.block_on(governance::verify_command(
                config,
                *all,
                study.clone(),
                since.as_deref(),
                *json,
            ))
        }
        Command::Backup { to, json } => {
            let config = load_config(&cli, Ports::default())?;
            if !*json {
                init_logging(&config);
            }
            runtime()?.block_on(governance::backup_command(config, to, None, *json))
        }
        Command::Restore {
            from,
            snapshot,
            json,
        } => {
            let config = load_config(&cli, Ports::default())?;
            if !*json {
                init_logging(&config);
            }
            runtime()?.block_on(governance::backup_command(
                config,
                from,
                Some(snapshot.as_deref()),
                *json,
            ))
        }
        Command::RebuildIndex { json } => {
            let config = load_config(&cli, Ports::default())?;
            if !*json {
                init_logging(&config);
            }
            runtime()?.block_on(governance::rebuild_command(config, *json))
        }
        Command::Audit { action } => {
            let config = load_config(&cli, Ports::default())?;
            if !matches!(action, AuditAction::Verify { json: true, .. }) {
                init_logging(&config);
            }
            runtime()?.block_on(governance::audit_command(config, action))
        }
        Command::Orphans { action } => {
            let config = load_config(&cli, Ports::default())?;
            init_logging(&config);
            runtime()?.block_on(governance::orphans_command(config, action))
        }
        Command::Retention { action } => {
            let config = load_config(&cli, Ports::default())?;
            runtime()?.block_on(governance::retention_command(config, action))
        }
        Command::ImportHolter {
            file,
            referral,
            annotations,
            json,
        } => {
            let config = load_config(&cli, Ports::default())?;
            runtime()?.block_on(governance::import_holter_command(
                config,
                file,
                referral,
                annotations.as_deref(),
                *json,
            ))
        }
        Command::Generate(args) => {
            let written = telecardio::synth::generate(args)?;
            eprintln!("wrote {} objects to {}", written, args.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchIndex { count, clinic } => {
            let config = load_config(&cli, Ports::default())?;
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
            let config = load_config(&cli, Ports::default())?;
            runtime()?.block_on(accounts::user_command(config, action))
        }
        Command::Token { action } => {
            let config = load_config(&cli, Ports::default())?;
            runtime()?.block_on(accounts::token_command(config, action))
        }
    }
}

/// Account changes made on the command line are audited like those made over the API.
/// Records a read of the index from the command line; nothing is printed unless it is recorded.
pub(crate) async fn cli_read(
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
pub(crate) fn cli_event(kind: &str, detail: String) -> AuditEvent {
    let mut event = AuditEvent::now(kind, &format!("cli:{}", operator_name()), "", "local");
    event.role = "admin".into();
    event.detail = detail;
    event
}

/// Prints why a command was refused and answers its exit status: 3 for something that does
/// not exist, 2 for bad input, 1 otherwise.
pub(crate) fn refused(fault: telecardio::fault::Fault, error: impl std::fmt::Display) -> ExitCode {
    use telecardio::fault::Fault;
    eprintln!("telecardio: {error}");
    match fault {
        Fault::NotFound => ExitCode::from(3),
        Fault::BadInput => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    }
}

/// Large buffers (object store parts, hashing chunks) are allocated and freed on many threads
/// while a big object streams through. glibc raises its mmap threshold each time such a
/// buffer is freed, so the next ones come from per-thread heaps that keep the memory after it
/// is freed: a 48-hour Holter import then peaked at 100 MB instead of 80. A fixed threshold
/// keeps every buffer of 1 MiB or more in its own mapping, returned when freed.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc tunable; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// The login of the person running the command (behind sudo, the one who ran sudo).
pub(crate) fn operator_name() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_default()
}

pub(crate) async fn audit_cli(audit: &AuditTrail, kind: &str, detail: String) {
    let mut event = cli_event(kind, detail);
    event.outcome = "done".into();
    audit.record(event).await;
}

pub(crate) async fn open_index(config: &Config) -> anyhow::Result<telecardio::index::Index> {
    telecardio::index::Index::open(&config.database_url(), config.database.max_connections)
        .await
        .context("cannot open the index")
}
