//! `paydesk doctor` against a standalone simulator in its strict default profile: every
//! line passes for a right configuration, and each kind of wrong one fails its own line.
//! Exit codes are a contract: 0 all passed, 1 a check failed, 2 could not run. The simulator
//! serves from the runtime's other worker while a test waits for the process.

use std::path::Path;

use paydesk_core::testing;
use paydesk_sim::{RunningSim, SimConfig};

use crate::helpers::paydesk_against;

const PAY: &str = "https://pay.example.com/wxpay/notify/payment";
const REFUND: &str = "https://pay.example.com/wxpay/notify/refund";

struct Doctor {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Doctor {
    /// The line of `check`, which must be there.
    fn line(&self, check: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
            .unwrap_or_else(|| panic!("no {check} line in:\n{}", self.stdout))
    }

    fn assert_line(&self, verdict: &str, check: &str, says: &str) {
        let line = self.line(check);
        assert!(
            line.starts_with(verdict) && line.contains(says),
            "{check}: expected {verdict} saying {says:?}, got {line:?}\n{}",
            self.stdout
        );
    }
}

/// `paydesk doctor` with the merchant configuration of `sim` (its certificate, CA and
/// listeners) on `database_url`, `overrides` applied last (an empty value unsets).
fn doctor(sim: &RunningSim, database_url: &str, overrides: &[(&str, &str)]) -> Doctor {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = paydesk_against(sim, database_url);
    cmd.arg("doctor")
        .current_dir(cwd.path())
        .env("PAYDESK_WXPAY__NOTIFY_URL", PAY)
        .env("PAYDESK_WXPAY__REFUND_NOTIFY_URL", REFUND)
        .env("RUST_LOG", "error");
    for (k, v) in overrides {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().unwrap();
    Doctor {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn strict_sim(dir: &Path) -> RunningSim {
    paydesk_sim::start(SimConfig {
        cert_dir: dir.to_path_buf(),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

async fn databases() -> Vec<testing::TestDb> {
    let mut dbs = vec![testing::sqlite().await.unwrap()];
    dbs.extend(testing::postgres().await.unwrap());
    dbs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_merchant_configuration_passes_every_line_on_both_databases() {
    let dir = tempfile::tempdir().unwrap();
    let sim = strict_sim(dir.path()).await;
    for db in databases().await {
        let d = doctor(&sim, &db.url, &[]);
        assert_eq!(d.code, 0, "{}: {}\n{}", db.label, d.stdout, d.stderr);
        for check in [
            "configuration",
            "database",
            "notify URL",
            "refund notify",
            "credentials",
            "sign type",
            "certificate",
            "refund channel",
            "clock",
        ] {
            d.assert_line("PASS", check, "");
        }
        // A simulator's base has no default backup host: the line says where calls go.
        d.assert_line(
            "PASS",
            "configuration",
            "backup host off, refund backup off",
        );
        d.assert_line("PASS", "credentials", "ORDERNOTEXIST");
        d.assert_line("PASS", "refund channel", "accepted our certificate");
        assert!(!d.stdout.contains(sim.api_key().expose()), "{}", d.stdout);
    }
    // No refund was made: the calls named orders that cannot exist.
    assert!(sim.refunds().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wrong_setting_fails_its_own_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let sim = strict_sim(dir.path()).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other = strict_sim(other_dir.path()).await;
    let db = testing::sqlite().await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let (expired_cert, expired_key) = paydesk_sim::certs::issue_merchant_certificate(
        sim.cert_paths(),
        sim.mch_id(),
        now - time::Duration::days(400),
        now - time::Duration::days(1),
        dir.path(),
        "expired",
    )
    .unwrap();
    let (expired_cert, expired_key) = (
        expired_cert.display().to_string(),
        expired_key.display().to_string(),
    );
    let foreign = other.cert_paths();
    let (foreign_cert, foreign_key) = (
        foreign.client_cert.display().to_string(),
        foreign.client_key.display().to_string(),
    );

    // (what, settings changed, the line that fails, what it says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "wrong key",
            vec![("PAYDESK_WXPAY__API_KEY", "0123456789abcdef0123456789abcdef")],
            "credentials",
            "PAYDESK_WXPAY__API_KEY",
        ),
        (
            "wrong mch_id",
            vec![("PAYDESK_WXPAY__MCH_ID", "19999999")],
            "credentials",
            "PAYDESK_WXPAY__MCH_ID",
        ),
        (
            "a certificate of another merchant's CA",
            vec![
                ("PAYDESK_WXPAY__CERT_PEM", foreign_cert.as_str()),
                ("PAYDESK_WXPAY__KEY_PEM", foreign_key.as_str()),
            ],
            "refund channel",
            "refused our certificate",
        ),
        (
            "an expired certificate",
            vec![
                ("PAYDESK_WXPAY__CERT_PEM", expired_cert.as_str()),
                ("PAYDESK_WXPAY__KEY_PEM", expired_key.as_str()),
            ],
            "certificate",
            "expired",
        ),
        (
            "a loopback notify URL",
            vec![(
                "PAYDESK_WXPAY__NOTIFY_URL",
                "http://127.0.0.1:3000/wxpay/notify/payment",
            )],
            "notify URL",
            "PAYDESK_WXPAY__NOTIFY_URL",
        ),
        (
            "a private refund notify URL",
            vec![("PAYDESK_WXPAY__REFUND_NOTIFY_URL", "https://10.1.2.3/r")],
            "refund notify",
            "cannot reach",
        ),
    ];
    for (what, overrides, check, says) in cases {
        let d = doctor(&sim, &db.url, &overrides);
        assert_eq!(d.code, 1, "{what}: {}\n{}", d.stdout, d.stderr);
        d.assert_line("FAIL", check, says);
    }

    // The wrong mch_id also shows on the certificate, which names the right one.
    let d = doctor(&sim, &db.url, &[("PAYDESK_WXPAY__MCH_ID", "19999999")]);
    d.assert_line("FAIL", "certificate", "does not name mch_id 19999999");

    // Without a certificate the refund lines are skipped, not failed.
    let d = doctor(
        &sim,
        &db.url,
        &[
            ("PAYDESK_WXPAY__CERT_PEM", ""),
            ("PAYDESK_WXPAY__KEY_PEM", ""),
        ],
    );
    d.assert_line("SKIP", "certificate", "none configured");
    d.assert_line("SKIP", "refund channel", "");
    assert_eq!(d.code, 0, "{}", d.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_exits_2_when_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let sim = strict_sim(dir.path()).await;
    let db = testing::sqlite().await.unwrap();

    let sandbox = doctor(&sim, &db.url, &[("PAYDESK_SIMULATOR", "on")]);
    assert_eq!(sandbox.code, 2, "{}", sandbox.stdout);
    assert!(
        sandbox.stderr.contains("sandbox mode"),
        "{}",
        sandbox.stderr
    );

    let unreachable = doctor(&sim, "postgres://paydesk@127.0.0.1:1/nothing", &[]);
    assert_eq!(unreachable.code, 2, "{}", unreachable.stdout);
    assert!(
        unreachable.stderr.contains("database"),
        "{}",
        unreachable.stderr
    );
}
