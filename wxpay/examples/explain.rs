//! The signature debugger: explain why a message verifies or not.
//!
//! `cargo run -p wxpay --example explain -- KEY [MD5|HMAC-SHA256] < message.xml`
//! Without arguments it explains a built-in notification whose amount was tampered with.
//! The process exits with `Explanation::exit_code()`: 0 valid, 1 invalid, 2 refused.

use std::io::Read;

use wxpay::{ApiKey, SignType};

const TAMPERED: &str = "<xml><appid><![CDATA[wx2421b1c4370ec43b]]></appid><bank_type><![CDATA[CFT]]></bank_type><cash_fee>1</cash_fee><fee_type><![CDATA[CNY]]></fee_type><is_subscribe><![CDATA[N]]></is_subscribe><mch_id><![CDATA[10000100]]></mch_id><nonce_str><![CDATA[5d2b6c2a8db53831f7eda20af46e531c]]></nonce_str><openid><![CDATA[oUpF8uMEb4qRXf22hE3X68TekukE]]></openid><out_trade_no><![CDATA[1409811653]]></out_trade_no><result_code><![CDATA[SUCCESS]]></result_code><return_code><![CDATA[SUCCESS]]></return_code><time_end><![CDATA[20140903131540]]></time_end><total_fee>100</total_fee><trade_type><![CDATA[JSAPI]]></trade_type><transaction_id><![CDATA[1004400740201409030005092168]]></transaction_id><sign><![CDATA[5DB91F4358BD68D0047D510673E521D9]]></sign></xml>";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (key, expected, body) = match args.first() {
        Some(key) => {
            let expected = args.get(1).map(|t| {
                t.parse::<SignType>().unwrap_or_else(|e| {
                    eprintln!("{e}");
                    std::process::exit(64);
                })
            });
            let mut body = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut body) {
                eprintln!("cannot read stdin: {e}");
                std::process::exit(64);
            }
            (ApiKey::new(key.trim()), expected, body)
        }
        None => (
            ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
            None,
            TAMPERED.as_bytes().to_vec(),
        ),
    };
    let explanation = wxpay::explain(&body, &key, expected);
    print!("{explanation}");
    std::process::exit(explanation.exit_code());
}
