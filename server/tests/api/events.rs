//! `GET /api/events`: the live event stream the dashboard subscribes to. Signed-out callers
//! are refused; a signed-in user receives a payment and a refused callback as they happen.

use std::time::Duration;

use wxpay::SignType;

use crate::helpers::{spawn_apps, ADMIN_PASSWORD};
use crate::notify::{create_order, fields, signed};

#[tokio::test]
async fn signed_in_staff_see_payments_and_refused_callbacks_live() {
    for app in spawn_apps().await {
        // Arrange
        let anonymous = app
            .client()
            .get(app.url("/api/events"))
            .send()
            .await
            .unwrap();
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let res = admin.get(app.url("/api/events")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{}", app.db.label);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut res = res;
        create_order(&app, "LIVE-1", 1234, SignType::Md5).await;

        // Act: one good notification, one with a broken signature
        let good = signed(
            fields(&app, "LIVE-1", 1234),
            &app.merchant.api_key,
            SignType::Md5,
        );
        let bad = good.replace("<sign>", "<sign>0");
        for body in [good, bad] {
            reqwest::Client::new()
                .post(app.url("/wxpay/notify/payment"))
                .body(body)
                .send()
                .await
                .unwrap();
        }
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !(text.contains("event: order_paid") && text.contains("event: notification_rejected"))
        {
            let chunk = tokio::time::timeout_at(deadline, res.chunk())
                .await
                .expect("both events within 10 s")
                .unwrap()
                .expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }

        // Assert
        assert_eq!(anonymous.status(), 401);
        assert!(text.contains("\"out_trade_no\":\"LIVE-1\""), "{text}");
        assert!(text.contains("\"total_fee\":1234"), "{text}");
        assert!(text.contains("\"verdict\":\"bad_signature\""), "{text}");
    }
}
