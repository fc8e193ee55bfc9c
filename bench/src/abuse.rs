//! `notify-bench --abuse`: the callback flood of issue 15 (`scripts/abuse.sh`). For
//! `--abuse-seconds` (60), `--junk-connections` connections post junk to the payment
//! callback URL as fast as the server answers, while signed notifications for real orders
//! arrive at `--rate` (200) per second in an open loop. Reports whether every valid one was
//! applied exactly once, their latency, what the junk cost the database (rows and bytes of
//! refused notifications, the refusals only counted, the database files' growth) and the
//! server's resident memory (`--server-pid`).
//!
//! The junk is a mix of what an attacker would send: garbage that is not XML (2 KiB),
//! long XML (64 KiB, cut to the stored prefix), forged notifications for orders we do not
//! have, and forged notifications naming our real orders (stored beyond the sender's
//! allowance up to the per-order bound).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use paydesk_core::Db;
use wxpay::{ApiKey, Params, SignType};

use crate::load::{self, Measured, Target};
use crate::seed::{self, Merchant};
use crate::verify;

/// What the flood is run with.
pub struct Abuse {
    pub label: String,
    pub seconds: u64,
    pub rate: f64,
    pub rate_connections: usize,
    pub junk_connections: usize,
    pub server_pid: Option<u32>,
    pub database_url: String,
}

/// Refused rows and bytes in `notifications`, and refusals counted, at one moment.
#[derive(Clone, Copy)]
struct JunkCost {
    rows: i64,
    bytes: i64,
    counted: i64,
}

async fn junk_cost(db: &Db) -> anyhow::Result<JunkCost> {
    let (rows, bytes): (i64, i64) = sqlx::query_as(
        r#"select count(*), cast(coalesce(sum(length(raw_body)), 0) as bigint)
           from notifications where reply = 'FAIL'"#,
    )
    .fetch_one(db.reader())
    .await?;
    let counted: i64 = sqlx::query_scalar(
        "select cast(coalesce(sum(count), 0) as bigint) from refused_callback_counts",
    )
    .fetch_one(db.reader())
    .await?;
    Ok(JunkCost {
        rows,
        bytes,
        counted,
    })
}

/// The junk bodies, one of each kind per `order` of ours named.
fn junk(merchant: &Merchant, ours: &[String]) -> Vec<Bytes> {
    let forged = |no: &str| {
        let mut p = Params::new();
        for (k, v) in [
            ("return_code", "SUCCESS"),
            ("appid", merchant.appid.as_str()),
            ("mch_id", merchant.mch_id.as_str()),
            ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            ("result_code", "SUCCESS"),
            ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            ("trade_type", "JSAPI"),
            ("bank_type", "CFT"),
            ("total_fee", "1"),
            ("transaction_id", "4200000000000000000000000001"),
            ("out_trade_no", no),
            ("time_end", "20261207120000"),
        ] {
            p.insert(k.into(), v.into());
        }
        let sign = wxpay::sign(
            &p,
            &ApiKey::new("not the merchant's key, 32 chars"),
            SignType::Md5,
        );
        p.insert("sign".into(), sign);
        Bytes::from(wxpay::xml::write(&p))
    };
    let mut out = Vec::new();
    for (k, no) in ours.iter().enumerate() {
        out.push(Bytes::from(
            (0..2048)
                .map(|i| b"junk\x00\xff<>&"[(i + k) % 9])
                .collect::<Vec<u8>>(),
        ));
        out.push(Bytes::from(format!(
            "<xml><a>{}</a></xml>",
            "x".repeat(64 * 1024)
        )));
        out.push(forged(&format!("NOSUCH{k:08}")));
        out.push(forged(no));
    }
    out
}

/// Samples the server's resident memory every 250 ms while `running`; returns the largest
/// seen (KiB).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// SQLite: the database file and its write-ahead log, in bytes.
fn sqlite_bytes(database_url: &str) -> Option<u64> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next()?;
    let size = |p: String| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Some(size(file.to_owned()) + size(format!("{file}-wal")))
}

/// Runs the flood; prints one markdown row on stdout and the details on stderr. `Ok(false)`
/// when a valid notification was not applied exactly once.
pub async fn run(
    db: &Db,
    target: &Target,
    merchant: &Merchant,
    run: u64,
    prefix: &str,
    a: &Abuse,
) -> anyhow::Result<bool> {
    let orders = (a.rate * a.seconds as f64) as usize;
    eprintln!("notify-bench: abuse — creating {orders} orders");
    let valid = seed::orders_and_bodies(db, merchant, prefix, run, b'V', orders).await?;
    let ours: Vec<String> = (0..64.min(orders))
        .map(|i| seed::out_trade_no(prefix, i * (orders / 64).max(1)))
        .collect();
    let junk = Arc::new(junk(merchant, &ours));
    // Let the count of the orders' creation settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = junk_cost(db).await?;
    let size_before = sqlite_bytes(&a.database_url);
    let rss_start = a.server_pid.and_then(rss_kib);

    let running = Arc::new(AtomicBool::new(true));
    let rss_max = Arc::new(AtomicU64::new(rss_start.unwrap_or(0)));
    let sampler = a.server_pid.map(|pid| {
        let (running, rss_max) = (running.clone(), rss_max.clone());
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    rss_max.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    });
    eprintln!(
        "notify-bench: abuse — {} s of junk on {} connections, {}/s valid",
        a.seconds, a.junk_connections, a.rate
    );
    let until = Instant::now() + Duration::from_secs(a.seconds);
    let (flooded, measured): (anyhow::Result<load::Flooded>, anyhow::Result<Measured>) = tokio::join!(
        load::flood(target, junk, a.junk_connections, until),
        load::open(target, Arc::new(valid), a.rate_connections, a.rate),
    );
    let (flooded, m) = (flooded?, measured?);
    // The counts reach the database within a second or two of the last refusal.
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.store(false, Ordering::Relaxed);
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let after = junk_cost(db).await?;
    let size_after = sqlite_bytes(&a.database_url);
    let check = verify::exactly_once(db, prefix, orders, 1, true).await;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let growth = match (size_before, size_after) {
        (Some(b), Some(a)) => format!("{:.1}", (a as f64 - b as f64) / 1_048_576.0),
        _ => "–".into(),
    };
    println!(
        "| {} | {} | {} | {:.0} | {} / {} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {} | {} | {} → {:.0} |",
        a.label,
        a.seconds,
        flooded.answered,
        flooded.answered as f64 / a.seconds as f64,
        m.sent - m.failures,
        orders,
        m.quantile_ms(0.5),
        m.quantile_ms(0.99),
        m.quantile_ms(1.0),
        after.rows - before.rows,
        (after.bytes - before.bytes) as f64 / 1_048_576.0,
        after.counted - before.counted,
        growth,
        rss_start.map_or("–".into(), |k| format!("{:.0}", mib(k))),
        mib(rss_max.load(Ordering::Relaxed)),
    );
    eprintln!(
        "notify-bench: abuse — junk: {} answered ({} transport errors); valid: {} of {} SUCCESS, p99 {:.2} ms",
        flooded.answered,
        flooded.errors,
        m.sent - m.failures,
        orders,
        m.quantile_ms(0.99)
    );
    eprint!("{}", over_time(&m, a.rate));
    match check {
        Ok(()) => {
            eprintln!("notify-bench: abuse — database check passed");
            Ok(m.failures == 0)
        }
        Err(e) => {
            eprintln!("notify-bench: FAILED: database check: {e:#}");
            Ok(false)
        }
    }
}

/// The valid notifications' p99 and max for each second of the first five and each 5 s
/// after, and how late the generator sent them (its own error, included in the latency):
/// where in the flood the tail is.
fn over_time(m: &Measured, rate: f64) -> String {
    use std::fmt::Write as _;
    let q = load::quantile_ms;
    let mut out = String::from(
        "notify-bench: abuse — valid p99/max ms (generator late p99 ms) by second of the run:",
    );
    let (mut from, mut second) = (0usize, 0usize);
    while from < m.requests.len() {
        let span = if second < 5 { 1 } else { 5 };
        let to = (from + (rate * span as f64) as usize)
            .min(m.requests.len())
            .max(from + 1);
        let mut lat: Vec<u64> = m.requests[from..to].iter().map(|r| r.latency_us).collect();
        let mut late: Vec<u64> = m.requests[from..to].iter().map(|r| r.late_us).collect();
        lat.sort_unstable();
        late.sort_unstable();
        let _ = write!(
            out,
            " [{second}s {:.1}/{:.1} ({:.1})]",
            q(&lat, 0.99),
            q(&lat, 1.0),
            q(&late, 0.99)
        );
        (from, second) = (to, second + span);
    }
    out.push('\n');
    out
}
