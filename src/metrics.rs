//! Prometheus metrics: what an operator watches (associations, objects, bytes, failures, store
//! latency). Counting is lock-free; rendering happens only when `/metrics` is scraped.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

struct Inner {
    registry: Registry,
    associations: Family<Labels, Counter>,
    associations_active: Gauge,
    objects: Counter,
    bytes: Counter,
    failures: Family<Labels, Counter>,
    store_latency: Histogram,
    delivery_attempts: Family<Labels, Counter>,
    deliveries: Family<Labels, Gauge>,
    fixity_objects: Counter,
    fixity_bytes: Counter,
    fixity_failures: Gauge,
}

/// Handle to the service's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("telecardio");
        let associations = Family::<Labels, Counter>::default();
        registry.register(
            "dicom_associations",
            "DICOM associations by outcome",
            associations.clone(),
        );
        let associations_active = Gauge::default();
        registry.register(
            "dicom_associations_active",
            "DICOM associations open now",
            associations_active.clone(),
        );
        let objects = Counter::default();
        registry.register(
            "objects_received",
            "Objects stored and indexed",
            objects.clone(),
        );
        let bytes = Counter::default();
        registry.register("bytes_received", "Bytes of objects stored", bytes.clone());
        let failures = Family::<Labels, Counter>::default();
        registry.register(
            "ingest_failures",
            "Objects refused or failed, by cause",
            failures.clone(),
        );
        let store_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "store_write_seconds",
            "Time to make an object durable in the object store",
            store_latency.clone(),
        );
        let delivery_attempts = Family::<Labels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Report delivery attempts by channel and outcome (delivered, retry, failed)",
            delivery_attempts.clone(),
        );
        let deliveries = Family::<Labels, Gauge>::default();
        registry.register(
            "deliveries",
            "Report deliveries in the queue by channel and status; failed ones need an \
             administrator",
            deliveries.clone(),
        );
        let fixity_objects = Counter::default();
        registry.register(
            "fixity_objects_checked",
            "Stored objects read back and compared with their recorded SHA-256 by this node",
            fixity_objects.clone(),
        );
        let fixity_bytes = Counter::default();
        registry.register(
            "fixity_bytes_checked",
            "Bytes read back by fixity checks on this node",
            fixity_bytes.clone(),
        );
        let fixity_failures = Gauge::default();
        registry.register(
            "fixity_failures",
            "Stored objects whose last fixity check found them altered, missing or unreadable",
            fixity_failures.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            associations,
            associations_active,
            objects,
            bytes,
            failures,
            store_latency,
            delivery_attempts,
            deliveries,
            fixity_objects,
            fixity_bytes,
            fixity_failures,
        }))
    }

    pub fn association(&self, outcome: &'static str) {
        self.0
            .associations
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// Counts an open association until the returned guard is dropped.
    pub fn association_open(&self) -> ActiveGuard {
        self.0.associations_active.inc();
        ActiveGuard(self.clone())
    }

    pub fn object_stored(&self, bytes: u64) {
        self.0.objects.inc();
        self.0.bytes.inc_by(bytes);
    }

    pub fn ingest_failed(&self, cause: &'static str) {
        self.0
            .failures
            .get_or_create(&vec![("cause", cause.to_owned())])
            .inc();
    }

    pub fn store_latency(&self, elapsed: Duration) {
        self.0.store_latency.observe(elapsed.as_secs_f64());
    }

    pub fn delivery_attempt(&self, channel: &str, outcome: &'static str) {
        self.0
            .delivery_attempts
            .get_or_create(&vec![
                ("channel", channel.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// The queue as last counted: deliveries by channel and status.
    pub fn deliveries(&self, counts: &[(String, String, i64)]) {
        for (channel, status, n) in counts {
            self.0
                .deliveries
                .get_or_create(&vec![
                    ("channel", channel.clone()),
                    ("status", status.clone()),
                ])
                .set(*n);
        }
    }

    pub fn fixity_checked(&self, objects: u64, bytes: u64) {
        self.0.fixity_objects.inc_by(objects);
        self.0.fixity_bytes.inc_by(bytes);
    }

    /// Objects failed as last counted in the index.
    pub fn fixity_failures(&self, n: i64) {
        self.0.fixity_failures.set(n);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.0.registry);
        out
    }
}

pub struct ActiveGuard(Metrics);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0 .0.associations_active.dec();
    }
}
