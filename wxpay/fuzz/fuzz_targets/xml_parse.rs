//! Fuzz the strict XML parser (docs/wechatpay-v2.md §4.2): never panic, and whatever it accepts must survive
//! a write → parse round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = wxpay::xml::parse(data) {
        let written = wxpay::xml::write(&params);
        let back = wxpay::xml::parse(written.as_bytes()).expect("writer output must parse");
        assert_eq!(back, params);
    }
    let _ = wxpay::xml::parse_with_root(data, wxpay::xml::REFUND_ROOT);
});
