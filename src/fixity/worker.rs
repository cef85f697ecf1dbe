//! The background fixity worker: one pass over the whole archive per cycle (90 days by
//! default), reading just fast enough to finish in time and never faster than the configured
//! bound, so checking never competes with receiving. One node works the pass at a time (a
//! lease in the index); a restart goes on where the pass stood.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Fixity, FixityError};
use crate::config::Config;
use crate::index::{now_micros, FixityCursor, FixityScope, StoredObject};
use crate::metrics::Metrics;

/// Objects checked in one step, between two looks at the pace.
const STEP: usize = 64;
/// How long a lease outlives the step that took it, should the node die.
const LEASE_MARGIN: Duration = Duration::from_secs(600);
/// Longest wait before the worker looks again (a node that could not take the lease, or a
/// pass that finished early).
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

pub struct FixityWorker {
    fixity: Fixity,
    config: Arc<Config>,
    metrics: Metrics,
    holder: String,
}

impl FixityWorker {
    pub fn new(fixity: Fixity, config: Arc<Config>, metrics: Metrics) -> FixityWorker {
        FixityWorker {
            fixity,
            config,
            metrics,
            holder: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if !self.config.fixity.enabled {
            tracing::info!("background fixity checking is off on this node");
            return;
        }
        if let Ok(n) = self.fixity.index.fixity_failure_count().await {
            self.metrics.fixity_failures(n);
        }
        loop {
            let wait = match self.step().await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "background fixity check deferred");
                    Duration::from_secs(60)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
        // Another node (or this one, restarted) may take the pass on at once.
        let _ = self
            .fixity
            .index
            .claim_fixity_worker(&self.holder, now_micros(), 0)
            .await;
    }

    /// Checks the next few objects of the pass and answers how long to wait before the next
    /// step, so the pass keeps its pace.
    async fn step(&self) -> Result<Duration, FixityError> {
        let index = &self.fixity.index;
        let started = std::time::Instant::now();
        let now = now_micros();
        let lease = now + micros(LEASE_MARGIN);
        let Some(mut cursor) = index.claim_fixity_worker(&self.holder, now, lease).await? else {
            return Ok(Duration::from_secs(300));
        };
        let cycle = self.config.fixity.cycle();
        if cursor.cycle == 0 || cursor.phase == "done" {
            let next = cursor.cycle_started_at + micros(cycle);
            if cursor.cycle > 0 && next > now {
                return Ok(
                    Duration::from_micros(u64::try_from(next - now).unwrap_or(0)).min(LONGEST_WAIT),
                );
            }
            cursor = FixityCursor {
                cycle: cursor.cycle + 1,
                cycle_started_at: now,
                phase: "documents".into(),
                after_key: String::new(),
                objects: 0,
                bytes: 0,
                failures: 0,
            };
            tracing::info!(cycle = cursor.cycle, "background fixity pass begun");
        }
        let objects = self.next_objects(&cursor).await?;
        if objects.is_empty() {
            if cursor.phase == "documents" {
                cursor.phase = "dicom".into();
            } else {
                tracing::info!(
                    cycle = cursor.cycle,
                    objects = cursor.objects,
                    bytes = cursor.bytes,
                    failures = cursor.failures,
                    "background fixity pass complete"
                );
                cursor.phase = "done".into();
            }
            cursor.after_key.clear();
            index.save_fixity_cursor(&self.holder, &cursor).await?;
            return Ok(Duration::ZERO);
        }
        let checks = self.fixity.check(&objects).await;
        index.record_fixity_batch(&checks).await?;
        let bytes: u64 = checks.iter().map(|c| c.bytes).sum();
        let failed = checks.iter().filter(|c| c.outcome != "ok").count();
        self.metrics.fixity_checked(checks.len() as u64, bytes);
        if failed > 0 {
            self.metrics
                .fixity_failures(index.fixity_failure_count().await?);
        }
        cursor.objects += i64::try_from(checks.len()).unwrap_or(0);
        cursor.bytes += i64::try_from(bytes).unwrap_or(0);
        cursor.failures += i64::try_from(failed).unwrap_or(0);
        cursor.after_key = objects.last().map(|o| o.key.clone()).unwrap_or_default();
        index.save_fixity_cursor(&self.holder, &cursor).await?;

        // The pace: the archive's bytes over the cycle, never above the configured bound.
        let total = index.archive_bytes().await?.max(1) as f64;
        let mut rate = total / cycle.as_secs_f64();
        let bound = self.config.fixity.max_bytes_per_second;
        if bound > 0 {
            rate = rate.min(bound as f64);
        }
        let due = Duration::from_secs_f64(bytes.max(1) as f64 / rate.max(1.0));
        let wait = due.saturating_sub(started.elapsed());
        // Hold the lease over the wait, so no other node reads in between.
        let until = now_micros() + micros(wait) + micros(LEASE_MARGIN);
        index
            .claim_fixity_worker(&self.holder, now_micros(), until)
            .await?;
        Ok(wait)
    }

    /// The next objects of the pass after the cursor: documents first, then DICOM objects,
    /// each in key order.
    async fn next_objects(&self, cursor: &FixityCursor) -> Result<Vec<StoredObject>, FixityError> {
        let index = &self.fixity.index;
        let all = FixityScope::default();
        Ok(if cursor.phase == "documents" {
            index
                .document_objects(&all)
                .await?
                .into_iter()
                .filter(|o| o.key > cursor.after_key)
                .take(STEP)
                .collect()
        } else {
            index
                .dicom_objects_after(&cursor.after_key, &all, STEP as i64)
                .await?
        })
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2)
}
