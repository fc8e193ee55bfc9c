//! A staff member's own openids (issue 15): recorded and removed by themself (audited), and
//! nobody approves the refund of an order one of their own openids paid. SQLite and (when
//! configured) PostgreSQL.

use paydesk_core::audit::{self, action};
use paydesk_core::events::EventBus;
use paydesk_core::orders::{self, NewOrder, OrderStatus};
use paydesk_core::refunds::{self, RefundStatus, Requester};
use paydesk_core::testing::{self, assert_invalid, databases};
use paydesk_core::users::User;
use paydesk_core::{own_openids, CoreError, Db, Role};

const MINE: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const STRANGER: &str = "oUpF8uN95-Ptaags6E_roPHg7AG0";

async fn manager(db: &Db, name: &str) -> User {
    testing::user(db, name, &format!("{name} password 1"), Role::Manager).await
}

/// A paid order of 800 fen by `openid`, with a customer's pending refund request of 100.
async fn pending_refund(db: &Db, events: &EventBus, no: &str, openid: &str) -> i64 {
    let order = orders::create_order(
        db,
        NewOrder {
            openid: openid.into(),
            ..testing::new_order(no, 800)
        },
    )
    .await
    .unwrap();
    orders::transition(db, order.id, OrderStatus::Paid)
        .await
        .unwrap();
    refunds::request(
        db,
        events,
        no,
        Some(100),
        "changed my mind",
        Requester::Customer {
            openid: openid.into(),
        },
    )
    .await
    .unwrap()
    .id
}

#[tokio::test]
async fn nobody_approves_a_refund_of_an_order_their_own_openid_paid() {
    for t in databases().await {
        // Arrange
        let (db, events) = (&t.db, EventBus::new());
        let ann = manager(db, "ann").await;
        let bob = manager(db, "bob").await;
        own_openids::add(db, &ann, Some("10.0.0.5".into()), &format!(" {MINE} "))
            .await
            .unwrap();
        let anns_order = pending_refund(db, &events, "OWN1", MINE).await;
        let strangers_order = pending_refund(db, &events, "OWN2", STRANGER).await;

        // Act
        let own = refunds::approve(db, &events, &ann.actor(None), anns_order, "ok").await;
        let others = refunds::approve(db, &events, &ann.actor(None), strangers_order, "ok").await;
        let by_bob = refunds::approve(db, &events, &bob.actor(None), anns_order, "ok").await;

        // Assert
        match own {
            Err(CoreError::OwnPayment { openid }) => assert_eq!(openid, MINE, "{}", t.label),
            other => panic!("{}: expected OwnPayment, got {other:?}", t.label),
        }
        assert_eq!(
            others.unwrap().status,
            RefundStatus::Approved,
            "{}",
            t.label
        );
        assert_eq!(
            by_bob.unwrap().status,
            RefundStatus::Approved,
            "{}",
            t.label
        );
        let approvals = audit::list(db, None, Some(action::REFUND_APPROVE), 10)
            .await
            .unwrap();
        assert_eq!(approvals.len(), 2, "{}", t.label);
    }
}

#[tokio::test]
async fn own_openids_are_kept_per_person_and_every_change_is_audited() {
    for t in databases().await {
        // Arrange
        let db = &t.db;
        let ann = manager(db, "ann").await;
        let bob = manager(db, "bob").await;

        // Act
        own_openids::add(db, &ann, None, MINE).await.unwrap();
        own_openids::add(db, &bob, None, MINE).await.unwrap();
        let twice = own_openids::add(db, &ann, None, MINE).await;
        let junk = own_openids::add(db, &ann, None, "not an openid!").await;
        own_openids::add(db, &ann, None, STRANGER).await.unwrap();
        own_openids::remove(db, &ann, None, STRANGER).await.unwrap();
        let gone = own_openids::remove(db, &ann, None, STRANGER).await;

        // Assert
        assert_invalid(twice.as_ref().unwrap_err(), "openid", t.label);
        assert_invalid(junk.as_ref().unwrap_err(), "openid", t.label);
        assert!(matches!(gone, Err(CoreError::NotFound)), "{}", t.label);
        let anns: Vec<String> = own_openids::list(db, ann.id)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.openid)
            .collect();
        assert_eq!(anns, [MINE], "{}", t.label);
        assert_eq!(own_openids::list(db, bob.id).await.unwrap().len(), 1);
        let added = audit::list(db, Some(ann.id), Some(action::ACCOUNT_OPENID_ADD), 10)
            .await
            .unwrap();
        assert_eq!(added.len(), 2, "{}", t.label);
        let removed = audit::list(db, Some(ann.id), Some(action::ACCOUNT_OPENID_REMOVE), 10)
            .await
            .unwrap();
        assert_eq!(removed.len(), 1, "{}", t.label);
        assert_eq!(removed[0].target.as_deref(), Some(STRANGER));
    }
}
