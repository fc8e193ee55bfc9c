use crate::helpers::{html_headers, spawn_apps, spawn_apps_with, TestApp, ADMIN_PASSWORD};

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
                .call_expect(
                    &client,
                    "auth/login",
                    &[("username", "admin"), ("password", ADMIN_PASSWORD)],
                    200,
                )
                .await;
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
            .call_expect(
                &client,
                "auth/login",
                &[("username", "admin"), ("password", ADMIN_PASSWORD)],
                429,
            )
            .await;
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
                .call_expect(
                    &app.client(),
                    "auth/login",
                    &[
                        ("username", "admin"),
                        ("password", ADMIN_PASSWORD),
                        ("next", next),
                    ],
                    200,
                )
                .await;
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

/// Every dashboard answer asks the browser not to frame it (clickjacking an approval), not
/// to sniff its type, not to send its URL to other sites and not to keep it on disk: pages
/// (the not-found page too), server functions and the layers' own refusals alike. A page
/// also allows scripts only from the dashboard or with its own nonce, which every inline
/// script of that page's HTML carries, and each page gets a fresh one.
#[tokio::test]
async fn dashboard_answers_refuse_framing_sniffing_and_referrers() {
    for app in spawn_apps().await {
        let l = app.db.label;
        let client = app.client();
        let page = |path: &'static str| client.get(app.url(path)).headers(html_headers()).send();
        let (login, missing) = (
            page("/login").await.unwrap(),
            page("/no-such-page").await.unwrap(),
        );
        let unauthorized = client
            .post(app.url("/api/users/list"))
            .send()
            .await
            .unwrap();
        let cross_site = client
            .post(app.url("/api/auth/login"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "{l}");
        assert_eq!(missing.status(), 404, "{l}");
        assert_eq!(unauthorized.status(), 401, "{l}");
        assert_eq!(cross_site.status(), 403, "{l}");
        for res in [&login, &missing, &unauthorized, &cross_site] {
            let h = res.headers();
            assert_eq!(h["x-frame-options"], "DENY", "{l} {}", res.url());
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{l} {csp}");
            assert!(csp.contains("base-uri 'none'"), "{l} {csp}");
            assert!(csp.contains("form-action 'self'"), "{l} {csp}");
            assert_eq!(
                h.get_all("content-security-policy").iter().count(),
                1,
                "{l}"
            );
            assert_eq!(h["x-content-type-options"], "nosniff", "{l}");
            assert_eq!(h["referrer-policy"], "same-origin", "{l}");
            assert_eq!(h["cache-control"], "no-store", "{l}");
        }
        let mut nonces = Vec::new();
        for res in [login, missing] {
            let policy = res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(policy.contains("default-src 'self'"), "{l} {policy}");
            assert!(policy.contains("script-src 'self' 'nonce-"), "{l} {policy}");
            let nonce = policy
                .split("'nonce-")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .unwrap_or_else(|| panic!("{l}: no nonce in {policy}"))
                .to_owned();
            assert!(nonce.len() >= 16, "{l} {nonce}");
            let html = res.text().await.unwrap();
            let scripts = html.matches("<script").count();
            assert!(scripts > 0, "{l}");
            assert_eq!(
                html.matches(&format!("nonce=\"{nonce}\"")).count(),
                scripts,
                "{l}: every inline script carries the response's nonce"
            );
            nonces.push(nonce);
        }
        assert_ne!(nonces[0], nonces[1], "{l}: a nonce reused");
    }
}

#[tokio::test]
async fn sign_out_ends_the_session_and_is_audited() {
    for app in spawn_apps().await {
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        app.call_expect(&admin, "auth/logout", &[], 200).await;
        app.call_expect(&admin, "users/list", &[], 401).await;
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
        let html = app.html(&client, "/login").await;
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

/// Signs in with `X-Forwarded-For: forwarded`; the status.
async fn sign_in_forwarded(app: &TestApp, username: &str, password: &str, forwarded: &str) -> u16 {
    app.client()
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", forwarded)
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The address the audit log holds for the latest `action`.
async fn audited_ip(app: &TestApp, action: &str) -> Option<String> {
    paydesk_core::audit::list(&app.app_db, None, Some(action), 1)
        .await
        .unwrap()
        .pop()
        .and_then(|e| e.ip)
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_audited_and_throttled() {
    let trusted = serde_json::json!({ "trusted_proxies": "127.0.0.1, ::1" });
    for app in spawn_apps_with(trusted).await {
        let label = app.db.label;
        // Arrange: one address behind the proxy fails as often as an address may
        for i in 0..paydesk_core::auth::ADDRESS_LIMIT {
            let status =
                sign_in_forwarded(&app, &format!("guess{i}"), "wrong 123", "203.0.113.5").await;
            assert_eq!(status, 401, "{label}");
        }
        assert_eq!(
            audited_ip(&app, "login.failure").await.as_deref(),
            Some("203.0.113.5"),
            "{label}"
        );

        // Act / Assert: that address is throttled, everyone else behind the proxy is not
        let status = sign_in_forwarded(&app, "admin", ADMIN_PASSWORD, "203.0.113.5").await;
        assert_eq!(status, 429, "{label}");
        let status =
            sign_in_forwarded(&app, "admin", ADMIN_PASSWORD, "6.6.6.6, 198.51.100.7").await;
        assert_eq!(status, 200, "{label}");
        assert_eq!(
            audited_ip(&app, "login.success").await.as_deref(),
            Some("198.51.100.7"),
            "{label}"
        );
    }
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_address_is_not_believed() {
    for app in spawn_apps().await {
        let status = sign_in_forwarded(&app, "admin", ADMIN_PASSWORD, "203.0.113.5").await;
        assert_eq!(status, 200, "{}", app.db.label);
        assert_eq!(
            audited_ip(&app, "login.success").await.as_deref(),
            Some("127.0.0.1"),
            "{}",
            app.db.label
        );
    }
}
