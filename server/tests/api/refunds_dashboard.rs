//! The Refunds page's server functions: who may do what (checked on the server), and that
//! the core rules reach the dashboard — support files, a manager decides, nobody decides
//! their own request, over-refunds are refused with the refundable amount named.

use app::error::AppError;
use app::i18n::Lang;
use paydesk_core::orders::{self, OrderStatus};
use paydesk_core::refunds::{self, RefundStatus};
use wxpay::SignType;

use crate::callbacks::create_order;
use crate::helpers::{spawn_apps, TestApp, ADMIN_PASSWORD};

async fn paid_order(app: &TestApp, no: &str, fee: i64) {
    let order = create_order(app, no, fee, SignType::Md5).await;
    orders::transition(&app.db.db, order.id, OrderStatus::Paid)
        .await
        .unwrap();
}

#[tokio::test]
async fn support_files_a_manager_decides_and_nobody_decides_their_own_request() {
    for app in spawn_apps().await {
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let support = app.new_user_signed_in(&admin, "support1", "support").await;
        let manager = app.new_user_signed_in(&admin, "manager1", "manager").await;
        let manager2 = app.new_user_signed_in(&admin, "manager2", "manager").await;
        let clerk = app.new_user_signed_in(&admin, "clerk1", "staff").await;
        paid_order(&app, "RD-1", 5000).await;

        // Act + Assert: staff may not even look
        for endpoint in ["refunds/list", "refunds/check_channel"] {
            app.call_expect(&clerk, endpoint, &[], 403).await;
        }
        app.call_expect(
            &clerk,
            "refunds/request",
            &[("out_trade_no", "RD-1"), ("amount", ""), ("reason", "x")],
            403,
        )
        .await;

        // Support files ¥30 of ¥50; asking for more than the rest is refused with the amount
        let filed = app
            .call(
                &support,
                "refunds/request",
                &[
                    ("out_trade_no", "RD-1"),
                    ("amount", "30.00"),
                    ("reason", "少发一件"),
                ],
            )
            .await;
        assert_eq!(filed.status(), 200, "{}", app.db.label);
        let filed: serde_json::Value = filed.json().await.unwrap();
        assert_eq!(filed["refundable_left"], 2000);
        let too_much = app
            .call(
                &support,
                "refunds/request",
                &[
                    ("out_trade_no", "RD-1"),
                    ("amount", "20.01"),
                    ("reason", "x"),
                ],
            )
            .await;
        assert_eq!(too_much.status(), 422);
        let id = filed["id"].as_i64().unwrap().to_string();

        // Support cannot approve; a manager can; a second decision is refused
        for (who, reason, status) in [
            (&support, "ok", 403),
            (&manager, "", 422),
            (&manager, "核实属实", 200),
        ] {
            let form = [("id", id.as_str()), ("reason", reason)];
            app.call_expect(who, "refunds/approve", &form, status).await;
        }
        let res = app
            .call(
                &manager2,
                "refunds/reject",
                &[("id", &id), ("reason", "晚了")],
            )
            .await;
        // Already decided: a conflict (409) with its reason as a code, worded by the page
        assert_eq!(res.status(), 409, "already decided, {}", app.db.label);
        let body: serde_json::Value = res.json().await.unwrap();
        let reason = &body["Conflict"]["reason"];
        assert_eq!(reason["code"], "already_decided", "{body}");
        // (The refund job may have sent it on by now.)
        let status = reason["status"].as_str().unwrap().to_owned();
        assert!(
            ["APPROVED", "SUBMITTED", "PROCESSING", "SUCCESS"].contains(&status.as_str()),
            "{body}"
        );
        assert_eq!(reason["by"], "manager1", "{body}");
        let error: AppError = serde_json::from_value(body).unwrap();
        assert_eq!(
            error.describe(Lang::Zh),
            format!("该退款已被处理，当前状态：{status}，处理人：manager1。")
        );
        assert_eq!(
            error.describe(Lang::En),
            format!("This refund was already decided: it is {status} (by manager1).")
        );

        // A manager's own request: they may not decide it, another manager may
        let own = app
            .call(
                &manager,
                "refunds/request",
                &[
                    ("out_trade_no", "RD-1"),
                    ("amount", ""),
                    ("reason", "剩余退款"),
                ],
            )
            .await;
        let own: serde_json::Value = own.json().await.unwrap();
        assert_eq!(own["amount_fen"], 2000, "defaults to what is left");
        assert_eq!(own["can_decide"], false);
        let own_id = own["id"].as_i64().unwrap().to_string();
        let res = app
            .call_expect(
                &manager,
                "refunds/approve",
                &[("id", &own_id), ("reason", "ok")],
                403,
            )
            .await;
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            body["Forbidden"]["reason"]["code"], "own_refund_request",
            "{body}"
        );
        app.call_expect(
            &manager2,
            "refunds/reject",
            &[("id", &own_id), ("reason", "先处理第一笔")],
            200,
        )
        .await;

        let stored = refunds::find(&app.db.db, own_id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, RefundStatus::Rejected);
        assert_eq!(stored.decided_by.as_deref(), Some("manager2"));
        let listed: serde_json::Value = app
            .call(&support, "refunds/list", &[])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 2, "{}", app.db.label);
    }
}

#[tokio::test]
async fn the_refund_channel_check_does_a_real_mutual_tls_handshake_with_the_simulator() {
    for app in spawn_apps().await {
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let res = app
            .call_expect(&admin, "refunds/check_channel", &[], 200)
            .await;
        let check: serde_json::Value = res.json().await.unwrap();
        assert_eq!(check["ok"], true, "{}: {check}", app.db.label);
        assert!(
            check["subject"].as_str().unwrap().contains("CN="),
            "{check}"
        );
        let refunds_at_sim = app.sim.as_ref().unwrap().refunds().len();
        assert_eq!(refunds_at_sim, 0, "no money moved");
    }
}

#[tokio::test]
async fn approving_works_as_a_plain_form_post_before_the_page_has_hydrated() {
    for app in spawn_apps().await {
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let manager = app.new_user_signed_in(&admin, "manager1", "manager").await;
        paid_order(&app, "RD-NOJS", 800).await;
        let filed: serde_json::Value = app
            .call(
                &admin,
                "refunds/request",
                &[
                    ("out_trade_no", "RD-NOJS"),
                    ("amount", ""),
                    ("reason", "破损"),
                ],
            )
            .await
            .json()
            .await
            .unwrap();
        let id = filed["id"].as_i64().unwrap().to_string();

        // Act: what the browser sends for <form method=post> without JavaScript
        let res = manager
            .post(app.url("/api/refunds/approve"))
            .headers(crate::helpers::html_headers())
            .header("referer", app.url("/refunds"))
            .form(&[("id", id.as_str()), ("reason", "同意")])
            .send()
            .await
            .unwrap();

        // Assert: back to the page, and the decision is made
        assert!(
            res.status().is_redirection(),
            "{}: {}",
            app.db.label,
            res.status()
        );
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.contains("/refunds"), "{location}");
        let stored = refunds::find(&app.db.db, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(
            stored.status,
            RefundStatus::PendingApproval,
            "{}",
            app.db.label
        );
        assert_eq!(stored.decided_by.as_deref(), Some("manager1"));
    }
}
