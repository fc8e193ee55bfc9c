//! The callback flood over HTTP (issue 15): a sender over its allowance of stored refusals
//! is counted instead, across two instances on one database, the count shows on the
//! failures page, and a valid notification from the same address is still applied.

use std::time::Duration;

use paydesk_core::notify::Verdict;
use paydesk_core::now_ms;
use wxpay::notify::REPLY_SUCCESS;
use wxpay::SignType;

use crate::callbacks::{create_order, post_notification, signed_notification};
use crate::helpers::{spawn_apps_with, spawn_sibling, TestApp, ADMIN_PASSWORD};

const JUNK: &str = "<xml><not-a-notification/></xml> and then some";

/// Waits for a fresh minute when this one is nearly over (the allowance is per minute).
async fn fresh_minute() {
    let into = now_ms().rem_euclid(60_000);
    if into > 45_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into + 50) as u64)).await;
    }
}

/// The failures page's counted refusals from 127.0.0.1, once the instances have added
/// them (each adds its counts once a second), as `(cause, count)`.
async fn counted_on_the_page(app: &TestApp, expected: i64) -> Vec<(String, i64)> {
    let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
    let mut last = Vec::new();
    for _ in 0..100 {
        let view: serde_json::Value = app
            .call(&admin, "logs/failures", &[("window", "24h")])
            .await
            .json()
            .await
            .unwrap();
        last = view["counted"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["sender"] == "127.0.0.1")
            .map(|c| {
                (
                    c["cause"].as_str().unwrap().to_owned(),
                    c["count"].as_i64().unwrap(),
                )
            })
            .collect();
        if last.iter().map(|(_, n)| n).sum::<i64>() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test]
async fn refusals_beyond_the_allowance_are_counted_across_instances_and_shown_on_the_failures_page()
{
    let limits = serde_json::json!({"callbacks": {"refused_per_minute": 3, "hold_ms": 0}});
    for app in spawn_apps_with(limits.clone()).await {
        // Arrange: a second instance on the same database
        fresh_minute().await;
        let sibling = spawn_sibling(&app, limits.clone()).await;

        // Act: junk to both instances from one address
        for _ in 0..5 {
            assert!(post_notification(&app.base, JUNK).await.1.contains("FAIL"));
            assert!(post_notification(&sibling.base, JUNK)
                .await
                .1
                .contains("FAIL"));
        }

        // Assert: three stored in all, seven counted and shown
        let stored = paydesk_core::testing::recent_notifications(&app.db.db, None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.verdict == Verdict::Malformed)
            .count();
        assert_eq!(stored, 3, "{}", app.db.label);
        let counted = counted_on_the_page(&app, 7).await;
        assert_eq!(
            counted,
            vec![("malformed".to_owned(), 7)],
            "{}",
            app.db.label
        );
    }
}

#[tokio::test]
async fn a_valid_notification_from_a_flooding_address_is_applied_and_the_junk_is_held_back() {
    let limits = serde_json::json!({"callbacks": {"refused_per_minute": 1, "hold_ms": 300}});
    for app in spawn_apps_with(limits).await {
        // Arrange: the address (127.0.0.1) is over its allowance; what is only counted is
        // answered after the hold
        fresh_minute().await;
        post_notification(&app.base, JUNK).await;
        for _ in 0..3 {
            let started = std::time::Instant::now();
            assert!(post_notification(&app.base, JUNK).await.1.contains("FAIL"));
            assert!(
                started.elapsed() >= Duration::from_millis(300),
                "a counted refusal was answered after {:?} ({})",
                started.elapsed(),
                app.db.label
            );
        }
        create_order(&app, "FLOOD-VALID", 1200, SignType::Md5).await;
        let body = signed_notification(&app, "FLOOD-VALID", 1200);

        // Act
        let reply = post_notification(&app.base, body).await.1;

        // Assert
        assert_eq!(reply, REPLY_SUCCESS, "{}", app.db.label);
        let rows = paydesk_core::testing::recent_notifications(&app.db.db, Some("FLOOD-VALID"), 10)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{}", app.db.label);
        assert_eq!(rows[0].verdict, Verdict::Applied);
    }
}
