//! The fake-history generator (`paydesk seed`), on SQLite and (when configured)
//! PostgreSQL: the numbers add up, the history is consistent, and search finds it.

use paydesk_core::orders::filter::OrderFilter;
use paydesk_core::orders::list;
use paydesk_core::orders::lookup::{find_by_any_id, Found};
use paydesk_core::seed::{seed, SeedOptions};
use paydesk_core::testing::databases;
use paydesk_core::{now_ms, Db};

async fn scalar(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db.reader())
        .await
        .unwrap()
}

#[tokio::test]
async fn seeded_history_is_consistent_and_searchable() {
    for t in databases().await {
        let db = &t.db;
        let before = now_ms();
        let mut progress = Vec::new();
        let report = seed(
            db,
            SeedOptions {
                orders: 3_000,
                days: 30,
                rng_seed: Some(7),
            },
            |n| progress.push(n),
        )
        .await
        .unwrap();
        let l = t.label;
        assert_eq!(report.orders, 3_000, "{l}");
        assert_eq!(progress.last(), Some(&3_000), "{l}");
        assert_eq!(
            scalar(db, "select count(*) from orders").await,
            3_000,
            "{l}"
        );
        assert_eq!(
            scalar(db, "select count(*) from customers").await as u64,
            report.customers,
            "{l}"
        );
        assert!(report.customers > 100, "{l}: {report:?}");
        // Within the window; NOTPAY only in the last 30 minutes.
        let oldest = scalar(db, "select min(created_at) from orders").await;
        assert!(oldest >= before - 30 * 86_400_000, "{l}");
        let stale_notpay = scalar(
            db,
            &format!(
                "select count(*) from orders where status = 'NOTPAY' and created_at < {}",
                before - 31 * 60_000
            ),
        )
        .await;
        assert_eq!(stale_notpay, 0, "{l}");
        // Mostly paid, some of everything else.
        let paid = scalar(db, "select count(*) from orders where status = 'PAID'").await;
        assert!(paid > 2_400, "{l}: {paid} paid");
        for status in ["CLOSED", "PAYERROR", "REFUNDED", "PARTIALLY_REFUNDED"] {
            let n = scalar(
                db,
                &format!("select count(*) from orders where status = '{status}'"),
            )
            .await;
            assert!(n > 0, "{l}: no {status}");
        }
        // Totals are the sum of the lines.
        let mismatched = scalar(
            db,
            "select count(*) from orders o where total_fee <> \
             (select sum(unit_price_fen * quantity) from order_items i where i.order_id = o.id)",
        )
        .await;
        assert_eq!(mismatched, 0, "{l}");
        // Every paid order has exactly one applied payment notification; some duplicates and
        // refused ones exist.
        let unapplied = scalar(
            db,
            "select count(*) from orders o where status in ('PAID', 'PARTIALLY_REFUNDED', 'REFUNDED') \
             and (select count(*) from notifications n where n.order_id = o.id \
                  and n.kind = 'payment' and n.verdict = 'applied') <> 1",
        )
        .await;
        assert_eq!(unapplied, 0, "{l}");
        assert!(
            scalar(
                db,
                "select count(*) from notifications where verdict = 'duplicate'"
            )
            .await
                > 0,
            "{l}"
        );
        // Refunds: successful, matching the order's status.
        let wrong_refunds = scalar(
            db,
            "select count(*) from orders o where status in ('REFUNDED', 'PARTIALLY_REFUNDED') and \
             (select coalesce(sum(amount_fen), 0) from refunds r where r.order_id = o.id \
              and r.status = 'SUCCESS') not between 1 and o.total_fee",
        )
        .await;
        assert_eq!(wrong_refunds, 0, "{l}");
        let full = scalar(
            db,
            "select count(*) from orders o where status = 'REFUNDED' and total_fee <> \
             (select sum(amount_fen) from refunds r where r.order_id = o.id)",
        )
        .await;
        assert_eq!(full, 0, "{l}");
        // A few recent paid orders wait for a manager's decision on a refund.
        let pending = scalar(
            db,
            "select count(*) from refunds where status = 'PENDING_APPROVAL'",
        )
        .await;
        let misplaced = scalar(
            db,
            &format!(
                "select count(*) from refunds r join orders o on o.id = r.order_id \
                 where r.status = 'PENDING_APPROVAL' and (o.status <> 'PAID' \
                 or r.refund_id is not null or o.paid_at < {})",
                before - 2 * 86_400_000
            ),
        )
        .await;
        assert!(pending > 0, "{l}");
        assert_eq!(misplaced, 0, "{l}");
        // Nothing happens after now: no payment, refund step or notification, and no refund
        // number dated tomorrow (RF + the request's Shanghai time); transaction ids are
        // WeChat's 28 digits.
        let after = now_ms();
        for (what, sql) in [
            ("paid_at", "select coalesce(max(paid_at), 0) from orders"),
            (
                "updated_at",
                "select coalesce(max(updated_at), 0) from orders",
            ),
            (
                "refund",
                "select coalesce(max(succeeded_at), 0) from refunds",
            ),
            (
                "refund decision",
                "select coalesce(max(decided_at), 0) from refunds",
            ),
            (
                "notification",
                "select coalesce(max(received_at), 0) from notifications",
            ),
        ] {
            assert!(scalar(db, sql).await <= after, "{l}: {what} in the future");
        }
        let numbers: Vec<(String, i64)> =
            sqlx::query_as("select out_refund_no, created_at from refunds")
                .fetch_all(db.reader())
                .await
                .unwrap();
        let today = wxpay::wxtime::format_compact(time::OffsetDateTime::now_utc());
        for (no, created_at) in &numbers {
            assert!(
                &no[2..16] <= today.as_str(),
                "{l}: {no} is dated after today"
            );
            assert!(*created_at <= after, "{l}: {no}");
        }
        let short_txids = scalar(
            db,
            "select count(*) from orders where transaction_id is not null and length(transaction_id) <> 28",
        )
        .await;
        assert_eq!(short_txids, 0, "{l}");

        // Lunch is busier than four in the morning (Asia/Shanghai = UTC+8).
        let at_hour = |h: i64| {
            format!("select count(*) from orders where ((created_at / 3600000) + 8) % 24 = {h}")
        };
        assert!(
            scalar(db, &at_hour(12)).await > 3 * scalar(db, &at_hour(4)).await,
            "{l}"
        );

        // The search box finds seeded ids.
        let (txid, refund_id): (String, String) = sqlx::query_as(
            "select o.transaction_id, r.refund_id from refunds r join orders o on o.id = r.order_id limit 1",
        )
        .fetch_one(db.reader())
        .await
        .unwrap();
        assert!(
            matches!(find_by_any_id(db, &txid).await.unwrap(), Found::Order(_)),
            "{l}"
        );
        assert!(
            matches!(
                find_by_any_id(db, &refund_id).await.unwrap(),
                Found::Order(_)
            ),
            "{l}"
        );
        let (count, _) = list::totals(db, &OrderFilter::default()).await.unwrap();
        assert_eq!(count, 3_000, "{l}");
    }
}
