use crate::helpers::{html_headers, spawn_apps, ADMIN_PASSWORD};

#[tokio::test]
async fn signed_out_page_request_redirects_to_sign_in_with_next() {
    for app in spawn_apps().await {
        // Act
        let res = app
            .client()
            .get(app.url("/users?x=1"))
            .headers(html_headers())
            .send()
            .await
            .unwrap();

        // Assert
        assert_eq!(res.status(), 302, "{}", app.db.label);
        assert_eq!(res.headers()["location"], "/login?next=/users%3Fx%3D1");
    }
}

#[tokio::test]
async fn session_cookie_is_http_only_strict_and_its_id_changes_at_each_sign_in() {
    for app in spawn_apps().await {
        let client = app.client();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let res = app
                .call(
                    &client,
                    "auth/login",
                    &[("username", "admin"), ("password", ADMIN_PASSWORD)],
                )
                .await;
            assert_eq!(res.status(), 200, "{}", app.db.label);
            let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
            assert!(cookie.starts_with("paydesk_session="), "{cookie}");
            assert!(cookie.contains("HttpOnly"), "{cookie}");
            assert!(cookie.contains("SameSite=Strict"), "{cookie}");
            assert!(
                !cookie.contains("Secure"),
                "not Secure unless configured: {cookie}"
            );
            ids.push(cookie.split(';').next().unwrap().to_owned());
        }
        assert_ne!(ids[0], ids[1], "the session id must be cycled at sign-in");
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer_then_throttling_says_when() {
    for app in spawn_apps().await {
        let client = app.client();
        let unknown = app
            .call(
                &client,
                "auth/login",
                &[("username", "ghost"), ("password", "whatever 123")],
            )
            .await;
        let unknown = (unknown.status(), unknown.text().await.unwrap());
        let mut wrong = None;
        for _ in 0..5 {
            let res = app
                .call(
                    &client,
                    "auth/login",
                    &[("username", "admin"), ("password", "wrong password")],
                )
                .await;
            wrong = Some((res.status(), res.text().await.unwrap()));
        }
        assert_eq!(Some(unknown.clone()), wrong, "{}", app.db.label);
        assert_eq!(unknown.0, 401);

        // The right password is refused too while throttled, with the wait in minutes.
        let res = app
            .call(
                &client,
                "auth/login",
                &[("username", "admin"), ("password", ADMIN_PASSWORD)],
            )
            .await;
        assert_eq!(res.status(), 429, "{}", app.db.label);
        let body: serde_json::Value = res.json().await.unwrap();
        let minutes = body["Throttled"]["minutes"]
            .as_i64()
            .expect("minutes in the throttle error");
        assert!((1..=15).contains(&minutes), "{body}");
    }
}

#[tokio::test]
async fn next_redirect_after_sign_in_stays_on_this_site() {
    for app in spawn_apps().await {
        for (next, expected) in [
            ("/users", "/users"),
            ("//evil.example/x", "/"),
            ("https://evil.example", "/"),
        ] {
            let res = app
                .call(
                    &app.client(),
                    "auth/login",
                    &[
                        ("username", "admin"),
                        ("password", ADMIN_PASSWORD),
                        ("next", next),
                    ],
                )
                .await;
            assert_eq!(res.status(), 200);
            assert_eq!(
                res.headers()["location"],
                expected,
                "next={next} on {}",
                app.db.label
            );
        }
    }
}

#[tokio::test]
async fn a_cross_site_server_function_call_is_refused_before_it_runs() {
    for app in spawn_apps().await {
        let res = app
            .client()
            .post(app.url("/api/auth/login"))
            .header("origin", "https://evil.example")
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{}", app.db.label);
        assert!(res.headers().get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn sign_out_ends_the_session_and_is_audited() {
    for app in spawn_apps().await {
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let res = app.call(&admin, "auth/logout", &[]).await;
        assert_eq!(res.status(), 200);
        let res = app.call(&admin, "users/list", &[]).await;
        assert_eq!(res.status(), 401, "{}", app.db.label);
        let log = paydesk_core::audit::list(&app.db.db, None, Some("logout"), 5)
            .await
            .unwrap();
        assert_eq!(log.len(), 1);
    }
}

#[tokio::test]
async fn the_sign_in_page_renders_in_chinese_and_switches_to_english() {
    for app in spawn_apps().await {
        let client = app.client();
        let page = client
            .get(app.url("/login"))
            .headers(html_headers())
            .send()
            .await
            .unwrap();
        let html = page.text().await.unwrap();
        assert!(
            html.contains("<html lang=\"zh-CN\""),
            "{}",
            &html[..200.min(html.len())]
        );
        assert!(html.contains("登录 paydesk"));

        let res = client
            .get(app.url("/lang/en?next=/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/login");
        let html = client
            .get(app.url("/login"))
            .headers(html_headers())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("<html lang=\"en\""));
        assert!(html.contains("Sign in to paydesk"));

        let res = client
            .get(app.url("/lang/zh?next=https://evil.example"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["location"], "/");
    }
}
