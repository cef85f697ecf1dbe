//! The `telecardio` command: parse arguments, load configuration, call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use telecardio::config::{Config, ConfigError, LogFormat, Overrides};

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
    /// Write deterministic test objects (the committed set, or a larger benchmark corpus).
    Generate(telecardio::synth::GenerateArgs),
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
                Ok::<_, anyhow::Error>(index.list_studies(*limit).await?)
            })?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", telecardio::cli::studies_table(&rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { study_uid, json } => {
            let config = load_config(&cli, None, None)?;
            let detail = runtime()?.block_on(async {
                let index = open_index(&config).await?;
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
        Command::Generate(args) => {
            let written = telecardio::synth::generate(args)?;
            eprintln!("wrote {} objects to {}", written, args.out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open_index(config: &Config) -> anyhow::Result<telecardio::index::Index> {
    telecardio::index::Index::open(&config.database_url(), config.database.max_connections)
        .await
        .context("cannot open the index")
}
