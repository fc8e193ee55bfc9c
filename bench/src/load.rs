//! Driving the server: `C` keep-alive HTTP/1.1 connections (hyper's low-level client, one
//! task per connection, no pool in between) share one list of bodies.
//!
//! Closed loop ([`closed`]): each connection sends its next body as soon as the previous
//! answer is in; this measures the most the server can take. Open loop ([`open`]): body `i`
//! is due at `start + i / rate` and its latency is measured from that due time, not from
//! when a connection got round to sending it, so a server stall shows up in the latencies
//! instead of quietly lowering the offered rate (coordinated omission, as wrk2 avoids it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where to send.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

/// What one scenario measured.
pub struct Measured {
    /// Requests answered.
    pub sent: usize,
    /// Answers other than the exact SUCCESS reply (or transport errors).
    pub failures: usize,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Every latency in microseconds, sorted.
    pub latencies_us: Vec<u64>,
}

impl Measured {
    pub fn throughput(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q`-quantile latency in milliseconds (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.latencies_us.len() as f64).ceil() as usize).max(1);
        self.latencies_us[rank.min(self.latencies_us.len()) - 1] as f64 / 1000.0
    }
}

/// Sends every body once, `connections` at a time, as fast as answers come back.
pub async fn closed(
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
    connections: usize,
) -> anyhow::Result<Measured> {
    run(target, bodies, connections, None).await
}

/// Sends body `i` at `start + i / rate` over `connections` connections.
pub async fn open(
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
    connections: usize,
    rate: f64,
) -> anyhow::Result<Measured> {
    run(target, bodies, connections, Some(rate)).await
}

struct WorkerResult {
    latencies_us: Vec<u64>,
    failures: usize,
}

async fn run(
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
    connections: usize,
    rate: Option<f64>,
) -> anyhow::Result<Measured> {
    // Connect everything first: the handshakes are not part of what is measured.
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        senders.push(connect(target).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(20);
    let workers: Vec<_> = senders
        .into_iter()
        .map(|sender| {
            let bodies = bodies.clone();
            let next = next.clone();
            let target = target.clone();
            tokio::spawn(worker(target, sender, bodies, next, start, rate))
        })
        .collect();
    let mut latencies_us = Vec::with_capacity(bodies.len());
    let mut failures = 0;
    for w in workers {
        let r = w.await.context("a connection task panicked")??;
        latencies_us.extend(r.latencies_us);
        failures += r.failures;
    }
    let elapsed = start.elapsed();
    latencies_us.sort_unstable();
    Ok(Measured {
        sent: latencies_us.len(),
        failures,
        elapsed,
        latencies_us,
    })
}

static FIRST_FAILURE_SHOWN: AtomicBool = AtomicBool::new(false);

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(target: &Target) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("connecting to {}", target.addr))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("notify-bench: connection error: {e}");
        }
    });
    Ok(sender)
}

async fn worker(
    target: Target,
    mut sender: Sender,
    bodies: Arc<Vec<Bytes>>,
    next: Arc<AtomicUsize>,
    start: Instant,
    rate: Option<f64>,
) -> anyhow::Result<WorkerResult> {
    let mut latencies_us = Vec::with_capacity(bodies.len() / 8 + 16);
    let mut failures = 0;
    tokio::time::sleep_until(start.into()).await;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(i) else { break };
        let due = match rate {
            Some(rate) => {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        let ok = match send(&target, &mut sender, body.clone()).await {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("notify-bench: request failed ({e}); reconnecting");
                sender = connect(&target).await?;
                false
            }
        };
        latencies_us.push(due.elapsed().as_micros() as u64);
        if !ok {
            failures += 1;
        }
    }
    Ok(WorkerResult {
        latencies_us,
        failures,
    })
}

/// One request; `Ok(true)` when the answer is exactly the SUCCESS reply (spec §8.8).
async fn send(target: &Target, sender: &mut Sender, body: Bytes) -> anyhow::Result<bool> {
    sender.ready().await?;
    let req = Request::post(target.path.as_str())
        .header(HOST, target.host.as_str())
        .header(CONTENT_TYPE, "text/xml")
        .body(Full::new(body))?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    let reply = res.into_body().collect().await?.to_bytes();
    let ok = status.is_success() && reply == wxpay::notify::REPLY_SUCCESS.as_bytes();
    if !ok && !FIRST_FAILURE_SHOWN.swap(true, Ordering::Relaxed) {
        eprintln!(
            "notify-bench: first reply that is not SUCCESS: HTTP {status} {}",
            String::from_utf8_lossy(&reply)
        );
    }
    Ok(ok)
}
