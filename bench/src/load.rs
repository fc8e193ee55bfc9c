//! Driving the server over keep-alive HTTP/1.1 connections that share one list of bodies.
//!
//! Closed loop ([`closed`]): `C` connections (hyper's low-level client, one task per
//! connection, no pool in between), each sending its next body as soon as the previous
//! answer is in; this measures the most the server can take.
//!
//! Open loop ([`open`]): body `i` is due at `start + i / rate` and its latency is measured
//! from that due time, not from when a connection got round to sending it, so a server
//! stall shows up in the latencies instead of quietly lowering the offered rate
//! (coordinated omission, as wrk2 avoids it). Because every microsecond the generator is
//! late is charged to the server, the sends are paced by OS threads sleeping with
//! nanosleep (Linux's default timer slack: up to 50 µs late), each writing on its own
//! blocking socket. tokio's timer rounds every deadline up to the next millisecond tick,
//! which made the first version of this benchmark send 1.4 ms late at the median
//! (docs/benchmarks.md). How late each send actually left is measured and reported beside
//! the latencies.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
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
    /// Open loop only: every request, in index order.
    pub requests: Vec<Sent>,
}

/// One open-loop request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sent {
    /// Its body's index (which also gives its due time and out_trade_no).
    pub index: usize,
    /// From its due time to its answer, in microseconds.
    pub latency_us: u64,
    /// How long after its due time it was written, in microseconds: the generator's own
    /// error, included in the latency.
    pub late_us: u64,
}

impl Measured {
    pub fn throughput(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q`-quantile latency in milliseconds (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.latencies_us, q)
    }

    /// Open loop: the `q`-quantiles of how late requests were sent, in milliseconds; `None`
    /// for a closed loop.
    pub fn late_quantiles_ms(&self, qs: &[f64]) -> Option<Vec<f64>> {
        if self.requests.is_empty() {
            return None;
        }
        let mut late: Vec<u64> = self.requests.iter().map(|r| r.late_us).collect();
        late.sort_unstable();
        Some(qs.iter().map(|&q| quantile_ms(&late, q)).collect())
    }
}

/// The `q`-quantile of sorted microseconds, in milliseconds (nearest rank).
pub(crate) fn quantile_ms(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).max(1);
    sorted_us[rank.min(sorted_us.len()) - 1] as f64 / 1000.0
}

struct WorkerResult {
    /// Closed loop: every latency in microseconds.
    latencies_us: Vec<u64>,
    /// Open loop: every request.
    requests: Vec<Sent>,
    failures: usize,
}

/// Sends every body once, `connections` at a time, as fast as answers come back.
pub async fn closed(
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
    connections: usize,
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
            tokio::spawn(worker(target, sender, bodies, next, start))
        })
        .collect();
    let mut results = Vec::with_capacity(workers.len());
    for w in workers {
        results.push(w.await.context("a connection task panicked")??);
    }
    Ok(measured(results, start))
}

fn measured(results: Vec<WorkerResult>, start: Instant) -> Measured {
    let elapsed = start.elapsed();
    let mut m = Measured {
        sent: 0,
        failures: 0,
        elapsed,
        latencies_us: Vec::new(),
        requests: Vec::new(),
    };
    for r in results {
        m.latencies_us.extend(r.latencies_us);
        m.latencies_us
            .extend(r.requests.iter().map(|s| s.latency_us));
        m.requests.extend(r.requests);
        m.failures += r.failures;
    }
    m.sent = m.latencies_us.len();
    m.latencies_us.sort_unstable();
    m.requests.sort_unstable();
    m
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
) -> anyhow::Result<WorkerResult> {
    let mut latencies_us = Vec::with_capacity(bodies.len() / 8 + 16);
    let mut failures = 0;
    tokio::time::sleep_until(start.into()).await;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(i) else { break };
        let due = Instant::now();
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
        requests: Vec::new(),
        failures,
    })
}

/// Sends body `i` at `start + i / rate` over `connections` blocking connections, one OS
/// thread each; a thread takes the next body when it is free, sleeps until it is due and
/// sends it.
pub async fn open(
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
    connections: usize,
    rate: f64,
) -> anyhow::Result<Measured> {
    let target = target.clone();
    tokio::task::spawn_blocking(move || open_blocking(&target, bodies, connections, rate))
        .await
        .context("the open-loop driver panicked")?
}

fn open_blocking(
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
    connections: usize,
    rate: f64,
) -> anyhow::Result<Measured> {
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        streams.push(BlockingConnection::connect(target)?);
    }
    let next = AtomicUsize::new(0);
    let start = Instant::now() + Duration::from_millis(20);
    let results = std::thread::scope(|scope| {
        let threads: Vec<_> = streams
            .into_iter()
            .map(|conn| {
                let (bodies, next) = (&bodies, &next);
                scope.spawn(move || paced_worker(target, conn, bodies, next, start, rate))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| match t.join() {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("an open-loop thread panicked")),
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    Ok(measured(results, start))
}

fn paced_worker(
    target: &Target,
    mut conn: BlockingConnection,
    bodies: &[Bytes],
    next: &AtomicUsize,
    start: Instant,
    rate: f64,
) -> anyhow::Result<WorkerResult> {
    let mut r = WorkerResult {
        latencies_us: Vec::new(),
        requests: Vec::with_capacity(bodies.len() / 8 + 16),
        failures: 0,
    };
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(i) else { break };
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let late_us = due.elapsed().as_micros() as u64;
        let ok = match conn.send(body) {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("notify-bench: request failed ({e:#}); reconnecting");
                conn = BlockingConnection::connect(target)?;
                false
            }
        };
        r.requests.push(Sent {
            index: i,
            latency_us: due.elapsed().as_micros() as u64,
            late_us,
        });
        if !ok {
            r.failures += 1;
        }
    }
    Ok(r)
}

/// One keep-alive HTTP/1.1 connection on a blocking socket: the request written in one
/// call, the answer read by its Content-Length (what the server sends for these replies).
struct BlockingConnection {
    head: Vec<u8>,
    reader: BufReader<std::net::TcpStream>,
    line: String,
}

impl BlockingConnection {
    fn connect(target: &Target) -> anyhow::Result<BlockingConnection> {
        let stream = std::net::TcpStream::connect(target.addr)
            .with_context(|| format!("connecting to {}", target.addr))?;
        stream.set_nodelay(true)?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml\r\nContent-Length: ",
            target.path, target.host
        );
        Ok(BlockingConnection {
            head: head.into_bytes(),
            reader: BufReader::new(stream),
            line: String::new(),
        })
    }

    /// One request; `Ok(true)` when the answer is exactly the SUCCESS reply (docs/wechatpay-v2.md §8.8).
    fn send(&mut self, body: &[u8]) -> anyhow::Result<bool> {
        let mut request = Vec::with_capacity(self.head.len() + 16 + body.len());
        request.extend_from_slice(&self.head);
        request.extend_from_slice(format!("{}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request)?;

        self.line.clear();
        self.reader.read_line(&mut self.line)?;
        let status: u16 = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP status line: {:?}", self.line))?;
        let mut length = None;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                anyhow::bail!("the server closed the connection mid-answer");
            }
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>()?);
                }
            }
        }
        let mut reply = vec![0; length.context("an answer without Content-Length")?];
        self.reader.read_exact(&mut reply)?;
        Ok(is_success(status, &reply))
    }
}

/// One request; `Ok(true)` when the answer is exactly the SUCCESS reply (docs/wechatpay-v2.md §8.8).
async fn send(target: &Target, sender: &mut Sender, body: Bytes) -> anyhow::Result<bool> {
    let (status, reply) = exchange(target, sender, body).await?;
    Ok(is_success(status, &reply))
}

/// One request and its answer.
async fn exchange(
    target: &Target,
    sender: &mut Sender,
    body: Bytes,
) -> anyhow::Result<(u16, Bytes)> {
    sender.ready().await?;
    let req = Request::post(target.path.as_str())
        .header(HOST, target.host.as_str())
        .header(CONTENT_TYPE, "text/xml")
        .body(Full::new(body))?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let reply = res.into_body().collect().await?.to_bytes();
    Ok((status, reply))
}

/// What a flood sent.
pub struct Flooded {
    /// Requests answered.
    pub answered: usize,
    /// Requests that failed in transport (then the connection is made again).
    pub errors: usize,
}

/// A flood: `connections` connections, each posting the next of `bodies` (round and round)
/// as soon as the previous answer is in, until `until`. The answers are not judged.
pub async fn flood(
    target: &Target,
    bodies: Arc<Vec<Bytes>>,
    connections: usize,
    until: Instant,
) -> anyhow::Result<Flooded> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut sender = connect(target).await?;
        let (target, bodies, next) = (target.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut f = Flooded {
                answered: 0,
                errors: 0,
            };
            while Instant::now() < until {
                let i = next.fetch_add(1, Ordering::Relaxed) % bodies.len();
                match exchange(&target, &mut sender, bodies[i].clone()).await {
                    Ok(_) => f.answered += 1,
                    Err(_) => {
                        f.errors += 1;
                        sender = connect(&target).await?;
                    }
                }
            }
            anyhow::Ok(f)
        }));
    }
    let mut total = Flooded {
        answered: 0,
        errors: 0,
    };
    for t in tasks {
        let f = t.await.context("a flood task panicked")??;
        total.answered += f.answered;
        total.errors += f.errors;
    }
    Ok(total)
}

/// Whether an answer is exactly the SUCCESS reply (docs/wechatpay-v2.md §8.8); the first one that is not
/// is shown on stderr.
fn is_success(status: u16, reply: &[u8]) -> bool {
    let ok = (200..300).contains(&status) && reply == wxpay::notify::REPLY_SUCCESS.as_bytes();
    if !ok && !FIRST_FAILURE_SHOWN.swap(true, Ordering::Relaxed) {
        eprintln!(
            "notify-bench: first reply that is not SUCCESS: HTTP {status} {}",
            String::from_utf8_lossy(reply)
        );
    }
    ok
}
