//! Merchant mode fails over to WeChat Pay's backup host (docs/wechatpay-v2.md §2.1) against
//! one simulator state served on two hosts, one of which is made to fail; the outbound log
//! says which host answered each attempt.

use paydesk_core::api_calls::{self, ApiCall};
use paydesk_core::testing;
use paydesk_sim::{Host, HostMode, PayRequest, RunningSim};
use serde_json::{json, Value};
use wxpay::{OrderQuery, OrderRef, RefundRequest};

use crate::helpers::{merchant_against, spawn_apps_with, standalone_sim, TestApp, ADMIN_PASSWORD};

/// A simulator with a backup host (both listeners of each), on loopback.
async fn sim_with_backup(dir: &tempfile::TempDir) -> RunningSim {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    standalone_sim(dir, |c| {
        c.backup_listen = Some(loopback);
        c.backup_tls_listen = Some(loopback);
    })
    .await
}

/// Merchant mode against `sim`, with its backup host as ours unless `backup` says otherwise
/// (`off`); no background jobs, so the log holds only the calls a test makes.
fn merchant(sim: &RunningSim, backup: Option<&str>) -> Value {
    let mut settings = merchant_against(sim);
    settings["wxpay"]["backup_base_url"] =
        json!(backup.map_or_else(|| sim.backup_http_base_url().unwrap(), str::to_owned));
    settings["wxpay"]["refund_backup_base_url"] =
        json!(backup.map_or_else(|| sim.backup_tls_base_url().unwrap(), str::to_owned));
    settings["sync"] = json!({"enabled": "off"});
    settings["refunds"] = json!({"enabled": "off"});
    settings
}

/// Creates (unifiedorder), pays at the simulator, queries and refunds order `no` through
/// the app's WeChat Pay client; every call must succeed.
async fn create_query_refund(app: &TestApp, sim: &RunningSim, no: &str) {
    app.placed_at_wechat(testing::new_order(no, 300)).await;
    let quiet = PayRequest {
        result: "SUCCESS".into(),
        notify: Some(false),
        ..PayRequest::default()
    };
    sim.pay_order(no, &quiet).unwrap();
    let queried = app
        .state
        .wxpay
        .order_query(OrderQuery::ByOutTradeNo(no.into()))
        .await
        .unwrap();
    assert_eq!(queried.trade_state, wxpay::TradeState::Success);
    let refund = RefundRequest::new(OrderRef::OutTradeNo(no.into()), format!("{no}-R"), 300, 100);
    app.state.wxpay.refund(&refund).await.unwrap();
}

/// The logged calls about order `no`, oldest first.
async fn logged(app: &TestApp, no: &str) -> Vec<ApiCall> {
    app.state.api_calls.flush().await;
    let mut calls = api_calls::recent(&app.db.db, Some(no), 50).await.unwrap();
    calls.reverse();
    calls
}

/// (endpoint, attempt, host, failed) of each call.
fn summary(calls: &[ApiCall]) -> Vec<(String, i64, String, bool)> {
    calls
        .iter()
        .map(|c| {
            (
                c.endpoint.clone(),
                c.attempt,
                c.host().unwrap_or_default(),
                c.error.is_some(),
            )
        })
        .collect()
}

/// `host:port` of a base URL.
fn host(base: &str) -> String {
    wxpay::url_host(base).unwrap()
}

/// Each of the three calls failed at the primary, then the backup answered.
fn failed_over(sim: &RunningSim) -> Vec<(String, i64, String, bool)> {
    let (primary, backup) = (
        host(&sim.http_base_url()),
        host(&sim.backup_http_base_url().unwrap()),
    );
    let (tls, tls_backup) = (
        host(&sim.tls_base_url()),
        host(&sim.backup_tls_base_url().unwrap()),
    );
    vec![
        ("/pay/unifiedorder".into(), 1, primary.clone(), true),
        ("/pay/unifiedorder".into(), 2, backup.clone(), false),
        ("/pay/orderquery".into(), 1, primary, true),
        ("/pay/orderquery".into(), 2, backup, false),
        ("/secapi/pay/refund".into(), 1, tls, true),
        ("/secapi/pay/refund".into(), 2, tls_backup, false),
    ]
}

#[tokio::test]
async fn a_primary_that_refuses_connections_is_failed_over_and_the_log_says_which_host_answered() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim_with_backup(&dir).await;
    for app in spawn_apps_with(merchant(&sim, None)).await {
        // Arrange
        let no = format!("FO-REFUSE-{}", app.db.label);
        sim.set_host_mode(Host::Primary, HostMode::Refuse);

        // Act
        create_query_refund(&app, &sim, &no).await;
        sim.set_host_mode(Host::Primary, HostMode::Up);

        // Assert
        let calls = logged(&app, &no).await;
        assert_eq!(summary(&calls), failed_over(&sim), "{}", app.db.label);
        assert!(
            calls[0].http_status.is_none(),
            "a connect error has no status"
        );
        assert!(calls[1]
            .url
            .as_deref()
            .unwrap()
            .ends_with("/pay/unifiedorder"));
        assert_eq!(sim.refund(&format!("{no}-R")).unwrap().refund_fee, 100);
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let page = app.html(&admin, "/api-calls").await;
        assert!(
            page.contains("data-testid=\"backup-host\""),
            "{}",
            app.db.label
        );
        assert!(page.contains("备用域名"), "{}", app.db.label);
        let detail = app
            .html(&admin, &format!("/api-calls/{}", calls[1].id))
            .await;
        assert!(detail.contains("第 2 次（备用域名）"), "{}", app.db.label);
    }
}

#[tokio::test]
async fn a_primary_answering_503_is_failed_over_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim_with_backup(&dir).await;
    for app in spawn_apps_with(merchant(&sim, None)).await {
        // Arrange
        let no = format!("FO-503-{}", app.db.label);
        sim.set_host_mode(Host::Primary, HostMode::Error503);

        // Act
        create_query_refund(&app, &sim, &no).await;
        sim.set_host_mode(Host::Primary, HostMode::Up);

        // Assert
        let calls = logged(&app, &no).await;
        assert_eq!(summary(&calls), failed_over(&sim), "{}", app.db.label);
        for first in calls.iter().filter(|c| c.attempt == 1) {
            assert_eq!(first.http_status, Some(503), "{}", app.db.label);
        }
        let at_primary = sim
            .api_calls()
            .into_iter()
            .filter(|c| c.host == Host::Primary && c.out_trade_no.as_deref() == Some(&no))
            .count();
        assert_eq!(
            at_primary, 3,
            "each reached the primary, which processed nothing"
        );
    }
}

#[tokio::test]
async fn with_failover_off_a_refusing_primary_fails_the_call_and_it_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim_with_backup(&dir).await;
    for app in spawn_apps_with(merchant(&sim, Some("off"))).await {
        // Arrange
        let no = format!("FO-OFF-{}", app.db.label);
        sim.set_host_mode(Host::Primary, HostMode::Refuse);

        // Act
        let order = paydesk_core::orders::create_order(&app.db.db, testing::new_order(&no, 300))
            .await
            .unwrap();
        let result = app
            .state
            .wxpay
            .unified_order(&wxpay::UnifiedOrderRequest::jsapi(
                order.description,
                no.clone(),
                300,
                "127.0.0.1",
                app.state.pay.notify_url.clone(),
                order.openid,
            ))
            .await;
        sim.set_host_mode(Host::Primary, HostMode::Up);

        // Assert
        assert!(
            matches!(&result, Err(wxpay::Error::Transport { .. })),
            "{}: {result:?}",
            app.db.label
        );
        let calls = logged(&app, &no).await;
        let primary = host(&sim.http_base_url());
        assert_eq!(
            summary(&calls),
            [("/pay/unifiedorder".to_owned(), 1, primary, true)]
        );
        assert_eq!(app.state.summary.backup_base_url, None);
        assert!(sim.order(&no).is_none());
    }
}

#[tokio::test]
async fn with_both_hosts_down_the_call_fails_clearly_and_both_attempts_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim_with_backup(&dir).await;
    for app in spawn_apps_with(merchant(&sim, None)).await {
        // Arrange
        let no = format!("FO-DOWN-{}", app.db.label);
        sim.set_host_mode(Host::Primary, HostMode::Refuse);
        sim.set_host_mode(Host::Backup, HostMode::Error503);

        // Act
        let result = app
            .state
            .wxpay
            .order_query(OrderQuery::ByOutTradeNo(no.clone()))
            .await;
        sim.set_host_mode(Host::Primary, HostMode::Up);
        sim.set_host_mode(Host::Backup, HostMode::Up);

        // Assert: the last host's answer is the error, an unknown outcome to retry
        let err = result.unwrap_err();
        assert!(
            matches!(err, wxpay::Error::HttpStatus { status: 503, .. }),
            "{}: {err:?}",
            app.db.label
        );
        assert!(err.is_unknown_outcome() && err.retry_safe());
        let calls = logged(&app, &no).await;
        let (primary, backup) = (
            host(&sim.http_base_url()),
            host(&sim.backup_http_base_url().unwrap()),
        );
        assert_eq!(
            summary(&calls),
            [
                ("/pay/orderquery".to_owned(), 1, primary, true),
                ("/pay/orderquery".to_owned(), 2, backup, true),
            ]
        );
        assert_eq!(
            app.state.summary.backup_base_url,
            sim.backup_http_base_url()
        );
    }
}
