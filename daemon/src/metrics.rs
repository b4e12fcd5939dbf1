//! Prometheus metrics of both roles, kept by the `prometheus-client` crate (the Prometheus
//! project's own) and served by axum as OpenMetrics text on `GET /metrics` when `[metrics] listen`
//! is set: counters, and latency histograms where operators wait on something (an ingest request,
//! an anchor's confirmation, a gateway's delivery).

use crate::http::HttpConfig;
use axum::Router;
use axum::http::header;
use axum::routing::get;
use eyre::Result;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::histogram::Histogram;

/// `[metrics]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address for the Prometheus endpoint (`GET /metrics`), e.g. `127.0.0.1:9187`. Default: off.
    pub listen: Option<String>,
}

/// A latency histogram in seconds: buckets from 1 ms doubling to about 65 s.
pub fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Latency histograms by label set (e.g. route and status).
pub type LatencyFamily = Family<Vec<(&'static str, String)>, Histogram, fn() -> Histogram>;

/// A new [`LatencyFamily`].
pub fn latency_family() -> LatencyFamily {
    Family::new_with_constructor(latency)
}

/// A role's metrics: each registers its own.
pub trait MetricSet: Send + Sync + 'static {
    /// Adds every metric of the set to `registry` (metrics are shared handles: the set keeps
    /// updating what the registry shows).
    fn register(&self, registry: &mut Registry);
}

/// The OpenMetrics text of `set`.
pub fn render(set: &impl MetricSet) -> String {
    let mut registry = Registry::default();
    set.register(&mut registry);
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

/// The `GET /metrics` route over `set`.
pub fn router(set: Arc<impl MetricSet>) -> Router {
    let mut registry = Registry::default();
    set.register(&mut registry);
    let registry = Arc::new(registry);
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut out = String::new();
                encode(&mut out, &registry).expect("writing to a String cannot fail");
                ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
            }
        }),
    )
}

/// Serves [`router`] on `listen` (if set) in the background, within the limits of `http`.
pub async fn serve(listen: &Option<String>, set: Arc<impl MetricSet>, http: &HttpConfig) -> Result<()> {
    let Some(addr) = listen else { return Ok(()) };
    let listener = crate::http::bind(addr, "metrics").await?;
    let (app, http) = (router(set), http.clone());
    tokio::spawn(async move { crate::http::serve(listener, app, &http, None, std::future::pending()).await });
    Ok(())
}

/// The service role's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Rows cut into batches.
    pub rows_batched: Counter,
    /// Batches cut.
    pub batches_cut: Counter,
    /// Anchors confirmed (receipts written).
    pub anchors_confirmed: Counter,
    /// Failed cycles (retried).
    pub errors: Counter,
    /// Seconds from sending an anchoring transaction to its receipts written.
    pub anchor_confirmation: Histogram,
    /// Seconds per ingest request, by route and status.
    pub ingest_requests: LatencyFamily,
    /// Federated-learning models pinned (`[learning]`).
    pub models_pinned: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            rows_batched: Counter::default(),
            batches_cut: Counter::default(),
            anchors_confirmed: Counter::default(),
            errors: Counter::default(),
            anchor_confirmation: latency(),
            ingest_requests: latency_family(),
            models_pinned: Counter::default(),
        }
    }
}

impl Metrics {
    /// Records one ingest request.
    pub fn ingest_request(&self, route: &str, status: u16, took: Duration) {
        let labels = vec![("route", route.to_string()), ("status", status.to_string())];
        self.ingest_requests.get_or_create(&labels).observe(took.as_secs_f64());
    }
}

impl MetricSet for Metrics {
    fn register(&self, r: &mut Registry) {
        r.register("iotegrity_rows_batched", "Rows cut into batches", self.rows_batched.clone());
        r.register("iotegrity_batches_cut", "Batches cut", self.batches_cut.clone());
        r.register(
            "iotegrity_anchors_confirmed",
            "Anchoring transactions confirmed with receipts written",
            self.anchors_confirmed.clone(),
        );
        r.register("iotegrity_cycle_errors", "Watch cycles that failed and were retried", self.errors.clone());
        r.register(
            "iotegrity_models_pinned",
            "Federated-learning models pinned ([learning]): initial, local and global",
            self.models_pinned.clone(),
        );
        r.register(
            "iotegrity_anchor_confirmation_seconds",
            "Seconds from sending an anchoring transaction to its receipts written",
            self.anchor_confirmation.clone(),
        );
        r.register(
            "iotegrity_ingest_request_seconds",
            "Seconds per ingest API request, by route and status",
            self.ingest_requests.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.rows_batched.inc_by(42);
        m.errors.inc();
        m.anchor_confirmation.observe(0.003);
        m.ingest_request("/v1/readings", 201, Duration::from_millis(2));
        let text = render(&m);
        assert!(text.contains("iotegrity_rows_batched_total 42\n"), "{text}");
        assert!(text.contains("iotegrity_cycle_errors_total 1\n"), "{text}");
        assert!(text.contains("# TYPE iotegrity_anchors_confirmed counter"), "{text}");
        assert!(text.contains("iotegrity_anchor_confirmation_seconds_count 1\n"), "{text}");
        assert!(text.contains("iotegrity_anchor_confirmation_seconds_bucket{le=\"0.004\"} 1\n"), "{text}");
        assert!(
            text.contains("iotegrity_ingest_request_seconds_count{route=\"/v1/readings\",status=\"201\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
