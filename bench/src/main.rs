//! `notify-bench`: drives signed payment notifications at a running `paydesk` over loopback
//! and checks in its database that each order was applied exactly once (docs/benchmarks.md,
//! `scripts/bench-notify.sh`).
//!
//! Scenarios, each on its own freshly created orders:
//! - `distinct`: one notification per order, `--connections` at a time, as fast as possible;
//! - `dup×K`: every notification sent `--dup-copies` times back to back, so the copies of one
//!   notification are in flight together on different connections;
//! - `rate`: distinct notifications at a fixed `--rate` per second (open loop), latency
//!   measured from each one's scheduled send time.
//!
//! Prints one markdown table row per scenario on stdout; progress goes to stderr. Exits
//! non-zero if any reply is not SUCCESS or the database check fails.
//!
//! `--prepare DIR` creates the orders and notifications before the server starts, and
//! `--prepared DIR` sends them afterwards (prepared.rs); `--check-wrk` checks the orders
//! `wrk` paid with `scripts/wrk-notify.lua` (`scripts/bench-notify.sh`).
//!
//! `--abuse` runs the callback flood instead (abuse.rs, `scripts/abuse.sh`).

mod abuse;
mod load;
mod prepared;
mod seed;
mod verify;

use std::net::ToSocketAddrs as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context as _};
use bytes::Bytes;
use clap::Parser;
use paydesk_core::db::PoolSizes;
use paydesk_core::Db;
use wxpay::ApiKey;

use crate::load::{Measured, Target};
use crate::seed::Merchant;

#[derive(Parser, Debug)]
#[command(about = "Payment-notification load generator for paydesk")]
struct Args {
    /// The server's base URL (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// The server's database (to create orders and to check the result).
    #[arg(long, env = "PAYDESK_DATABASE_URL")]
    database_url: String,
    /// The merchant's appid, as the server is configured.
    #[arg(long, env = "PAYDESK_WXPAY__APPID")]
    appid: String,
    /// The merchant's mch_id.
    #[arg(long, env = "PAYDESK_WXPAY__MCH_ID")]
    mch_id: String,
    /// The API v2 key the notifications are signed with.
    #[arg(long, env = "PAYDESK_WXPAY__API_KEY")]
    api_key: String,
    /// Names the database in the output table.
    #[arg(long, default_value = "sqlite")]
    label: String,
    /// Concurrent connections for the closed-loop scenarios.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Orders in the `distinct` scenario.
    #[arg(long, default_value_t = 40_000)]
    orders: usize,
    /// Orders in the duplicate-heavy scenario.
    #[arg(long, default_value_t = 5_000)]
    dup_orders: usize,
    /// How many times each notification is sent in the duplicate-heavy scenario.
    #[arg(long, default_value_t = 5)]
    dup_copies: usize,
    /// Notifications per second in the fixed-rate scenario.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// How long the fixed-rate scenario lasts.
    #[arg(long, default_value_t = 10)]
    rate_seconds: usize,
    /// Connections for the fixed-rate scenario (enough that none waits at this rate).
    #[arg(long, default_value_t = 32)]
    rate_connections: usize,
    /// Orders sent first, not reported (warms the server's caches and connections).
    #[arg(long, default_value_t = 3_000)]
    warmup: usize,
    /// Writes every open-loop request to this CSV file (out_trade_no, due offset in µs,
    /// latency in µs, how late it was sent in µs), to line latencies up with the server's.
    #[arg(long)]
    latencies: Option<std::path::PathBuf>,
    /// Tokio worker threads of the load generator (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Run the callback flood (abuse.rs) instead of the scenarios: junk at full speed while
    /// valid notifications arrive at `--rate` per second.
    #[arg(long)]
    abuse: bool,
    /// How long the flood lasts, in seconds.
    #[arg(long, default_value_t = 60)]
    abuse_seconds: u64,
    /// Connections posting junk as fast as the server answers.
    #[arg(long, default_value_t = 32)]
    junk_connections: usize,
    /// The server's process id, to sample its resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's `/metrics` token: with it each scenario reports the SQLite committer's
    /// log pages written and file pages read per notification, and notifications per commit.
    #[arg(long, env = "PAYDESK_METRICS_TOKEN")]
    metrics_token: Option<String>,
    /// Create every scenario's orders and signed notifications now, write them to this
    /// folder (prepared.rs) and exit without sending: for a server started afterwards.
    #[arg(long, value_name = "DIR", conflicts_with = "prepared")]
    prepare: Option<std::path::PathBuf>,
    /// Send the orders and notifications `--prepare` wrote to this folder instead of
    /// creating them now.
    #[arg(long, value_name = "DIR")]
    prepared: Option<std::path::PathBuf>,
    /// With `--prepare`: also this many orders (plus one per `--connections` to spare) for
    /// `wrk` (scripts/wrk-notify.lua), scenario tag `K`.
    #[arg(long, default_value_t = 0)]
    wrk_orders: usize,
    /// With `--prepared`: only check the `wrk` scenario, which stopped after this many
    /// SUCCESS replies on `--connections` connections.
    #[arg(long, value_name = "ANSWERED", requires = "prepared")]
    check_wrk: Option<usize>,
}

/// The `wrk` scenario's tag (`--wrk-orders`).
const WRK_TAG: char = 'K';

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(bench(args))
}

struct Scenario {
    name: String,
    tag: char,
    orders: usize,
    copies: usize,
    rate: Option<f64>,
    connections: usize,
    report: bool,
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let target = target(&args.url)?;
    let db = Db::connect_beside_server(
        &args.database_url,
        PoolSizes {
            max_connections: 4,
            // Orders made before the server starts need not survive a power cut.
            unsynced_bulk_load: args.prepare.is_some(),
            ..PoolSizes::default()
        },
    )
    .await
    .context("connecting to the server's database")?;
    let merchant = Merchant {
        appid: args.appid.clone(),
        mch_id: args.mch_id.clone(),
        api_key: ApiKey::new(args.api_key.clone()),
    };
    // Seconds since the epoch, in base 36: out_trade_no and transaction_id never repeat
    // across runs against the same database.
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    if args.abuse {
        let options = abuse::Abuse {
            label: args.label.clone(),
            seconds: args.abuse_seconds,
            rate: args.rate,
            rate_connections: args.rate_connections,
            junk_connections: args.junk_connections,
            server_pid: args.server_pid,
            database_url: args.database_url.clone(),
        };
        let prefix = format!("B{}V", base36(run));
        let ok = abuse::run(&db, &target, &merchant, run, &prefix, &options).await?;
        db.close().await;
        ensure!(ok, "the flood found failures (see above)");
        return Ok(());
    }
    let scenarios = [
        Scenario {
            name: "warm-up".into(),
            tag: 'W',
            orders: args.warmup,
            copies: 1,
            rate: None,
            connections: args.connections,
            report: false,
        },
        Scenario {
            name: format!("distinct, C={}", args.connections),
            tag: 'A',
            orders: args.orders,
            copies: 1,
            rate: None,
            connections: args.connections,
            report: true,
        },
        Scenario {
            name: format!("dup ×{}, C={}", args.dup_copies, args.connections),
            tag: 'B',
            orders: args.dup_orders,
            copies: args.dup_copies.max(1),
            rate: None,
            connections: args.connections,
            report: true,
        },
        Scenario {
            name: format!("{}/s open loop", args.rate),
            tag: 'C',
            orders: (args.rate * args.rate_seconds as f64) as usize,
            copies: 1,
            rate: Some(args.rate),
            connections: args.rate_connections,
            report: true,
        },
    ];

    if let Some(dir) = &args.prepare {
        let wrk = (args.wrk_orders > 0).then(|| (WRK_TAG, args.wrk_orders + args.connections));
        let tags = scenarios
            .iter()
            .filter(|s| s.orders > 0)
            .map(|s| (s.tag, s.orders))
            .chain(wrk);
        for (tag, orders) in tags {
            let prefix = format!("B{}{}", base36(run), tag);
            let started = std::time::Instant::now();
            let bodies =
                seed::orders_and_bodies(&db, &merchant, &prefix, run, tag as u8 % 100, orders)
                    .await?;
            prepared::write(dir, tag, &prefix, &bodies)?;
            eprintln!(
                "notify-bench: prepared {orders} orders {prefix}… in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        db.close().await;
        return Ok(());
    }
    if let (Some(dir), Some(answered)) = (&args.prepared, args.check_wrk) {
        let (prefix, _) = prepared::read(dir, WRK_TAG)?;
        let paid =
            prepared::exactly_once_open_ended(&db, &prefix, answered, args.connections).await;
        db.close().await;
        let paid = paid?;
        eprintln!(
            "notify-bench: wrk — database check passed ({answered} answered, {paid} orders paid, each once)"
        );
        return Ok(());
    }

    let mut failed = false;
    for s in &scenarios {
        if s.orders == 0 {
            continue;
        }
        let (prefix, bodies) = match &args.prepared {
            Some(dir) => {
                let (prefix, bodies) = prepared::read(dir, s.tag)?;
                ensure!(
                    bodies.len() == s.orders,
                    "{}: {} prepared notifications for {} orders (prepare and run with the same flags)",
                    s.name,
                    bodies.len(),
                    s.orders
                );
                (prefix, bodies)
            }
            None => {
                let prefix = format!("B{}{}", base36(run), s.tag);
                eprintln!("notify-bench: {} — creating {} orders", s.name, s.orders);
                let bodies = seed::orders_and_bodies(
                    &db,
                    &merchant,
                    &prefix,
                    run,
                    s.tag as u8 % 100,
                    s.orders,
                )
                .await?;
                (prefix, bodies)
            }
        };
        let bodies: Vec<Bytes> = bodies
            .into_iter()
            .flat_map(|b| std::iter::repeat_n(b, s.copies))
            .collect();
        eprintln!(
            "notify-bench: {} — sending {} notifications",
            s.name,
            bodies.len()
        );
        let bodies = Arc::new(bodies);
        let counters_before = committer_counters(&target, args.metrics_token.as_deref());
        let m = match s.rate {
            Some(rate) => load::open(&target, bodies, s.connections, rate).await?,
            None => load::closed(&target, bodies, s.connections).await?,
        };
        let pages = match (
            counters_before,
            committer_counters(&target, args.metrics_token.as_deref()),
        ) {
            (Some(a), Some(b)) if m.sent > 0 => {
                let n = m.sent as f64;
                let commits = (b.commits - a.commits).max(1) as f64;
                format!(
                    "{:.1} / {:.2} / {:.1}",
                    (b.pages_written - a.pages_written) as f64 / n,
                    (b.pages_read - a.pages_read) as f64 / n,
                    n / commits
                )
            }
            _ => "–".to_owned(),
        };
        if let (Some(path), Some(rate)) = (&args.latencies, s.rate) {
            write_latencies(path, &prefix, rate, &m)?;
        }
        let check = verify::exactly_once(&db, &prefix, s.orders, s.copies, false).await;
        if s.report {
            println!("{}", row(&args.label, &s.name, &m, &pages));
        }
        eprintln!(
            "notify-bench: {} — {} sent in {:.2}s, {:.0}/s, p50 {:.3} ms, p99 {:.3} ms, {} not SUCCESS{}",
            s.name,
            m.sent,
            m.elapsed.as_secs_f64(),
            m.throughput(),
            m.quantile_ms(0.5),
            m.quantile_ms(0.99),
            m.failures,
            wal_size(&args.database_url)
                .map(|bytes| format!(", WAL file {:.1} MiB", bytes as f64 / 1_048_576.0))
                .unwrap_or_default()
        );
        if m.failures > 0 {
            eprintln!(
                "notify-bench: FAILED: {} replies were not SUCCESS",
                m.failures
            );
            failed = true;
        }
        match check {
            Ok(()) => eprintln!("notify-bench: {} — database check passed", s.name),
            Err(e) => {
                eprintln!("notify-bench: FAILED: database check: {e:#}");
                failed = true;
            }
        }
    }
    db.close().await;
    ensure!(!failed, "the benchmark found failures (see above)");
    Ok(())
}

/// SQLite: the size of the server's write-ahead log file (it should stay bounded however
/// long notifications keep coming; core/src/wal.rs).
fn wal_size(database_url: &str) -> Option<u64> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next()?;
    std::fs::metadata(format!("{file}-wal"))
        .ok()
        .map(|m| m.len())
}

fn write_latencies(
    path: &std::path::Path,
    prefix: &str,
    rate: f64,
    m: &Measured,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(out, "out_trade_no,due_us,latency_us,late_us")?;
    for r in &m.requests {
        let due = (r.index as f64 * 1e6 / rate) as u64;
        let no = seed::out_trade_no(prefix, r.index);
        writeln!(out, "{no},{due},{},{}", r.latency_us, r.late_us)?;
    }
    out.flush()?;
    Ok(())
}

fn row(label: &str, scenario: &str, m: &Measured, pages: &str) -> String {
    let late = match m.late_quantiles_ms(&[0.5, 0.99]) {
        Some(q) => format!("{:.3} / {:.3}", q[0], q[1]),
        None => "–".to_owned(),
    };
    format!(
        "| {label} | {scenario} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {late} | {pages} |",
        m.sent,
        m.throughput(),
        m.quantile_ms(0.5),
        m.quantile_ms(0.9),
        m.quantile_ms(0.99),
        m.quantile_ms(1.0),
    )
}

/// The SQLite notification committer's counters from the server's `/metrics`.
#[derive(Clone, Copy)]
struct Counters {
    commits: u64,
    pages_written: u64,
    pages_read: u64,
}

/// Reads [`Counters`] from `/metrics` (outside what is measured; `None` without a token,
/// on PostgreSQL, or when the server does not answer).
fn committer_counters(target: &Target, token: Option<&str>) -> Option<Counters> {
    use std::io::{Read as _, Write as _};
    let token = token?;
    let mut stream = std::net::TcpStream::connect(target.addr).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n",
        target.host
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    Some(Counters {
        commits: value("paydesk_sqlite_committer_commits_total")?,
        pages_written: value("paydesk_sqlite_committer_pages_written_total")?,
        pages_read: value("paydesk_sqlite_committer_pages_read_total")?,
    })
}

fn target(url: &str) -> anyhow::Result<Target> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must be http://host:port")?;
    let host = rest.trim_end_matches('/').to_owned();
    let addr = host
        .to_socket_addrs()?
        .next()
        .context("--url names no address")?;
    Ok(Target {
        addr,
        host,
        path: "/wxpay/notify/payment".into(),
    })
}

fn base36(mut n: u64) -> String {
    let digits = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = Vec::new();
    while n > 0 {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}
