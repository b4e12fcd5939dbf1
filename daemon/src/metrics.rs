//! Prometheus metrics of both roles, served as text on `GET /metrics` when `[metrics] listen` is
//! set. Counters only; no dependency beyond tokio.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// `[metrics]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address for the Prometheus text endpoint (`GET /metrics`), e.g. `127.0.0.1:9187`. Default: off.
    pub listen: Option<String>,
}

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A set of named counters that can be exposed.
pub trait CounterSet: Send + Sync + 'static {
    /// `(name, help, counter)` for each counter.
    fn counters(&self) -> Vec<(&'static str, &'static str, &Counter)>;
}

/// The Prometheus text exposition of a counter set.
pub fn render(set: &impl CounterSet) -> String {
    let mut out = String::new();
    for (name, help, c) in set.counters() {
        out += &format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", c.get());
    }
    out
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve<M: CounterSet>(set: std::sync::Arc<M>, listener: TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let set = set.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let ok = buf[..n].starts_with(b"GET /metrics");
            let (status, body) =
                if ok { ("200 OK", render(&*set)) } else { ("404 Not Found", "try GET /metrics\n".into()) };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

/// The service role's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Rows cut into batches.
    pub rows_batched: Counter,
    /// Batches cut.
    pub batches_cut: Counter,
    /// Anchors confirmed (receipts written).
    pub anchors_confirmed: Counter,
    /// Failed cycles (retried).
    pub errors: Counter,
}

impl CounterSet for Metrics {
    fn counters(&self) -> Vec<(&'static str, &'static str, &Counter)> {
        vec![
            ("iotegrity_rows_batched_total", "Rows cut into batches.", &self.rows_batched),
            ("iotegrity_batches_cut_total", "Batches cut.", &self.batches_cut),
            (
                "iotegrity_anchors_confirmed_total",
                "Anchoring transactions confirmed with receipts written.",
                &self.anchors_confirmed,
            ),
            ("iotegrity_cycle_errors_total", "Watch cycles that failed and were retried.", &self.errors),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = Metrics::default();
        m.rows_batched.add(42);
        m.errors.inc();
        let text = render(&m);
        assert!(text.contains("iotegrity_rows_batched_total 42\n"));
        assert!(text.contains("iotegrity_cycle_errors_total 1\n"));
        assert!(text.contains("# TYPE iotegrity_anchors_confirmed_total counter"));
    }
}
