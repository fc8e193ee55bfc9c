//! `GET /api/events`: the live event stream the dashboard subscribes to. Signed-out callers
//! are refused; a signed-in user receives a payment and a refused callback as they happen.

use std::time::Duration;

use wxpay::SignType;

use crate::callbacks::{create_order, post_notification, signed_notification};
use crate::helpers::{spawn_apps, ADMIN_PASSWORD};

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
        let good = signed_notification(&app, "LIVE-1", 1234);
        let bad = good.replace("<sign>", "<sign>0");
        for body in [good, bad] {
            post_notification(&app.base, body).await;
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

/// Reads an SSE response until `done(text)` or the stream ends; returns what came and
/// whether the stream ended.
async fn read_until(
    res: &mut reqwest::Response,
    deadline: tokio::time::Instant,
    done: impl Fn(&str) -> bool,
) -> (String, bool) {
    let mut text = String::new();
    while !done(&text) {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Err(_) => return (text, false),
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) | Ok(Err(_)) => return (text, true),
        }
    }
    (text, false)
}

#[tokio::test]
async fn an_open_stream_ends_when_its_session_does_and_others_go_on() {
    for app in spawn_apps().await {
        // Arrange: the clerk watches live on the phone, the admin on the desk
        let (admin, laptop, phone) = app.clerk_on_two_devices().await;
        let opened = tokio::time::Instant::now();
        let mut phone_stream = phone.get(app.url("/api/events")).send().await.unwrap();
        let mut admin_stream = admin.get(app.url("/api/events")).send().await.unwrap();
        assert_eq!(phone_stream.status(), 200, "{}", app.db.label);
        assert_eq!(admin_stream.status(), 200, "{}", app.db.label);

        // Act: the clerk changes the password on the laptop
        app.change_password(&laptop, "clerk password 1", "clerk password 2")
            .await;

        // Assert: the phone's open stream ends at its next check (every 10 s)
        let (_, ended) = read_until(&mut phone_stream, opened + Duration::from_secs(25), |_| {
            false
        })
        .await;
        assert!(
            ended,
            "the phone's stream outlived its session ({})",
            app.db.label
        );
        let res = phone.get(app.url("/api/events")).send().await.unwrap();
        assert_eq!(
            res.status(),
            401,
            "the reconnect is refused ({})",
            app.db.label
        );

        // The admin's stream, checked meanwhile too, still carries events
        tokio::time::sleep_until(opened + Duration::from_secs(11)).await;
        create_order(&app, "LIVE-2", 500, SignType::Md5).await;
        let bad = signed_notification(&app, "LIVE-2", 500).replace("<sign>", "<sign>0");
        post_notification(&app.base, bad).await;
        let (text, ended) = read_until(
            &mut admin_stream,
            tokio::time::Instant::now() + Duration::from_secs(10),
            |t| t.contains("event: notification_rejected"),
        )
        .await;
        assert!(
            !ended,
            "the admin's stream ended ({}): {text}",
            app.db.label
        );
        assert!(text.contains("LIVE-2"), "{text}");
    }
}

/// A second instance on `app`'s database, the admin signed in on the first, and the admin's
/// live stream opened on the second.
async fn watched_on_a_second_instance(
    app: &crate::helpers::TestApp,
) -> (
    crate::helpers::SiblingApp,
    reqwest::Client,
    reqwest::Response,
) {
    let second = crate::helpers::spawn_sibling(app, serde_json::json!({})).await;
    let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
    let res = admin
        .get(format!("{}/api/events", second.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", app.db.label);
    (second, admin, res)
}

#[tokio::test]
async fn a_stream_held_by_one_instance_shows_a_payment_applied_by_another() {
    for app in spawn_apps().await {
        if app.db.label != "postgres" {
            continue; // Several instances share PostgreSQL; SQLite keeps the in-process bus.
        }
        // Arrange: a second instance on the database; the admin signed in on the first
        // watches live on the second (the session is the database's, not an instance's)
        let (_second, _admin, mut res) = watched_on_a_second_instance(&app).await;
        create_order(&app, "LIVE-X1", 4321, SignType::Md5).await;
        // The relay's LISTEN may still be starting: pay once it is surely up, by sending
        // refused callbacks until one shows on the second instance's stream.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let bad = signed_notification(&app, "LIVE-X1", 4321).replace("<sign>", "<sign>0");
            post_notification(&app.base, bad).await;
            let (text, ended) = read_until(
                &mut res,
                tokio::time::Instant::now() + Duration::from_millis(500),
                |t| t.contains("event: notification_rejected"),
            )
            .await;
            assert!(!ended, "the stream ended: {text}");
            if text.contains("event: notification_rejected") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the relay never carried an event"
            );
        }

        // Act: the first instance applies the payment
        let (_, reply) =
            post_notification(&app.base, signed_notification(&app, "LIVE-X1", 4321)).await;
        let (text, _) = read_until(
            &mut res,
            tokio::time::Instant::now() + Duration::from_secs(10),
            |t| t.contains("event: order_paid"),
        )
        .await;

        // Assert: the second instance streamed it, as the first published it
        assert!(reply.contains("SUCCESS"), "{reply}");
        assert!(text.contains("event: order_paid"), "{text}");
        assert!(text.contains("\"out_trade_no\":\"LIVE-X1\""), "{text}");
        assert!(text.contains("\"total_fee\":4321"), "{text}");
    }
}

#[tokio::test]
async fn a_stopping_instance_ends_its_live_streams_asks_for_a_quick_reconnect_and_exits() {
    for app in spawn_apps().await {
        // Arrange: the admin's live stream is held by a second instance
        let (second, admin, mut res) = watched_on_a_second_instance(&app).await;

        // Act: SIGTERM's shutdown, with the stream open
        let readyz = format!("{}/readyz", second.base);
        let exited = second.stop();
        // The signal reaches the server's task a moment later: ask until it has.
        let mut draining = None;
        for _ in 0..50 {
            let res = reqwest::get(&readyz).await.unwrap();
            if res.status() != reqwest::StatusCode::OK {
                let connection = res
                    .headers()
                    .get("connection")
                    .map(|v| v.to_str().unwrap().to_owned());
                draining = Some((res.status(), connection, res.text().await.unwrap()));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (text, ended) = read_until(
            &mut res,
            tokio::time::Instant::now() + Duration::from_secs(10),
            |_| false,
        )
        .await;
        let result = tokio::time::timeout(Duration::from_secs(15), exited)
            .await
            .expect("the instance exits with a live stream open");

        // Assert: the stream ended after asking for a reconnect in half a second, the
        // instance exited cleanly, and the session still works on the other instance
        assert_eq!(
            draining,
            Some((
                reqwest::StatusCode::SERVICE_UNAVAILABLE,
                Some("close".to_owned()),
                "stopping\n".to_owned()
            )),
            "{}: while it drains it says so and closes each connection",
            app.db.label
        );
        assert!(ended, "{}: the stream did not end: {text}", app.db.label);
        assert!(text.contains("retry: 500"), "{text}");
        result.unwrap().unwrap();
        let again = admin.get(app.url("/api/events")).send().await.unwrap();
        assert_eq!(again.status(), 200, "{}", app.db.label);
    }
}
