//! Crash safety of refunds (issue "refunds end to end"): the real `paydesk` binary is killed
//! (SIGKILL) right after it committed a refund as SUBMITTED, while its call to
//! `/secapi/pay/refund` hangs at the simulator; restarted on the same database it must
//! finish the refund without refunding twice (refundquery first, then the same number).
//! The simulator runs in this test process, so it survives the paydesk process.

use std::process::{Child, Stdio};
use std::time::Duration;

use paydesk_core::audit::Actor;
use paydesk_core::events::EventBus;
use paydesk_core::now_ms;
use paydesk_core::orders::{self, NewOrder, NewOrderItem, OrderStatus, OutTradeNo};
use paydesk_core::refunds::{self, RefundStatus, Requester};
use paydesk_core::testing::{self, databases, TestDb};

use crate::helpers::paydesk_against;
use paydesk_sim::{FaultPlan, PayRequest, RefundState, RunningSim, SimConfig};
use serde_json::json;
use wxpay::{SignType, UnifiedOrderRequest};

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

/// A `paydesk serve` process, killed when dropped.
struct Paydesk(Child);

impl Paydesk {
    /// Starts the binary in merchant mode against `sim` (its certificate, its CA, its
    /// mutual-TLS listener for refunds) on `db`, with a 2 s refund lease.
    fn start(sim: &RunningSim, db: &TestDb, cwd: &std::path::Path) -> Paydesk {
        let child = paydesk_against(sim, &db.url)
            .arg("serve")
            .current_dir(cwd)
            .env("PAYDESK_LISTEN", "127.0.0.1:0")
            .env("PAYDESK_ADMIN_PASSWORD", "admin password for tests")
            // The refund's outcome is learnt by refundquery; its notification goes nowhere.
            .env(
                "PAYDESK_WXPAY__NOTIFY_URL",
                "http://127.0.0.1:9/wxpay/notify/payment",
            )
            .env(
                "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
                "http://127.0.0.1:9/wxpay/notify/refund",
            )
            .env("PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS", "on")
            .env("PAYDESK_SYNC__ENABLED", "off")
            .env("PAYDESK_REFUNDS__TICK_MILLIS", "100")
            .env("PAYDESK_REFUNDS__LEASE_SECONDS", "2")
            .env("PAYDESK_REFUNDS__QUERY_DELAY_SECONDS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the paydesk binary");
        Paydesk(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Paydesk {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A paid order (at the simulator and in the database), with an approved refund of all of
/// it whose call to WeChat Pay will hang for `hang_ms`; returns the refund's row id.
async fn approved_refund(sim: &RunningSim, db: &TestDb, no: &str, hang_ms: u64) -> i64 {
    let order = orders::create_order(
        &db.db,
        NewOrder {
            out_trade_no: OutTradeNo::parse(no).unwrap(),
            openid: OPENID.into(),
            description: "paydesk crash test".into(),
            items: vec![NewOrderItem {
                product_id: None,
                name: "jasmine tea".into(),
                unit_price_fen: 880,
                quantity: 1,
            }],
            sign_type: SignType::Md5,
            client_ip: None,
            idempotency_key: None,
            expires_at: None,
            next_sync_at: None,
        },
    )
    .await
    .unwrap();
    let client = wxpay::Client::new(sim.client_config().unwrap()).unwrap();
    client
        .unified_order(&UnifiedOrderRequest::jsapi(
            "paydesk crash test",
            no,
            880,
            "127.0.0.1",
            // Nobody listens here: the payment is recorded below instead.
            "http://127.0.0.1:9/wxpay/notify/payment",
            OPENID,
        ))
        .await
        .unwrap();
    sim.pay_order(no, &PayRequest::default()).unwrap();
    orders::transition(&db.db, order.id, OrderStatus::Paid)
        .await
        .unwrap();
    let events = EventBus::new();
    let refund = refunds::request(
        &db.db,
        &events,
        no,
        None,
        "never arrived",
        Requester::Customer {
            openid: OPENID.into(),
        },
    )
    .await
    .unwrap();
    sim.set_refund_outcome(&refund.out_refund_no, RefundState::Success, None)
        .unwrap();
    sim.set_faults(
        serde_json::from_value::<FaultPlan>(json!({"api": [
            {"fault": "hang", "hang_ms": hang_ms, "endpoint": "/secapi/pay/refund"}
        ]}))
        .unwrap(),
    );
    let now = now_ms();
    let manager: i64 = sqlx::query_scalar(
        r#"insert into users (username, password_hash, role, password_changed_at, created_at, updated_at)
           values ('mia', 'x', 'manager', $1, $1, $1) returning id"#,
    )
    .bind(now)
    .fetch_one(db.db.writer())
    .await
    .unwrap();
    let mia = Actor {
        user_id: Some(manager),
        name: "mia".into(),
        ip: None,
    };
    refunds::approve(&db.db, &events, &mia, refund.id, "ok")
        .await
        .unwrap();
    refund.id
}

async fn wait_for(db: &TestDb, id: i64, what: &str, done: impl Fn(&refunds::Refund) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = refunds::find(&db.db, id).await.unwrap().unwrap();
        if done(&r) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: waited in vain for {what}; the refund is {r:?}",
            db.label
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_server_killed_right_after_submitted_refunds_exactly_once_after_restart() {
    let certs = tempfile::tempdir().unwrap();
    let sim = paydesk_sim::start(SimConfig {
        cert_dir: certs.path().to_path_buf(),
        allow_insecure_notify_urls: true,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    for db in databases().await {
        // Arrange
        let cwd = tempfile::tempdir().unwrap();
        let no = format!("RF-KILL-{}", db.label);
        let id = approved_refund(&sim, &db, &no, 3000).await;

        // Act: kill the server as soon as SUBMITTED is committed (its call is hanging).
        let mut first = Paydesk::start(&sim, &db, cwd.path());
        wait_for(&db, id, "SUBMITTED", |r| {
            r.status == RefundStatus::Submitted
        })
        .await;
        first.kill();
        let _second = Paydesk::start(&sim, &db, cwd.path());

        // Assert
        wait_for(&db, id, "SUCCESS", |r| r.status == RefundStatus::Success).await;
        let at_sim: Vec<_> = sim
            .refunds()
            .into_iter()
            .filter(|r| r.out_trade_no == no)
            .collect();
        assert_eq!(at_sim.len(), 1, "{}: {at_sim:?}", db.label);
        assert_eq!(at_sim[0].refund_fee, 880);
        let order = testing::stored_order(&db.db, &no).await;
        assert_eq!(order.status, OrderStatus::Refunded, "{}", db.label);
    }
}
