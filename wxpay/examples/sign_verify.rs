//! Sign a unifiedorder request, write it as XML, parse it back and verify it; then build
//! the `wx.requestPayment` parameters. Run: `cargo run -p wxpay --example sign_verify`.

use wxpay::{xml, ApiKey, JsapiPayParams, Params, SignType};

fn main() {
    let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
    let mut params: Params = [
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("device_info", "1000"),
        ("body", "test"),
        ("nonce_str", "ibuaiVcKdpRxkhJA"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();

    // §5.1: the string that is hashed is stringA + "&key=" + key; print stringA only.
    println!("stringA       = {}", wxpay::canonical_string(&params));
    for t in [SignType::Md5, SignType::HmacSha256] {
        println!("{:<13} = {}", t.as_str(), wxpay::sign(&params, &key, t));
    }

    let sign = wxpay::sign(&params, &key, SignType::Md5);
    params.insert("sign".into(), sign);
    let body = xml::write(&params);
    println!("request body  = {body}");

    let parsed = xml::parse(body.as_bytes()).expect("our own XML parses");
    match wxpay::verify(&parsed, &key, SignType::Md5) {
        Ok(()) => println!("verify MD5    = ok"),
        Err(e) => println!("verify MD5    = {e}"),
    }
    match wxpay::verify(&parsed, &key, SignType::HmacSha256) {
        Ok(()) => println!("verify HMAC   = ok (unexpected!)"),
        Err(e) => println!("verify HMAC   = {e} (expected: the sign type is bound to the request)"),
    }

    // §5.5: the parameters the Mini Program passes to wx.requestPayment.
    let pay = JsapiPayParams::new(
        "wxd930ea5d5a258f4f",
        "wx201411101639507cbf6ffd8b0779950874",
        SignType::Md5,
        &key,
    );
    println!(
        "requestPayment = {}",
        serde_json::to_string(&pay).expect("serialisable")
    );
}
