//! Merchant mode against WeChat Pay's sandbox (docs/wechatpay-v2.md §2.1, §3, §8.11): a base
//! URL with a sandbox prefix makes paydesk fetch the sandbox key once (getsignkey) and sign,
//! verify and accept callbacks with it alone.

use std::time::Duration;

use paydesk_core::orders::OrderStatus;
use paydesk_core::testing;
use paydesk_sim::{PayRequest, RunningSim};
use paydesk_types::Verdict;
use serde_json::json;
use wxpay::{OrderQuery, SignType};

use crate::helpers::{merchant_against, spawn_apps_with, standalone_sim, TestApp};

/// Merchant mode against `sim`'s legacy sandbox prefix, without background jobs.
fn sandbox_merchant(sim: &RunningSim) -> serde_json::Value {
    let mut settings = merchant_against(sim);
    settings["wxpay"]["base_url"] = json!(format!("{}/sandboxnew", sim.http_base_url()));
    settings["wxpay"]["refund_base_url"] = json!(format!("{}/sandboxnew", sim.tls_base_url()));
    settings["sync"] = json!({"enabled": "off"});
    settings["refunds"] = json!({"enabled": "off"});
    settings
}

async fn wait_for_status(app: &TestApp, no: &str, want: OrderStatus) {
    for _ in 0..100 {
        if app.stored_order(no).await.status == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{}: order {no} never became {want}", app.db.label);
}

/// POSTs a payment notification to the app; the verdict it was stored with.
async fn notify(app: &TestApp, body: Vec<u8>) -> Verdict {
    let res = reqwest::Client::new()
        .post(app.url("/wxpay/notify/payment"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let stored = testing::recent_notifications(&app.db.db, None, 1)
        .await
        .unwrap();
    stored[0].verdict
}

#[tokio::test]
async fn a_sandbox_base_signs_everything_with_the_sandbox_key_fetched_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = standalone_sim(&dir, |_| {}).await;
    for app in spawn_apps_with(sandbox_merchant(&sim)).await {
        // Arrange
        let label = &app.db.label;
        let (paid, forged, sandbox_signed) = (
            format!("SBX-PAID-{label}"),
            format!("SBX-PROD-{label}"),
            format!("SBX-SKEY-{label}"),
        );

        // Act: orders made and queried, one paid at the simulator (notified with its key)
        for no in [&paid, &forged, &sandbox_signed] {
            app.placed_at_wechat(testing::new_order(no, 300)).await;
        }
        let queried = app
            .state
            .wxpay
            .order_query(OrderQuery::ByOutTradeNo(paid.clone()))
            .await;
        let pay = PayRequest {
            result: "SUCCESS".into(),
            ..PayRequest::default()
        };
        sim.pay_order(&paid, &pay).unwrap();
        wait_for_status(&app, &paid, OrderStatus::Paid).await;
        let params = |no: &str| {
            let mut p = testing::notification_params(no, 300);
            p.insert("appid".into(), sim.appid().into());
            p.insert("mch_id".into(), sim.mch_id().into());
            p
        };
        let with_production_key = notify(
            &app,
            testing::signed(params(&forged), sim.api_key().expose(), SignType::Md5),
        )
        .await;
        let with_sandbox_key = notify(
            &app,
            testing::signed(
                params(&sandbox_signed),
                sim.sandbox_key().expose(),
                SignType::Md5,
            ),
        )
        .await;

        // Assert
        assert!(queried.is_ok(), "{label}: {queried:?}");
        assert_eq!(app.merchant.api_key.expose(), sim.sandbox_key().expose());
        assert_eq!(with_production_key, Verdict::BadSignature, "{label}");
        assert_eq!(with_sandbox_key, Verdict::Applied, "{label}");
        assert_eq!(app.stored_order(&forged).await.status, OrderStatus::NotPay);
        assert!(app.state.summary.sandbox_signkey);
        app.state.api_calls.flush().await;
        let logged = paydesk_core::api_calls::recent(&app.db.db, None, 50)
            .await
            .unwrap();
        let fetches: Vec<_> = logged
            .iter()
            .filter(|c| c.endpoint == wxpay::sandbox::SIGN_KEY_ENDPOINT)
            .collect();
        assert_eq!(fetches.len(), 1, "{label}: getsignkey once");
        let key = sim.sandbox_key().expose();
        assert!(logged.iter().all(|c| !c
            .response_body
            .as_deref()
            .unwrap_or_default()
            .contains(key)));
    }
    let sandbox_calls: Vec<_> = sim.api_calls();
    let fetches = sandbox_calls
        .iter()
        .filter(|c| c.endpoint == "/pay/getsignkey")
        .count();
    assert_eq!(
        fetches,
        sandbox_calls
            .iter()
            .filter(|c| c.endpoint == "/pay/orderquery")
            .count()
    );
    assert!(sandbox_calls
        .iter()
        .filter(|c| c.endpoint != "/pay/getsignkey")
        .all(|c| c.sandbox && c.return_code.as_deref() == Some("SUCCESS")));
}

#[test]
fn the_sandbox_is_md5_only_and_says_so_at_start() {
    let settings: server::config::Settings = serde_json::from_value(json!({
        "simulator": "off",
        "wxpay": {
            "appid": paydesk_sim::DEFAULT_APPID,
            "mch_id": paydesk_sim::DEFAULT_MCH_ID,
            "api_key": paydesk_sim::DEFAULT_API_KEY,
            "sign_type": "HMAC-SHA256",
            "base_url": wxpay::SANDBOX_BASE_URL,
        },
    }))
    .unwrap();
    let (_, config) = settings.merchant_client().unwrap();
    let err = wxpay::Client::new(config).unwrap_err().to_string();
    assert!(err.contains("MD5"), "{err}");
}
