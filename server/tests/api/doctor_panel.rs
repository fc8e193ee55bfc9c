//! The Settings page's pre-flight check (`settings/doctor`): admin only, the same checks as
//! `paydesk doctor` — in sandbox mode against the built-in simulator, which the report
//! names — with every run audited, its calls in the outbound-call log, and one run at a
//! time with a pause between runs.

use paydesk_sim::{RunningSim, SimConfig};
use serde_json::{json, Value};

use crate::helpers::{spawn_apps, spawn_apps_with, TestApp, ADMIN_PASSWORD, API_CALLS_LIST_FORM};

const ENDPOINT: &str = "settings/doctor";

/// The line of `check` (its command-line name's key, e.g. `credentials`).
fn line<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["check"] == check)
        .unwrap_or_else(|| panic!("no {check} line in {report:#}"))
}

async fn run(app: &TestApp, client: &reqwest::Client) -> Value {
    app.call_expect(client, ENDPOINT, &[], 200)
        .await
        .json()
        .await
        .unwrap()
}

/// The audit log's `doctor.run` entries, newest first.
async fn audited_runs(app: &TestApp, admin: &reqwest::Client) -> Vec<Value> {
    let audit: Value = app
        .call_expect(admin, "audit/list", &[("action", "doctor.run")], 200)
        .await
        .json()
        .await
        .unwrap();
    audit["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_pre_flight_check_is_for_admins_and_in_sandbox_checks_the_built_in_simulator() {
    for app in spawn_apps().await {
        let label = app.db.label;
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let mut others = Vec::new();
        for role in ["staff", "support", "manager"] {
            others.push(
                app.new_user_signed_in(&admin, &format!("doc-{role}"), role)
                    .await,
            );
        }

        // Act + Assert: signed out 401, below admin 403, nothing asked of WeChat Pay
        app.call_expect(&app.client(), ENDPOINT, &[], 401).await;
        for client in &others {
            app.call_expect(client, ENDPOINT, &[], 403).await;
        }
        let report = run(&app, &admin).await;

        assert_eq!(report["target"], "simulator", "{label}: {report:#}");
        assert_eq!(report["verdict"], "pass", "{label}: {report:#}");
        for check in [
            "configuration",
            "database",
            "notify_url",
            "refund_notify_url",
            "credentials",
            "sign_type",
            "certificate",
            "refund_channel",
            "clock",
        ] {
            assert_eq!(
                line(&report, check)["verdict"],
                "pass",
                "{check} on {label}"
            );
        }
        let credentials = &line(&report, "credentials")["finding"];
        assert_eq!(credentials["code"], "credentials_accepted", "{label}");
        assert_eq!(
            line(&report, "notify_url")["finding"]["code"],
            "url_sandbox",
            "{label}"
        );
        assert!(report["ran_at"].as_i64().unwrap() > 0);
        assert!(
            !report
                .to_string()
                .contains(app.simulator().api_key().expose()),
            "{label}"
        );
        // No money moved: the refund asked for an order that cannot exist.
        assert!(app.simulator().refunds().is_empty(), "{label}");

        // Audited once, by the admin
        let entries = audited_runs(&app, &admin).await;
        assert_eq!(entries.len(), 1, "{label}: {entries:#?}");
        assert_eq!(entries[0]["actor"], "admin");
        assert!(
            entries[0]["detail"]
                .as_str()
                .unwrap()
                .contains("built-in simulator"),
            "{label}: {entries:#?}"
        );

        // Its calls are in the outbound-call log like any other
        app.state.api_calls.flush().await;
        let calls: Value = app
            .call_expect(&admin, "logs/api_calls", API_CALLS_LIST_FORM, 200)
            .await
            .json()
            .await
            .unwrap();
        let asked = credentials["out_trade_no"].as_str().unwrap();
        let rows = calls["rows"].as_array().unwrap();
        for endpoint in ["orderquery", "refund"] {
            assert!(
                rows.iter().any(|r| r["out_trade_no"] == asked
                    && r["endpoint"].as_str().unwrap().contains(endpoint)),
                "{endpoint} for {asked} not logged on {label}: {calls:#}"
            );
        }
    }
}

#[tokio::test]
async fn a_second_run_while_one_is_under_way_or_moments_after_is_refused() {
    for app in spawn_apps().await {
        let label = app.db.label;
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let second_admin = app.new_user_signed_in(&admin, "doc-admin2", "admin").await;

        // Act: two at once (two admins), then one right after
        let (a, b) = tokio::join!(
            app.call(&admin, ENDPOINT, &[]),
            app.call(&second_admin, ENDPOINT, &[])
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        let again = app.call(&admin, ENDPOINT, &[]).await;

        // Assert: one ran; the other was refused as running (409) or too soon (429)
        assert_eq!(statuses[0], 200, "{label}: {statuses:?}");
        assert!(matches!(statuses[1], 409 | 429), "{label}: {statuses:?}");
        assert_eq!(again.status(), 429, "{label}");
        let body: Value = again.json().await.unwrap();
        let seconds = body["TooSoon"]["seconds"].as_u64().unwrap_or(0);
        assert!((1..=10).contains(&seconds), "{label}: {body}");
        // Only the run that happened is in the audit log.
        assert_eq!(audited_runs(&app, &admin).await.len(), 1, "{label}");
    }
}

#[tokio::test]
async fn a_merchant_configuration_with_a_wrong_key_fails_its_credentials_line() {
    // Arrange: merchant mode against a standalone simulator in its strict profile, with a
    // key that is not the merchant's.
    let dir = tempfile::tempdir().unwrap();
    let sim: RunningSim = paydesk_sim::start(SimConfig {
        cert_dir: dir.path().to_path_buf(),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let certs = sim.cert_paths();
    let apps = spawn_apps_with(json!({
        "simulator": "off",
        "wxpay": {
            "appid": sim.appid(),
            "mch_id": sim.mch_id(),
            "api_key": "0123456789abcdef0123456789abcdef",
            "base_url": sim.http_base_url(),
            "refund_base_url": sim.tls_base_url(),
            "ca_pem": certs.ca,
            "cert_pem": certs.client_cert,
            "key_pem": certs.client_key,
            // The notify URLs point at the app on loopback (the helper sets them).
            "allow_insecure_notify_urls": "on",
        },
        "sync": { "enabled": "off" },
        "refunds": { "enabled": "off" },
    }))
    .await;
    for app in apps {
        let label = app.db.label;
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;

        // Act
        let report = run(&app, &admin).await;

        // Assert
        assert_eq!(report["target"], "wechat_pay", "{label}");
        assert_eq!(report["verdict"], "fail", "{label}: {report:#}");
        let credentials = line(&report, "credentials");
        assert_eq!(credentials["verdict"], "fail", "{label}: {report:#}");
        assert_eq!(credentials["finding"]["code"], "refused", "{label}");
        assert_eq!(credentials["finding"]["problem"], "api_key", "{label}");
        assert_eq!(line(&report, "sign_type")["verdict"], "skip", "{label}");
        assert_eq!(
            line(&report, "notify_url")["finding"]["code"],
            "url_loopback",
            "{label}"
        );
        assert_eq!(line(&report, "database")["verdict"], "pass", "{label}");
        assert!(!report.to_string().contains("0123456789abcdef"), "{label}");
    }
}
