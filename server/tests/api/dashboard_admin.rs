//! The home, audit and settings server functions and pages: who may call them (checked on
//! the server: 401 signed out, 403 below the role), what the audit log returns, and that
//! the settings never carry the API key, the AppSecret, the alert webhook's key or the
//! merchant certificate's private key — tested with known values, in sandbox mode and with
//! a merchant configuration.

use crate::helpers::{html_headers, spawn_apps, spawn_apps_with, TestApp, ADMIN_PASSWORD};

/// A page as the browser first receives it (server-rendered, with its hydration data).
async fn page_html(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let res = client
        .get(app.url(path))
        .headers(html_headers())
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", app.db.label));
    assert_eq!(res.status(), 200, "{path}");
    res.text()
        .await
        .unwrap_or_else(|e| panic!("reading GET {path} on {}: {e}", app.db.label))
}

async fn with_roles(app: &TestApp) -> Vec<(&'static str, reqwest::Client)> {
    let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
    let mut out = Vec::new();
    for (name, role) in [
        ("clerk1", "staff"),
        ("support1", "support"),
        ("manager1", "manager"),
    ] {
        out.push((role, app.new_user_signed_in(&admin, name, role).await));
    }
    out.push(("admin", admin));
    out
}

#[tokio::test]
async fn audit_and_settings_are_for_admins_and_home_for_every_signed_in_user() {
    for app in spawn_apps().await {
        let label = app.db.label;
        let clients = with_roles(&app).await;

        // Signed out: 401 everywhere
        for endpoint in ["home/stats", "audit/list", "settings/get"] {
            app.call_expect(&app.client(), endpoint, &[], 401).await;
        }
        for (role, client) in &clients {
            // Home: every role
            let res = app.call_expect(client, "home/stats", &[], 200).await;
            let stats: serde_json::Value = res.json().await.unwrap();
            assert_eq!(stats["days"].as_array().unwrap().len(), 14);
            // Audit and settings: admin only
            for endpoint in ["audit/list", "settings/get"] {
                let res = app.call(client, endpoint, &[]).await;
                let expected = if *role == "admin" { 200 } else { 403 };
                assert_eq!(res.status(), expected, "{endpoint} as {role} on {label}");
            }
        }

        // The pages: signed out → sign-in; below admin → the server's refusal, no data.
        for path in ["/", "/audit", "/settings"] {
            let res = app
                .client()
                .get(app.url(path))
                .headers(html_headers())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 302, "{path} signed out on {label}");
        }
        // Home links to the refunds and failures pages only for those who may open them.
        for (role, client) in &clients {
            let html = page_html(&app, client, "/").await;
            assert!(html.contains("data-testid=\"home-stats\""), "/ as {role}");
            let links = html.contains("href=\"/refunds\"") || html.contains("href=\"/failures\"");
            assert_eq!(links, *role != "staff", "links on / as {role} on {label}");
        }
        let manager = &clients[2].1;
        for path in ["/audit", "/settings"] {
            let html = page_html(&app, manager, path).await;
            assert!(html.contains("data-testid=\"refused\""), "{path}: {html}");
            assert!(!html.contains("settings-api-key"), "{path}");
            assert!(!html.contains("audit-table"), "{path}");
        }
    }
}

#[tokio::test]
async fn the_audit_log_filters_by_action_and_actor_newest_first() {
    for app in spawn_apps().await {
        let label = app.db.label;
        let clients = with_roles(&app).await;
        let admin = &clients[3].1;

        let res = app
            .call_expect(admin, "audit/list", &[("action", "user.create")], 200)
            .await;
        let page: serde_json::Value = res.json().await.unwrap();
        let targets: Vec<&str> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["target"].as_str().unwrap())
            .collect();
        // The first admin was created by paydesk itself at the first start.
        assert_eq!(
            targets,
            ["manager1", "support1", "clerk1", "admin"],
            "{label}"
        );
        assert_eq!(page["entries"][0]["actor"], "admin");
        assert_eq!(page["entries"][3]["actor"], "system");
        assert!(page["next"].is_null());

        let res = app
            .call(
                admin,
                "audit/list",
                &[("action", "login.success"), ("actor", "clerk1")],
            )
            .await;
        let page: serde_json::Value = res.json().await.unwrap();
        assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{label}");

        app.call_expect(admin, "audit/list", &[("action", "drop table")], 422)
            .await;
        app.call_expect(admin, "audit/list", &[("from", "yesterday")], 422)
            .await;
    }
}

/// Everything an admin can see of the settings: the server function's JSON and the
/// rendered page.
async fn settings_outputs(app: &TestApp) -> (serde_json::Value, String) {
    let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
    let res = app.call_expect(&admin, "settings/get", &[], 200).await;
    let json: serde_json::Value = res.json().await.unwrap();
    let html = page_html(app, &admin, "/settings").await;
    assert!(
        html.contains("settings-api-key"),
        "the page rendered: {html}"
    );
    (json, html)
}

/// The base64 lines of every private key PEM in `dir`.
fn private_key_lines(dir: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        if text.contains("PRIVATE KEY") {
            lines.extend(
                text.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() > 20)
                    .map(str::to_owned),
            );
        }
    }
    lines
}

#[tokio::test]
async fn sandbox_settings_never_show_the_key_the_app_secret_or_the_private_key() {
    for app in spawn_apps().await {
        let label = app.db.label;
        let api_key = app.merchant.api_key.expose().to_owned();
        let app_secret = app
            .state
            .wxpay
            .config()
            .app_secret
            .as_ref()
            .map(|s| s.expose().to_owned())
            .expect("the simulator gives an AppSecret");
        let (json, html) = settings_outputs(&app).await;
        let text = json.to_string();

        for (what, secret) in [("API key", &api_key), ("AppSecret", &app_secret)] {
            assert!(secret.len() >= 16, "{what} is a real secret");
            for out in [&text, &html] {
                assert!(!out.contains(secret.as_str()), "{what} leaked on {label}");
                // Not even its first half.
                assert!(
                    !out.contains(&secret[..secret.len() / 2]),
                    "{what} half leaked"
                );
            }
        }
        // The simulator's merchant key sits beside the SQLite file (PostgreSQL: a temp
        // folder; SQLite alone is checked for it).
        if let Some(file) = app.db.url.strip_prefix("sqlite://") {
            let cert_dir = std::path::Path::new(file)
                .parent()
                .unwrap()
                .join("sim-certs");
            let key_lines = private_key_lines(&cert_dir);
            assert!(
                !key_lines.is_empty(),
                "found the merchant key in {cert_dir:?}"
            );
            for line in &key_lines {
                assert!(!text.contains(line.as_str()) && !html.contains(line.as_str()));
            }
        }

        assert_eq!(json["environment"], "Simulator", "{label}");
        assert_eq!(
            json["api_key_masked"],
            format!("••••••••{}", &api_key[api_key.len() - 4..])
        );
        assert_eq!(json["api_key_len"], 32);
        assert_eq!(json["app_secret_set"], true);
        assert!(json["certificate"]["serial"].as_str().unwrap().len() > 4);
        assert!(json["certificate_days_left"].as_i64().unwrap() > 30);
        assert!(json["notify_url"]
            .as_str()
            .unwrap()
            .ends_with("/wxpay/notify/payment"));
        // The top bar's badge, on every page.
        assert!(html.contains("data-testid=\"sandbox-badge\""), "{label}");
    }
}

#[tokio::test]
async fn merchant_settings_mask_known_secrets_and_show_production_without_a_badge() {
    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    const SECRET: &str = "mp-app-secret-known-value-7f3e91";
    const HOOK_KEY: &str = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa";
    let apps = spawn_apps_with(serde_json::json!({
        "simulator": "off",
        "wxpay": {
            "appid": "wx2421b1c4370ec43b",
            "mch_id": "10000100",
            "api_key": KEY,
            "sign_type": "HMAC-SHA256",
            "notify_url": "https://pay.example.com/wxpay/notify/payment",
            "refund_notify_url": "https://pay.example.com/wxpay/notify/refund",
        },
        "mp": { "app_secret": SECRET },
        "alerts": { "webhook_url": format!("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={HOOK_KEY}") },
        "sync": { "enabled": "off" },
        "refunds": { "enabled": "off" },
    }))
    .await;
    for app in apps {
        let label = app.db.label;
        let (json, html) = settings_outputs(&app).await;
        let text = json.to_string();
        for secret in [KEY, SECRET, HOOK_KEY, &KEY[..16], &SECRET[..16]] {
            assert!(!text.contains(secret), "{secret} in JSON on {label}");
            assert!(!html.contains(secret), "{secret} in the page on {label}");
        }
        assert_eq!(json["environment"], "Production", "{label}");
        assert_eq!(json["api_key_masked"], "••••••••6a2d");
        assert_eq!(json["app_secret_set"], true);
        assert_eq!(json["sign_type"], "HMAC-SHA256");
        assert_eq!(json["mch_id"], "10000100");
        assert_eq!(json["alerts_webhook_host"], "qyapi.weixin.qq.com");
        assert_eq!(
            json["notify_url"],
            "https://pay.example.com/wxpay/notify/payment"
        );
        assert!(json["certificate"].is_null());
        assert_eq!(json["certificate_configured"], false);
        assert_eq!(json["sync_enabled"], false);
        assert!(html.contains("••••••••6a2d"), "{label}");
        assert!(!html.contains("data-testid=\"sandbox-badge\""), "{label}");
    }
}
