//! Orders to pay and the signed notifications that pay them, all made before any load is
//! sent so that signing never competes with the server for CPU.

use anyhow::Context as _;
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use paydesk_core::orders::{self, NewOrder, NewOrderItem, OutTradeNo};
use paydesk_core::Db;
use wxpay::{ApiKey, Params, SignType};

/// The merchant the server runs as (the notifications are signed with its key).
pub struct Merchant {
    pub appid: String,
    pub mch_id: String,
    pub api_key: ApiKey,
}

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

/// The `out_trade_no` of order `i` in a scenario: `B<run><tag><i>`, unique across runs on
/// the same database, and what the checks afterwards select by (`like 'B<run><tag>%'`).
pub fn out_trade_no(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:07}")
}

/// Creates `count` real `NOTPAY` orders (through `create_order`, items and all) and returns
/// one signed payment notification body for each, in order.
pub async fn orders_and_bodies(
    db: &Db,
    merchant: &Merchant,
    prefix: &str,
    run: u64,
    scenario: u8,
    count: usize,
) -> anyhow::Result<Vec<Bytes>> {
    futures::stream::iter(0..count)
        .map(|i| async move {
            let no = out_trade_no(prefix, i);
            let fee = 100 + (i as i64 % 900);
            orders::create_order(
                db,
                NewOrder {
                    out_trade_no: OutTradeNo::parse(&no)?,
                    openid: OPENID.into(),
                    description: "paydesk bench".into(),
                    items: vec![NewOrderItem {
                        product_id: None,
                        name: "green tea".into(),
                        unit_price_fen: fee,
                        quantity: 1,
                    }],
                    sign_type: SignType::Md5,
                    client_ip: Some("127.0.0.1".into()),
                    idempotency_key: None,
                    expires_at: None,
                    next_sync_at: None,
                },
            )
            .await
            .with_context(|| format!("creating order {no}"))?;
            Ok::<_, anyhow::Error>(())
        })
        .buffer_unordered(8)
        .try_collect::<()>()
        .await?;
    Ok((0..count)
        .map(|i| {
            let no = out_trade_no(prefix, i);
            let fee = 100 + (i as i64 % 900);
            Bytes::from(body(merchant, &no, fee, run, scenario, i))
        })
        .collect())
}

/// A successful payment notification as WeChat Pay sends it (docs/wechatpay-v2.md §8.8), MD5-signed.
fn body(merchant: &Merchant, no: &str, fee: i64, run: u64, scenario: u8, i: usize) -> String {
    let mut p = Params::new();
    for (k, v) in [
        ("return_code", "SUCCESS"),
        ("appid", merchant.appid.as_str()),
        ("mch_id", merchant.mch_id.as_str()),
        ("result_code", "SUCCESS"),
        ("openid", OPENID),
        ("is_subscribe", "N"),
        ("trade_type", "JSAPI"),
        ("bank_type", "CMC"),
        ("fee_type", "CNY"),
        ("out_trade_no", no),
        ("time_end", "20261122183000"),
    ] {
        p.insert(k.into(), v.into());
    }
    p.insert(
        "nonce_str".into(),
        format!("{:032x}", (run << 32) ^ i as u64),
    );
    p.insert("total_fee".into(), fee.to_string());
    p.insert("cash_fee".into(), fee.to_string());
    // 28 digits like WeChat's, unique per run, scenario and order (orders.transaction_id
    // is unique).
    p.insert(
        "transaction_id".into(),
        format!("42{:012}{:02}{:012}", run % 1_000_000_000_000, scenario, i),
    );
    let sign = wxpay::sign(&p, &merchant.api_key, SignType::Md5);
    p.insert("sign".into(), sign);
    wxpay::xml::write(&p)
}
