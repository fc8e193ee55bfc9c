//! What the payment-callback tests share: an order of ours, WeChat Pay's notification for it
//! from the app's merchant, and posting a callback the way WeChat Pay does
//! (docs/wechatpay-v2.md §8.8).

use paydesk_core::orders::{self, NewOrder};
use paydesk_core::testing;
use wxpay::{ApiKey, Params, SignType};

use crate::helpers::{header, TestApp};

pub const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

/// Stores an unpaid order `no` of `fee` fen signed with `sign_type` ([`testing::new_order`]).
pub async fn create_order(app: &TestApp, no: &str, fee: i64, sign_type: SignType) -> orders::Order {
    orders::create_order(
        &app.db.db,
        NewOrder {
            sign_type,
            ..testing::new_order(no, fee)
        },
    )
    .await
    .unwrap()
}

/// The fields of a successful payment notification for `no` from the app's own merchant.
pub fn fields(app: &TestApp, no: &str, fee: i64) -> Params {
    let mut p = Params::new();
    for (k, v) in [
        ("return_code", "SUCCESS"),
        ("appid", app.merchant.appid.as_str()),
        ("mch_id", app.merchant.mch_id.as_str()),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("result_code", "SUCCESS"),
        ("openid", OPENID),
        ("trade_type", "JSAPI"),
        ("bank_type", "CFT"),
        ("fee_type", "CNY"),
        ("transaction_id", "4200000123202611221234567890"),
        ("out_trade_no", no),
        ("time_end", "20261122183000"),
    ] {
        p.insert(k.into(), v.into());
    }
    p.insert("total_fee".into(), fee.to_string());
    p.insert("cash_fee".into(), fee.to_string());
    p
}

/// The body of `p` signed with `key` by `sign_type`.
pub fn signed(mut p: Params, key: &ApiKey, sign_type: SignType) -> String {
    let sign = wxpay::sign(&p, key, sign_type);
    p.insert("sign".into(), sign);
    wxpay::xml::write(&p)
}

/// A genuine payment notification for `no` of `fee` fen: the app's merchant, MD5-signed.
pub fn signed_notification(app: &TestApp, no: &str, fee: i64) -> String {
    signed(fields(app, no, fee), &app.merchant.api_key, SignType::Md5)
}

/// Posts a payment callback to the instance at `base` as WeChat Pay does, and returns the
/// reply's status and body; whatever the body was, the reply is XML.
pub async fn post_notification(base: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(format!("{base}/wxpay/notify/payment"))
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let content_type = header(&res, "content-type");
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    (status, res.text().await.unwrap())
}
