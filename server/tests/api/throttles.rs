//! Issue 15 on the dashboard's side, over HTTP: sessions that really go idle and have an
//! absolute end, the cross-site check against `PAYDESK_PUBLIC_URL`, "busy" when password
//! hashing is at its bound, and the password change throttled like sign-in.

use paydesk_core::{now_ms, Db};
use tower_sessions::session::Record;

use crate::helpers::{spawn_apps, spawn_apps_with, TestApp, ADMIN_PASSWORD};

/// The only stored session's id, record and expiry column.
async fn only_session(db: &Db) -> (String, Record, i64) {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("select id, data, expiry_date from sessions")
            .fetch_all(db.reader())
            .await
            .unwrap();
    assert_eq!(rows.len(), 1, "one signed-in session expected");
    let (id, data, expiry) = rows.into_iter().next().unwrap();
    // Typed: the record's id is an i128, which `serde_json::Value` would round to a float.
    (id, serde_json::from_str(&data).unwrap(), expiry)
}

/// Rewrites the only session as if time had passed: `values` into its data, and its idle
/// expiry moved to `expiry_date`.
async fn age_session(db: &Db, values: &[(&str, i64)], expiry_date: i64) {
    let (id, mut record, _) = only_session(db).await;
    for (key, value) in values {
        record
            .data
            .insert((*key).to_owned(), serde_json::json!(value));
    }
    sqlx::query("update sessions set data = $1, expiry_date = $2 where id = $3")
        .bind(serde_json::to_string(&record).unwrap())
        .bind(expiry_date)
        .bind(id)
        .execute(db.writer())
        .await
        .unwrap();
}

async fn users_list_status(app: &TestApp, client: &reqwest::Client) -> u16 {
    app.call(client, "users/list", &[]).await.status().as_u16()
}

#[tokio::test]
async fn activity_keeps_a_session_alive_past_its_idle_time() {
    for app in spawn_apps().await {
        // Arrange: signed in; the session was last extended ten minutes ago and its idle
        // time runs out in two seconds.
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let now = now_ms();
        age_session(
            &app.db.db,
            &[("paydesk.seen_at", now - 600_000)],
            now + 2_000,
        )
        .await;

        // Act: the user does something, then waits past the old expiry.
        assert_eq!(
            users_list_status(&app, &admin).await,
            200,
            "{}",
            app.db.label
        );
        let (_, _, extended) = only_session(&app.db.db).await;
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;

        // Assert: the activity pushed the idle expiry a full idle time (480 min) forward.
        assert!(
            extended > now_ms() + 470 * 60_000,
            "{}: expiry {} ms from now",
            app.db.label,
            extended - now_ms()
        );
        assert_eq!(
            users_list_status(&app, &admin).await,
            200,
            "{}",
            app.db.label
        );
    }
}

#[tokio::test]
async fn the_absolute_lifetime_ends_a_session_however_active() {
    for app in spawn_apps_with(serde_json::json!({
        "session_idle_minutes": 30,
        "session_max_hours": 1,
    }))
    .await
    {
        // Arrange: the end is fixed at sign-in, an hour later.
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let (_, record, _) = only_session(&app.db.db).await;
        let signed_in_at = record.data["paydesk.signed_in_at"].as_i64().unwrap();
        let ends_at = record
            .data
            .get("paydesk.ends_at")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_else(|| panic!("{}: no absolute end stored: {record:?}", app.db.label));
        assert_eq!(ends_at - signed_in_at, 3_600_000, "{}", app.db.label);
        assert_eq!(users_list_status(&app, &admin).await, 200);

        // Act: the hour is over, though the session was just used and is not idle.
        let now = now_ms();
        age_session(&app.db.db, &[("paydesk.ends_at", now - 1)], now + 1_800_000).await;

        // Assert
        assert_eq!(
            users_list_status(&app, &admin).await,
            401,
            "{}",
            app.db.label
        );
        let left: i64 = sqlx::query_scalar("select count(*) from sessions")
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
        assert_eq!(left, 0, "{}: the ended session is deleted", app.db.label);
    }
}

#[tokio::test]
async fn with_a_public_url_only_its_origin_may_call_server_functions() {
    for app in spawn_apps_with(serde_json::json!({ "public_url": "https://pay.example.com" })).await
    {
        let login = [("username", "admin"), ("password", ADMIN_PASSWORD)];
        // Equal to Host, but not the dashboard's public origin: refused.
        let same_as_host = app
            .client()
            .post(app.url("/api/auth/login"))
            .header("origin", &app.base)
            .form(&login)
            .send()
            .await
            .unwrap();
        assert_eq!(same_as_host.status(), 403, "{}", app.db.label);

        // The public origin, through a proxy that rewrote Host to the upstream: accepted.
        let proxied = app
            .client()
            .post(app.url("/api/auth/login"))
            .header("origin", "https://pay.example.com")
            .header("host", "upstream.internal:8080")
            .form(&login)
            .send()
            .await
            .unwrap();
        assert_eq!(proxied.status(), 200, "{}", app.db.label);
        assert!(proxied.headers().get("set-cookie").is_some());
    }
}

#[tokio::test]
async fn sign_in_answers_busy_while_every_hashing_slot_is_taken() {
    for app in spawn_apps().await {
        // Arrange
        let held = app.app_db.hash_slots().hold_all().await;

        // Act
        let client = app.client();
        let busy = app
            .call(
                &client,
                "auth/login",
                &[("username", "admin"), ("password", ADMIN_PASSWORD)],
            )
            .await;
        let status = busy.status();
        let body = busy.text().await.unwrap();
        drop(held);

        // Assert: a typed "busy" (503), and the next try succeeds.
        assert_eq!(status, 503, "{}: {body}", app.db.label);
        assert_eq!(body, "\"Busy\"", "{}", app.db.label);
        app.signed_in("admin", ADMIN_PASSWORD).await;
    }
}

#[tokio::test]
async fn changing_ones_password_is_throttled_like_sign_in() {
    for app in spawn_apps().await {
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        for _ in 0..paydesk_core::auth::USER_LIMIT {
            app.call_expect(
                &admin,
                "account/change_password",
                &[
                    ("current", "a guess at it"),
                    ("new", "new password 123"),
                    ("confirm", "new password 123"),
                ],
                422,
            )
            .await;
        }

        // Act
        let res = app
            .call(
                &admin,
                "account/change_password",
                &[
                    ("current", ADMIN_PASSWORD),
                    ("new", "new password 123"),
                    ("confirm", "new password 123"),
                ],
            )
            .await;

        // Assert
        assert_eq!(res.status(), 429, "{}", app.db.label);
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["Throttled"]["minutes"].as_i64().is_some(), "{body}");
    }
}
