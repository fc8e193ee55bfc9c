//! Retention and the disk, through the running server: the daily job runs once among
//! instances on one database, the Settings page shows the policy and the last run,
//! `/readyz` reports free space (200 even when low), and the dashboard shows a banner.

use std::time::Duration;

use paydesk_core::audit;
use paydesk_core::{now_ms, Backend};
use serde_json::json;

use crate::helpers::{spawn_apps_with, spawn_sibling, TestApp, ADMIN_PASSWORD};

const DAY: i64 = 86_400_000;

async fn readyz(app: &TestApp) -> (u16, String) {
    let res = app.client().get(app.url("/readyz")).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Old refused callbacks and an old API call's bodies, for the job to find.
async fn aged_rows(app: &TestApp) {
    let db = &app.db.db;
    for age in [100, 200, 300] {
        sqlx::query(
            r#"insert into notifications (kind, received_at, raw_body, verdict, detail, reply,
                   duration_us, created_at, updated_at)
               values ('payment', $1, 'junk', 'malformed', 'test', 'FAIL', 1, $1, $1)"#,
        )
        .bind(now_ms() - age * DAY)
        .execute(db.writer())
        .await
        .unwrap();
    }
    sqlx::query(
        r#"insert into api_calls (endpoint, latency_ms, request_body, response_body, created_at,
               updated_at)
           values ('orderquery', 5, '<xml/>', '<xml/>', $1, $1)"#,
    )
    .bind(now_ms() - 40 * DAY)
    .execute(db.writer())
    .await
    .unwrap();
}

#[tokio::test]
async fn two_instances_on_one_database_prune_once_a_day() {
    for app in spawn_apps_with(json!({"retention": {"enabled": "off"}})).await {
        // Arrange: old rows, then two instances whose job is due at once (00:00)
        let label = app.db.label;
        aged_rows(&app).await;
        let due = json!({"retention": {"run_at": "00:00"}});

        // Act
        let _b = spawn_sibling(&app, due.clone()).await;
        let _c = spawn_sibling(&app, due).await;
        let mut done = None;
        for _ in 0..200 {
            done = paydesk_core::retention::last_run(&app.db.db).await.unwrap();
            if done.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Time for a second run, were the lease not to hold.
        tokio::time::sleep(Duration::from_millis(500)).await;

        // Assert: one run, audited once, that took the old rows
        let (_, report) = done.unwrap_or_else(|| panic!("{label}: the job never ran"));
        assert_eq!(report.rows("notifications.refused"), 3, "{label}");
        assert_eq!(report.rows("api_calls.bodies"), 1, "{label}");
        let runs = audit::list(&app.db.db, None, Some(audit::action::RETENTION_PRUNE), 10)
            .await
            .unwrap();
        assert_eq!(runs.len(), 1, "{label}: {runs:?}");
        let entry = &runs[0];
        assert_eq!(entry.actor, "system", "{label}");
        assert!(
            entry
                .detail
                .as_deref()
                .unwrap_or_default()
                .contains("notifications.refused 3"),
            "{label}: {entry:?}"
        );
        let left: i64 = sqlx::query_scalar("select count(*) from notifications")
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
        assert_eq!(left, 0, "{label}");
    }
}

#[tokio::test]
async fn the_settings_page_shows_the_policy_and_the_last_run() {
    for app in spawn_apps_with(json!({"retention": {"api_call_bodies_days": 14}})).await {
        // Arrange
        let label = app.db.label;
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        paydesk_core::retention::run(&app.db.db, &Default::default(), &audit::Actor::cli(), None)
            .await
            .unwrap();

        // Act
        let html = app.html(&admin, "/settings").await;

        // Assert: each line with its age or why it is kept, and when it last ran
        assert!(html.contains("data-testid=\"retention\""), "{label}");
        assert!(
            html.contains("data-name=\"api_calls.bodies\""),
            "{label}: {html}"
        );
        assert!(html.contains("14 天"), "{label}: the configured age");
        assert!(html.contains("data-name=\"audit_log\""), "{label}");
        assert!(
            html.contains("审计日志只追加"),
            "{label}: the reason it is kept"
        );
        let last = html
            .split("data-testid=\"retention-last-run\">")
            .nth(1)
            .unwrap_or_default();
        assert!(last.contains("notifications.refused 0"), "{label}: {last}");
    }
}

#[tokio::test]
async fn readyz_reports_free_space_and_stays_ready_when_it_is_low() {
    // Arrange: one app with the default threshold, one whose threshold is above any disk
    for (low, extra) in [
        (false, json!({"disk": {"low_free_mib": 1}})),
        (true, json!({"disk": {"low_free_mib": 1u64 << 40}})),
    ] {
        for app in spawn_apps_with(extra.clone()).await {
            // Act
            let (status, body) = readyz(&app).await;

            // Assert
            let label = app.db.label;
            assert_eq!(status, 200, "{label}: {body}");
            assert!(body.starts_with("ready\n"), "{label}: {body}");
            match app.db.db.backend() {
                Backend::Sqlite => {
                    assert!(
                        body.contains(&format!("disk_low {low}\n")),
                        "{label}: {body}"
                    );
                    let free: u64 = body
                        .lines()
                        .find_map(|l| l.strip_prefix("disk_free_bytes "))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("{label}: {body}"));
                    assert!(free > 0, "{label}");
                }
                Backend::Postgres => {
                    assert!(
                        body.contains("disk_check not_applicable"),
                        "{label}: {body}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn signed_in_users_see_a_banner_while_the_disk_is_low() {
    // Thresholds far on either side of the machine's free space: the default (1 GiB) would
    // make this test depend on how full the test machine's disk is.
    for (low, extra) in [
        (false, json!({"disk": {"low_free_mib": 1}})),
        (true, json!({"disk": {"low_free_mib": 1u64 << 40}})),
    ] {
        for app in spawn_apps_with(extra).await {
            // Arrange
            let label = app.db.label;
            let admin = app.signed_in("admin", ADMIN_PASSWORD).await;

            // Act
            let html = app.html(&admin, "/").await;
            let signed_out = app.html(&app.client(), "/login").await;

            // Assert: PostgreSQL's disk is not ours to check, so no banner there
            let expected = low && app.db.db.backend() == Backend::Sqlite;
            assert_eq!(
                html.contains("data-testid=\"disk-low-banner\""),
                expected,
                "{label} low={low}"
            );
            if expected {
                assert!(html.contains("磁盘空间不足"), "{label}");
            }
            assert!(
                !signed_out.contains("disk-low-banner"),
                "{label}: not before sign-in"
            );
        }
    }
}
