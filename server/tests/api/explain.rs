//! `paydesk wxpay explain`: the signature debugger on the command line (docs/design.md Contract:
//! exit 0 = valid, 1 = invalid, 2 = refused as malformed or forbidden XML).

use std::io::Write as _;
use std::process::{Command, Stdio};

fn vectors() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wxpay/tests/data/vectors.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn explain(key: &str, sign_type: Option<&str>, message: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, key).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paydesk"));
    cmd.args(["wxpay", "explain", "--key-file"]).arg(&key_file);
    if let Some(t) = sign_type {
        cmd.args(["--sign-type", t]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_valid_notification_exits_0_a_tampered_one_1_and_a_doctype_2_without_printing_the_key() {
    let v = vectors();
    let n = &v["notification_vectors"][0];
    let key = n["api_key"].as_str().unwrap();
    let xml = n["xml"].as_str().unwrap();

    let (code, out) = explain(key, None, xml);
    assert_eq!(code, 0, "{out}");

    let tampered = xml.replacen("<total_fee>1</total_fee>", "<total_fee>2</total_fee>", 1);
    assert_ne!(tampered, xml, "the vector has a total_fee to tamper with");
    let (code, out) = explain(key, None, &tampered);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains(key), "the key must never be printed:\n{out}");

    let xxe = v["xml_parsing_vectors"][1]["xml"].as_str().unwrap();
    let (code, out) = explain(key, None, xxe);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn an_md5_signature_for_an_hmac_order_is_invalid() {
    let v = vectors();
    let n = &v["notification_vectors"][0];
    let (code, out) = explain(
        n["api_key"].as_str().unwrap(),
        Some("HMAC-SHA256"),
        n["xml"].as_str().unwrap(),
    );
    assert_eq!(code, 1, "{out}");
}
