//! `paydesk doctor`: checks a merchant configuration against WeChat Pay without moving money
//! and prints a checklist, one verdict per line (README "paydesk doctor").
//!
//! What each line asks WeChat Pay, and why no money can move:
//! - **credentials**: a signed `orderquery` for an order number that cannot exist. A
//!   business answer (`ORDERNOTEXIST`) whose sign verifies means WeChat Pay knows the appid
//!   and mch_id and accepted our key and sign type; `签名错误` and the other envelope
//!   refusals name what is wrong.
//! - **refund channel**: `/secapi/pay/refund` over mutual TLS for that same impossible order.
//!   Refused as unknown means the certificate was accepted; there is no order to refund.
//! - **clock**: WeChat Pay's HTTP `Date` against ours.
//!
//! Exit codes (a contract: scripts rely on them): 0 when every line that applies passes
//! (lines that do not apply print as skipped), 1 when any fails, 2 when it could not run
//! (sandbox mode or no merchant credentials, database unreachable).

use std::process::ExitCode;
use std::time::Duration;

use paydesk_core::db::PoolSizes;
use paydesk_core::Db;
use time::OffsetDateTime;

use crate::config::{PayMode, Settings};

/// How far WeChat Pay's clock and ours may drift apart before requests risk refusal.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(60);
/// A certificate this close to its end passes with a warning.
const CERT_WARN_DAYS: i64 = 30;

/// A line's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It works.
    Pass,
    /// It does not; the detail says what to change.
    Fail,
    /// It does not apply to this configuration.
    Skip,
}

/// One checked thing.
#[derive(Debug, Clone)]
pub struct Line {
    /// What was checked.
    pub check: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found, in plain words.
    pub detail: String,
}

impl Line {
    fn pass(check: &'static str, detail: impl Into<String>) -> Line {
        Line {
            check,
            verdict: Verdict::Pass,
            detail: detail.into(),
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>) -> Line {
        Line {
            check,
            verdict: Verdict::Fail,
            detail: detail.into(),
        }
    }

    fn skip(check: &'static str, detail: impl Into<String>) -> Line {
        Line {
            check,
            verdict: Verdict::Skip,
            detail: detail.into(),
        }
    }
}

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

/// Runs every check, in order.
pub async fn run(settings: &Settings) -> Result<Vec<Line>, CannotRun> {
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

    let mut lines = vec![configuration(settings)];
    lines.push(database(&db).await);
    lines.push(disk(&db, settings));
    db.close().await;
    lines.extend(notify_urls(settings));
    lines.extend(credentials(&client, settings).await);
    lines.push(certificate(&client, settings));
    lines.push(refund_channel(&client).await);
    lines.push(clock(&client).await);
    Ok(lines)
}

/// Prints the checklist and returns the exit code.
pub fn report(lines: &[Line], out: &mut impl std::io::Write) -> std::io::Result<ExitCode> {
    for line in lines {
        let mark = match line.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        writeln!(out, "{mark}  {:<16} {}", line.check, line.detail)?;
    }
    let failed = lines.iter().filter(|l| l.verdict == Verdict::Fail).count();
    if failed == 0 {
        writeln!(out, "\nevery check that applies passed")?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(out, "\n{failed} check(s) failed")?;
        Ok(ExitCode::from(1))
    }
}

/// Whether paydesk would start, and where it fails over to (§2.1).
fn configuration(settings: &Settings) -> Line {
    match settings.validate().and_then(|()| settings.wxpay.backups()) {
        Ok((api, refund)) => {
            let shown = |b: Option<String>| b.unwrap_or_else(|| "off".to_owned());
            let backup = match &settings.wxpay.refund_base_url {
                Some(_) => format!(
                    "backup host {}, refund backup {}",
                    shown(api),
                    shown(refund)
                ),
                None => format!("backup host {}", shown(api)),
            };
            Line::pass(
                "configuration",
                format!("paydesk would start with it; {backup}"),
            )
        }
        Err(e) => Line::fail("configuration", format!("{e:#}")),
    }
}

async fn database(db: &Db) -> Line {
    match db.probe_writable().await {
        Ok(()) => Line::pass("database", format!("{:?} takes writes", db.backend())),
        Err(e) => Line::fail("database", format!("does not take writes: {e}")),
    }
}

fn disk(db: &Db, settings: &Settings) -> Line {
    let Some(file) = db.sqlite_file() else {
        return Line::skip("disk", "PostgreSQL: its server watches its own disk");
    };
    let mib = |b: u64| b / (1024 * 1024);
    match paydesk_core::disk::free_bytes(file) {
        Ok(free) if mib(free) < settings.disk.low_free_mib => Line::fail(
            "disk",
            format!(
                "{} MiB free beside the database, below PAYDESK_DISK__LOW_FREE_MIB ({} MiB)",
                mib(free),
                settings.disk.low_free_mib
            ),
        ),
        Ok(free) => Line::pass(
            "disk",
            format!("{} MiB free beside the database", mib(free)),
        ),
        Err(e) => Line::fail("disk", format!("free space unknown: {e}")),
    }
}

fn notify_urls(settings: &Settings) -> Vec<Line> {
    let rules = settings.wxpay.notify_url_rules();
    [
        ("notify URL", "PAYDESK_WXPAY__NOTIFY_URL", &settings.wxpay.notify_url),
        (
            "refund notify",
            "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
            &settings.wxpay.refund_notify_url,
        ),
    ]
    .into_iter()
    .map(|(check, name, url)| match url {
        None => Line::fail(check, format!("{name} is not set")),
        Some(url) => match wxpay::check_notify_url(url, rules) {
            Ok(()) if rules == wxpay::NotifyUrlRules::Loopback => Line::pass(
                check,
                format!("{url} (only checked for a local simulator: PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS=on)"),
            ),
            Ok(()) => Line::pass(check, format!("{url} is public https")),
            Err(e) => Line::fail(check, format!("{name} {e}: {url}")),
        },
    })
    .collect()
}

/// An order and refund number no shop ever uses: the calls that carry it cannot move money.
fn impossible_number() -> String {
    format!(
        "PAYDESKDOCTOR{}",
        OffsetDateTime::now_utc().unix_timestamp()
    )
}

/// What an envelope refusal (`return_code=FAIL`) says is wrong.
fn envelope_problem(return_msg: &str) -> String {
    let hint = if return_msg.contains("签名") && return_msg.contains("类型") {
        "the sign type (PAYDESK_WXPAY__SIGN_TYPE) is refused"
    } else if return_msg.contains("签名") {
        "the signature was refused: wrong API key (PAYDESK_WXPAY__API_KEY)"
    } else if return_msg.contains("appid") {
        "the appid does not belong to this merchant (PAYDESK_WXPAY__APPID)"
    } else if return_msg.contains("mch_id") {
        "the merchant number is unknown (PAYDESK_WXPAY__MCH_ID)"
    } else {
        "WeChat Pay refused the request"
    };
    format!("{hint}; WeChat Pay said {return_msg:?}")
}

async fn credentials(client: &wxpay::Client, settings: &Settings) -> [Line; 2] {
    let sign_type = client.sign_type();
    let no = impossible_number();
    let answer = client
        .order_query(wxpay::OrderQuery::ByOutTradeNo(no.clone()))
        .await;
    let sign_line = |ok: bool, detail: String| {
        if ok {
            Line::pass("sign type", format!("{sign_type} accepted"))
        } else {
            Line::fail("sign type", detail)
        }
    };
    match answer {
        Err(wxpay::Error::ResultFail { err_code, .. }) if err_code == "ORDERNOTEXIST" => [
            Line::pass(
                "credentials",
                format!(
                    "appid {} and mch_id {} accepted: orderquery for {no} answered ORDERNOTEXIST, signed with our key",
                    client.config().appid,
                    client.config().mch_id
                ),
            ),
            sign_line(true, String::new()),
        ],
        Ok(_) | Err(wxpay::Error::ResultFail { .. }) => [
            Line::pass(
                "credentials",
                "orderquery answered a signed business result",
            ),
            sign_line(true, String::new()),
        ],
        Err(wxpay::Error::ReturnFail { return_msg }) => {
            let problem = envelope_problem(&return_msg);
            let sign_type_refused = return_msg.contains("类型");
            [
                Line::fail("credentials", problem.clone()),
                if sign_type_refused {
                    sign_line(false, problem)
                } else {
                    Line::skip("sign type", "not known until the credentials pass")
                },
            ]
        }
        Err(e @ (wxpay::Error::BadSignature | wxpay::Error::MissingSign)) => [
            Line::fail(
                "credentials",
                format!("WeChat Pay's answer does not verify with our API key ({e}): the key (PAYDESK_WXPAY__API_KEY) is not this merchant's"),
            ),
            Line::skip("sign type", "not known until the credentials pass"),
        ],
        Err(e) => [
            Line::fail(
                "credentials",
                format!(
                    "WeChat Pay did not answer at {}: {e}",
                    settings
                        .wxpay
                        .base_url
                        .as_deref()
                        .unwrap_or(wxpay::PRODUCTION_BASE_URL)
                ),
            ),
            Line::skip("sign type", "not known until the credentials pass"),
        ],
    }
}

fn certificate(client: &wxpay::Client, settings: &Settings) -> Line {
    let Some(identity) = &client.config().identity else {
        return Line::skip(
            "certificate",
            "none configured (PAYDESK_WXPAY__CERT_PEM + __KEY_PEM, or __P12): refunds cannot run",
        );
    };
    let info = match identity.certificate_info() {
        Ok(info) => info,
        Err(e) => return Line::fail("certificate", format!("unreadable: {e}")),
    };
    let now = OffsetDateTime::now_utc();
    let mch_id = settings.wxpay.mch_id.as_deref().unwrap_or_default();
    let what = format!(
        "subject {:?}, serial {}, valid until {}",
        info.subject,
        info.serial,
        paydesk_types::format_shanghai(paydesk_types::unix_ms(info.not_after))
    );
    if now < info.not_before {
        Line::fail("certificate", format!("not valid yet: {what}"))
    } else if now >= info.not_after {
        Line::fail(
            "certificate",
            format!("expired: {what}; download a new one in the merchant platform (API安全)"),
        )
    } else if !info.subject.contains(mch_id) {
        Line::fail(
            "certificate",
            format!("it is not this merchant's: {what} does not name mch_id {mch_id}"),
        )
    } else if info.expires_within(CERT_WARN_DAYS, now) {
        Line::pass(
            "certificate",
            format!("{what}; renew it within {} days", info.days_left(now)),
        )
    } else {
        Line::pass("certificate", what)
    }
}

async fn refund_channel(client: &wxpay::Client) -> Line {
    if client.config().identity.is_none() {
        return Line::skip("refund channel", "no certificate configured");
    }
    let no = impossible_number();
    let refund = wxpay::RefundRequest::new(wxpay::OrderRef::OutTradeNo(no.clone()), no, 1, 1);
    match client.refund(&refund).await {
        Err(wxpay::Error::ResultFail { err_code, .. }) => Line::pass(
            "refund channel",
            format!("mutual TLS accepted our certificate: a refund of an order that cannot exist was refused as {err_code}"),
        ),
        Err(wxpay::Error::ReturnFail { return_msg }) => {
            Line::fail("refund channel", envelope_problem(&return_msg))
        }
        Ok(_) => Line::fail(
            "refund channel",
            "WeChat Pay accepted a refund of an order that cannot exist: check the base URL",
        ),
        Err(e) => Line::fail(
            "refund channel",
            format!("the refund host refused our certificate or did not answer: {e}"),
        ),
    }
}

async fn clock(client: &wxpay::Client) -> Line {
    match client.server_time().await {
        Ok(Some(theirs)) => {
            let ours = OffsetDateTime::now_utc();
            let drift = (ours - theirs).abs();
            if drift > CLOCK_TOLERANCE {
                Line::fail(
                    "clock",
                    format!(
                        "ours is {} s off WeChat Pay's: fix NTP on this machine",
                        drift.whole_seconds()
                    ),
                )
            } else {
                Line::pass(
                    "clock",
                    format!("within {} s of WeChat Pay's", drift.whole_seconds().max(1)),
                )
            }
        }
        Ok(None) => Line::skip("clock", "WeChat Pay's answer carried no Date"),
        Err(e) => Line::fail("clock", format!("WeChat Pay did not answer: {e}")),
    }
}
