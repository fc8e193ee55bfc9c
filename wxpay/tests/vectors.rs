//! Every vector of `tests/data/vectors.json` (a copy of the spec's public vectors) as
//! data-driven tests. Each test walks one category, collects the ids that fail and reports
//! them all at once.

use std::collections::BTreeMap;

use serde_json::Value;
use wxpay::notify::{self, PaymentNotification, RefundNotification};
use wxpay::{xml, ApiKey, Bill, Error, Params, SignType};

fn vectors() -> Value {
    let text = include_str!("data/vectors.json");
    serde_json::from_str(text).expect("vectors.json is valid JSON")
}

fn category(name: &str) -> Vec<Value> {
    let v = vectors();
    let list = v[name]
        .as_array()
        .unwrap_or_else(|| panic!("category {name} missing"))
        .clone();
    list
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no string {key}", v["id"]))
}

fn params(v: &Value) -> Params {
    v.as_object()
        .expect("params object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
        .collect()
}

/// Checks the text the MD5 / HMAC-SHA256 digest is taken over (§5.1 step 2) against the
/// vector's `string_to_sign`, where it gives one.
fn check_string_to_sign(v: &Value, p: &Params, key: &ApiKey, f: &mut Failures<'_>) {
    let temp = format!("{}&key={}", wxpay::canonical_string(p), key.expose());
    if let Some(expected) = v["string_to_sign"].as_str() {
        if temp != expected {
            f.push(format!("string_to_sign {temp:?} != {expected:?}"));
        }
    }
}

/// A signing vector's key, params and sign type, its `string_to_sign` checked on the way.
fn signing_inputs(v: &Value, f: &mut Failures<'_>) -> (ApiKey, Params, SignType) {
    let key = ApiKey::new(s(v, "api_key"));
    let p = params(&v["params"]);
    check_string_to_sign(v, &p, &key, f);
    (key, p, sign_type(v))
}

fn sign_type(v: &Value) -> SignType {
    v["sign_type"]
        .as_str()
        .unwrap_or("MD5")
        .parse()
        .expect("valid sign_type")
}

/// What the vectors of one category got wrong, each line led by the vector's id.
struct Failures<'a> {
    id: &'a str,
    lines: &'a mut Vec<String>,
}

impl Failures<'_> {
    fn push(&mut self, what: impl std::fmt::Display) {
        self.lines.push(format!("{}: {what}", self.id));
    }
}

/// Runs `check` on every vector of `name`, then fails once with everything that went wrong.
fn check_each(name: &str, mut check: impl FnMut(&Value, &mut Failures<'_>)) {
    let list = category(name);
    assert!(!list.is_empty(), "no vectors in {name}");
    let mut lines = Vec::new();
    for v in &list {
        check(
            v,
            &mut Failures {
                id: s(v, "id"),
                lines: &mut lines,
            },
        );
    }
    assert!(
        lines.is_empty(),
        "{name}: {} of {} failed:\n{}",
        lines.len(),
        list.len(),
        lines.join("\n")
    );
}

/// The first field, in the vector itself or one of its `sections`, whose lowercased name
/// and value `pick` accepts (the vectors name the same thing in several ways).
fn find_field<'a, T>(
    v: &'a Value,
    sections: &[&str],
    pick: impl Fn(&str, &'a Value) -> Option<T>,
) -> Option<T> {
    std::iter::once(Some(v))
        .chain(sections.iter().map(|s| v.get(s)))
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|o| o.iter())
        .find_map(|(k, val)| pick(&k.to_ascii_lowercase(), val))
}

/// For vectors without `expected_sign`: a field named like `expected_sign…` that is not the
/// trimmed variant.
fn untrimmed_expectation(v: &Value) -> Option<&str> {
    find_field(v, &["expected"], |k, val| {
        let trimmed = k.contains("trim") && !k.contains("untrim") && !k.contains("no_trim");
        (k.contains("sign") && !trimmed && !k.contains("string"))
            .then(|| val.as_str())
            .flatten()
    })
}

/// The order's stored sign type, when a notification vector states one (§5.2 rule (2)).
fn order_sign_type(v: &Value) -> Option<SignType> {
    find_field(v, &["expected", "context", "input"], |k, val| {
        (k.contains("order") && k.contains("sign"))
            .then(|| val.as_str()?.parse().ok())
            .flatten()
    })
}

#[test]
fn sign_vectors() {
    check_each("sign_vectors", |v, f| {
        let (key, p, t) = signing_inputs(v, f);
        let got = wxpay::sign(&p, &key, t);
        // `expected_sign` is the untouched-values signature (§5.1); vectors that also give the
        // result of a trimming signer (§5.4) name it differently and are not ours to match.
        let Some(expected) = v["expected_sign"]
            .as_str()
            .or_else(|| untrimmed_expectation(v))
        else {
            f.push("no expected sign found");
            return;
        };
        if got != expected {
            f.push(format!("sign {got} != {expected}"));
        }
        // The expected sign must verify, and must not verify under the other algorithm.
        let mut signed = p.clone();
        signed.insert("sign".into(), expected.to_owned());
        if wxpay::verify(&signed, &key, t).is_err() {
            f.push("expected sign does not verify");
        }
        if wxpay::verify(&signed, &key, t.other()).is_ok() {
            f.push("verifies under the other algorithm too");
        }
    });
}

#[test]
fn pay_sign_vectors() {
    check_each("pay_sign_vectors", |v, f| {
        let (key, p, t) = signing_inputs(v, f);
        let expected = s(v, "expected_paySign");
        let got = wxpay::pay_sign(
            &p["appId"],
            &p["timeStamp"],
            &p["nonceStr"],
            &p["package"],
            t,
            &key,
        );
        if got != expected || p["signType"] != t.as_str() {
            f.push(format!("paySign {got} != {expected}"));
        }
        let prepay_id = p["package"]
            .strip_prefix("prepay_id=")
            .expect("package shape");
        let built = wxpay::JsapiPayParams::with(
            &p["appId"],
            prepay_id,
            t,
            &key,
            p["timeStamp"].parse().expect("timeStamp"),
            p["nonceStr"].clone(),
        );
        if built.pay_sign != expected {
            f.push(format!("JsapiPayParams {} != {expected}", built.pay_sign));
        }
        let json = serde_json::to_value(&built).expect("serialise");
        if json["signType"] != t.as_str()
            || json["paySign"] != expected
            || json["timeStamp"] != p["timeStamp"].as_str()
        {
            f.push(format!("camelCase JSON {json}"));
        }
    });
}

#[test]
fn notification_vectors() {
    check_each("notification_vectors", |v, f| {
        let key = ApiKey::new(s(v, "api_key"));
        let body = s(v, "xml").as_bytes();
        let expected = &v["expected"];
        let reference = &v["reference_result"];
        let parsed = xml::parse(body);
        let should_parse = expected["parse"].as_str().unwrap_or("ok") == "ok";
        if parsed.is_ok() != should_parse {
            f.push(format!("parse {:?}", parsed.as_ref().err()));
            return;
        }
        let Ok(p) = parsed else { return };
        for (field, t) in [
            ("verify_as_MD5", SignType::Md5),
            ("verify_as_HMAC-SHA256", SignType::HmacSha256),
        ] {
            if let Some(want) = reference[field].as_bool() {
                if wxpay::verify(&p, &key, t).is_ok() != want {
                    f.push(format!("{field} != {want}"));
                }
            }
        }
        if let Some(want) = reference["verify_using_sign_type_field_else_MD5"].as_bool() {
            let t = p
                .get("sign_type")
                .map_or(SignType::Md5, |v| v.parse().unwrap_or(SignType::Md5));
            if wxpay::verify(&p, &key, t).is_ok() != want {
                f.push(format!("sign_type-else-MD5 != {want}"));
            }
        }
        let order_sign_type = order_sign_type(v);
        let result = PaymentNotification::parse_and_verify(body, &key, order_sign_type);
        if let Some(valid) = expected["signature_valid"].as_bool() {
            if result.is_ok() != valid {
                f.push(format!(
                    "signature_valid {valid} but got {:?}",
                    result.as_ref().err()
                ));
            }
            if !valid && !result.as_ref().is_err_and(Error::is_signature_error) {
                f.push(format!(
                    "expected a signature error, got {:?}",
                    result.as_ref().err()
                ));
            }
        }
        if let (Some(t), Ok(n)) = (expected["sign_type_used"].as_str(), &result) {
            if n.sign_type.as_str() != t {
                f.push(format!("sign type used {} != {t}", n.sign_type));
            }
        }
        if let (Some("paid"), Ok(n)) = (expected["business_result"].as_str(), &result) {
            if !n.is_paid() {
                f.push("not paid");
            }
        }
        if let Some(reply) = expected["reply"]
            .as_str()
            .filter(|r| r.starts_with("<xml>"))
        {
            if reply != notify::REPLY_SUCCESS {
                f.push("reply differs");
            }
        }
    });
}

#[test]
fn refund_notify_vectors() {
    check_each("refund_notify_vectors", |v, f| {
        let key = ApiKey::new(s(v, "api_key"));
        if let Some(aes) = v["aes_key_ascii"].as_str() {
            if notify::refund_aes_key(&key).as_slice() != aes.as_bytes() {
                f.push("AES key differs");
            }
        }
        let req_info = if let Some(outer) = v["outer_xml"].as_str() {
            match RefundNotification::parse(outer.as_bytes()) {
                Ok(n) => {
                    for (k, want) in v["expected_outer"].as_object().into_iter().flatten() {
                        if n.params.get(k).map(String::as_str) != want.as_str() {
                            f.push(format!("outer {k}"));
                        }
                    }
                    n.req_info
                }
                Err(e) => {
                    f.push(format!("outer parse {e}"));
                    return;
                }
            }
        } else {
            s(v, "req_info").to_owned()
        };
        let Some(expected_fields) = v.get("expected_fields") else {
            // A vector without expected fields describes a payload that must not decrypt.
            if notify::decrypt_req_info(&req_info, &key).is_ok() {
                f.push("decrypted although no plaintext is expected");
            }
            return;
        };
        match notify::decrypt_req_info(&req_info, &key) {
            Ok(p) => {
                let want = params(expected_fields);
                if p != want {
                    f.push(format!("decrypted {p:?} != {want:?}"));
                }
                if let Some(plain) = v["expected_plaintext"].as_str() {
                    if xml::parse_with_root(plain.as_bytes(), "root").ok().as_ref() != Some(&p) {
                        f.push("plaintext parse differs");
                    }
                }
                match wxpay::notify::RefundNotificationInfo::from_params(p) {
                    Ok(info) => {
                        if Some(info.refund_status.as_str())
                            != want.get("refund_status").map(String::as_str)
                        {
                            f.push(format!("status {}", info.refund_status));
                        }
                    }
                    Err(e) => f.push(format!("typed {e}")),
                }
            }
            Err(e) => f.push(format!("decrypt {e}")),
        }
        let wrong = ApiKey::new("00000000000000000000000000000000");
        if !matches!(
            notify::decrypt_req_info(&req_info, &wrong),
            Err(Error::DecryptFailed { .. })
        ) {
            f.push("wrong key not reported as decrypt failure");
        }
    });
}

#[test]
fn xml_parsing_vectors() {
    check_each("xml_parsing_vectors", |v, f| {
        let body = s(v, "xml").as_bytes();
        let result = xml::parse(body);
        match s(v, "expected") {
            "reject" => match &result {
                Ok(p) => f.push(format!("accepted {p:?}")),
                Err(e) => {
                    let reason = v["reference_result"]["reason"].as_str().unwrap_or("");
                    let entity_case =
                        reason.contains("DOCTYPE") || reason.to_ascii_lowercase().contains("entit");
                    if entity_case && !e.is_forbidden() {
                        f.push(format!("rejected but not as forbidden: {e}"));
                    }
                }
            },
            "accept" => match &result {
                Ok(p) => {
                    if let Some(want) = v["reference_result"].get("parsed") {
                        if *p != params(want) {
                            f.push(format!("parsed {p:?}"));
                        }
                    }
                }
                Err(e) => f.push(format!("rejected: {e}")),
            },
            other => f.push(format!("unknown expectation {other}")),
        }
    });
}

#[test]
fn bill_vectors() {
    check_each("bill_vectors", |v, f| {
        let bill = match Bill::parse(s(v, "raw")) {
            Ok(b) => b,
            Err(e) => {
                f.push(format!("{e}"));
                return;
            }
        };
        let header: Vec<String> =
            serde_json::from_value(v["expected_detail_header"].clone()).expect("header");
        if bill.header != header {
            f.push(format!("header {:?}", bill.header));
        }
        let rows: Vec<BTreeMap<String, String>> =
            serde_json::from_value(v["expected_detail_rows"].clone()).expect("rows");
        if bill.rows_as_maps() != rows {
            f.push(format!("rows {:?}", bill.rows_as_maps()));
        }
        let summary: BTreeMap<String, String> =
            serde_json::from_value(v["expected_summary"].clone()).expect("summary");
        if bill.summary_map() != summary {
            f.push(format!("summary {:?}", bill.summary_map()));
        }
        // Typed views: every amount converts exactly.
        match (bill.records(), bill.summary()) {
            (Ok(records), Ok(sum)) => {
                if records.len() != rows.len() {
                    f.push(format!("{} records", records.len()));
                }
                let yuan = |s: &str| wxpay::money::yuan_to_fen(s).expect("amount");
                if let Some(total) = summary.get("订单总金额") {
                    if sum.total_fee != Some(yuan(total)) {
                        f.push(format!("summary total {:?}", sum.total_fee));
                    }
                }
                if let Some(fee) = summary.get("手续费总金额") {
                    if sum.poundage_millifen
                        != Some(wxpay::money::yuan_to_millifen(fee).expect("fee"))
                    {
                        f.push(format!("fee total {:?}", sum.poundage_millifen));
                    }
                }
                if let Some(count) = summary.get("总交易单数") {
                    if sum.trade_count != count.parse().ok() {
                        f.push(format!("count {:?}", sum.trade_count));
                    }
                }
            }
            (r, s) => f.push(format!("typed views {:?} {:?}", r.err(), s.err())),
        }
    });
}

#[test]
fn response_vectors() {
    check_each("response_vectors", |v, f| {
        let key = ApiKey::new(s(v, "api_key"));
        let body = s(v, "xml").as_bytes();
        let t = sign_type(v);
        let p = match xml::parse(body) {
            Ok(p) => p,
            Err(e) => {
                f.push(format!("parse {e}"));
                return;
            }
        };
        check_string_to_sign(v, &p, &key, f);
        if let Some(expected) = v["expected_sign"].as_str() {
            if wxpay::sign(&p, &key, t) != expected {
                f.push("sign differs");
            }
        }
        let appid = p.get("appid").cloned().unwrap_or_default();
        let mch_id = p.get("mch_id").cloned().unwrap_or_default();
        let result = wxpay::evaluate_response(s(v, "endpoint"), body, &key, t, &appid, &mch_id);
        if let Some(want) = v["expected"]["verify_with_request_sign_type"].as_bool() {
            let verified = !matches!(result, Err(Error::BadSignature | Error::MissingSign));
            if verified != want {
                f.push(format!("verify {want} but {:?}", result.as_ref().err()));
            }
        }
        if wxpay::evaluate_response(s(v, "endpoint"), body, &key, t.other(), &appid, &mch_id)
            .is_ok()
        {
            f.push("accepted with the other sign type");
        }
        if wxpay::evaluate_response(
            s(v, "endpoint"),
            body,
            &key,
            t,
            "wx0000000000000000",
            &mch_id,
        )
        .is_ok()
        {
            f.push("accepted a foreign appid");
        }
    });
}

#[test]
fn return_code_fail_examples() {
    let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
    check_each("return_code_fail_examples", |v, f| {
        let body = s(v, "xml").as_bytes();
        match wxpay::evaluate_response("/pay/unifiedorder", body, &key, SignType::Md5, "wx", "1") {
            Err(Error::ReturnFail { return_msg }) => {
                let want = xml::parse(body).expect("parse")["return_msg"].clone();
                if return_msg != want {
                    f.push(format!("return_msg {return_msg}"));
                }
            }
            other => f.push(format!("{other:?}")),
        }
        let explained = wxpay::explain(body, &key, None);
        if explained.exit_code() != 1 {
            f.push(format!("explain exit {}", explained.exit_code()));
        }
    });
}

#[test]
fn every_category_is_covered() {
    let v = vectors();
    let known = [
        "meta",
        "sign_vectors",
        "pay_sign_vectors",
        "notification_vectors",
        "refund_notify_vectors",
        "xml_parsing_vectors",
        "bill_vectors",
        "behavior_vectors",
        "response_vectors",
        "return_code_fail_examples",
    ];
    for k in v.as_object().expect("object").keys() {
        assert!(
            known.contains(&k.as_str()),
            "vector category {k} is not tested"
        );
    }
}
