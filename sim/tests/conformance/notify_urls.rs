//! notify_url as WeChat Pay judges it (docs/wechatpay-v2.md §8.1, §8.5): public `https://`
//! without parameters by default; loopback `http://` only when the simulator was started
//! with `allow_insecure_notify_urls` (the sandbox, tests, benchmarks).

use paydesk_sim::SimConfig;
use wxpay::{Error, OrderRef, RefundRequest};

use crate::common::*;

fn strict(config: &mut SimConfig) {
    config.allow_insecure_notify_urls = false;
}

fn refused_for_notify_url(e: &Error) -> bool {
    e.to_string().contains("notify_url")
}

#[tokio::test]
async fn by_default_unifiedorder_takes_only_public_https_notify_urls_without_parameters() {
    // Arrange
    let sim = start_sim_with(strict).await;
    let client = client(&sim);

    // Act + Assert
    for (i, url) in [
        "http://pay.example.com/wxpay/notify/payment",
        "http://127.0.0.1:3000/wxpay/notify/payment",
        "https://127.0.0.1/wxpay/notify/payment",
        "https://192.168.1.20/wxpay/notify/payment",
        "https://[::1]:8443/wxpay/notify/payment",
        "https://localhost/wxpay/notify/payment",
        "https://pay.example.com/wxpay/notify/payment#frag",
    ]
    .into_iter()
    .enumerate()
    {
        let e = client
            .unified_order(&order(&format!("NU-{i}"), 100, url))
            .await
            .unwrap_err();
        assert!(refused_for_notify_url(&e), "{url}: {e:?}");
    }
    client
        .unified_order(&order(
            "NU-OK",
            100,
            "https://pay.example.com/wxpay/notify/payment",
        ))
        .await
        .unwrap();
    assert_eq!(sim.orders().len(), 1);
}

#[tokio::test]
async fn by_default_a_refund_with_a_loopback_notify_url_is_refused() {
    // Arrange: paid through the sim's own path, the refund carries a loopback URL.
    let sim = start_sim_with(strict).await;
    let client = client(&sim);
    client
        .unified_order(&order("NU-R", 300, "https://pay.example.com/n"))
        .await
        .unwrap();
    sim.pay_order("NU-R", &pay()).unwrap();
    let mut refund = RefundRequest::new(OrderRef::OutTradeNo("NU-R".into()), "NU-RF", 300, 100);
    refund.notify_url = Some("http://127.0.0.1:3000/wxpay/notify/refund".into());

    // Act
    let e = client.refund(&refund).await.unwrap_err();
    refund.notify_url = Some("https://pay.example.com/wxpay/notify/refund".into());
    let ok = client.refund(&refund).await;

    // Assert
    assert!(refused_for_notify_url(&e), "{e:?}");
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn the_relaxation_is_explicit_and_a_bad_default_refund_url_stops_the_start() {
    // The conformance tests' own simulator opts in, so loopback receivers work.
    let relaxed = start_sim().await;
    assert!(relaxed.config().allow_insecure_notify_urls);
    client(&relaxed)
        .unified_order(&order("NU-L", 100, NO_NOTIFY))
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let refused = paydesk_sim::start(SimConfig {
        cert_dir: dir.path().to_owned(),
        default_refund_notify_url: Some("http://127.0.0.1:3000/wxpay/notify/refund".into()),
        ..SimConfig::default()
    })
    .await;
    let Err(err) = refused else {
        panic!("a loopback default refund URL must stop the start");
    };
    let err = err.to_string();
    assert!(err.contains("refund notify URL"), "{err}");
}
