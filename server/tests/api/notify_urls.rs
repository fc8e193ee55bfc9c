//! Merchant mode refuses to start with notify URLs WeChat Pay would refuse or could not
//! reach (docs/wechatpay-v2.md §8.1): the error names the variable. The relaxation for a
//! simulator on this machine is explicit and logged.

use std::process::{Command, Output};

/// `paydesk serve` in merchant mode with these notify URL settings, on an unused SQLite
/// file; returns its exit and output (the process is expected to stop by itself).
fn serve(extra: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.db").display());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paydesk"));
    cmd.arg("serve")
        .current_dir(dir.path())
        .env("PAYDESK_LISTEN", "127.0.0.1:0")
        .env("PAYDESK_DATABASE_URL", db)
        .env("PAYDESK_SIMULATOR", "off")
        .env("PAYDESK_WXPAY__APPID", "wx2421b1c4370ec43b")
        .env("PAYDESK_WXPAY__MCH_ID", "10000100")
        .env("PAYDESK_WXPAY__API_KEY", "192006250b4c09247ec02edce69f6a2d")
        .env_remove("PAYDESK_WXPAY__NOTIFY_URL")
        .env_remove("PAYDESK_WXPAY__REFUND_NOTIFY_URL")
        .env_remove("PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const PAY: &str = "https://pay.example.com/wxpay/notify/payment";
const REFUND: &str = "https://pay.example.com/wxpay/notify/refund";

#[test]
fn merchant_mode_refuses_to_start_without_public_https_notify_urls_and_names_the_variable() {
    for (env, names) in [
        (
            vec![("PAYDESK_WXPAY__REFUND_NOTIFY_URL", REFUND)],
            "PAYDESK_WXPAY__NOTIFY_URL",
        ),
        (
            vec![("PAYDESK_WXPAY__NOTIFY_URL", PAY)],
            "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
        ),
        (
            vec![
                (
                    "PAYDESK_WXPAY__NOTIFY_URL",
                    "http://127.0.0.1:3000/wxpay/notify/payment",
                ),
                ("PAYDESK_WXPAY__REFUND_NOTIFY_URL", REFUND),
            ],
            "PAYDESK_WXPAY__NOTIFY_URL",
        ),
        (
            vec![
                ("PAYDESK_WXPAY__NOTIFY_URL", PAY),
                (
                    "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
                    "https://10.0.0.8/wxpay/notify/refund",
                ),
            ],
            "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
        ),
        (
            vec![
                (
                    "PAYDESK_WXPAY__NOTIFY_URL",
                    "https://pay.example.com/n?shop=1",
                ),
                ("PAYDESK_WXPAY__REFUND_NOTIFY_URL", REFUND),
            ],
            "PAYDESK_WXPAY__NOTIFY_URL",
        ),
    ] {
        let out = serve(&env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} started");
        assert!(stderr.contains(names), "{env:?}: {stderr}");
    }
}

#[test]
fn the_loopback_relaxation_is_explicit_and_still_refuses_parameters() {
    let out = serve(&[
        ("PAYDESK_WXPAY__NOTIFY_URL", "http://127.0.0.1:3000/n?x=1"),
        (
            "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
            "http://127.0.0.1:3000/r",
        ),
        ("PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS", "on"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("query string"), "{stderr}");
}
