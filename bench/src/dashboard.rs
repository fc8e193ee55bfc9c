//! `dashboard-bench`: times the home page's numbers (`stats::dashboard`) and the queries the
//! orders page and its search box run (`paydesk_core::orders::{list,lookup}`) against a seeded database
//! (`paydesk seed --orders N`), and prints one markdown table row per query: p50, p95 and
//! max over many runs. Every total is also read from the orders themselves and must agree
//! with the running totals (`paydesk_core::orders::totals`), or the bench fails.
//!
//! This is the data layer's server time — the call into `paydesk_core`, rows decoded, no
//! HTTP and no rendering. Runs one query at a time on an idle database; sample ids are
//! drawn from the data so each run looks up a different order.
//! Used by `scripts/bench-dashboard.sh` (docs/benchmarks.md).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use paydesk_core::db::PoolSizes;
use paydesk_core::orders::filter::OrderFilter;
use paydesk_core::orders::list;
use paydesk_core::orders::lookup::{self, Found};
use paydesk_core::orders::OrderStatus;
use paydesk_core::sql::Cursor;
use paydesk_core::stats;
use paydesk_core::time::shanghai_day_start;
use paydesk_core::{now_ms, Backend, Db};

#[derive(Parser, Debug)]
#[command(about = "Times the orders page's queries on a seeded paydesk database")]
struct Args {
    /// The seeded database.
    #[arg(long, env = "PAYDESK_DATABASE_URL")]
    database_url: String,
    /// Names the database in the output table.
    #[arg(long, default_value = "sqlite")]
    label: String,
    /// Runs of each list and totals query.
    #[arg(long, default_value_t = 60)]
    runs: usize,
    /// Runs of each exact-id search.
    #[arg(long, default_value_t = 400)]
    id_runs: usize,
    /// Orders per page.
    #[arg(long, default_value_t = 50)]
    page: i64,
    /// Time only the home page's numbers (`stats::dashboard`).
    #[arg(long)]
    home_only: bool,
}

/// Latencies of one query, sorted.
struct Timings(Vec<Duration>);

impl Timings {
    fn quantile_ms(&self, q: f64) -> f64 {
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1].as_secs_f64() * 1000.0
    }
}

/// Runs `f` `runs` times (after two untimed warm-up runs) and returns the sorted latencies.
async fn time<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<Timings>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for i in 0..2 {
        f(i).await?;
    }
    let mut out = Vec::with_capacity(runs);
    for i in 0..runs {
        let started = Instant::now();
        f(i).await?;
        out.push(started.elapsed());
    }
    out.sort_unstable();
    Ok(Timings(out))
}

fn row(label: &str, query: &str, rows: &str, t: &Timings, target_ms: f64) {
    let p95 = t.quantile_ms(0.95);
    println!(
        "| {label} | {query} | {rows} | {} | {:.2} | {:.2} | {:.2} | {} |",
        t.0.len(),
        t.quantile_ms(0.5),
        p95,
        t.quantile_ms(1.0),
        if p95 < target_ms { "yes" } else { "**no**" },
    );
}

/// Up to `n` values of one column, spread over the table.
async fn samples(db: &Db, sql: &str) -> anyhow::Result<Vec<String>> {
    let values: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(db.reader())
        .await
        .with_context(|| format!("sampling ids: {sql}"))?;
    anyhow::ensure!(!values.is_empty(), "no sample ids ({sql}): seed first");
    Ok(values)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = Db::connect(
        &args.database_url,
        PoolSizes {
            max_connections: 4,
            ..PoolSizes::default()
        },
    )
    .await?;
    let label = args.label.as_str();
    let orders: i64 = sqlx::query_scalar("select count(*) from orders")
        .fetch_one(db.reader())
        .await?;
    eprintln!("dashboard-bench: {label}: {orders} orders");
    if db.backend() == Backend::Postgres {
        // What autovacuum would have done by the time anyone looks: statistics for the
        // planner and a visibility map for index-only scans.
        eprintln!("dashboard-bench: {label}: vacuum analyze");
        sqlx::query("vacuum analyze")
            .execute(db.writer())
            .await
            .context("vacuum analyze")?;
    }

    let now = now_ms();
    // The page's dates are whole Asia/Shanghai days: "last 7 days" is six days ago 00:00
    // up to tomorrow 00:00, as the orders page's default view asks for it.
    let today = shanghai_day_start(now);
    let week_ago = today - 6 * 24 * 3_600_000;
    let tomorrow = today + 24 * 3_600_000;
    let filters: Vec<(&str, OrderFilter)> = vec![
        ("no filter", OrderFilter::default()),
        (
            "status PAID",
            OrderFilter {
                statuses: vec![OrderStatus::Paid],
                ..Default::default()
            },
        ),
        (
            "last 7 days",
            OrderFilter {
                created_from: Some(week_ago),
                created_to: Some(tomorrow),
                ..Default::default()
            },
        ),
        (
            "amount ¥100–¥150",
            OrderFilter {
                min_fee: Some(10_000),
                max_fee: Some(15_000),
                ..Default::default()
            },
        ),
        (
            "PAID + last 7 days",
            OrderFilter {
                statuses: vec![OrderStatus::Paid],
                created_from: Some(week_ago),
                created_to: Some(tomorrow),
                ..Default::default()
            },
        ),
        (
            "PAID, amount ¥100.50–¥150",
            OrderFilter {
                statuses: vec![OrderStatus::Paid],
                min_fee: Some(10_050),
                max_fee: Some(15_000),
                ..Default::default()
            },
        ),
        (
            "amount ¥100–¥150 + last 7 days",
            OrderFilter {
                min_fee: Some(10_000),
                max_fee: Some(15_000),
                created_from: Some(week_ago),
                created_to: Some(tomorrow),
                ..Default::default()
            },
        ),
        (
            "refunded (2 statuses)",
            OrderFilter {
                statuses: vec![OrderStatus::Refunded, OrderStatus::PartiallyRefunded],
                ..Default::default()
            },
        ),
    ];
    // A deep page: the orders older than the median order, as after thousands of "next".
    let (mid_at, mid_id): (i64, i64) = sqlx::query_as(
        "select created_at, id from orders order by created_at, id limit 1 offset $1",
    )
    .bind(orders / 2)
    .fetch_one(db.reader())
    .await?;
    let deep = Cursor {
        created_at: mid_at,
        id: mid_id,
    };

    println!("| db | query | rows | runs | p50 ms | p95 ms | max ms | p95 on target |");
    println!("|---|---|---:|---:|---:|---:|---:|---|");
    // The home page: today's numbers, 14 days of revenue, the latest payments.
    let home = stats::dashboard(&db, now).await?;
    let t = time(args.runs, |_| async {
        stats::dashboard(&db, now).await?;
        Ok(())
    })
    .await?;
    row(
        label,
        "home: stats::dashboard (today, 14 days, latest 10)",
        &format!("{} paid today", home.today_paid_count),
        &t,
        50.0,
    );
    if args.home_only {
        return Ok(());
    }
    for (name, filter) in &filters {
        // A date filter's deep page starts in the middle of its range.
        let deep = match filter.created_from {
            Some(from) => Cursor {
                created_at: from + (now - from) / 2,
                id: i64::MAX,
            },
            None => deep,
        };
        let first = list::list_orders(&db, filter, None, args.page).await?;
        let t = time(args.runs, |_| async {
            list::list_orders(&db, filter, None, args.page).await?;
            Ok(())
        })
        .await?;
        row(
            label,
            &format!("list, first page: {name}"),
            &first.orders.len().to_string(),
            &t,
            50.0,
        );
        let deep_page = list::list_orders(&db, filter, Some(&deep), args.page).await?;
        let t = time(args.runs, |_| async {
            list::list_orders(&db, filter, Some(&deep), args.page).await?;
            Ok(())
        })
        .await?;
        row(
            label,
            &format!("list, deep page: {name}"),
            &deep_page.orders.len().to_string(),
            &t,
            50.0,
        );
        let (count, sum) = list::totals(&db, filter).await?;
        // The running totals must say what the orders say.
        let scanned = list::totals_from_orders(&db, filter).await?;
        anyhow::ensure!(
            (count, sum) == scanned,
            "{label} totals for {name}: {count}, {sum} fen from the running totals, \
             {scanned:?} from the orders"
        );
        let t = time(args.runs, |_| async {
            list::totals(&db, filter).await?;
            Ok(())
        })
        .await?;
        row(
            label,
            &format!("totals: {name}"),
            &count.to_string(),
            &t,
            50.0,
        );
    }

    // Exact ids: a different one each run, sampled across the table.
    let step = (orders / 500).max(1);
    let kinds: Vec<(&str, Vec<String>)> = vec![
        (
            "out_trade_no",
            samples(
                &db,
                &format!("select out_trade_no from orders where id % {step} = 0 limit 500"),
            )
            .await?,
        ),
        (
            "transaction_id",
            samples(
                &db,
                &format!(
                    "select transaction_id from orders where id % {step} = 0 \
                     and transaction_id is not null limit 500"
                ),
            )
            .await?,
        ),
        (
            "out_refund_no",
            samples(&db, "select out_refund_no from refunds limit 500").await?,
        ),
        (
            "refund_id",
            samples(
                &db,
                "select refund_id from refunds where refund_id is not null limit 500",
            )
            .await?,
        ),
        (
            "openid",
            samples(&db, "select openid from customers limit 500").await?,
        ),
        (
            "no match (every probe)",
            (0..500).map(|i| format!("PDNOSUCHORDER{i:06}")).collect(),
        ),
    ];
    for (kind, ids) in &kinds {
        let t = time(args.id_runs, |i| {
            let id = ids[i % ids.len()].clone();
            let db = &db;
            async move {
                let found = lookup::find_by_any_id(db, &id).await?;
                anyhow::ensure!(
                    matches!(found, Found::Nothing) == kind.starts_with("no match"),
                    "{id}: unexpected {found:?}"
                );
                Ok(())
            }
        })
        .await?;
        row(label, &format!("find_by_any_id: {kind}"), "–", &t, 5.0);
    }
    db.close().await;
    Ok(())
}
