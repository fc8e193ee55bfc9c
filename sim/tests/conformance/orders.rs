//! unifiedorder, orderquery, closeorder and the envelope checks (docs/wechatpay-v2.md §5, §6, §8.1–§8.4).

use std::time::Duration;

use paydesk_sim::{OrderState, PayRequest, SimError};
use wxpay::{ApiKey, Client, Error, OrderQuery, SignType, TradeState};

use crate::common::*;

fn err_code(e: &Error) -> String {
    e.err_code().unwrap_or_default().to_owned()
}

fn return_msg(e: &Error) -> String {
    match e {
        Error::ReturnFail { return_msg } => return_msg.clone(),
        other => panic!("expected a return_code=FAIL envelope, got {other:?}"),
    }
}

#[tokio::test]
async fn unifiedorder_answers_a_signed_prepay_id_for_both_sign_types() {
    // Arrange
    let sim = start_sim().await;

    for (n, sign_type) in [SignType::Md5, SignType::HmacSha256]
        .into_iter()
        .enumerate()
    {
        let client = client_with(&sim, sign_type);

        // Act (the client verifies the response with the request's algorithm)
        let resp = placed_order(&client, &format!("UO-{n}"), 100, NO_NOTIFY).await;

        // Assert
        assert!(resp.prepay_id.starts_with("wx") && resp.prepay_id.len() == 36);
        assert_eq!(resp.trade_type.as_deref(), Some("JSAPI"));
        assert!(
            !resp.params.contains_key("sign_type"),
            "responses do not echo sign_type"
        );
        let order = sim.order(&format!("UO-{n}")).unwrap();
        assert_eq!(order.sign_type, sign_type);
        assert_eq!(order.state, OrderState::Notpay);
    }
}

#[tokio::test]
async fn unifiedorder_reentry_with_same_params_keeps_the_prepay_id_and_changed_params_are_refused()
{
    // Arrange: the OUT_TRADE_NO_USED form of the refusal (the default is INVALID_REQUEST).
    let sim = start_sim_with(|c| c.reentry_invalid_request = false).await;
    let client = client(&sim);
    let first = placed_order(&client, "RE-1", 100, NO_NOTIFY).await;

    // Act
    let again = placed_order(&client, "RE-1", 100, NO_NOTIFY).await;
    let changed = client
        .unified_order(&order("RE-1", 101, NO_NOTIFY))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(first.prepay_id, again.prepay_id);
    assert_eq!(err_code(&changed), "OUT_TRADE_NO_USED");
    assert!(!changed.retry_safe());
}

#[tokio::test]
async fn unifiedorder_reentry_can_answer_invalid_request_201_and_refreshes_an_expired_prepay_id() {
    // Arrange
    let sim = start_sim_with(|c| c.reentry_invalid_request = true).await;
    let client = client(&sim);
    let mut long_lived = order("RE-2", 100, NO_NOTIFY);
    long_lived.time_expire = Some(time::OffsetDateTime::now_utc() + Duration::from_secs(6 * 3600));
    let first = client.unified_order(&long_lived).await.unwrap();

    // Act
    let changed = client
        .unified_order(&order("RE-2", 100, NO_NOTIFY))
        .await
        .unwrap_err();
    sim.advance_clock(Duration::from_secs(2 * 3600 + 1));
    let refreshed = client.unified_order(&long_lived).await.unwrap();

    // Assert
    assert_eq!(err_code(&changed), "INVALID_REQUEST");
    assert!(
        changed.to_string().contains("201 商户订单号重复")
            || matches!(&changed, Error::ResultFail { err_code_des, .. } if err_code_des == "201 商户订单号重复")
    );
    assert_ne!(first.prepay_id, refreshed.prepay_id);
}

#[tokio::test]
async fn paid_and_closed_orders_refuse_unifiedorder_with_orderpaid_and_orderclosed() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    paid_order(&sim, &client, "PAID-1", 100).await;
    placed_order(&client, "CLOSED-1", 100, NO_NOTIFY).await;
    sim.advance_clock(wxpay::CLOSE_AFTER);
    client.close_order("CLOSED-1").await.unwrap();

    // Act
    let paid = client
        .unified_order(&order("PAID-1", 100, NO_NOTIFY))
        .await
        .unwrap_err();
    let closed = client
        .unified_order(&order("CLOSED-1", 100, NO_NOTIFY))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(err_code(&paid), "ORDERPAID");
    assert_eq!(err_code(&closed), "ORDERCLOSED");
}

#[tokio::test]
async fn orderquery_reports_notpay_then_success_with_transaction_id_and_beijing_time_end() {
    // Arrange
    let sim = start_sim().await;
    let client = client_with(&sim, SignType::HmacSha256);
    placed_order(&client, "Q-1", 250, NO_NOTIFY).await;
    let before = client
        .order_query(OrderQuery::ByOutTradeNo("Q-1".into()))
        .await
        .unwrap();

    // Act
    let paid = sim
        .pay_order(
            "Q-1",
            &PayRequest {
                bank_type: Some("CMB_CREDIT".into()),
                cash_fee: Some(200),
                notify: Some(false),
                ..pay()
            },
        )
        .unwrap();
    let txn = paid.transaction_id.clone().unwrap();
    let after = client
        .order_query(OrderQuery::ByTransactionId(txn.clone()))
        .await
        .unwrap();
    let unknown = client
        .order_query(OrderQuery::ByOutTradeNo("NOPE-1".into()))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(before.trade_state, TradeState::NotPay);
    assert!(before.transaction_id.is_none() && before.time_end.is_none());
    assert!(after.is_paid());
    assert_eq!(txn.len(), 28);
    assert!(txn.starts_with("4200"));
    assert_eq!(after.transaction_id.as_deref(), Some(txn.as_str()));
    assert_eq!(after.total_fee, Some(250));
    assert_eq!(after.cash_fee, Some(200));
    assert_eq!(after.coupon_fee, Some(50));
    assert_eq!(after.bank_type.as_deref(), Some("CMB_CREDIT"));
    let time_end = after.params["time_end"].clone();
    assert_eq!(
        time_end,
        wxpay::wxtime::format_compact(paid.time_end.unwrap())
    );
    assert_eq!(err_code(&unknown), "ORDERNOTEXIST");
}

#[tokio::test]
async fn closeorder_closes_unpaid_orders_and_refuses_paid_closed_and_unknown_ones() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    placed_order(&client, "C-1", 100, NO_NOTIFY).await;
    paid_order(&sim, &client, "C-2", 100).await;
    sim.advance_clock(wxpay::CLOSE_AFTER);

    // Act
    let closed = client.close_order("C-1").await;
    let again = client.close_order("C-1").await.unwrap_err();
    let paid = client.close_order("C-2").await.unwrap_err();
    let unknown = client.close_order("C-3").await.unwrap_err();
    let query = client
        .order_query(OrderQuery::ByOutTradeNo("C-1".into()))
        .await
        .unwrap();
    let pay_closed = sim.pay_order("C-1", &pay());

    // Assert
    assert!(closed.is_ok());
    assert_eq!(err_code(&again), "ORDERCLOSED");
    assert_eq!(err_code(&paid), "ORDERPAID");
    assert_eq!(err_code(&unknown), "ORDERNOTEXIST");
    assert_eq!(query.trade_state, TradeState::Closed);
    assert!(matches!(pay_closed, Err(SimError::Conflict(_))));
}

#[tokio::test]
async fn orders_expire_at_time_expire_and_can_no_longer_be_paid() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    let mut req = order("EXP-1", 100, NO_NOTIFY);
    req.time_expire = Some(time::OffsetDateTime::now_utc() + Duration::from_secs(600));
    client.unified_order(&req).await.unwrap();
    let mut too_short = order("EXP-2", 100, NO_NOTIFY);
    too_short.time_expire = Some(time::OffsetDateTime::now_utc() + Duration::from_secs(240));

    // Act
    sim.advance_clock(Duration::from_secs(601));
    let paying = sim.pay_order("EXP-1", &pay());
    let query = client
        .order_query(OrderQuery::ByOutTradeNo("EXP-1".into()))
        .await
        .unwrap();
    let short = client.unified_order(&too_short).await.unwrap_err();

    // Assert
    assert!(matches!(paying, Err(SimError::Conflict(_))), "{paying:?}");
    assert_eq!(query.trade_state, TradeState::Closed);
    assert_eq!(err_code(&short), "INVALID_REQUEST");
    assert_eq!(sim.orders()[0].state, OrderState::Closed);
}

#[tokio::test]
async fn signature_appid_and_mch_id_failures_are_return_code_fail_envelopes() {
    // Arrange
    let sim = start_sim().await;
    let mut wrong_key = sim.client_config().unwrap();
    wrong_key.api_key = ApiKey::new("00000000000000000000000000000000");
    let mut wrong_appid = sim.client_config().unwrap();
    wrong_appid.appid = "wx0000000000000000".into();
    let mut wrong_mch = sim.client_config().unwrap();
    wrong_mch.mch_id = "19999999".into();

    // Act
    let bad_sign = Client::new(wrong_key)
        .unwrap()
        .unified_order(&order("E-1", 1, NO_NOTIFY))
        .await
        .unwrap_err();
    let bad_appid = Client::new(wrong_appid)
        .unwrap()
        .unified_order(&order("E-2", 1, NO_NOTIFY))
        .await
        .unwrap_err();
    let bad_mch = Client::new(wrong_mch)
        .unwrap()
        .unified_order(&order("E-3", 1, NO_NOTIFY))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(return_msg(&bad_sign), "签名错误");
    assert_eq!(return_msg(&bad_appid), "appid和mch_id不匹配");
    assert_eq!(return_msg(&bad_mch), "商户号mch_id或sub_mch_id不存在");
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn raw_requests_get_the_envelope_errors_of_the_real_gateway() {
    // Arrange
    let sim = start_sim().await;
    let base = [
        ("body", "x"),
        ("out_trade_no", "RAW-1"),
        ("total_fee", "1"),
        ("spbill_create_ip", "127.0.0.1"),
        ("notify_url", NO_NOTIFY),
        ("trade_type", "JSAPI"),
        ("openid", OPENID),
    ];

    // Act
    let lowercase = raw_post(&sim, "/pay/unifiedorder", signed(&sim, &base, Some("md5"))).await;
    let doctype = raw_post(
        &sim,
        "/pay/unifiedorder",
        b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><a>&e;</a></xml>".to_vec(),
    )
    .await;
    let empty = raw_post(&sim, "/pay/unifiedorder", Vec::new()).await;
    let get = reqwest::get(format!("{}/pay/orderquery", sim.http_base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let missing = raw_post(&sim, "/pay/unifiedorder", signed(&sim, &base[1..], None)).await;
    let md5_default = raw_post(&sim, "/pay/unifiedorder", signed(&sim, &base, None)).await;

    // Assert
    let msg = |body: &str| wxpay::xml::parse(body.as_bytes()).unwrap()["return_msg"].clone();
    assert_eq!(msg(&lowercase.1), "签名类型不支持");
    assert_eq!(msg(&doctype.1), "XML格式错误");
    assert_eq!(msg(&empty.1), "POST_DATA_EMPTY");
    assert_eq!(msg(&get), "REQUIRE_POST_METHOD");
    assert_eq!(msg(&missing.1), "缺少参数body");
    let ok = wxpay::xml::parse(md5_default.1.as_bytes()).unwrap();
    assert_eq!(ok["result_code"], "SUCCESS");
    assert!(!ok.contains_key("sign_type"));
    wxpay::verify(&ok, sim.api_key(), SignType::Md5).unwrap();
}

#[tokio::test]
async fn jsapi_without_openid_is_lack_params() {
    // Arrange
    let sim = start_sim().await;
    let body = signed(
        &sim,
        &[
            ("body", "x"),
            ("out_trade_no", "NO-OPENID"),
            ("total_fee", "1"),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", NO_NOTIFY),
            ("trade_type", "JSAPI"),
        ],
        Some("HMAC-SHA256"),
    );

    // Act
    let (_, reply) = raw_post(&sim, "/pay/unifiedorder", body).await;

    // Assert
    let p = wxpay::xml::parse(reply.as_bytes()).unwrap();
    wxpay::verify(&p, sim.api_key(), SignType::HmacSha256).unwrap();
    assert_eq!(p["result_code"], "FAIL");
    assert_eq!(p["err_code"], "LACK_PARAMS");
}

#[tokio::test]
async fn field_limits_are_checked_at_the_envelope() {
    // Arrange
    let sim = start_sim().await;
    let long_body = "长".repeat(43); // 129 bytes of UTF-8
    let cases: Vec<(&str, String, &str)> = vec![
        ("body", long_body, "body参数长度有误"),
        ("out_trade_no", "ORDER@1".into(), "out_trade_no参数格式错误"),
        ("total_fee", "1.00".into(), "total_fee参数格式错误"),
        ("total_fee", "0".into(), "total_fee参数格式错误"),
        (
            "notify_url",
            "https://example.com/n?x=1".into(),
            "notify_url参数格式错误",
        ),
        (
            "spbill_create_ip",
            "not-an-ip".into(),
            "spbill_create_ip参数格式错误",
        ),
        ("trade_type", "JSAPI2".into(), "trade_type参数格式错误"),
    ];

    for (field, value, expected) in cases {
        let mut fields = vec![
            ("body", "x".to_owned()),
            ("out_trade_no", "LIMIT-1".to_owned()),
            ("total_fee", "1".to_owned()),
            ("spbill_create_ip", "127.0.0.1".to_owned()),
            ("notify_url", NO_NOTIFY.to_owned()),
            ("trade_type", "JSAPI".to_owned()),
            ("openid", OPENID.to_owned()),
        ];
        for f in &mut fields {
            if f.0 == field {
                f.1 = value.clone();
            }
        }
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();

        // Act
        let (_, reply) = raw_post(&sim, "/pay/unifiedorder", signed(&sim, &pairs, None)).await;

        // Assert
        let p = wxpay::xml::parse(reply.as_bytes()).unwrap();
        assert_eq!(p["return_code"], "FAIL", "{field}={value}");
        assert_eq!(p["return_msg"], expected, "{field}={value}");
    }
    assert!(sim.orders().is_empty());
}

#[tokio::test]
async fn by_default_closeorder_enforces_the_five_minute_rule() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    placed_order(&client, "C5-1", 100, NO_NOTIFY).await;

    // Act
    let early = client.close_order("C5-1").await.unwrap_err();
    sim.advance_clock(Duration::from_secs(301));
    let later = client.close_order("C5-1").await;

    // Assert
    assert_eq!(err_code(&early), "TRADE_STATE_ERROR");
    assert!(later.is_ok(), "{later:?}");
}

#[tokio::test]
async fn a_lowercase_sign_is_refused_unless_relaxed() {
    // Arrange
    let strict = start_sim().await;
    let relaxed = start_sim_with(|c| c.accept_lowercase_sign = true).await;
    let lower = |sim: &paydesk_sim::RunningSim| {
        let body = signed(sim, &[("out_trade_no", "LOW-1")], None);
        let mut p = wxpay::xml::parse(&body).unwrap();
        let s = p["sign"].to_ascii_lowercase();
        p.insert("sign".into(), s);
        wxpay::xml::write(&p).into_bytes()
    };

    // Act
    let (_, refused) = raw_post(&strict, "/pay/orderquery", lower(&strict)).await;
    let (_, accepted) = raw_post(&relaxed, "/pay/orderquery", lower(&relaxed)).await;

    // Assert
    let parse = |b: &str| wxpay::xml::parse(b.as_bytes()).unwrap();
    assert_eq!(parse(&refused)["return_msg"], "签名错误");
    assert_eq!(parse(&accepted)["err_code"], "ORDERNOTEXIST");
}

#[tokio::test]
async fn request_payment_checks_the_pay_sign_like_the_mini_program() {
    // Arrange
    let sim = start_sim().await;
    let client = client_with(&sim, SignType::HmacSha256);
    let prepay = placed_order(&client, "RP-1", 100, NO_NOTIFY).await;
    let good = client.jsapi_pay_params(&prepay.prepay_id);
    let mut forged = good.clone();
    forged.pay_sign = forged.pay_sign.to_ascii_lowercase();
    let md5 = client_with(&sim, SignType::Md5).jsapi_pay_params(&prepay.prepay_id);
    let quiet = PayRequest {
        notify: Some(false),
        ..pay()
    };

    // Act
    let bad_sign = sim.request_payment(&forged, &quiet);
    let wrong_type = sim.request_payment(&md5, &quiet);
    let over_http = Control::of(&sim)
        .post(
            "/sim/request-payment",
            Some(serde_json::json!({
                "timeStamp": good.time_stamp, "nonceStr": good.nonce_str, "package": good.package,
                "signType": "HMAC-SHA256", "paySign": good.pay_sign, "notify": false
            })),
        )
        .await;

    // Assert
    assert!(
        matches!(bad_sign, Err(SimError::Invalid(ref m)) if m.contains("支付验证签名失败")),
        "{bad_sign:?}"
    );
    assert!(
        matches!(wrong_type, Err(SimError::Invalid(_))),
        "{wrong_type:?}"
    );
    assert_eq!(over_http.status(), 200);
    assert_eq!(sim.order("RP-1").unwrap().state, OrderState::Success);
}

#[tokio::test]
async fn by_default_a_changed_reentry_is_refused_as_invalid_request_201() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    client
        .unified_order(&order("RE-3", 100, NO_NOTIFY))
        .await
        .unwrap();

    // Act
    let changed = client
        .unified_order(&order("RE-3", 200, NO_NOTIFY))
        .await
        .unwrap_err();

    // Assert: the real service's common answer, which a client must read as "number used".
    assert_eq!(err_code(&changed), "INVALID_REQUEST");
    assert!(changed.is_out_trade_no_used(), "{changed}");
}
