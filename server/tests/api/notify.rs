//! `POST /wxpay/notify/payment` against the running app, on every database backend: what
//! is applied, what is refused, what is recorded (docs/wechatpay-v2.md §8.8, §11; docs/design.md "Notify").

use std::time::Duration;

use paydesk_core::notify::{self, Verdict};
use paydesk_core::orders::OrderStatus;
use paydesk_core::testing;
use paydesk_sim::PayRequest;
use wxpay::notify::REPLY_SUCCESS;
use wxpay::{ApiKey, SignType};

use crate::callbacks::{
    create_order, fields, post_notification, signed, signed_notification, OPENID,
};
use crate::helpers::{spawn_apps, spawn_apps_with, TestApp};

async fn latest(app: &TestApp) -> notify::Notification {
    testing::recent_notifications(&app.db.db, None, 1)
        .await
        .unwrap()
        .remove(0)
}

fn is_fail(reply: &str) -> bool {
    reply.contains("<return_code><![CDATA[FAIL]]></return_code>")
}

#[tokio::test]
async fn signed_payment_notification_marks_the_order_paid_and_answers_success() {
    for app in spawn_apps().await {
        // Arrange
        let created = create_order(&app, "N-OK-1", 1999, SignType::Md5).await;
        let body = signed_notification(&app, "N-OK-1", 1999);

        // Act
        let (status, reply) = post_notification(&app.base, body.clone()).await;

        // Assert
        assert_eq!(
            (status, reply.as_str()),
            (200, REPLY_SUCCESS),
            "{}",
            app.db.label
        );
        let o = app.stored_order("N-OK-1").await;
        assert_eq!(o.status, OrderStatus::Paid, "{}", app.db.label);
        assert_eq!(
            o.transaction_id.as_deref(),
            Some("4200000123202611221234567890")
        );
        assert_eq!(o.bank_type.as_deref(), Some("CFT"));
        // 18:30 Beijing time is 10:30 UTC.
        assert_eq!(o.paid_at, Some(1_795_343_400_000));
        let row = latest(&app).await;
        assert_eq!(row.verdict, Verdict::Applied);
        assert_eq!(row.reply, "SUCCESS");
        assert_eq!(row.raw_body, body);
        assert_eq!(row.order_id, Some(created.id));
        assert_eq!(row.total_fee, Some(1999));
        assert!(row.peer.as_deref().unwrap().starts_with("127.0.0.1:"));
    }
}

#[tokio::test]
async fn fifty_parallel_copies_of_a_notification_are_applied_once_and_all_answered_success() {
    for app in spawn_apps().await {
        // Arrange
        create_order(&app, "N-PAR-1", 880, SignType::Md5).await;
        let body = signed_notification(&app, "N-PAR-1", 880);

        // Act
        let replies =
            futures::future::join_all((0..50).map(|_| post_notification(&app.base, body.clone())))
                .await;

        // Assert
        for (status, reply) in &replies {
            assert_eq!(
                (*status, reply.as_str()),
                (200, REPLY_SUCCESS),
                "{}",
                app.db.label
            );
        }
        assert_eq!(app.stored_order("N-PAR-1").await.status, OrderStatus::Paid);
        let rows = testing::recent_notifications(&app.db.db, Some("N-PAR-1"), 100)
            .await
            .unwrap();
        let count = |v| rows.iter().filter(|r| r.verdict == v).count();
        assert_eq!(rows.len(), 50, "{}", app.db.label);
        assert_eq!(count(Verdict::Applied), 1, "{}", app.db.label);
        assert_eq!(count(Verdict::Duplicate), 49, "{}", app.db.label);
    }
}

#[tokio::test]
async fn tampered_signature_is_refused_and_leaves_the_order_unpaid() {
    for app in spawn_apps().await {
        create_order(&app, "N-TAMP-1", 500, SignType::Md5).await;
        let mut p = fields(&app, "N-TAMP-1", 500);
        let sign = wxpay::sign(&p, &app.merchant.api_key, SignType::Md5);
        // Signed, then a field is added in transit.
        p.insert("sign".into(), sign);
        p.insert("attach".into(), "added later".into());

        let (status, reply) = post_notification(&app.base, wxpay::xml::write(&p)).await;

        assert_eq!(status, 200);
        assert!(is_fail(&reply), "{reply}");
        assert_eq!(
            app.stored_order("N-TAMP-1").await.status,
            OrderStatus::NotPay
        );
        let row = latest(&app).await;
        assert_eq!(row.verdict, Verdict::BadSignature, "{}", app.db.label);
        assert_eq!(row.reply, "FAIL");
        assert_eq!(row.order_id, None);
    }
}

#[tokio::test]
async fn validly_signed_notification_with_another_amount_is_an_amount_mismatch() {
    for app in spawn_apps().await {
        create_order(&app, "N-AMT-1", 500, SignType::Md5).await;
        let body = signed_notification(&app, "N-AMT-1", 1);

        let (_, reply) = post_notification(&app.base, body).await;

        assert!(is_fail(&reply), "{reply}");
        assert_eq!(
            app.stored_order("N-AMT-1").await.status,
            OrderStatus::NotPay
        );
        let row = latest(&app).await;
        assert_eq!(row.verdict, Verdict::AmountMismatch, "{}", app.db.label);
        assert_eq!(row.total_fee, Some(1));
    }
}

#[tokio::test]
async fn signed_notification_for_an_unknown_order_is_recorded_as_unknown_order_and_acknowledged() {
    for app in spawn_apps().await {
        let body = signed_notification(&app, "N-NONE-1", 500);

        let (_, reply) = post_notification(&app.base, body).await;

        // Recorded and acknowledged: a resend cannot make the order exist (README).
        assert!(!is_fail(&reply), "{reply}");
        let row = latest(&app).await;
        assert_eq!(row.verdict, Verdict::UnknownOrder, "{}", app.db.label);
        assert_eq!(row.out_trade_no.as_deref(), Some("N-NONE-1"));
    }
}

#[tokio::test]
async fn unsigned_garbage_for_an_unknown_order_is_a_bad_signature_not_an_unknown_order() {
    for app in spawn_apps().await {
        let mut p = fields(&app, "N-NONE-2", 500);
        p.insert("sign".into(), "0".repeat(32));

        let (_, reply) = post_notification(&app.base, wxpay::xml::write(&p)).await;

        assert!(is_fail(&reply), "{reply}");
        assert_eq!(latest(&app).await.verdict, Verdict::BadSignature);
    }
}

#[tokio::test]
async fn notifications_for_another_appid_or_mch_id_are_refused() {
    for app in spawn_apps().await {
        create_order(&app, "N-MER-1", 500, SignType::Md5).await;
        for (field, verdict) in [
            ("appid", Verdict::WrongAppid),
            ("mch_id", Verdict::WrongMchId),
        ] {
            let mut p = fields(&app, "N-MER-1", 500);
            p.insert(field.into(), "1999999999".into());
            let (_, reply) =
                post_notification(&app.base, signed(p, &app.merchant.api_key, SignType::Md5)).await;

            assert!(is_fail(&reply), "{reply}");
            assert_eq!(latest(&app).await.verdict, verdict, "{}", app.db.label);
        }
        assert_eq!(
            app.stored_order("N-MER-1").await.status,
            OrderStatus::NotPay
        );
    }
}

#[tokio::test]
async fn xxe_and_entity_expansion_bodies_are_refused_and_recorded() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../../wxpay/tests/data/vectors.json")).unwrap();
    let hostile: Vec<String> = vectors["xml_parsing_vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["expected"] == "reject")
        .map(|v| v["xml"].as_str().unwrap().to_owned())
        .filter(|xml| xml.contains("<!DOCTYPE"))
        .collect();
    assert!(hostile.len() >= 3, "the XXE and billion-laughs vectors");
    for app in spawn_apps().await {
        for xml in &hostile {
            let (status, reply) = post_notification(&app.base, xml.clone()).await;

            assert_eq!(status, 200);
            assert!(is_fail(&reply), "{reply}");
            let row = latest(&app).await;
            assert_eq!(
                row.verdict,
                Verdict::ForbiddenXml,
                "{}: {xml}",
                app.db.label
            );
            assert_eq!(&row.raw_body, xml);
            assert!(!reply.contains("passwd") && !reply.contains("lol"));
        }
    }
}

#[tokio::test]
async fn a_body_that_is_not_xml_is_recorded_as_malformed() {
    for app in spawn_apps().await {
        let (status, reply) = post_notification(&app.base, "{\"return_code\":\"SUCCESS\"}").await;

        assert_eq!(status, 200);
        assert!(is_fail(&reply), "{reply}");
        let row = latest(&app).await;
        assert_eq!(row.verdict, Verdict::Malformed, "{}", app.db.label);
        assert_eq!(row.raw_body, "{\"return_code\":\"SUCCESS\"}");
    }
}

#[tokio::test]
async fn an_md5_signature_is_refused_for_an_hmac_sha256_order() {
    for app in spawn_apps().await {
        create_order(&app, "N-HMAC-1", 700, SignType::HmacSha256).await;
        // Correctly signed with MD5, no sign_type field: the downgrade must not pass (§5.2).
        let body = signed_notification(&app, "N-HMAC-1", 700);

        let (_, reply) = post_notification(&app.base, body).await;

        assert!(is_fail(&reply), "{reply}");
        assert_eq!(latest(&app).await.verdict, Verdict::BadSignature);
        assert_eq!(
            app.stored_order("N-HMAC-1").await.status,
            OrderStatus::NotPay
        );

        // The same notification signed with HMAC-SHA256 is applied.
        let body = signed(
            fields(&app, "N-HMAC-1", 700),
            &app.merchant.api_key,
            SignType::HmacSha256,
        );
        let (_, reply) = post_notification(&app.base, body).await;
        assert_eq!(reply, REPLY_SUCCESS, "{}", app.db.label);
        assert_eq!(app.stored_order("N-HMAC-1").await.status, OrderStatus::Paid);
    }
}

#[tokio::test]
async fn a_shopper_paying_in_the_simulator_pays_the_order_end_to_end() {
    for app in spawn_apps().await {
        // Arrange: our order, and unifiedorder against the app's in-process simulator
        let sim = app.sim.clone().expect("sandbox mode starts the simulator");
        create_order(&app, "N-SIM-1", 1234, SignType::Md5).await;
        let client = wxpay::Client::new(sim.client_config().unwrap()).unwrap();
        let request = wxpay::UnifiedOrderRequest::jsapi(
            "paydesk notify test",
            "N-SIM-1",
            1234,
            "127.0.0.1",
            app.url("/wxpay/notify/payment"),
            OPENID,
        );
        let prepay = client.unified_order(&request).await.unwrap();
        assert!(!prepay.prepay_id.is_empty());

        // Act: the shopper pays; the simulator notifies the app
        sim.pay_order("N-SIM-1", &PayRequest::default()).unwrap();
        let attempts = sim
            .wait_for_notifications(Duration::from_secs(10), |a| {
                a.iter()
                    .any(|a| a.out_trade_no == "N-SIM-1" && a.reply_body.is_some())
            })
            .await;

        // Assert
        let attempt = attempts
            .iter()
            .find(|a| a.out_trade_no == "N-SIM-1")
            .expect("a delivery attempt");
        assert_eq!(attempt.http_status, Some(200), "{}", app.db.label);
        assert_eq!(attempt.reply_body.as_deref(), Some(REPLY_SUCCESS));
        let o = app.stored_order("N-SIM-1").await;
        assert_eq!(o.status, OrderStatus::Paid, "{}", app.db.label);
        let sim_order = sim.order("N-SIM-1").unwrap();
        assert_eq!(o.transaction_id, sim_order.transaction_id);
        assert_eq!(latest(&app).await.verdict, Verdict::Applied);
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_a_callback_records_the_forwarded_sender() {
    let trusted = serde_json::json!({ "trusted_proxies": "127.0.0.1, ::1" });
    for app in spawn_apps_with(trusted).await {
        // Arrange: a tampered callback, as a forger behind the proxy would send it
        let mut p = fields(&app, "N-PROXY-1", 500);
        p.insert("total_fee".into(), "1".into());
        let body = signed(p, &ApiKey::new("0".repeat(32)), SignType::Md5);

        // Act
        let res = reqwest::Client::new()
            .post(app.url("/wxpay/notify/payment"))
            .header("content-type", "text/xml")
            .header("x-forwarded-for", "198.51.100.23")
            .body(body)
            .send()
            .await
            .unwrap();

        // Assert: refused, and the row names the sender the proxy saw
        assert!(is_fail(&res.text().await.unwrap()));
        let row = latest(&app).await;
        assert_eq!(row.verdict, Verdict::BadSignature, "{}", app.db.label);
        assert_eq!(
            row.peer.as_deref(),
            Some("198.51.100.23"),
            "{}",
            app.db.label
        );
    }
}
