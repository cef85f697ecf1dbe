//! How far the index is on disk, when instance rows are committed without waiting for it.
//!
//! On SQLite the service may commit instance rows with `synchronous = NORMAL`
//! ([`Index::relax_instance_commits`]): the commit is in the write-ahead log in the kernel's
//! page cache, so a crash of the process loses nothing, while a crash of the machine may lose
//! the last commits. The objects those rows describe were made durable in the store before
//! their rows were written, so nothing is lost with them: the store is the truth and the rows
//! can be made again from it. What is needed is to know where to look. Every object is
//! registered [`InFlight`] before it is written to the store and stays so until its row is
//! committed; a durable mark, written with a full flush of the log, says: every object whose
//! store write began before this instant has its row on disk. After a machine crash only
//! objects the store received since the mark are looked at again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::Row;

use super::{connect, now_micros, Commits, Engine, Index, IndexError};

/// Objects between their store write and their row's commit, by when they started.
#[derive(Debug, Default)]
pub(super) struct Registry {
    next: AtomicU64,
    started: Mutex<BTreeMap<u64, i64>>,
    /// Some row was committed since the last mark.
    dirty: AtomicBool,
}

/// One object on its way from the store to a committed row; dropping it ends the way.
#[derive(Debug)]
pub struct InFlight {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut started) = self.registry.started.lock() {
            started.remove(&self.id);
        }
        self.registry.dirty.store(true, Ordering::Release);
    }
}

const MARK: &str = "instances";

impl Index {
    /// From now on instance rows are committed without waiting for the disk (SQLite only;
    /// PostgreSQL keeps waiting: a restart of its server cannot be told from here). Only for
    /// the serving process, which marks how far the index is durable
    /// ([`Index::mark_durable`]) and, after a machine crash, indexes again what the store
    /// received since the mark.
    pub async fn relax_instance_commits(
        mut self,
        max_connections: u32,
    ) -> Result<Index, IndexError> {
        if self.engine == Engine::Sqlite {
            self.instance_pool =
                connect(&self.url, self.engine, max_connections, Commits::Relaxed).await?;
            self.relaxed = true;
        }
        Ok(self)
    }

    /// Whether instance rows are committed without waiting for the disk.
    pub fn relaxed(&self) -> bool {
        self.relaxed
    }

    /// Registers an object about to be written to the store, until its row is committed.
    pub fn in_flight(&self) -> InFlight {
        let id = self.in_flight.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut started) = self.in_flight.started.lock() {
            started.insert(id, now_micros());
        }
        InFlight {
            registry: self.in_flight.clone(),
            id,
        }
    }

    /// Flushes the index to disk and records the instant before which every object's row is
    /// on disk: now, or when the oldest object still on its way began. Does nothing when no
    /// row was committed since the last mark, or when every commit waits for the disk anyway.
    /// Answers the mark written.
    pub async fn mark_durable(&self) -> Result<Option<i64>, IndexError> {
        if !self.relaxed || !self.in_flight.dirty.swap(false, Ordering::AcqRel) {
            return Ok(None);
        }
        let now = now_micros();
        let oldest = self
            .in_flight
            .started
            .lock()
            .ok()
            .and_then(|started| started.values().min().copied());
        let at = oldest.map_or(now, |oldest| oldest.min(now));
        // Written through the fully synchronous pool: its commit flushes the whole log, the
        // relaxed commits before it included.
        let written = sqlx::query(
            "INSERT INTO durable_marks (name, at) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET at = excluded.at",
        )
        .bind(MARK)
        .bind(at)
        .execute(&self.pool)
        .await;
        if let Err(e) = written {
            self.in_flight.dirty.store(true, Ordering::Release);
            return Err(IndexError::query("durable mark")(e));
        }
        Ok(Some(at))
    }

    /// Flushes and marks now, whether or not a row was committed since the last mark.
    pub async fn mark_durable_now(&self) -> Result<(), IndexError> {
        self.in_flight.dirty.store(true, Ordering::Release);
        self.mark_durable().await.map(|_| ())
    }

    /// The last durable mark, if any was ever written.
    pub async fn durable_mark(&self) -> Result<Option<i64>, IndexError> {
        let row = sqlx::query("SELECT at FROM durable_marks WHERE name = $1")
            .bind(MARK)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("read durable mark"))?;
        row.map(|r| r.try_get::<i64, _>(0))
            .transpose()
            .map_err(IndexError::query("read durable mark"))
    }
}
