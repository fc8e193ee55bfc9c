//! Property tests: sign → verify and write → parse round trips over arbitrary field maps
//! (unicode, `&`, `=`, `]]>`, CR, empty values), and a parser that never panics.

use proptest::prelude::*;
use wxpay::{xml, ApiKey, Params, SignType};

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,12}".prop_filter("reserved", |n| n != "sign" && n != "key")
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,24}",
        "[&=<>\"' \\]\\[\\r\\n\\t]{0,10}",
        ("\\PC{0,6}", "\\PC{0,6}").prop_map(|(a, b)| format!("{a}]]>{b}")),
        "[0-9]{1,12}",
        "[\u{4e00}-\u{9fa5}\u{1F600}-\u{1F64F}]{1,8}",
    ]
}

fn params() -> impl Strategy<Value = Params> {
    prop::collection::btree_map(name(), value(), 0..12)
}

fn sign_type() -> impl Strategy<Value = SignType> {
    prop_oneof![Just(SignType::Md5), Just(SignType::HmacSha256)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn write_then_parse_is_identity(p in params()) {
        let written = xml::write(&p);
        prop_assert_eq!(xml::parse(written.as_bytes()).unwrap(), p);
    }

    #[test]
    fn sign_then_verify_round_trips(p in params(), t in sign_type(), key in "[A-Za-z0-9]{32}") {
        let key = ApiKey::new(key);
        let mut signed = p.clone();
        let s = wxpay::sign(&p, &key, t);
        prop_assert_eq!(s.len(), t.sign_len());
        prop_assert!(s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        signed.insert("sign".into(), s);
        prop_assert!(wxpay::verify(&signed, &key, t).is_ok());
        prop_assert!(wxpay::verify(&signed, &key, t.other()).is_err());
        // Through the wire format too.
        let back = xml::parse(xml::write(&signed).as_bytes()).unwrap();
        prop_assert!(wxpay::verify(&back, &key, t).is_ok());
    }

    #[test]
    fn changing_a_signed_value_breaks_the_signature(p in params(), t in sign_type(), extra in "[a-z]{1,3}") {
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let mut signed = p.clone();
        signed.insert("sign".into(), wxpay::sign(&p, &key, t));
        let target = p.iter().find(|(_, v)| !v.is_empty()).map(|(k, _)| k.clone());
        if let Some(k) = target {
            signed.get_mut(&k).unwrap().push_str(&extra);
            prop_assert!(wxpay::verify(&signed, &key, t).is_err());
        }
    }

    #[test]
    fn empty_values_do_not_change_the_signature(p in params(), n in name(), t in sign_type()) {
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let mut with_empty = p.clone();
        with_empty.entry(n).or_default();
        prop_assert_eq!(wxpay::sign(&p, &key, t), wxpay::sign(&with_empty, &key, t));
    }

    #[test]
    fn canonical_string_is_sorted_and_raw(p in params()) {
        let c = wxpay::canonical_string(&p);
        let expected: Vec<String> = p.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={v}")).collect();
        prop_assert_eq!(c, expected.join("&"));
    }

    #[test]
    fn parser_never_panics(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = xml::parse(&body);
    }

    #[test]
    fn parser_never_panics_on_xmlish_text(body in "[<>/!\\[\\]CDATA?xml &;#a-z0-9\"'=\\-]{0,80}") {
        let _ = xml::parse(body.as_bytes());
        let _ = wxpay::explain(body.as_bytes(), &ApiKey::new("k"), None);
    }

    #[test]
    fn req_info_round_trips(p in params()) {
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let enc = wxpay::notify::encrypt_req_info(&p, &key);
        prop_assert_eq!(wxpay::notify::decrypt_req_info(&enc, &key).unwrap(), p);
    }
}
