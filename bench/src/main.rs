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
//! `--abuse` runs the callback flood instead (abuse.rs, `scripts/abuse.sh`).

mod abuse;
mod load;
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
}

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

    let mut failed = false;
    for s in &scenarios {
        if s.orders == 0 {
            continue;
        }
        let prefix = format!("B{}{}", base36(run), s.tag);
        eprintln!("notify-bench: {} — creating {} orders", s.name, s.orders);
        let bodies =
            seed::orders_and_bodies(&db, &merchant, &prefix, run, s.tag as u8 % 100, s.orders)
                .await?;
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
        let m = match s.rate {
            Some(rate) => load::open(&target, bodies, s.connections, rate).await?,
            None => load::closed(&target, bodies, s.connections).await?,
        };
        if let (Some(path), Some(rate)) = (&args.latencies, s.rate) {
            write_latencies(path, &prefix, rate, &m)?;
        }
        let check = verify::exactly_once(&db, &prefix, s.orders, s.copies, false).await;
        if s.report {
            println!("{}", row(&args.label, &s.name, &m));
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

fn row(label: &str, scenario: &str, m: &Measured) -> String {
    let late = match m.late_quantiles_ms(&[0.5, 0.99]) {
        Some(q) => format!("{:.3} / {:.3}", q[0], q[1]),
        None => "–".to_owned(),
    };
    format!(
        "| {label} | {scenario} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {late} |",
        m.sent,
        m.throughput(),
        m.quantile_ms(0.5),
        m.quantile_ms(0.9),
        m.quantile_ms(0.99),
        m.quantile_ms(1.0),
    )
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
