//! `paydesk doctor`: the pre-flight checks (`paydesk_core::doctor`) run from the command
//! line against the configured merchant, printed one verdict per line (README "paydesk
//! doctor"). This module also builds the checks' [`Setup`] from [`Settings`], for the
//! command and for the Settings page's panel.
//!
//! Exit codes (a contract: scripts rely on them): 0 when every line that applies passes
//! (lines that do not apply print as skipped), 1 when any fails, 2 when it could not run
//! (sandbox mode or no merchant credentials, database unreachable).

use std::process::ExitCode;

use paydesk_core::db::PoolSizes;
use paydesk_core::doctor::Setup;
use paydesk_core::Db;
use paydesk_types::doctor::{self, CheckVerdict, DoctorLine, DoctorTarget};

use crate::config::{PayMode, Settings};
use crate::state::PayConfig;

/// Why the doctor could not run at all (exit 2).
#[derive(Debug)]
pub enum CannotRun {
    /// Sandbox mode: there is no merchant configuration to check.
    Sandbox,
    /// Credentials missing or malformed, so nothing can be asked.
    Configuration(anyhow::Error),
    /// The database does not answer.
    Database(anyhow::Error),
}

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CannotRun::Sandbox => f.write_str("sandbox mode (PAYDESK_SIMULATOR): there is no merchant configuration to check against WeChat Pay; set PAYDESK_WXPAY__APPID, __MCH_ID and __API_KEY"),
            CannotRun::Configuration(e) => write!(f, "{e:#}"),
            CannotRun::Database(e) => write!(f, "the database is unreachable: {e:#}"),
        }
    }
}

/// What the checks need from the merchant configuration as written (merchant mode).
pub fn setup(settings: &Settings) -> Setup {
    Setup {
        target: DoctorTarget::WechatPay,
        configuration: settings
            .validate()
            .and_then(|()| settings.wxpay.backups().map(drop))
            .map_err(|e| format!("{e:#}")),
        notify_url: settings.wxpay.notify_url.clone(),
        refund_notify_url: settings.wxpay.refund_notify_url.clone(),
        notify_url_rules: settings.wxpay.notify_url_rules(),
        low_free_mib: settings.disk.low_free_mib,
    }
}

/// What the checks need in a running server: in sandbox mode the built-in simulator is
/// what the client asks, and the notify URLs are the ones the pay flow resolved (this
/// server's own, by default), judged by the loopback rules that simulator applies.
pub fn server_setup(settings: &Settings, pay: &PayConfig) -> Setup {
    let merchant = setup(settings);
    match settings.pay_mode() {
        PayMode::Merchant => merchant,
        PayMode::Simulator => Setup {
            target: DoctorTarget::Simulator,
            notify_url: Some(pay.notify_url.clone()),
            refund_notify_url: Some(pay.refund_notify_url.clone()),
            notify_url_rules: wxpay::NotifyUrlRules::Loopback,
            ..merchant
        },
    }
}

/// Runs every check against the configured merchant, with a client of its own (no call
/// log: this is not the server).
pub async fn run(settings: &Settings) -> Result<Vec<DoctorLine>, CannotRun> {
    if settings.pay_mode() == PayMode::Simulator {
        return Err(CannotRun::Sandbox);
    }
    let (_, config) = settings
        .merchant_client()
        .map_err(CannotRun::Configuration)?;
    let client = wxpay::Client::new(config).map_err(|e| CannotRun::Configuration(e.into()))?;
    let db = Db::connect(
        &settings.database_url,
        PoolSizes {
            max_connections: 1,
            ..PoolSizes::default()
        },
    )
    .await
    .map_err(CannotRun::Database)?;
    let lines = paydesk_core::doctor::check(&setup(settings), &db, &client).await;
    db.close().await;
    Ok(lines)
}

/// Prints the checklist and returns the exit code.
pub fn report(lines: &[DoctorLine], out: &mut impl std::io::Write) -> std::io::Result<ExitCode> {
    for line in lines {
        let mark = match line.verdict {
            CheckVerdict::Pass => "PASS",
            CheckVerdict::Fail => "FAIL",
            CheckVerdict::Skip => "SKIP",
        };
        writeln!(out, "{mark}  {:<16} {}", line.check.label(), line.finding)?;
    }
    let failed = doctor::failed(lines);
    if failed == 0 {
        writeln!(out, "\nevery check that applies passed")?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(out, "\n{failed} check(s) failed")?;
        Ok(ExitCode::from(1))
    }
}
