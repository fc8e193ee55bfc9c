//! Payment notifications when things go wrong on our side or the body is abusive: a
//! database that refuses every write, and a body over the size limit. Nothing is lost.

use std::time::Duration;

use paydesk_core::notify::{self, Verdict, MAX_BODY};
use paydesk_core::orders::OrderStatus;
use paydesk_core::testing;
use paydesk_core::Backend;
use wxpay::notify::REPLY_SUCCESS;
use wxpay::SignType;

use crate::callbacks::{create_order, post_notification, signed_notification};
use crate::helpers::{spawn_apps, TestApp};

/// Makes the database refuse every change to orders and every new notification row, as a
/// full disk or a read-only failover would, until [`allow_writes`].
async fn refuse_writes(app: &TestApp) {
    let statements: &[&str] = match app.db.db.backend() {
        Backend::Sqlite => &[
            "create trigger refuse_orders before update on orders begin select raise(abort, 'writes refused (test)'); end",
            "create trigger refuse_notifications before insert on notifications begin select raise(abort, 'writes refused (test)'); end",
        ],
        Backend::Postgres => &[
            "create function refuse_writes() returns trigger language plpgsql as $$ begin raise exception 'writes refused (test)'; end $$",
            "create trigger refuse_orders before update on orders for each row execute function refuse_writes()",
            "create trigger refuse_notifications before insert on notifications for each row execute function refuse_writes()",
        ],
    };
    for s in statements {
        sqlx::raw_sql(s).execute(app.db.db.writer()).await.unwrap();
    }
}

async fn allow_writes(app: &TestApp) {
    for s in [
        "drop trigger refuse_orders",
        "drop trigger refuse_notifications",
    ] {
        let s = match app.db.db.backend() {
            Backend::Sqlite => s.to_owned(),
            Backend::Postgres => format!(
                "{s} on {}",
                if s.ends_with("orders") {
                    "orders"
                } else {
                    "notifications"
                }
            ),
        };
        sqlx::raw_sql(&s).execute(app.db.db.writer()).await.unwrap();
    }
}

#[tokio::test]
async fn a_database_that_refuses_writes_gets_fail_then_success_once_it_recovers_and_nothing_is_lost(
) {
    for app in spawn_apps().await {
        // Arrange
        let order = create_order(&app, "DOWN-1", 4200, SignType::Md5).await;
        let body = signed_notification(&app, "DOWN-1", 4200);
        refuse_writes(&app).await;

        // Act: WeChat Pay delivers while the database refuses writes, then resends after
        let (status, while_down) = post_notification(&app.base, body.clone()).await;
        let unpaid = app.stored_order("DOWN-1").await;
        allow_writes(&app).await;
        let (_, after) = post_notification(&app.base, body.clone()).await;

        // Assert: FAIL so WeChat retries, then SUCCESS; paid once; both deliveries recorded
        assert_eq!(status, 200, "{}", app.db.label);
        assert!(
            while_down.contains("FAIL"),
            "{}: {while_down}",
            app.db.label
        );
        assert_eq!(unpaid.status, OrderStatus::NotPay);
        assert_eq!(after, REPLY_SUCCESS, "{}", app.db.label);
        let paid = app.stored_order("DOWN-1").await;
        assert_eq!(paid.status, OrderStatus::Paid);
        let mut rows = Vec::new();
        for _ in 0..100 {
            rows = testing::recent_notifications(&app.db.db, Some("DOWN-1"), 10)
                .await
                .unwrap();
            if rows.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut verdicts: Vec<Verdict> = rows.iter().map(|r| r.verdict).collect();
        verdicts.sort_by_key(|v| v.as_str());
        assert_eq!(
            verdicts,
            vec![Verdict::Applied, Verdict::InternalError],
            "{}",
            app.db.label
        );
        let late = rows
            .iter()
            .find(|r| r.verdict == Verdict::InternalError)
            .unwrap();
        assert_eq!(late.raw_body, body);
        assert_eq!(late.reply, "FAIL");
        assert_eq!(late.order_id, Some(order.id));
        assert!(late.detail.contains("recorded late"), "{}", late.detail);
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_recorded_cut_and_answered_fail() {
    for app in spawn_apps().await {
        // Arrange
        let huge = format!("<xml>{}</xml>", "A".repeat(MAX_BODY + 10));

        // Act
        let (status, reply) = post_notification(&app.base, huge).await;

        // Assert
        assert_eq!(status, 200, "{}", app.db.label);
        assert!(reply.contains("FAIL"), "{reply}");
        let row = testing::recent_notifications(&app.db.db, None, 1)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(row.verdict, Verdict::Malformed);
        assert_eq!(row.raw_body.len(), notify::DEFAULT_REFUSED_BODY_BYTES);
        assert_eq!(row.raw_length, Some(MAX_BODY as i64));
        assert!(row.detail.contains("longer than"), "{}", row.detail);
    }
}
