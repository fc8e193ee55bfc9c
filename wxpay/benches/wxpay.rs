//! Criterion benchmarks: parse + verify one payment notification, sign one unifiedorder.
//! Run with `cargo bench -p wxpay`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wxpay::notify::PaymentNotification;
use wxpay::{ApiKey, Params, SignType};

const NOTIFICATION: &str = "<xml>\n<appid><![CDATA[wx2421b1c4370ec43b]]></appid>\n<bank_type><![CDATA[CFT]]></bank_type>\n<cash_fee>1</cash_fee>\n<fee_type><![CDATA[CNY]]></fee_type>\n<is_subscribe><![CDATA[N]]></is_subscribe>\n<mch_id><![CDATA[10000100]]></mch_id>\n<nonce_str><![CDATA[5d2b6c2a8db53831f7eda20af46e531c]]></nonce_str>\n<openid><![CDATA[oUpF8uMEb4qRXf22hE3X68TekukE]]></openid>\n<out_trade_no><![CDATA[1409811653]]></out_trade_no>\n<result_code><![CDATA[SUCCESS]]></result_code>\n<return_code><![CDATA[SUCCESS]]></return_code>\n<time_end><![CDATA[20140903131540]]></time_end>\n<total_fee>1</total_fee>\n<trade_type><![CDATA[JSAPI]]></trade_type>\n<transaction_id><![CDATA[1004400740201409030005092168]]></transaction_id>\n<sign><![CDATA[5DB91F4358BD68D0047D510673E521D9]]></sign>\n</xml>";

fn unified_order() -> Params {
    [
        ("appid", "wx2421b1c4370ec43b"),
        ("mch_id", "10000100"),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("body", "JSAPI-test"),
        ("out_trade_no", "20150806125346"),
        ("total_fee", "1"),
        ("spbill_create_ip", "123.12.12.123"),
        ("notify_url", "https://example.com/wxpay/notify"),
        ("trade_type", "JSAPI"),
        ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("sign_type", "MD5"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn benches(c: &mut Criterion) {
    let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
    c.bench_function("notification/parse_and_verify", |b| {
        b.iter(|| {
            PaymentNotification::parse_and_verify(black_box(NOTIFICATION.as_bytes()), &key, None)
                .unwrap()
        })
    });
    c.bench_function("xml/parse_notification", |b| {
        b.iter(|| wxpay::xml::parse(black_box(NOTIFICATION.as_bytes())).unwrap())
    });
    let params = unified_order();
    c.bench_function("sign/unifiedorder_md5", |b| {
        b.iter(|| wxpay::sign(black_box(&params), &key, SignType::Md5))
    });
    c.bench_function("sign/unifiedorder_hmac_sha256", |b| {
        b.iter(|| wxpay::sign(black_box(&params), &key, SignType::HmacSha256))
    });
    c.bench_function("xml/write_signed_unifiedorder", |b| {
        b.iter(|| {
            let mut p = black_box(&params).clone();
            let s = wxpay::sign(&p, &key, SignType::Md5);
            p.insert("sign".into(), s);
            wxpay::xml::write(&p)
        })
    });
}

criterion_group!(wxpay_benches, benches);
criterion_main!(wxpay_benches);
