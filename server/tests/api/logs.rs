//! The logs' server functions against the running app: who may read what (401 signed out,
//! 403 below the role), a tampered callback showing up under the right cause with the
//! signature debugger and never the API key, the sanitized body, support's lookup, and the
//! API call log (bodies with `sign`, never the key).

use wxpay::api::OrderQuery;
use wxpay::SignType;

use crate::callbacks::{create_order, post_notification, signed_notification};
use crate::helpers::{
    spawn_apps, TestApp, ADMIN_PASSWORD, API_CALLS_LIST_FORM, NOTIFICATIONS_LIST_FORM,
};

/// A server function's form fields.
type Form = Vec<(&'static str, String)>;

/// The log endpoints with a valid set of arguments, and the lowest role that may call them.
fn endpoints(notification_id: &str, call_id: &str) -> Vec<(&'static str, Form, &'static str)> {
    let list = |extra: &[&'static str]| {
        let mut form: Form = ["from", "to", "after"]
            .into_iter()
            .chain(extra.iter().copied())
            .map(|k| (k, String::new()))
            .collect();
        form.sort_by_key(|(k, _)| *k);
        form
    };
    vec![
        ("logs/notifications", list(&["kind", "verdict"]), "staff"),
        (
            "logs/notification",
            vec![("id", notification_id.to_owned())],
            "staff",
        ),
        ("logs/failures", vec![("window", "24h".into())], "support"),
        ("logs/lookup", vec![("text", "12.34".into())], "support"),
        ("logs/api_calls", list(&["endpoint", "outcome"]), "support"),
        ("logs/api_call", vec![("id", call_id.to_owned())], "support"),
    ]
}

async fn users(app: &TestApp) -> (reqwest::Client, reqwest::Client) {
    let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
    (
        app.new_user_signed_in(&admin, "clerk1", "staff").await,
        app.new_user_signed_in(&admin, "support1", "support").await,
    )
}

async fn json(
    app: &TestApp,
    who: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> serde_json::Value {
    let res = app.call_expect(who, endpoint, form, 200).await;
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_logs_refuse_lower_roles_and_signed_out_visitors() {
    for app in spawn_apps().await {
        // Arrange: one notification and one outbound call to point the detail endpoints at
        let (clerk, support) = users(&app).await;
        create_order(&app, "LG-ROLE", 1234, SignType::Md5).await;
        let (status, _) =
            post_notification(&app.base, signed_notification(&app, "LG-ROLE", 1234)).await;
        assert_eq!(status, 200);
        let _ = app
            .state
            .wxpay
            .order_query(OrderQuery::ByOutTradeNo("LG-ROLE".into()))
            .await;
        app.state.api_calls.flush().await;
        let page = json(&app, &clerk, "logs/notifications", NOTIFICATIONS_LIST_FORM).await;
        let nid = page["rows"][0]["id"].as_i64().unwrap().to_string();
        let calls = json(&app, &support, "logs/api_calls", API_CALLS_LIST_FORM).await;
        let cid = calls["rows"][0]["id"].as_i64().unwrap().to_string();
        let anonymous = app.client();

        for (endpoint, form, min) in endpoints(&nid, &cid) {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            // Act
            let signed_out = app.call(&anonymous, endpoint, &form).await.status();
            let as_staff = app.call(&clerk, endpoint, &form).await.status();
            let as_support = app.call(&support, endpoint, &form).await.status();

            // Assert
            assert_eq!(signed_out, 401, "{endpoint} signed out, {}", app.db.label);
            let staff_expected = if min == "staff" { 200 } else { 403 };
            assert_eq!(
                as_staff, staff_expected,
                "{endpoint} as staff, {}",
                app.db.label
            );
            assert_eq!(as_support, 200, "{endpoint} as support, {}", app.db.label);
        }
    }
}

#[tokio::test]
async fn a_tampered_callback_is_a_bad_signature_explained_without_the_key() {
    for app in spawn_apps().await {
        // Arrange: a correctly signed body for our order, then one value changed
        let (clerk, support) = users(&app).await;
        create_order(&app, "LG-TAMPER", 5000, SignType::Md5).await;
        let key = app.merchant.api_key.expose().to_owned();
        let genuine = signed_notification(&app, "LG-TAMPER", 5000);
        let tampered = genuine.replace("<total_fee>5000</total_fee>", "<total_fee>1</total_fee>");
        assert_ne!(genuine, tampered);
        let full_md5 = wxpay::sign(
            &wxpay::xml::parse(tampered.as_bytes()).unwrap(),
            &app.merchant.api_key,
            SignType::Md5,
        );

        // Act
        let (status, _) = post_notification(&app.base, tampered).await;
        assert_eq!(status, 200);
        let failures = json(&app, &support, "logs/failures", &[("window", "24h")]).await;

        // Assert: under bad_signature, with the debugger, and no key anywhere
        let groups = failures["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{failures}");
        assert_eq!(groups[0]["cause"], "bad_signature");
        assert_eq!(groups[0]["count"], 1);
        let failure = &groups[0]["failures"][0];
        assert_eq!(failure["out_trade_no"], "LG-TAMPER");
        let debugger = &failure["debugger"];
        assert_eq!(debugger["valid"], false);
        let diagnosis = debugger["diagnosis"].as_str().unwrap();
        assert!(diagnosis.starts_with("key mismatch"), "{diagnosis}");
        assert_eq!(debugger["expected_sign_type"], "MD5");
        let canonical = debugger["canonical_string"].as_str().unwrap();
        assert!(canonical.contains("total_fee=1&"), "{canonical}");
        assert!(
            canonical.ends_with("&key=[API key, 32 chars]"),
            "{canonical}"
        );
        assert!(debugger["received_sign"].as_str().unwrap().len() == 32);
        let text = failures.to_string();
        assert!(
            !text.contains(&key),
            "the API key reached the failures view"
        );
        assert!(
            !text.contains(&full_md5),
            "a whole valid signature would sign a forged body"
        );
        // The rendered page, too
        let html = app.html(&support, "/failures?window=24h").await;
        assert!(
            html.contains("signature mismatch"),
            "the diagnosis is on the page"
        );
        assert!(html.contains("[API key, 32 chars]"));
        assert!(
            !html.contains(&key),
            "the API key reached the failures page"
        );
        assert!(!html.contains(&full_md5));
        // A window that is not offered is refused; staff may not look
        app.call_expect(&support, "logs/failures", &[("window", "1y")], 422)
            .await;
        app.call_expect(&clerk, "logs/failures", &[("window", "24h")], 403)
            .await;

        // The notification itself: verdict, claimed order, body raw and sanitized
        let page = json(
            &app,
            &clerk,
            "logs/notifications",
            &[
                ("kind", "payment"),
                ("verdict", "bad_signature"),
                ("from", ""),
                ("to", ""),
                ("after", ""),
            ],
        )
        .await;
        assert_eq!(page["rows"].as_array().unwrap().len(), 1);
        let id = page["rows"][0]["id"].as_i64().unwrap().to_string();
        let detail = json(&app, &clerk, "logs/notification", &[("id", &id)]).await;
        assert_eq!(detail["row"]["verdict"], "bad_signature");
        assert_eq!(detail["matched_out_trade_no"], serde_json::Value::Null);
        assert_eq!(detail["body"]["format"], "xml");
        let raw = detail["body"]["pretty"].as_str().unwrap();
        let clean = detail["sanitized"]["pretty"].as_str().unwrap();
        assert!(
            raw.contains("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") && raw.contains("\n  <"),
            "{raw}"
        );
        assert!(!clean.contains("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), "{clean}");
        assert!(clean.contains("<sign><![CDATA[***]]></sign>"), "{clean}");
        assert!(detail["reply_body"].as_str().unwrap().contains("FAIL"));
        app.call_expect(&clerk, "logs/notification", &[("id", "987654")], 404)
            .await;
    }
}

#[tokio::test]
async fn support_looks_up_orders_and_reads_the_api_call_log() {
    for app in spawn_apps().await {
        // Arrange
        let (_clerk, support) = users(&app).await;
        create_order(&app, "LG-LOOK", 1234, SignType::Md5).await;
        let _ = app
            .state
            .wxpay
            .order_query(OrderQuery::ByOutTradeNo("LG-LOOK".into()))
            .await;
        app.state.api_calls.flush().await;

        // Act / Assert: by id, by amount and time, and nothing
        let found = json(&app, &support, "logs/lookup", &[("text", " LG-LOOK ")]).await;
        assert_eq!(
            found["rows"][0]["out_trade_no"], "LG-LOOK",
            "{}",
            app.db.label
        );
        assert_eq!(found["amount_fen"], serde_json::Value::Null);
        let found = json(&app, &support, "logs/lookup", &[("text", "12.34元 今天")]).await;
        assert_eq!(found["rows"][0]["out_trade_no"], "LG-LOOK", "{found}");
        assert_eq!(found["amount_fen"], 1234);
        let found = json(&app, &support, "logs/lookup", &[("text", "12.35")]).await;
        assert!(found["rows"].as_array().unwrap().is_empty());

        // The call log: the orderquery, filterable, with its signed request and no key
        let key = app.merchant.api_key.expose().to_owned();
        let calls = json(
            &app,
            &support,
            "logs/api_calls",
            &[
                ("endpoint", "/pay/orderquery"),
                ("outcome", ""),
                ("from", ""),
                ("to", ""),
                ("after", ""),
            ],
        )
        .await;
        let rows = calls["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{calls}");
        assert_eq!(rows[0]["out_trade_no"], "LG-LOOK");
        let none = json(
            &app,
            &support,
            "logs/api_calls",
            &[
                ("endpoint", "/pay/refundquery"),
                ("outcome", ""),
                ("from", ""),
                ("to", ""),
                ("after", ""),
            ],
        )
        .await;
        assert!(none["rows"].as_array().unwrap().is_empty());
        let id = rows[0]["id"].as_i64().unwrap().to_string();
        let detail = json(&app, &support, "logs/api_call", &[("id", &id)]).await;
        let request = detail["request"]["pretty"].as_str().unwrap();
        assert!(request.contains("<sign>"), "{request}");
        assert!(request.contains("LG-LOOK"));
        assert!(
            !detail.to_string().contains(&key),
            "the API key was stored or shown"
        );
        app.call_expect(
            &support,
            "logs/api_calls",
            &[
                ("endpoint", ""),
                ("outcome", "maybe"),
                ("from", ""),
                ("to", ""),
                ("after", ""),
            ],
            422,
        )
        .await;
    }
}
