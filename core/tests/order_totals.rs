//! The running totals (paydesk_core::orders::totals), on SQLite and (when configured)
//! PostgreSQL: after orders are created, paid across midnight, refunded, closed and
//! deleted (and corrected by hand: amounts, creation and payment times), every sum the
//! totals answer equals the same sum over the orders — per day and status, per amount range
//! (with dates or without) with partial yuan at either end, paid per day — before and after
//! the PostgreSQL log is folded, and while writers keep changing orders during folds.

use paydesk_core::orders::filter::OrderFilter;
use paydesk_core::orders::list;
use paydesk_core::orders::totals as order_totals;
use paydesk_core::orders::OrderStatus;
use paydesk_core::testing::databases;
use paydesk_core::time::{day_number, day_number_start, DAY_MS};
use paydesk_core::{Backend, Db};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

const HOUR: i64 = 3_600_000;
/// 2026-11-22 00:00 Asia/Shanghai (2026-11-21 16:00 UTC).
const DAY0: i64 = 1_795_276_800_000;

async fn insert(db: &Db, no: &str, status: OrderStatus, fee: i64, created_at: i64) {
    let paid_at = status.was_paid().then_some(created_at + 7 * HOUR);
    sqlx::query(
        r#"insert into orders (out_trade_no, openid, description, total_fee, status,
               sign_type, paid_at, created_at, updated_at)
           values ($1, 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', '燕麦拿铁', $2, $3, 'MD5', $4, $5, $5)"#,
    )
    .bind(no)
    .bind(fee)
    .bind(status.as_str())
    .bind(paid_at)
    .bind(created_at)
    .execute(db.writer())
    .await
    .unwrap();
}

/// A fee: often a whole yuan, sometimes a band edge, otherwise anything up to ¥400.
fn fee(rng: &mut StdRng) -> i64 {
    match rng.gen_range(0..4) {
        0 => rng.gen_range(1..40) * 1_000,
        1 => rng.gen_range(1..400) * 100 + rng.gen_range(0..2) * 99,
        _ => rng.gen_range(1..40_000),
    }
}

/// Orders over twelve days, then payments (some after midnight), refunds, closes and
/// deletes, as the application and an operator would make them.
async fn history(db: &Db, rng: &mut StdRng, prefix: &str, n: usize) {
    for i in 0..n {
        let status = OrderStatus::ALL[rng.gen_range(0..6)];
        let created_at = DAY0 - rng.gen_range(0..12) * DAY_MS + rng.gen_range(0..DAY_MS);
        insert(db, &format!("{prefix}{i}"), status, fee(rng), created_at).await;
    }
    for i in 0..n {
        let no = format!("{prefix}{i}");
        // Paid (perhaps the next Shanghai day), refunded, closed, a column the totals do
        // not depend on, or deleted; `$2` is the payment's delay.
        let change = match rng.gen_range(0..7) {
            0 => {
                "update orders set status = 'PAID', paid_at = created_at + $2, \
                 updated_at = created_at where out_trade_no = $1 and status = 'NOTPAY'"
            }
            1 => {
                "update orders set status = 'REFUNDED' where out_trade_no = $1 \
                 and status in ('PAID', 'PARTIALLY_REFUNDED') and $2 >= 0"
            }
            2 => {
                "update orders set status = 'CLOSED' where out_trade_no = $1 \
                 and status = 'NOTPAY' and $2 >= 0"
            }
            3 => "update orders set updated_at = updated_at + $2 where out_trade_no = $1",
            4 if rng.gen_bool(0.1) => "delete from orders where out_trade_no = $1 and $2 >= 0",
            // An operator's corrections the application never makes, which the triggers
            // must follow all the same: an amount (paid or not), a creation time, a payment
            // time moved or taken away, and several of them in one statement.
            4 => {
                "update orders set total_fee = total_fee + $2 / 3600000 + 1 where out_trade_no = $1"
            }
            5 => match rng.gen_range(0..4) {
                0 => "update orders set created_at = created_at - $2 where out_trade_no = $1",
                1 => {
                    "update orders set paid_at = paid_at + $2 + 3600000 where out_trade_no = $1 \
                     and paid_at is not null"
                }
                2 => {
                    "update orders set paid_at = null where out_trade_no = $1 and $2 >= 0 \
                     and status = 'PAID'"
                }
                _ => {
                    "update orders set status = 'PAID', total_fee = total_fee + 7, \
                     paid_at = created_at + $2, created_at = created_at - 86400000 \
                     where out_trade_no = $1 and status = 'PAYERROR'"
                }
            },
            _ => continue,
        };
        sqlx::query(change)
            .bind(&no)
            .bind(rng.gen_range(0..30) * HOUR)
            .execute(db.writer())
            .await
            .unwrap();
    }
}

/// Filters the totals answer (whole days, no customer), and two they leave to the orders.
fn filters(rng: &mut StdRng) -> Vec<(OrderFilter, bool)> {
    let mut out = vec![
        (OrderFilter::default(), true),
        (
            OrderFilter {
                statuses: vec![OrderStatus::Paid],
                ..Default::default()
            },
            true,
        ),
        (
            OrderFilter {
                statuses: vec![OrderStatus::Refunded, OrderStatus::PartiallyRefunded],
                created_from: Some(DAY0 - 6 * DAY_MS),
                created_to: Some(DAY0 + DAY_MS),
                ..Default::default()
            },
            true,
        ),
        (
            OrderFilter {
                min_fee: Some(10_000),
                max_fee: Some(15_000),
                ..Default::default()
            },
            true,
        ),
        (
            OrderFilter {
                min_fee: Some(9_999),
                max_fee: Some(15_000),
                ..Default::default()
            },
            true,
        ),
        (
            OrderFilter {
                statuses: vec![OrderStatus::Paid],
                min_fee: Some(10_001),
                max_fee: Some(15_099),
                ..Default::default()
            },
            true,
        ),
        // Not whole days: the orders.
        (
            OrderFilter {
                created_from: Some(DAY0 - 3 * DAY_MS + HOUR),
                ..Default::default()
            },
            false,
        ),
        // Amounts and dates together: per day and band.
        (
            OrderFilter {
                min_fee: Some(100),
                created_from: Some(DAY0 - 3 * DAY_MS),
                ..Default::default()
            },
            true,
        ),
        (
            OrderFilter {
                statuses: vec![OrderStatus::Paid, OrderStatus::Closed],
                min_fee: Some(9_999),
                max_fee: Some(15_001),
                created_from: Some(DAY0 - 6 * DAY_MS),
                created_to: Some(DAY0 + DAY_MS),
                ..Default::default()
            },
            true,
        ),
        // Amounts with dates that are not whole days: the orders.
        (
            OrderFilter {
                min_fee: Some(100),
                created_from: Some(DAY0 - 3 * DAY_MS + HOUR),
                ..Default::default()
            },
            false,
        ),
    ];
    for _ in 0..40 {
        let statuses: Vec<OrderStatus> = OrderStatus::ALL
            .into_iter()
            .filter(|_| rng.gen_bool(0.3))
            .collect();
        // Dates, amounts, or both.
        let (dates, amounts) = match rng.gen_range(0..3) {
            0 => (true, false),
            1 => (false, true),
            _ => (true, true),
        };
        let mut filter = OrderFilter {
            statuses,
            ..Default::default()
        };
        if dates {
            let a = DAY0 - rng.gen_range(0..14) * DAY_MS;
            let b = a + rng.gen_range(1..8) * DAY_MS;
            filter.created_from = rng.gen_bool(0.8).then_some(a);
            filter.created_to = rng.gen_bool(0.8).then_some(b);
        }
        if amounts {
            // Bounds at whole yuan as often as not: the edges of the bands.
            let a = fee(rng);
            let b = if rng.gen_bool(0.5) {
                (a / 100 + rng.gen_range(1..200)) * 100
            } else {
                a + rng.gen_range(0..20_000)
            };
            filter.min_fee = rng.gen_bool(0.8).then_some(a);
            filter.max_fee = rng.gen_bool(0.8).then_some(b);
        }
        out.push((filter, true));
    }
    out
}

/// Every filter: the totals' answer equals the orders'; the totals answer the ones they
/// should (an amount range narrower than one whole yuan is left to the orders too).
async fn check(db: &Db, label: &str, filters: &[(OrderFilter, bool)]) {
    for (filter, answered) in filters {
        let from_orders = list::totals_from_orders(db, filter).await.unwrap();
        let from_totals = order_totals::totals(db, filter).await.unwrap();
        let narrow = matches!((filter.min_fee, filter.max_fee), (Some(a), Some(b)) if b - a < 199);
        if *answered && !narrow {
            assert_eq!(
                from_totals,
                Some(from_orders),
                "{label}: {filter:?}: running totals against the orders"
            );
        } else if !*answered {
            assert_eq!(
                from_totals, None,
                "{label}: {filter:?}: should read the orders"
            );
        }
        assert_eq!(
            list::totals(db, filter).await.unwrap(),
            from_orders,
            "{label}: {filter:?}: list::totals"
        );
    }
    // Paid per day, against the orders' paid_at.
    let first = day_number(DAY0) - 13;
    let last = day_number(DAY0) + 2;
    let by_day = order_totals::paid_by_day(db, first, last).await.unwrap();
    for day in first..=last {
        let start = day_number_start(day);
        let (n, fen): (i64, i64) = sqlx::query_as(
            "select count(*), cast(coalesce(sum(total_fee), 0) as bigint) from orders \
             where paid_at >= $1 and paid_at < $2",
        )
        .bind(start)
        .bind(start + DAY_MS)
        .fetch_one(db.reader())
        .await
        .unwrap();
        let got = by_day
            .iter()
            .find(|(d, _, _)| *d == day)
            .map(|(_, n, f)| (*n, *f))
            .unwrap_or((0, 0));
        assert_eq!(got, (n, fen), "{label}: paid on day {day}");
    }
}

#[tokio::test]
async fn running_totals_equal_the_sums_over_the_orders() {
    for t in databases().await {
        let db = &t.db;
        let mut rng = StdRng::seed_from_u64(20_261_123);
        // Amounts on and next to the yuan boundaries of the fixed filters below.
        for (i, fee) in [
            9_998, 9_999, 10_000, 10_001, 14_999, 15_000, 15_001, 15_099, 15_100,
        ]
        .into_iter()
        .enumerate()
        {
            insert(db, &format!("E{i}"), OrderStatus::Paid, fee, DAY0 - HOUR).await;
        }
        history(db, &mut rng, "T", 400).await;
        let filters = filters(&mut rng);
        check(db, &format!("{} before folding", t.label), &filters).await;
        let folded = order_totals::fold(db).await.unwrap();
        match db.backend() {
            Backend::Postgres => assert!(folded > 400, "{}: folded {folded}", t.label),
            Backend::Sqlite => assert_eq!(folded, 0, "SQLite keeps no log"),
        }
        assert_eq!(order_totals::fold(db).await.unwrap(), 0, "{}", t.label);
        check(db, &format!("{} after folding", t.label), &filters).await;
    }
}

#[tokio::test]
async fn folding_while_writers_change_orders_loses_nothing() {
    for t in databases().await {
        let db = t.db.clone();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut rng = StdRng::seed_from_u64(w);
                    history(&db, &mut rng, &format!("W{w}-"), 60).await;
                })
            })
            .collect();
        let folder = {
            let db = db.clone();
            tokio::spawn(async move {
                let mut total = 0;
                for _ in 0..40 {
                    total += order_totals::fold(&db).await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                total
            })
        };
        for w in writers {
            w.await.unwrap();
        }
        folder.await.unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let filters = filters(&mut rng);
        check(
            &db,
            &format!("{} with folds between writes", t.label),
            &filters,
        )
        .await;
        order_totals::fold(&db).await.unwrap();
        check(&db, &format!("{} folded", t.label), &filters).await;
    }
}
