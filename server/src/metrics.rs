//! Prometheus metrics (`GET /metrics`): requests by route and status,
//! their latency, errors by protocol code, sync exchanges and their bytes,
//! and the webhook queue's depth. Counts only — no ids, no personal data.
//!
//! Two formats of the same families, chosen by the scraper's `Accept`
//! ([`Format::negotiate`]): OpenMetrics 1.0 for a scraper that asks for it
//! (Prometheus does), the Prometheus text format 0.0.4 otherwise (`curl`,
//! `promtool check metrics`, which parses 0.0.4 only). Names follow the
//! Prometheus conventions: a help text on every family, the base unit last
//! before a counter's `_total` (`sambung_sync_received_bytes_total`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

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
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer, by route",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register("errors", "Error answers by protocol code", errors.clone());
        registry.register(
            "sync_exchanges",
            "Sync exchanges answered",
            exchanges.clone(),
        );
        registry.register_with_unit(
            "sync_received",
            "Sync request bytes (compressed)",
            Unit::Bytes,
            bytes_in.clone(),
        );
        registry.register_with_unit(
            "sync_sent",
            "Sync response bytes (compressed)",
            Unit::Bytes,
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

    /// The exposition in `format`, with the queue depth read now.
    pub fn render(&self, webhook_queue: u64, format: Format) -> String {
        self.webhook_queue.set(webhook_queue as i64);
        let mut out = String::new();
        let encoded = match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        if encoded.is_err() {
            out.clear();
        }
        out
    }
}

/// An exposition format of `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text: `# UNIT` lines, counters' families named
    /// without `_total`, `# EOF` at the end.
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Text,
}

impl Format {
    /// The format for a request's `Accept` header: OpenMetrics when it
    /// names `application/openmetrics-text` (any version, with a weight
    /// above zero), the text format otherwise — also with no header.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let asks_openmetrics = accept.unwrap_or("").split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
        if asks_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metrics {
        let m = Metrics::new();
        m.request("/v1/sync", 200, 0.02, None);
        m.request("/v1/sync", 404, 0.01, Some("not_found"));
        m.exchange(300, 40);
        m
    }

    #[test]
    fn the_text_format_names_each_family_by_its_samples_with_help() {
        let text = sample().render(3, Format::Text);
        for family in [
            "sambung_http_requests_total counter",
            "sambung_http_request_duration_seconds histogram",
            "sambung_errors_total counter",
            "sambung_sync_exchanges_total counter",
            "sambung_sync_received_bytes_total counter",
            "sambung_sync_sent_bytes_total counter",
            "sambung_webhook_queue_depth gauge",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family}\n")),
                "{family}:\n{text}"
            );
            let name = family.split(' ').next().unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        }
        assert_eq!(text.matches("# TYPE ").count(), 7, "{text}");
        assert_eq!(text.matches("# HELP ").count(), 7, "{text}");
        assert!(text.contains("sambung_sync_received_bytes_total 300\n"));
        assert!(text.contains("sambung_sync_sent_bytes_total 40\n"));
        assert!(text.contains("sambung_webhook_queue_depth 3\n"));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
    }

    #[test]
    fn openmetrics_names_families_with_their_units_and_ends_with_eof() {
        let text = sample().render(0, Format::OpenMetrics);
        for unit in [
            "# UNIT sambung_http_request_duration_seconds seconds\n",
            "# UNIT sambung_sync_received_bytes bytes\n",
            "# UNIT sambung_sync_sent_bytes bytes\n",
        ] {
            assert!(text.contains(unit), "{unit}:\n{text}");
        }
        assert!(text.contains("# TYPE sambung_sync_received_bytes counter\n"));
        assert!(text.contains("sambung_sync_received_bytes_total 300\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn openmetrics_only_for_a_scraper_that_asks_for_it() {
        // What Prometheus sends (2.x and 3.x).
        for accept in [
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            "Application/OpenMetrics-Text",
        ] {
            assert_eq!(
                Format::negotiate(Some(accept)),
                Format::OpenMetrics,
                "{accept}"
            );
        }
        for accept in [
            None,
            Some("*/*"),
            Some("text/plain"),
            Some("text/plain;version=0.0.4, application/openmetrics-text;q=0"),
            Some("application/openmetrics-textual"),
        ] {
            assert_eq!(Format::negotiate(accept), Format::Text, "{accept:?}");
        }
        assert_eq!(
            Format::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(
            Format::Text.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }
}
