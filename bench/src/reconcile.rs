//! `reconcile-bench`: the time and peak memory of `paydesk reconcile --day D` on a seeded
//! database (`paydesk seed --orders N --days D`), against a WeChat Pay simulator that was told
//! every trade of that day (the day's payments, and the orders its refunds belong to), so its
//! bill (downloadbill `ALL`, GZIP) has one row per payment and refund of the day. The command runs as its own process, measured by GNU time
//! (`/usr/bin/time -v`: wall clock and maximum resident set size); it runs twice, the second
//! time over what the first stored (a re-run must not duplicate anything). The bill must
//! reconcile ✓ (exit 0): every row matched, fen for fen. Used by
//! `scripts/bench-reconcile.sh` (docs/benchmarks.md).

use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use paydesk_core::db::PoolSizes;
use paydesk_core::time::{day_number, day_number_start, now_ms, DAY_MS};
use paydesk_core::Db;

#[derive(Parser, Debug)]
#[command(about = "Times `paydesk reconcile` on a seeded database")]
struct Args {
    /// The seeded database.
    #[arg(long, env = "PAYDESK_DATABASE_URL")]
    database_url: String,
    /// The paydesk binary to measure.
    #[arg(long, default_value = "target/release/paydesk")]
    paydesk: String,
    /// How many days ago the day reconciled is (1 = yesterday).
    #[arg(long, default_value_t = 1)]
    days_ago: i64,
}

/// What GNU time reported for one run.
struct Measured {
    exit: Option<i32>,
    wall: String,
    max_rss_kib: u64,
    stdout: String,
}

fn parse_time(stderr: &str) -> (String, u64) {
    let field = |name: &str| {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    };
    (
        field("Elapsed (wall clock) time (h:mm:ss or m:ss):"),
        field("Maximum resident set size (kbytes):")
            .parse()
            .unwrap_or(0),
    )
}

async fn run(args: &Args, sim: &paydesk_sim::RunningSim, day: &str) -> anyhow::Result<Measured> {
    let certs = sim.cert_paths();
    let out = tokio::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(&args.paydesk)
        .args(["reconcile", "--day", day])
        .env("PAYDESK_DATABASE_URL", &args.database_url)
        .env("PAYDESK_SIMULATOR", "off")
        .env("PAYDESK_WXPAY__APPID", sim.appid())
        .env("PAYDESK_WXPAY__MCH_ID", sim.mch_id())
        .env("PAYDESK_WXPAY__API_KEY", sim.api_key().expose())
        .env("PAYDESK_WXPAY__BASE_URL", sim.http_base_url())
        .env("PAYDESK_WXPAY__REFUND_BASE_URL", sim.tls_base_url())
        .env("PAYDESK_WXPAY__CA_PEM", &certs.ca)
        .env("PAYDESK_WXPAY__CERT_PEM", &certs.client_cert)
        .env("PAYDESK_WXPAY__KEY_PEM", &certs.client_key)
        .env(
            "PAYDESK_WXPAY__NOTIFY_URL",
            "http://127.0.0.1:9/wxpay/notify/payment",
        )
        .env(
            "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
            "http://127.0.0.1:9/wxpay/notify/refund",
        )
        .env("PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS", "on")
        .env("RUST_LOG", "warn,paydesk_core::reconcile=info")
        .output()
        .await
        .context("running /usr/bin/time -v paydesk reconcile")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (wall, max_rss_kib) = parse_time(&stderr);
    if max_rss_kib == 0 {
        bail!("GNU time printed no figures:\n{stderr}");
    }
    // Where the time went, as the command logged it.
    for line in stderr
        .lines()
        .filter(|l| l.contains("fetched_and_read_ms") || l.contains("compared_ms"))
    {
        eprintln!("  {line}");
    }
    Ok(Measured {
        exit: out.status.code(),
        wall,
        max_rss_kib,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = Db::connect(&args.database_url, PoolSizes::default()).await?;
    let day = day_number(now_ms()) - args.days_ago;
    let start = day_number_start(day);
    let mut orders = paydesk_core::orders::paid_between(&db, start, start + DAY_MS).await?;
    let Some(oldest) = orders.iter().map(|o| o.created_at).min() else {
        bail!("no order was paid that day: seed with fewer days");
    };
    // The day's refunds are of orders paid up to a few days before it (the seed asks within
    // three days of paying): WeChat Pay knows those orders too.
    let refunds =
        paydesk_core::refunds::accepted_for_orders_since(&db, oldest - 5 * DAY_MS).await?;
    let known: std::collections::HashSet<String> =
        orders.iter().map(|o| o.out_trade_no.clone()).collect();
    let mut earlier: Vec<String> = refunds
        .iter()
        .filter(|r| {
            r.accepted_at
                .is_some_and(|t| t >= start && t < start + DAY_MS)
        })
        .map(|r| r.out_trade_no.clone())
        .filter(|no| !known.contains(no))
        .collect();
    earlier.sort();
    earlier.dedup();
    for no in &earlier {
        if let Some(o) = paydesk_core::orders::find_by_out_trade_no(&db, no).await? {
            orders.push(o);
        }
    }
    let total: i64 = sqlx::query_scalar("select count(*) from orders")
        .fetch_one(db.reader())
        .await?;
    db.close().await;

    let sim = paydesk_sim::start(paydesk_sim::SimConfig {
        allow_insecure_notify_urls: true,
        ..paydesk_sim::SimConfig::default()
    })
    .await?;
    let pay = server::state::PayConfig {
        notify_url: "http://127.0.0.1:9/wxpay/notify/payment".into(),
        refund_notify_url: "http://127.0.0.1:9/wxpay/notify/refund".into(),
        order_expire: Duration::from_secs(30 * 60),
        sign_type: wxpay::SignType::Md5,
        self_url: "http://127.0.0.1:9".into(),
    };
    let told = server::sandbox::tell_simulator(&sim, &orders, &refunds, &pay);
    // A day's bill is served from 10:00 the next day (Beijing).
    sim.advance_clock(Duration::from_secs(
        u64::try_from(args.days_ago.max(1)).unwrap_or(1) * 86_400,
    ));
    let date = paydesk_core::reconcile::day_text(day);
    println!(
        "database: {total} orders; for {date} the simulator was told {} orders (the day's payments and the orders of its refunds) and {} refunds",
        told.orders, told.refunds
    );
    println!();
    println!("| run | wall | max RSS | exit | paydesk reconcile printed |");
    println!("|---|---:|---:|---|---|");
    for pass in ["first run", "re-run"] {
        let m = run(&args, &sim, &date).await?;
        let first = m.stdout.lines().take(3).collect::<Vec<_>>().join(" / ");
        println!(
            "| {pass} | {} | {} MiB | exit {} | {first} |",
            m.wall,
            m.max_rss_kib / 1024,
            m.exit.map_or("-".into(), |c| c.to_string())
        );
        if m.exit != Some(0) {
            bail!("the day did not reconcile ✓:\n{}", m.stdout);
        }
    }
    Ok(())
}
