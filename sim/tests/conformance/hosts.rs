//! WeChat Pay's two hosts (§2.1): one state on the primary and the backup listeners, each of
//! which can refuse connections or answer 503, and the wxpay client's failover against them.

use std::sync::Arc;

use paydesk_sim::{Host, HostMode};
use wxpay::{Client, OrderQuery, OrderRef, RefundRequest};

use crate::common::*;

impl Calls {
    /// (endpoint, attempt, url starts with the backup's base, failed) of each call.
    fn summary(&self, sim: &paydesk_sim::RunningSim) -> Vec<(String, u32, bool, bool)> {
        let backups = [sim.backup_http_base_url(), sim.backup_tls_base_url()];
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                let at_backup = backups
                    .iter()
                    .flatten()
                    .any(|b| r.url.starts_with(b.as_str()));
                (r.endpoint.clone(), r.attempt, at_backup, r.error.is_some())
            })
            .collect()
    }
}

async fn sim_with_backup() -> TestSim {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    start_sim_with(|c| {
        c.backup_listen = Some(loopback);
        c.backup_tls_listen = Some(loopback);
    })
    .await
}

fn observed_client(sim: &paydesk_sim::RunningSim) -> (Client, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let mut config = sim.client_config().unwrap();
    config.timeout = std::time::Duration::from_secs(5);
    config.connect_timeout = std::time::Duration::from_secs(2);
    let client = Client::new(config).unwrap().with_observer(calls.clone());
    (client, calls)
}

/// Create, pay and refund one order, and query it: every call the failover tests make.
async fn create_query_refund(sim: &paydesk_sim::RunningSim, client: &Client, no: &str) {
    placed_order(client, no, 300, NO_NOTIFY).await;
    sim.pay_order(
        no,
        &paydesk_sim::PayRequest {
            notify: Some(false),
            ..pay()
        },
    )
    .unwrap();
    let queried = client
        .order_query(OrderQuery::ByOutTradeNo(no.into()))
        .await
        .unwrap();
    assert_eq!(queried.trade_state, wxpay::TradeState::Success);
    let refund = RefundRequest::new(OrderRef::OutTradeNo(no.into()), format!("{no}-R"), 300, 100);
    client.refund(&refund).await.unwrap();
}

#[tokio::test]
async fn both_hosts_serve_one_set_of_orders() {
    // Arrange
    let sim = sim_with_backup().await;
    let primary = client(&sim);
    let mut config = sim.client_config().unwrap();
    config.base_url = sim.backup_http_base_url().unwrap();
    config.refund_base_url = sim.backup_tls_base_url();
    let backup = Client::new(config).unwrap();

    // Act
    placed_order(&primary, "HOST-1", 100, NO_NOTIFY).await;
    let seen_at_backup = backup
        .order_query(OrderQuery::ByOutTradeNo("HOST-1".into()))
        .await;

    // Assert
    assert!(seen_at_backup.is_ok(), "{seen_at_backup:?}");
    let hosts: Vec<Host> = sim.api_calls().iter().map(|c| c.host).collect();
    assert_eq!(hosts, [Host::Primary, Host::Backup]);
}

#[tokio::test]
async fn a_primary_that_refuses_connections_is_failed_over_to_the_backup() {
    // Arrange
    let sim = sim_with_backup().await;
    let (client, calls) = observed_client(&sim);
    placed_order(&client, "HOST-WARM", 100, NO_NOTIFY).await; // a keep-alive connection
    sim.set_host_mode(Host::Primary, HostMode::Refuse);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    calls.0.lock().unwrap().clear();

    // Act
    create_query_refund(&sim, &client, "HOST-2").await;
    let refused = reqwest::Client::new()
        .post(format!("{}/pay/orderquery", sim.http_base_url()))
        .send()
        .await;

    // Assert: each call failed at the primary with a connect error, then the backup answered
    let expected: Vec<(String, u32, bool, bool)> =
        ["/pay/unifiedorder", "/pay/orderquery", "/secapi/pay/refund"]
            .into_iter()
            .flat_map(|e| {
                [
                    (e.to_owned(), 1, false, true),
                    (e.to_owned(), 2, true, false),
                ]
            })
            .collect();
    assert_eq!(calls.summary(&sim), expected);
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_connect),
        "{refused:?}"
    );
    assert!(sim
        .api_calls()
        .iter()
        .skip(1)
        .all(|c| c.host == Host::Backup));
}

#[tokio::test]
async fn a_refusing_host_comes_back_on_the_same_address() {
    // Arrange
    let sim = sim_with_backup().await;
    let mut config = sim.client_config().unwrap();
    config.backup_base_url = None;
    let client = Client::new(config).unwrap();
    sim.set_host_mode(Host::Primary, HostMode::Refuse);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let while_refused = client
        .order_query(OrderQuery::ByOutTradeNo("HOST-NONE".into()))
        .await;

    // Act
    sim.set_host_mode(Host::Primary, HostMode::Up);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let after = client
        .order_query(OrderQuery::ByOutTradeNo("HOST-NONE".into()))
        .await;

    // Assert
    assert!(
        matches!(while_refused, Err(wxpay::Error::Transport { .. })),
        "{while_refused:?}"
    );
    assert_eq!(after.unwrap_err().err_code(), Some("ORDERNOTEXIST"));
}

#[tokio::test]
async fn a_primary_answering_503_processes_nothing_and_is_failed_over() {
    // Arrange
    let sim = sim_with_backup().await;
    let (client, calls) = observed_client(&sim);
    sim.set_host_mode(Host::Primary, HostMode::Error503);

    // Act
    create_query_refund(&sim, &client, "HOST-3").await;

    // Assert
    let summary = calls.summary(&sim);
    assert_eq!(summary.len(), 6, "{summary:?}");
    assert!(summary.iter().all(
        |(_, attempt, at_backup, failed)| (*attempt == 2) == *at_backup
            && (*attempt == 1) == *failed
    ));
    let primary: Vec<_> = sim
        .api_calls()
        .into_iter()
        .filter(|c| c.host == Host::Primary)
        .collect();
    assert_eq!(primary.len(), 3);
    assert!(primary
        .iter()
        .all(|c| c.http_status == 503 && c.fault.as_deref() == Some("host_error_503")));
    assert_eq!(sim.order("HOST-3").unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn the_control_api_switches_a_host_and_knows_which_hosts_exist() {
    // Arrange
    let with_backup = sim_with_backup().await;
    let without = start_sim().await;
    let control = Control::of(&with_backup);

    // Act
    let switched = control
        .post(
            "/sim/hosts/backup",
            Some(serde_json::json!({"mode": "error_503"})),
        )
        .await;
    let switched: serde_json::Value = switched.json().await.unwrap();
    let no_backup = Control::of(&without)
        .post(
            "/sim/hosts/backup",
            Some(serde_json::json!({"mode": "refuse"})),
        )
        .await
        .status();
    let bad_mode = control
        .post(
            "/sim/hosts/primary",
            Some(serde_json::json!({"mode": "down"})),
        )
        .await
        .status();

    // Assert
    assert_eq!(
        switched,
        serde_json::json!({"primary": "up", "backup": "error_503"})
    );
    assert_eq!(with_backup.host_mode(Host::Backup), HostMode::Error503);
    assert_eq!(no_backup, 404);
    assert_eq!(bad_mode, 400);
    assert_eq!(
        control.get("/sim/hosts").await,
        serde_json::json!({"primary": "up", "backup": "error_503"})
    );
}
