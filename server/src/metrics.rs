//! Prometheus text metrics for `/metrics`: HTTP requests by matched route, method and
//! status class, with a latency histogram. Small and dependency-free; each request takes one
//! short mutex hold.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// The process's metrics registry.
pub struct Metrics {
    started: Instant,
    http: Mutex<BTreeMap<(String, String, &'static str), Series>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            http: Mutex::new(BTreeMap::new()),
        }
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    /// Records one finished HTTP request.
    pub fn observe_http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut map = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let series = map
            .entry((route.to_owned(), method.to_owned(), status_class(status)))
            .or_default();
        series.count += 1;
        series.sum_seconds += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                series.buckets[i] += 1;
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP paydesk_uptime_seconds Seconds since this process started."
        );
        let _ = writeln!(out, "# TYPE paydesk_uptime_seconds gauge");
        let _ = writeln!(
            out,
            "paydesk_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        let _ = writeln!(out, "# HELP paydesk_http_requests_total HTTP requests by matched route, method and status class.");
        let _ = writeln!(out, "# TYPE paydesk_http_requests_total counter");
        let map = self.http.lock().unwrap_or_else(|p| p.into_inner());
        for ((route, method, class), s) in map.iter() {
            let _ = writeln!(
                out,
                "paydesk_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                escape(route),
                method,
                class,
                s.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP paydesk_http_request_duration_seconds HTTP request latency."
        );
        let _ = writeln!(
            out,
            "# TYPE paydesk_http_request_duration_seconds histogram"
        );
        for ((route, method, class), s) in map.iter() {
            let labels = format!(
                "route=\"{}\",method=\"{}\",status=\"{}\"",
                escape(route),
                method,
                class
            );
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "paydesk_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "paydesk_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "paydesk_http_request_duration_seconds_sum{{{labels}}} {:.6}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "paydesk_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware that records every request under its matched route (never the raw path, so
/// ids in URLs do not explode the label set).
pub async fn track(
    State(metrics): State<std::sync::Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    metrics.observe_http(&route, &method, res.status().as_u16(), start.elapsed());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_http("/healthz", "GET", 200, Duration::from_millis(3));
        m.observe_http("/healthz", "GET", 200, Duration::from_millis(30));
        let text = m.render();
        assert!(
            text.contains(
                "paydesk_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"2xx\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.05\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
    }
}
