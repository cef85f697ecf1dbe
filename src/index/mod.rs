//! The index: the one place SQL lives, for SQLite and PostgreSQL alike.
//!
//! Owns the connection pool, the migrations (one folder for both engines) and every query.
//! Queries are runtime-checked `sqlx::query` calls through the `Any` driver so the same text runs
//! on both engines; each is exercised by the test suite on both. This module knows nothing of
//! DICOM networking, HTTP or object storage.

mod audit;
mod audit_chain;
mod cases;
mod deletion;
mod deliveries;
pub mod demographics;
mod durability;
mod fixity;
mod fixity_state;
mod holter;
mod indicator_reports;
mod indicators;
mod instances;
mod journal;
mod links;
mod orphans;
mod patients;
mod referrals;
mod refusals;
mod reports;
mod retention;
mod search;
mod snapshot;
mod studies;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use audit::{ArchiveTally, AuditEvent, AuditSearch};
pub use audit_chain::{canonical_form, event_hash, ChainedEvent, HeadRow};
pub use cases::{Candidate, CaseFilter, CaseRow};
pub use deletion::{DeletionRequestRow, Removal, TombstoneRow};
pub use deliveries::{DeliveryRow, Push};
pub use durability::InFlight;
pub use fixity::{FixityCheck, FixityScope, StoredObject};
pub use fixity_state::{FixityCursor, FixityFailureRow, FixityTally};
pub use holter::{HolterOriginal, StudyPatient};
pub use indicator_reports::IndicatorReportRow;
pub use indicators::{CaseClocks, FixityDay, ReceivedStudy, SignedVersion};
pub use instances::{other_ids, Collision, InstanceRecord, Precheck, Prepared, Recorded};
pub use journal::JournalQuery;
pub use links::{LinkException, Resolved, StudyForLink};
pub use orphans::{OrphanDecision, OrphanReport};
pub use patients::{Demographics, Merge, Merged, StaleRecord};
pub use referrals::{Inserted, JournalEntry, ReferralRow};
pub use refusals::Refusal;
pub use reports::{ReportRow, Saved, SignedReport};
pub use retention::{ExtensionRow, HoldRow, NoticeRow, StudyReceipts};
pub use search::{Condition, Field, Filter, Hit, Level, Scope, Search};
pub use snapshot::{ColumnKind, TableDump};
pub use studies::{InstanceRow, SeriesRow, StudyDetail, StudyRow};
pub use users::{Created, TokenRow, UserRow};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot open index database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot create directory for the index database {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("index migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("index query `{query}` failed: {source}")]
    Query {
        query: &'static str,
        source: sqlx::Error,
    },
}

impl IndexError {
    fn query(query: &'static str) -> impl FnOnce(sqlx::Error) -> IndexError {
        move |source| IndexError::Query { query, source }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Handle to the index database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Index {
    pool: AnyPool,
    /// Where instance rows are committed: the same pool, or on SQLite one that does not wait
    /// for the disk ([`Index::relax_instance_commits`]).
    instance_pool: AnyPool,
    engine: Engine,
    /// The URL it was opened with, for the relaxed pool.
    url: String,
    in_flight: std::sync::Arc<durability::Registry>,
    relaxed: bool,
    /// SQLite's instance writers, taking turns ([`Index::prepare_instance`]).
    writers: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Microseconds since the Unix epoch, the index's one representation of time.
pub fn now_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}

/// Runs `sql`, whose values are all text bound in order to its numbered placeholders (only
/// constant text and placeholders may be formatted into it), and reads every row with `read`.
pub(crate) async fn fetch_all_text<T>(
    pool: &sqlx::AnyPool,
    sql: String,
    args: &[&str],
    what: &'static str,
    read: fn(&sqlx::any::AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, IndexError> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in args {
        query = query.bind(*a);
    }
    let rows = query
        .fetch_all(pool)
        .await
        .map_err(IndexError::query(what))?;
    rows.iter()
        .map(read)
        .collect::<Result<_, _>>()
        .map_err(IndexError::query(what))
}

/// An index time as an HL7 timestamp (`YYYYMMDDHHMMSS+0000`), for v2 messages and CDA TS.
pub fn hl7_timestamp(micros: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An index time (microseconds since the epoch) as RFC 3339, UTC; '' if out of range.
pub fn rfc3339(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Index {
    /// Connects, creating a SQLite file if needed, and brings the schema up to date.
    pub async fn open(url: &str, max_connections: u32) -> Result<Index, IndexError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else {
            Engine::Postgres
        };
        let mut url = url.to_owned();
        if engine == Engine::Sqlite {
            url = prepare_sqlite(&url)?;
        }
        let pool = connect(&url, engine, max_connections, Commits::WaitForDisk).await?;
        MIGRATOR.run(&pool).await?;
        let index = Index {
            instance_pool: pool.clone(),
            pool,
            engine,
            url,
            in_flight: Default::default(),
            relaxed: false,
            writers: Default::default(),
        };
        index.archive_id().await?;
        let chained = index.chain_unchained().await?;
        if chained > 0 {
            tracing::info!(
                chained,
                "audit events recorded before the chain existed are chained"
            );
        }
        Ok(index)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Reachability probe for health checks.
    pub async fn check(&self) -> Result<(), IndexError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(IndexError::query("health check"))
    }

    /// Refreshes planner statistics so matching keeps using the indexes as the tables grow.
    pub async fn analyze(&self) -> Result<(), IndexError> {
        sqlx::query("ANALYZE")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(IndexError::query("ANALYZE"))
    }

    pub async fn close(&self) {
        self.instance_pool.close().await;
        self.pool.close().await;
    }
}

/// How a SQLite pool's connections commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commits {
    /// A commit returns once the log is on disk (`synchronous = FULL`); a commit that finds
    /// the log long copies it into the database file first (SQLite's automatic checkpoint).
    WaitForDisk,
    /// A commit returns once the log is in the kernel's page cache (`synchronous = NORMAL`),
    /// and never copies the log into the database itself: that copy writes pages all over a
    /// large index and flushes them, and the C-STORE whose commit happened to trigger it
    /// waited for all of it. The copy is made by the commit of the durable mark instead
    /// ([`Index::mark_durable`], every second while rows come in, on a `WaitForDisk`
    /// connection), beside the writers: SQLite's automatic checkpoint is passive.
    Relaxed,
}

/// A pool on `url`, committing as `commits` says on SQLite.
async fn connect(
    url: &str,
    engine: Engine,
    max_connections: u32,
    commits: Commits,
) -> Result<AnyPool, IndexError> {
    let open_err = |source| IndexError::Open {
        url: redact(url),
        source,
    };
    let options = AnyConnectOptions::from_str(url).map_err(open_err)?;
    AnyPoolOptions::new()
        .max_connections(max_connections)
        // A pooled SQLite connection cannot have gone away, and its liveness ping is a
        // hand-off to the connection's thread before every statement taken from the pool.
        // PostgreSQL keeps it: after a server restart, stale connections are found here
        // instead of failing the next request.
        .test_before_acquire(engine == Engine::Postgres)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if engine == Engine::Sqlite {
                    // WAL lets readers run beside the writer; FULL makes a commit durable
                    // before we acknowledge; the busy timeout queues concurrent writers.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    match commits {
                        Commits::WaitForDisk => {
                            conn.execute("PRAGMA synchronous = FULL").await?;
                        }
                        Commits::Relaxed => {
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                        }
                    }
                    conn.execute("PRAGMA busy_timeout = 30000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // DICOM matching is case-sensitive (names are folded before they
                    // get here), as PostgreSQL's LIKE is; it also lets prefix patterns
                    // use the indexes.
                    conn.execute("PRAGMA case_sensitive_like = ON").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(open_err)
}

/// Makes sure the directory of a SQLite file exists and asks sqlx to create the file.
fn prepare_sqlite(url: &str) -> Result<String, IndexError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(url.to_owned());
    }
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|source| IndexError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
    }
    Ok(if url.contains('?') {
        url.to_owned()
    } else {
        format!("sqlite://{path}?mode=rwc")
    })
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
