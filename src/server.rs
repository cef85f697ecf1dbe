//! Wiring of a running service: open the index and the store, start the DICOM and HTTP
//! listeners, stop them gracefully on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::access::Policy;
use crate::accounts::Accounts;
use crate::archive::{Archive, ArchiveError};
use crate::audit::AuditTrail;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::delivery::Deliveries;
use crate::dimse::{self, DimseContext, DimseError};
use crate::hl7::{self, Hl7Context};
use crate::index::{Index, IndexError};
use crate::ingest::{Ingest, LastRun, RunMarker};
use crate::metrics::Metrics;
use crate::patients::Patients;
use crate::referral::Referrals;
use crate::reports::Reports;
use crate::routing::Routing;
use crate::web::{self, WebState};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Dimse(#[from] DimseError),
    #[error("cannot listen for HTTP on {addr}: {source} (another instance? set http.listen or --http-port)")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTPS configuration: {0}")]
    Tls(#[from] crate::tls::TlsSetupError),
    #[error(transparent)]
    Hl7(#[from] crate::hl7::BindError),
    #[error(transparent)]
    AuditKey(#[from] crate::audit::chain::ChainError),
    #[error(transparent)]
    AuditRepository(#[from] crate::audit::syslog::SyslogError),
    #[error("identity provider configuration: {0}")]
    Jwt(#[from] crate::accounts::jwt::JwtError),
    #[error(transparent)]
    Indicators(#[from] crate::indicators::IndicatorError),
    #[error("cannot hold the run marker in the data directory: {0}")]
    Marker(std::io::Error),
    #[error("recovery after a machine crash failed: {0}")]
    Recovery(crate::ingest::IngestError),
}

/// Runs the service until a shutdown signal.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let (marker, last_run) = RunMarker::inspect(&config.service.data_dir);
    let mut index = Index::open(&config.database_url(), config.database.max_connections).await?;
    if config.database.relaxed_instance_commits {
        index = index
            .relax_instance_commits(config.database.max_connections)
            .await?;
    }
    let years = crate::retention::Years::settle(&index, &config.retention).await?;
    let archive =
        crate::retention::lock_archive(Archive::open(&config)?, &config.retention, years).await?;
    let started = std::time::SystemTime::now();
    let swept = archive.sweep_staging().await?;
    if swept > 0 {
        tracing::info!(
            swept,
            "removed unacknowledged uploads left by an earlier run"
        );
    }
    let janitor = archive.clone();
    tokio::spawn(async move {
        let removed = janitor.sweep_local_temporaries(started).await;
        if removed > 0 {
            tracing::info!(removed, "removed temporary files left by an earlier run");
        }
    });
    let metrics = Metrics::new();
    let audit = AuditTrail::new(index.clone());
    let policy = Policy::new(config.clone());
    let referrals = Referrals::new(
        index.clone(),
        archive.clone(),
        config.clone(),
        policy.clone(),
        audit.clone(),
    );
    let ingest = Ingest::new(
        archive.clone(),
        index.clone(),
        audit.clone(),
        metrics.clone(),
        config.ingest.max_object_bytes,
    )
    .with_extra_sop_classes(config.dicom.extra_sop_classes.clone())
    .with_referrals(referrals.clone());
    // Patient records an older index shared between clinics take their own clinic's
    // demographics again, read from its objects (nothing to do on an index made after that).
    let rederiving = ingest.clone();
    tokio::spawn(async move {
        let refreshed = rederiving.rederive_stale_patients().await;
        if refreshed > 0 {
            tracing::info!(
                refreshed,
                "patient records read again from their clinics' objects"
            );
        }
    });
    recover(&ingest, &index, &config, last_run).await?;
    marker.hold().map_err(ServeError::Marker)?;
    let flusher = tokio::spawn(keep_marking(index.clone()));
    let patients = Patients::new(index.clone(), policy.clone(), audit.clone());
    let routing = Routing::new(index.clone(), config.clone(), policy.clone(), audit.clone());
    let retention = crate::retention::Retention::new(
        index.clone(),
        archive.clone(),
        policy.clone(),
        audit.clone(),
        years,
    );
    let cleared = crate::holter::import::clear_spool(&config);
    if cleared > 0 {
        tracing::info!(
            cleared,
            "removed Holter uploads an earlier run left unfinished"
        );
    }
    let holter = crate::holter::Holter::new(
        ingest.clone(),
        policy.clone(),
        audit.clone(),
        config.clone(),
    );
    let catalog = Catalog::new(index.clone(), archive.clone(), policy, audit.clone());
    let accounts = Accounts::new(index.clone(), config.clone())?;
    let dimse_ctx = DimseContext::new(
        config.clone(),
        ingest.clone(),
        audit.clone(),
        catalog.clone(),
        metrics.clone(),
    )?;
    let (stop, stopped) = watch::channel(false);

    let mut tasks = tokio::task::JoinSet::new();
    let listener = dimse::bind(config.dicom.listen, "dicom.listen or --dicom-port").await?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(config.dicom.listen), ae_title = %config.dicom.ae_title, "DICOM listening");
    tasks.spawn(dimse::serve(
        listener,
        dimse_ctx.clone(),
        false,
        stopped.clone(),
    ));
    if config.dicom.tls.enabled {
        let listener = dimse::bind(
            config.dicom.tls.listen,
            "dicom.tls.listen or --dicom-tls-port",
        )
        .await?;
        tracing::info!(addr = %config.dicom.tls.listen, "DICOM TLS listening");
        tasks.spawn(dimse::serve(listener, dimse_ctx, true, stopped.clone()));
    }

    if config.hl7.enabled {
        let listener = hl7::bind(config.hl7.listen).await?;
        tracing::info!(addr = %listener.local_addr().unwrap_or(config.hl7.listen), "HL7 MLLP listening");
        let ctx = Hl7Context {
            config: config.clone(),
            referrals: referrals.clone(),
            patients,
            audit: audit.clone(),
        };
        tasks.spawn(hl7::serve(listener, ctx, stopped.clone()));
    }

    tasks.spawn(routing.clone().run(stopped.clone()));
    if !config.holter.inbox.is_empty() {
        let inbox = crate::holter::inbox::Inbox::new(holter.clone());
        tracing::info!(dir = %inbox.root().display(), "Holter inbox watched");
        tasks.spawn(inbox.run(stopped.clone()));
    }
    let deliveries_queued = Arc::new(Notify::new());
    let deliveries = Deliveries::new(
        index.clone(),
        archive.clone(),
        config.clone(),
        metrics.clone(),
        deliveries_queued.clone(),
    );
    tasks.spawn(deliveries.run(stopped.clone()));
    tasks.spawn(
        crate::fixity::FixityWorker::new(
            crate::fixity::Fixity::new(index.clone(), archive.clone()),
            config.clone(),
            metrics.clone(),
        )
        .run(stopped.clone()),
    );
    tasks.spawn(retention.clone().run_daily(stopped.clone()));
    if let Some(forwarder) = crate::audit::syslog::Forwarder::from_config(index.clone(), &config)? {
        tasks.spawn(forwarder.run(stopped.clone()));
    }
    let key_path = config.audit_signing_key();
    let (signer, made) = crate::audit::chain::HeadSigner::load_or_create(&key_path)?;
    if made {
        tracing::warn!(key = %key_path.display(), public_key = %signer.public_hex(),
            "made a new key to sign the audit chain; keep a copy of its public key apart from this machine (audit.public_key)");
    }
    tasks.spawn(crate::audit::chain::run_signer(
        index.clone(),
        archive.clone(),
        signer,
        stopped.clone(),
    ));
    let reports = Reports::new(
        index.clone(),
        archive.clone(),
        config.clone(),
        routing.clone(),
        audit.clone(),
        ingest.clone(),
        deliveries_queued.clone(),
    );

    let indicators = crate::indicators::Indicators::new(index.clone(), config.clone())?
        .with_archive(archive.clone())
        .with_wake(deliveries_queued.clone());
    tasks.spawn(indicators.clone().run_yearly(stopped.clone()));

    let http_addr = config.http.listen;
    let https = if config.http.tls_enabled() {
        Some(crate::tls::server_config(
            &config.http.certificate,
            &config.http.private_key,
            None,
        )?)
    } else {
        None
    };
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|source| ServeError::HttpBind {
            addr: http_addr,
            source,
        })?;
    tracing::info!(addr = %http_addr, tls = https.is_some(), "HTTP listening");
    let app = web::router(WebState {
        config: config.clone(),
        index: index.clone(),
        archive,
        metrics,
        accounts,
        catalog,
        ingest,
        audit,
        referrals,
        routing,
        reports,
        retention,
        indicators,
        holter,
    });
    let http_task = tokio::spawn(web::serve(http, app, https, stopped.clone()));

    shutdown_signal().await;
    tracing::info!("shutting down: finishing open associations");
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    let _ = http_task.await;
    flusher.abort();
    index.mark_durable_now().await?;
    index.close().await;
    marker.release().map_err(ServeError::Marker)?;
    Ok(())
}

/// After a crash of the machine, the rows of received objects its unflushed commits lost are
/// made again from the store before anything new is received.
async fn recover(
    ingest: &Ingest,
    index: &Index,
    config: &Config,
    last_run: LastRun,
) -> Result<(), ServeError> {
    match last_run {
        LastRun::Clean => {}
        LastRun::ProcessEnded => {
            tracing::warn!("the last run did not stop cleanly; the machine kept running, so every commit it made survived")
        }
        // Commits that waited for the disk lost nothing.
        LastRun::MachineDown if !index.relaxed() => {}
        LastRun::MachineDown => {
            tracing::warn!("the last run ended with the machine; indexing again what the store received since the index was last known on disk");
            let recovered = ingest
                .recover_lost_rows(&config.dicom.ae_title)
                .await
                .map_err(ServeError::Recovery)?;
            tracing::info!(
                looked_at = recovered.looked_at,
                indexed_again = recovered.indexed_again,
                not_placed = recovered.not_placed,
                "recovery after a machine crash done"
            );
        }
    }
    // Everything indexed so far is on disk from here on.
    index.mark_durable_now().await?;
    Ok(())
}

/// Marks every second how far the index is on disk, while rows are being committed.
async fn keep_marking(index: Index) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = index.mark_durable().await {
            tracing::warn!(error = %e, "durable mark not written; tried again in a second");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
