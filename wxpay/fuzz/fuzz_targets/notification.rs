//! Fuzz the notification entry points (docs/wechatpay-v2.md §8.8, §8.9) and the signature debugger: they face
//! the internet and must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxpay::{notify, ApiKey, SignType};

fuzz_target!(|data: &[u8]| {
    let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
    for order in [None, Some(SignType::Md5), Some(SignType::HmacSha256)] {
        let _ = notify::PaymentNotification::parse_and_verify(data, &key, order);
    }
    if let Ok(refund) = notify::RefundNotification::parse(data) {
        let _ = refund.decrypt(&key);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = notify::decrypt_req_info(text, &key);
    }
    let explained = wxpay::explain(data, &key, None);
    let _ = explained.to_string();
});
