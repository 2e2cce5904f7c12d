//! Prometheus metrics (`GET /metrics`, text format): requests by route and
//! status, their latency, errors by protocol code, sync exchanges and
//! their bytes, and the webhook queue's depth. Counts only — no ids, no
//! personal data.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    errors: Family<Labels, Counter>,
    exchanges: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    webhook_queue: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sambung");
        let requests = Family::<Labels, Counter>::default();
        let latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let errors = Family::<Labels, Counter>::default();
        let (exchanges, bytes_in, bytes_out) =
            (Counter::default(), Counter::default(), Counter::default());
        let webhook_queue = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route",
            latency.clone(),
        );
        registry.register("errors", "Error answers by protocol code", errors.clone());
        registry.register(
            "sync_exchanges",
            "Sync exchanges answered",
            exchanges.clone(),
        );
        registry.register(
            "sync_bytes_received",
            "Sync request bytes (compressed)",
            bytes_in.clone(),
        );
        registry.register(
            "sync_bytes_sent",
            "Sync response bytes (compressed)",
            bytes_out.clone(),
        );
        registry.register(
            "webhook_queue_depth",
            "Webhook deliveries still to make",
            webhook_queue.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            errors,
            exchanges,
            bytes_in,
            bytes_out,
            webhook_queue,
        }
    }

    /// One answered request.
    pub fn request(&self, route: &str, status: u16, seconds: f64, error_code: Option<&str>) {
        self.requests
            .get_or_create(&vec![
                ("route".into(), route.into()),
                ("status".into(), status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("route".into(), route.into())])
            .observe(seconds);
        if let Some(code) = error_code {
            self.errors
                .get_or_create(&vec![("code".into(), code.into())])
                .inc();
        }
    }

    /// One sync exchange and its sizes.
    pub fn exchange(&self, bytes_in: usize, bytes_out: usize) {
        self.exchanges.inc();
        self.bytes_in.inc_by(bytes_in as u64);
        self.bytes_out.inc_by(bytes_out as u64);
    }

    /// The text exposition, with the queue depth read now.
    pub fn render(&self, webhook_queue: u64) -> String {
        self.webhook_queue.set(webhook_queue as i64);
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
