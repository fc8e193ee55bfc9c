//! `--demo-shoppers`: simulated shoppers order and pay through the real `/api/mp` API against
//! the in-process simulator, so a fresh sandbox has a living history.

use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_apps_with;

#[tokio::test]
async fn demo_shoppers_make_real_orders_that_get_paid() {
    for app in
        spawn_apps_with(json!({ "demo_shoppers": "on", "demo_shoppers_per_minute": 1200 })).await
    {
        // Act: let a few visits happen
        let mut counts = (0i64, 0i64, 0i64);
        for _ in 0..300 {
            counts = sqlx::query_as(
                r#"select count(*),
                          coalesce(sum(case when status = 'PAID' then 1 else 0 end), 0),
                          (select count(*) from customers)
                   from orders"#,
            )
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
            if counts.0 >= 5 && counts.1 >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Assert: orders through the API (with idempotency keys and prepay ids), some paid
        let (orders, paid, customers) = counts;
        assert!(orders >= 5 && paid >= 2, "{}: {counts:?}", app.db.label);
        assert!(customers >= 1);
        let without_key: i64 =
            sqlx::query_scalar("select count(*) from orders where idempotency_key is null")
                .fetch_one(app.db.db.reader())
                .await
                .unwrap();
        assert_eq!(without_key, 0, "every demo order came through /api/mp");
        // An order is stored before unifiedorder answers: one still in flight gets its
        // prepay_id within moments (the shoppers keep ordering meanwhile, so wait for the
        // orders that existed now).
        let last: i64 = sqlx::query_scalar("select max(id) from orders")
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
        let mut unpriced = -1;
        for _ in 0..100 {
            unpriced = sqlx::query_scalar(
                "select count(*) from orders where id <= $1 and prepay_id is null",
            )
            .bind(last)
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
            if unpriced == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            unpriced, 0,
            "every demo order got its prepay_id from unifiedorder"
        );
    }
}

#[tokio::test]
async fn demo_shoppers_are_refused_outside_the_sandbox() {
    let settings: server::config::Settings = serde_json::from_value(json!({
        "simulator": "off",
        "demo_shoppers": "on",
        "wxpay": {
            "appid": "wx2421b1c4370ec43b",
            "mch_id": "10000100",
            "api_key": "192006250b4c09247ec02edce69f6a2d",
            "notify_url": "https://pay.example.com/wxpay/notify/payment",
            "refund_notify_url": "https://pay.example.com/wxpay/notify/refund"
        }
    }))
    .unwrap();
    let err = settings.validate().unwrap_err().to_string();
    assert!(err.contains("PAYDESK_DEMO_SHOPPERS"), "{err}");
}
