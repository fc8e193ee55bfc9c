//! The Orders pages' server side: the CSV export route (managers only, checked on the
//! server, streamed, audited), the list and detail server functions, and the order actions
//! (support may sync and close; staff may look but not act).

use paydesk_core::audit;
use paydesk_core::orders::{self, OrderStatus};
use wxpay::{SignType, UnifiedOrderRequest};

use crate::callbacks::create_order;
use crate::helpers::{spawn_apps, TestApp, ADMIN_PASSWORD, ORDERS_LIST_FORM};

async fn users(app: &TestApp) {
    let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
    for (name, role) in [
        ("manager1", "manager"),
        ("support1", "support"),
        ("clerk1", "staff"),
    ] {
        app.add_user(&admin, name, &format!("{name} password"), role)
            .await;
    }
}

async fn paid(app: &TestApp, no: &str, fee: i64) {
    let order = create_order(app, no, fee, SignType::Md5).await;
    orders::transition(&app.db.db, order.id, OrderStatus::Paid)
        .await
        .unwrap();
}

async fn exports(app: &TestApp) -> Vec<audit::AuditRecord> {
    audit::list(&app.db.db, None, Some(audit::action::ORDER_EXPORT), 10)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_manager_exports_the_filtered_orders_as_streamed_csv_and_lower_roles_are_refused() {
    for app in spawn_apps().await {
        // Arrange
        users(&app).await;
        paid(&app, "EX-PAID-1", 1250).await;
        paid(&app, "EX-PAID-2", 9900).await;
        create_order(&app, "EX-UNPAID", 500, SignType::Md5).await;
        let manager = app.signed_in("manager1", "manager1 password").await;
        let support = app.signed_in("support1", "support1 password").await;
        let clerk = app.signed_in("clerk1", "clerk1 password").await;
        let url = app.url("/orders/export.csv?status=PAID&min=10");

        // Act
        let res = manager.get(&url).send().await.unwrap();

        // Assert: only the paid orders of at least ¥10, streamed with a download name
        assert_eq!(res.status(), 200, "{}", app.db.label);
        let headers = res.headers().clone();
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"orders-")
                && disposition.ends_with(".csv\""),
            "{disposition}"
        );
        assert!(
            headers.get("content-length").is_none(),
            "a streamed body has no length up front"
        );
        assert_eq!(headers["transfer-encoding"], "chunked");
        let body = res.text().await.unwrap();
        let lines: Vec<&str> = body.trim_end().split("\r\n").collect();
        assert!(
            lines[0].starts_with("\u{feff}商户订单号 out_trade_no,"),
            "{}",
            lines[0]
        );
        assert_eq!(lines.len(), 3, "header and two rows: {body}");
        assert!(lines[1].starts_with("EX-PAID-2,") && lines[1].contains(",99.00,PAID,"));
        assert!(lines[2].starts_with("EX-PAID-1,") && lines[2].contains(",12.50,PAID,"));
        let audited = exports(&app).await;
        assert_eq!(audited.len(), 1, "{}", app.db.label);
        assert_eq!(audited[0].actor, "manager1");
        let detail = audited[0].detail.as_deref().unwrap();
        assert!(
            detail.contains("status PAID") && detail.contains("amount ≥ 10.00"),
            "{detail}"
        );

        // Lower roles and signed-out visitors are refused on the server, and nothing is audited
        for (who, client) in [("support", &support), ("staff", &clerk)] {
            let res = client.get(&url).send().await.unwrap();
            assert_eq!(res.status(), 403, "{who}");
        }
        let res = app.client().get(&url).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert_eq!(exports(&app).await.len(), 1);

        // A filter that cannot be read is a 422, not everything
        let res = manager
            .get(app.url("/orders/export.csv?min=abc"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422);
    }
}

fn list_form<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    ORDERS_LIST_FORM
        .iter()
        .map(|(k, v)| {
            overrides
                .iter()
                .find(|(ok, _)| ok == k)
                .copied()
                .unwrap_or((*k, *v))
        })
        .collect()
}

#[tokio::test]
async fn staff_list_and_search_orders_and_read_one_but_only_support_may_sync_or_close() {
    for app in spawn_apps().await {
        // Arrange: an unpaid order WeChat Pay knows (unifiedorder sent) and a paid one
        users(&app).await;
        create_order(&app, "ACT-1", 2560, SignType::Md5).await;
        app.state
            .wxpay
            .unified_order(&UnifiedOrderRequest::jsapi(
                "paydesk orders test",
                "ACT-1",
                2560,
                "127.0.0.1",
                app.state.pay.notify_url.clone(),
                "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            ))
            .await
            .unwrap();
        paid(&app, "ACT-PAID", 1000).await;
        let support = app.signed_in("support1", "support1 password").await;
        let clerk = app.signed_in("clerk1", "clerk1 password").await;

        // Staff see the list with its totals, and the search box jumps to an exact match
        let res = app
            .call_expect(
                &clerk,
                "orders/list",
                &list_form(&[("status", "PAID")]),
                200,
            )
            .await;
        let page: serde_json::Value = res.json().await.unwrap();
        assert_eq!(page["count"], 1);
        assert_eq!(page["sum_fen"], 1000);
        assert_eq!(page["orders"][0]["out_trade_no"], "ACT-PAID");
        assert_eq!(page["can_export"], false);
        let res = app
            .call(&clerk, "orders/list", &list_form(&[("q", " ACT-1 ")]))
            .await;
        let page: serde_json::Value = res.json().await.unwrap();
        assert_eq!(page["jump"], "/orders/ACT-1");
        app.call_expect(&app.client(), "orders/list", &list_form(&[]), 401)
            .await;

        // Staff may not act: refused on the server, nothing audited
        for endpoint in ["orders/sync", "orders/close"] {
            app.call_expect(&clerk, endpoint, &[("out_trade_no", "ACT-1")], 403)
                .await;
        }

        // Act: support syncs (still unpaid at WeChat Pay), then closes
        let res = app
            .call_expect(&support, "orders/sync", &[("out_trade_no", "ACT-1")], 200)
            .await;
        assert_eq!(res.json::<String>().await.unwrap(), "NOTPAY");
        // Within 5 minutes of creation: refused with when it can be closed, nothing called
        let res = app
            .call_expect(&support, "orders/close", &[("out_trade_no", "ACT-1")], 409)
            .await;
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            body["Conflict"]["reason"]["code"], "too_early_to_close",
            "{body}"
        );
        app.age_order("ACT-1").await;
        let res = app
            .call_expect(&support, "orders/close", &[("out_trade_no", "ACT-1")], 200)
            .await;
        assert_eq!(res.json::<String>().await.unwrap(), "CLOSED");
        // A paid order cannot be closed; an unknown one is not found
        let res = app
            .call_expect(
                &support,
                "orders/close",
                &[("out_trade_no", "ACT-PAID")],
                409,
            )
            .await;
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["Conflict"]["reason"]["code"], "not_closable", "{body}");
        app.call_expect(&support, "orders/sync", &[("out_trade_no", "NOPE")], 404)
            .await;

        // Assert: the detail (staff may read it) tells the whole story, oldest first
        app.state.api_calls.flush().await;
        let res = app
            .call_expect(&clerk, "orders/detail", &[("out_trade_no", "ACT-1")], 200)
            .await;
        let detail: serde_json::Value = res.json().await.unwrap();
        assert_eq!(detail["status"], "CLOSED");
        assert_eq!(detail["trade_type"], "JSAPI");
        assert_eq!(detail["can_act"], false, "staff may not act");
        let kinds: Vec<String> = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let what = &e["what"];
                let (kind, body) = what.as_object().unwrap().iter().next().unwrap();
                match kind.as_str() {
                    "ApiCall" => body["endpoint"].as_str().unwrap().to_owned(),
                    "Staff" => body["action"].as_str().unwrap().to_owned(),
                    other => other.to_owned(),
                }
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "Created",
                "/pay/unifiedorder",
                "/pay/orderquery",
                "order.sync",
                "/pay/closeorder",
                "order.close"
            ],
            "{}",
            app.db.label
        );
        app.call_expect(&clerk, "orders/detail", &[("out_trade_no", "NOPE")], 404)
            .await;
    }
}

#[tokio::test]
async fn a_bare_orders_page_opens_on_the_last_seven_days_and_all_time_is_one_link_away() {
    for app in spawn_apps().await {
        // Arrange
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let today = paydesk_types::format_shanghai_date(paydesk_core::now_ms());
        let week_ago = paydesk_types::format_shanghai_date(paydesk_core::now_ms() - 6 * 86_400_000);

        // Act
        let bare = admin
            .get(app.url("/orders"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        let all = admin
            .get(app.url("/orders?all"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();

        // Assert: a real redirect to a week ending today; `?all` is the whole table
        assert_eq!(bare.status(), 302, "{}", app.db.label);
        assert_eq!(
            bare.headers()["location"].to_str().unwrap(),
            format!("/orders?from={week_ago}&to={today}"),
            "{}",
            app.db.label
        );
        assert_eq!(all.status(), 200, "{}", app.db.label);
    }
}
