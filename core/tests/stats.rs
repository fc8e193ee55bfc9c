//! Repository tests for the home page's numbers (paydesk_core::stats), on SQLite and (when
//! configured) PostgreSQL: today is the Asia/Shanghai day (both of its edges), the success
//! rate counts only today's orders that have ended, the chart has fourteen days with the
//! empty ones as zeros, and the counts of pending refunds and refused callbacks.

use paydesk_core::stats::{dashboard, CHART_DAYS};
use paydesk_core::testing::databases;
use paydesk_core::Db;
use paydesk_types::format_shanghai;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-22 16:30 Asia/Shanghai (08:30 UTC).
const NOW: i64 = 1_795_336_200_000;
/// 2026-11-22 00:00 Asia/Shanghai (2026-11-21 16:00 UTC).
const TODAY: i64 = NOW - (16 * HOUR + 30 * 60_000);

async fn order(db: &Db, no: &str, status: &str, fee: i64, created_at: i64, paid_at: Option<i64>) {
    sqlx::query(
        r#"insert into orders (out_trade_no, openid, description, total_fee, status,
               sign_type, transaction_id, paid_at, created_at, updated_at)
           values ($1, 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', '燕麦拿铁', $2, $3, 'MD5', $4, $5, $6, $6)"#,
    )
    .bind(no)
    .bind(fee)
    .bind(status)
    .bind(paid_at.map(|_| format!("4200000000{no}")))
    .bind(paid_at)
    .bind(created_at)
    .execute(db.writer())
    .await
    .unwrap();
}

async fn refund(db: &Db, no: &str, status: &str) {
    sqlx::query(
        r#"insert into refunds (out_refund_no, order_id, amount_fen, reason, requester_kind,
               requester, status, created_at, updated_at)
           values ($1, (select id from orders where out_trade_no = 'A'), 100, '多买了', 'staff',
               'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', $2, $3, $3)"#,
    )
    .bind(no)
    .bind(status)
    .bind(NOW - HOUR)
    .execute(db.writer())
    .await
    .unwrap();
}

async fn notification(db: &Db, verdict: &str, received_at: i64) {
    let reply = if matches!(verdict, "applied" | "duplicate") {
        "SUCCESS"
    } else {
        "FAIL"
    };
    sqlx::query(
        r#"insert into notifications (kind, received_at, raw_body, verdict, detail, reply,
               duration_us, created_at, updated_at)
           values ('payment', $1, '<xml/>', $2, 'test', $3, 10, $1, $1)"#,
    )
    .bind(received_at)
    .bind(verdict)
    .bind(reply)
    .execute(db.writer())
    .await
    .unwrap();
}

#[tokio::test]
async fn home_numbers_follow_the_shanghai_day_and_fill_fourteen_days() {
    for t in databases().await {
        let db = &t.db;
        let label = t.label;
        // Paid exactly at today's first millisecond (Shanghai): today. Created yesterday.
        order(db, "A", "PAID", 1_000, TODAY - HOUR, Some(TODAY)).await;
        // Paid at yesterday's last millisecond: yesterday, not today.
        order(db, "B", "PAID", 2_000, TODAY - 2 * HOUR, Some(TODAY - 1)).await;
        // Created and paid today, refunded since: still today's takings and a success.
        order(db, "C", "REFUNDED", 300, NOW - 2 * HOUR, Some(NOW - HOUR)).await;
        // Created today and ended unpaid: two failures of the success rate.
        order(db, "D", "CLOSED", 500, NOW - 3 * HOUR, None).await;
        order(db, "E", "PAYERROR", 500, TODAY, None).await;
        // Created today, still open: not counted either way.
        order(db, "F", "NOTPAY", 700, NOW - 60_000, None).await;
        // Created yesterday, closed: not today's.
        order(db, "G", "CLOSED", 700, TODAY - 1, None).await;
        // Paid on the chart's first day (13 days ago) and just before it (14 days ago).
        order(
            db,
            "H",
            "PAID",
            4_200,
            TODAY - 13 * DAY + HOUR,
            Some(TODAY - 13 * DAY + HOUR),
        )
        .await;
        order(
            db,
            "I",
            "PAID",
            9_900,
            TODAY - 14 * DAY + HOUR,
            Some(TODAY - 13 * DAY - 1),
        )
        .await;
        // Two pending refunds and a rejected one.
        refund(db, "R1", "PENDING_APPROVAL").await;
        refund(db, "R2", "PENDING_APPROVAL").await;
        refund(db, "R3", "REJECTED").await;
        // Refused callbacks: two within 24 h, one just older; accepted ones do not count.
        notification(db, "bad_signature", NOW - HOUR).await;
        notification(db, "amount_mismatch", NOW - DAY).await;
        notification(db, "malformed", NOW - DAY - 1).await;
        notification(db, "applied", NOW - HOUR).await;
        notification(db, "duplicate", NOW - HOUR).await;

        let d = dashboard(db, NOW).await.unwrap();

        assert_eq!(d.today_start, TODAY, "{label}");
        assert_eq!(format_shanghai(d.today_start), "2026-11-22 00:00:00");
        assert_eq!(
            (d.today_paid_count, d.today_paid_fen),
            (2, 1_300),
            "{label}"
        );
        assert_eq!(
            (d.today_created_paid, d.today_created_unpaid),
            (1, 2),
            "{label}: C paid; D, E ended unpaid; F open; A, G yesterday's"
        );
        assert_eq!(d.success_permille(), Some(333), "{label}");
        assert_eq!(d.refunds_pending, 2, "{label}");
        assert_eq!(d.failures_24h, 2, "{label}");

        assert_eq!(d.days.len(), CHART_DAYS, "{label}");
        assert_eq!(d.days[0].day_start, TODAY - 13 * DAY, "{label}");
        assert_eq!(d.days[13].day_start, TODAY, "{label}");
        let amounts: Vec<i64> = d.days.iter().map(|day| day.amount_fen).collect();
        let mut expected = vec![0; CHART_DAYS];
        expected[0] = 4_200;
        expected[12] = 2_000;
        expected[13] = 1_300;
        assert_eq!(amounts, expected, "{label}: gaps are zeros, I is outside");
        assert_eq!(d.days[13].count, 2, "{label}");
        assert_eq!(d.days[5].count, 0, "{label}");

        let latest: Vec<&str> = d
            .latest_paid
            .iter()
            .map(|o| o.out_trade_no.as_str())
            .collect();
        assert_eq!(latest, ["C", "A", "B", "H", "I"], "{label}: newest first");
        assert_eq!(d.latest_paid[0].status.as_str(), "REFUNDED", "{label}");
    }
}

#[tokio::test]
async fn an_empty_database_has_zeros_and_no_success_rate() {
    for t in databases().await {
        let d = dashboard(&t.db, NOW).await.unwrap();
        assert_eq!(
            (d.today_paid_count, d.today_paid_fen),
            (0, 0),
            "{}",
            t.label
        );
        assert_eq!(d.success_permille(), None, "{}", t.label);
        assert_eq!(d.days.len(), CHART_DAYS, "{}", t.label);
        assert!(d
            .days
            .iter()
            .all(|day| day.amount_fen == 0 && day.count == 0));
        assert!(d.latest_paid.is_empty());
    }
}
