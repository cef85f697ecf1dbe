//! Commands over the archive as a whole: fixity, backup and restore, rebuilding the index,
//! the audit chain and retention.

use std::process::ExitCode;

use anyhow::Context;
use telecardio::audit::AuditTrail;
use telecardio::config::Config;
use telecardio::index::AuditEvent;

use crate::args::{AuditAction, OrphanAction, RetentionAction};
use crate::{audit_cli, cli_read, open_index};

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

/// `indicators`: the report of a period, printed; the read is audited first.
pub async fn indicators_command(
    config: Config,
    period: telecardio::indicators::Period,
    format: &str,
    person_keys: bool,
    freeze: bool,
    deliver: bool,
) -> anyhow::Result<ExitCode> {
    use telecardio::indicators::export::{render, Format};
    let format = match Format::parse(format) {
        Ok(f) => f,
        Err(e) => return Ok(crate::refused(e.fault(), e)),
    };
    let index = open_index(&config).await?;
    let archive = telecardio::archive::Archive::open(&config)?;
    let indicators =
        telecardio::indicators::Indicators::new(index.clone(), std::sync::Arc::new(config))?
            .with_archive(archive);
    if freeze {
        let by = format!("cli:{}", crate::operator_name());
        let frozen = match indicators.freeze(&period, &by).await {
            Ok(f) => f,
            Err(e) => return Ok(crate::refused(e.fault(), e)),
        };
        audit_cli(
            &AuditTrail::new(index.clone()),
            "indicators_frozen",
            format!(
                "period {} version {}{}",
                period.name,
                frozen.report.version,
                if frozen.created { "" } else { " (unchanged)" }
            ),
        )
        .await;
        let mut answer = serde_json::json!({
            "id": frozen.report.id,
            "period": frozen.report.period,
            "version": frozen.report.version,
            "created": frozen.created,
            "content_sha256": frozen.report.content_sha256,
            "bundle_sha256": frozen.report.bundle_sha256,
            "changes": frozen.report.changes.lines().collect::<Vec<_>>(),
        });
        if deliver {
            let row = match indicators.deliver(&frozen.report.id, &by).await {
                Ok(r) => r,
                Err(e) => return Ok(crate::refused(e.fault(), e)),
            };
            audit_cli(
                &AuditTrail::new(index.clone()),
                "indicators_delivery_requested",
                format!("report {} to {}", frozen.report.id, row.target),
            )
            .await;
            answer["delivery"] =
                serde_json::json!({"id": row.id, "status": row.status, "target": row.target});
        }
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    cli_read(&index, "indicators_read", format!("period {}", period.name)).await?;
    let report = indicators.report(&period).await?;
    println!("{}", render(&indicators, &report, format, person_keys));
    Ok(ExitCode::SUCCESS)
}

/// `backup` (restore: `None`) or `restore` (`Some(snapshot)`).
pub async fn backup_command(
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

pub async fn rebuild_command(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let index = open_index(&config).await?;
    let store = telecardio::archive::Archive::open(&config)?;
    let audit = AuditTrail::new(index.clone());
    let ingest = cli_ingest(&config, store.clone(), index.clone(), &audit);
    let config = std::sync::Arc::new(config);
    let referrals = telecardio::referral::Referrals::new(
        index.clone(),
        store.clone(),
        config.clone(),
        telecardio::access::Policy::new(config.clone()),
        audit.clone(),
    );
    let report =
        telecardio::backup::rebuild_index(&index, &store, &ingest, &referrals, &config).await?;
    audit_cli(
        &audit,
        "index_rebuilt",
        format!(
            "{} of {} DICOM objects indexed, {} referrals, {} signed report versions in {} \
             cases, {} not placed",
            report.indexed,
            report.dicom_objects,
            report.referrals,
            report.reports,
            report.cases,
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

pub async fn audit_command(config: Config, action: &AuditAction) -> anyhow::Result<ExitCode> {
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
        AuditAction::Export {
            format,
            after,
            limit,
        } => {
            use telecardio::audit::export;
            cli_read(&index, "audit_exported", format!("{format} after {after}")).await?;
            let events = index.audit_chain_after(*after, *limit).await?;
            let source = &config.dicom.ae_title;
            if format == "dicom" {
                for e in &events {
                    println!("{}", export::dicom_message(e, source));
                }
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&export::fhir_bundle(&events, source))?
                );
            }
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

/// `verify`: fixity on demand; exit 1 when any object failed, 3 for an unknown study.
pub async fn verify_command(
    config: Config,
    all: bool,
    study: Option<String>,
    since: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
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
        study_uid: study,
        since,
    };
    let index = open_index(&config).await?;
    let archive = telecardio::archive::Archive::open(&config)?;
    cli_read(&index, "fixity_verified", format!("{scope:?}")).await?;
    let fixity =
        telecardio::fixity::Fixity::new(index, archive).with_source(&config.dicom.ae_title);
    let report = match fixity.verify(&scope).await {
        Ok(report) => report,
        Err(telecardio::fixity::FixityError::NoSuchStudy(uid)) => {
            eprintln!("telecardio: no study {uid}");
            return Ok(ExitCode::from(3));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
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

/// `retention …`: reads, as the operator (an administrator), each one audited.
pub async fn retention_command(
    config: Config,
    action: &RetentionAction,
) -> anyhow::Result<ExitCode> {
    use telecardio::retention::{Retention, Years};
    let index = open_index(&config).await?;
    let archive = telecardio::archive::Archive::open(&config)?;
    let years = Years::settle(&index, &config.retention).await?;
    let notice_days = config.retention.notice_days;
    let retention = Retention::new(
        index.clone(),
        archive,
        telecardio::access::Policy::new(std::sync::Arc::new(config)),
        AuditTrail::new(index),
        years,
    );
    let who = telecardio::access::Principal::operator(&crate::operator_name());
    let printed = match action {
        RetentionAction::Show { study_uid, json } => {
            retention.study(&who, study_uid).await.map(|s| {
                if *json {
                    to_json(&s)
                } else {
                    telecardio::cli::retention_text(&s)
                }
            })
        }
        RetentionAction::Expiring { days, json } => retention
            .expiring_for(&who, days.unwrap_or(notice_days))
            .await
            .map(|rows| {
                if *json {
                    to_json(&rows)
                } else {
                    telecardio::cli::notices_table(&rows)
                }
            }),
        RetentionAction::Deletions { state, json } => {
            retention.requests(&who, state).await.map(|rows| {
                if *json {
                    to_json(&rows)
                } else {
                    telecardio::cli::deletions_table(&rows)
                }
            })
        }
        RetentionAction::Tombstones { study, json } => {
            retention.tombstones(&who, study).await.map(|rows| {
                if *json {
                    to_json(&rows)
                } else {
                    telecardio::cli::tombstones_table(&rows)
                }
            })
        }
    };
    match printed {
        Ok(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(crate::refused(e.fault(), e)),
    }
}

/// The ingest as a command uses it: no metrics are scraped from a command.
fn cli_ingest(
    config: &Config,
    store: telecardio::archive::Archive,
    index: telecardio::index::Index,
    audit: &AuditTrail,
) -> telecardio::ingest::Ingest {
    telecardio::ingest::Ingest::new(
        store,
        index,
        audit.clone(),
        telecardio::metrics::Metrics::new(),
        config.ingest.max_object_bytes,
    )
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// `orphans adopt|quarantine KEY --reason`: as the operator (an administrator), audited.
pub async fn orphans_command(config: Config, action: &OrphanAction) -> anyhow::Result<ExitCode> {
    let index = open_index(&config).await?;
    let store = telecardio::archive::Archive::open(&config)?;
    let audit = AuditTrail::new(index.clone());
    let ingest = cli_ingest(&config, store, index, &audit);
    let orphans = telecardio::fixity::Orphans::new(
        ingest,
        telecardio::access::Policy::new(std::sync::Arc::new(config)),
        audit,
    );
    let who = telecardio::access::Principal::operator(&crate::operator_name());
    let decided = match action {
        OrphanAction::Adopt { key, reason } => orphans.adopt(&who, key, reason).await,
        OrphanAction::Quarantine { key, reason } => orphans.quarantine(&who, key, reason).await,
    };
    match decided {
        Ok(d) => {
            println!("{}", serde_json::to_string_pretty(&d)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(crate::refused(e.fault(), e)),
    }
}

/// `import-holter FILE --referral ID`: as the operator, on the referral's clinic's behalf;
/// the same import as an upload, audited.
pub async fn import_holter_command(
    config: Config,
    file: &std::path::Path,
    referral: &str,
    annotations: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let index = open_index(&config).await?;
    let store = telecardio::archive::Archive::open(&config)?;
    let audit = AuditTrail::new(index.clone());
    let config = std::sync::Arc::new(config);
    let policy = telecardio::access::Policy::new(config.clone());
    let referrals = telecardio::referral::Referrals::new(
        index.clone(),
        store.clone(),
        config.clone(),
        policy.clone(),
        audit.clone(),
    );
    let ingest = cli_ingest(&config, store, index, &audit)
        .with_extra_sop_classes(config.dicom.extra_sop_classes.clone())
        .with_referrals(referrals);
    let holter = telecardio::holter::Holter::new(ingest, policy, audit, config);
    let who = telecardio::access::Principal::operator(&crate::operator_name());
    let upload = telecardio::holter::Upload {
        path: file.to_owned(),
        file_name: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        annotations: annotations.map(ToOwned::to_owned),
    };
    let target = telecardio::holter::Target::Referral(referral.to_owned());
    match holter.import(&who, &target, &upload).await {
        Ok(done) => {
            let o = &done.original;
            if json {
                print!("{}", to_json(o));
            } else {
                println!(
                    "{} `{}` for referral {}: {} instance(s) in series {} of study {}{}",
                    o.format,
                    o.file_name,
                    o.referral_id,
                    o.instances,
                    o.series_uid,
                    o.study_uid,
                    if done.created {
                        ""
                    } else {
                        " (already imported)"
                    }
                );
                println!("original {} SHA-256 {}", o.object_key, o.sha256);
                if !done.left_out.is_empty() {
                    println!("not carried into the copy: {}", done.left_out.join(", "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(crate::refused(e.fault(), e)),
    }
}
