//! The sandbox prefixes (§2.1, §3, §8.11): getsignkey hands out a key of the sandbox's own,
//! which alone signs everything there; the wxpay client fetches it once and uses it.

use std::sync::Arc;
use std::time::Duration;

use wxpay::{Client, OrderQuery, SignType};

use crate::common::*;

/// A request body for a sandbox path, signed with `key`.
fn signed_with(sim: &paydesk_sim::RunningSim, key: &wxpay::ApiKey, sign_type: SignType) -> Vec<u8> {
    let mut p = wxpay::Params::from([
        ("appid".to_owned(), sim.appid().to_owned()),
        ("mch_id".to_owned(), sim.mch_id().to_owned()),
        ("nonce_str".to_owned(), wxpay::nonce_str()),
        ("out_trade_no".to_owned(), "SBX-NONE".to_owned()),
        ("sign_type".to_owned(), sign_type.as_str().to_owned()),
    ]);
    let sign = wxpay::sign(&p, key, sign_type);
    p.insert("sign".into(), sign);
    wxpay::xml::write(&p).into_bytes()
}

fn return_msg(body: &str) -> String {
    let p = wxpay::xml::parse(body.as_bytes()).unwrap();
    p.get("return_msg").cloned().unwrap_or_default()
}

#[tokio::test]
async fn getsignkey_hands_out_a_key_of_the_sandbox_own() {
    // Arrange
    let sim = start_sim().await;

    // Act
    let (_, legacy) = raw_post(&sim, "/sandboxnew/pay/getsignkey", signed(&sim, &[], None)).await;
    let (_, xdc) = raw_post(
        &sim,
        "/xdc/apiv2getsignkey/sign/getsignkey",
        signed(&sim, &[], None),
    )
    .await;

    // Assert
    for answer in [legacy, xdc] {
        let p = wxpay::xml::parse(answer.as_bytes()).unwrap();
        assert_eq!(p["return_code"], "SUCCESS");
        let key = &p["sandbox_signkey"];
        assert_eq!(key, sim.sandbox_key().expose());
        assert_eq!(key.len(), 32);
        assert_ne!(key, sim.api_key().expose());
    }
}

#[tokio::test]
async fn the_sandbox_refuses_the_production_key_and_hmac() {
    // Arrange
    let sim = start_sim().await;
    let path = "/sandboxnew/pay/orderquery";

    // Act
    let (_, production_key) =
        raw_post(&sim, path, signed_with(&sim, sim.api_key(), SignType::Md5)).await;
    let (_, hmac) = raw_post(
        &sim,
        path,
        signed_with(&sim, sim.sandbox_key(), SignType::HmacSha256),
    )
    .await;
    let (_, sandbox_key) = raw_post(
        &sim,
        path,
        signed_with(&sim, sim.sandbox_key(), SignType::Md5),
    )
    .await;
    let (_, sandbox_key_on_production) = raw_post(
        &sim,
        "/pay/orderquery",
        signed_with(&sim, sim.sandbox_key(), SignType::Md5),
    )
    .await;

    // Assert
    assert_eq!(return_msg(&production_key), "签名错误");
    assert_eq!(return_msg(&hmac), "签名错误");
    assert_eq!(return_msg(&sandbox_key_on_production), "签名错误");
    let answer = wxpay::evaluate_response(
        path,
        sandbox_key.as_bytes(),
        sim.sandbox_key(),
        SignType::Md5,
        sim.appid(),
        sim.mch_id(),
    );
    assert_eq!(answer.unwrap_err().err_code(), Some("ORDERNOTEXIST"));
}

#[tokio::test]
async fn a_sandbox_client_fetches_the_key_once_and_signs_everything_with_it() {
    // Arrange
    let sim = start_sim().await;
    let receiver = Receiver::always_success().await;
    let calls = Arc::new(Calls::default());
    let mut config = sim.client_config().unwrap();
    config.base_url = format!("{}/sandboxnew", sim.http_base_url());
    config.refund_base_url = Some(format!("{}/sandboxnew", sim.tls_base_url()));
    let client = Client::new(config).unwrap().with_observer(calls.clone());

    // Act
    placed_order(&client, "SBX-1", 101, &receiver.url).await;
    let queried = client
        .order_query(OrderQuery::ByOutTradeNo("SBX-1".into()))
        .await;
    sim.pay_order("SBX-1", &pay()).unwrap();
    let notified = receiver.wait_for(1, Duration::from_secs(5)).await;

    // Assert
    assert!(queried.is_ok(), "{queried:?}");
    assert_eq!(
        client.signing_key().await.unwrap().expose(),
        sim.sandbox_key().expose()
    );
    let getsignkey: Vec<_> = sim
        .api_calls()
        .into_iter()
        .filter(|c| c.endpoint == "/pay/getsignkey")
        .collect();
    assert_eq!(getsignkey.len(), 1);
    assert!(sim
        .api_calls()
        .iter()
        .filter(|c| c.endpoint != "/pay/getsignkey")
        .all(|c| c.sandbox && c.return_code.as_deref() == Some("SUCCESS")));
    let recorded = calls.0.lock().unwrap().clone();
    assert_eq!(recorded[0].endpoint, "/pay/getsignkey");
    assert!(!format!("{recorded:?}").contains(sim.sandbox_key().expose()));
    let notification = wxpay::xml::parse(&notified[0]).unwrap();
    assert!(wxpay::verify(&notification, sim.sandbox_key(), SignType::Md5).is_ok());
    assert!(wxpay::verify(&notification, sim.api_key(), SignType::Md5).is_err());
}

#[test]
fn a_sandbox_client_is_md5_only() {
    let config = wxpay::ClientConfig {
        base_url: "https://api.mch.weixin.qq.com/sandboxnew".into(),
        sign_type: SignType::HmacSha256,
        ..wxpay::ClientConfig::new(
            paydesk_sim::DEFAULT_APPID,
            paydesk_sim::DEFAULT_MCH_ID,
            wxpay::ApiKey::new(paydesk_sim::DEFAULT_API_KEY),
        )
    };
    let err = Client::new(config).unwrap_err();
    assert!(err.to_string().contains("MD5"), "{err}");
}
