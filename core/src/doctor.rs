//! The pre-flight checks (README "paydesk doctor"): a merchant configuration against WeChat
//! Pay, without moving money, one line per check. The command line (`paydesk doctor`) and
//! the Settings page's panel both run [`check`]; the panel goes through [`Doctor`], which
//! adds what an HTTP endpoint making outbound calls needs: one run at a time, a pause
//! between runs, and an audit entry.
//!
//! What each line asks WeChat Pay, and why no money can move:
//! - **credentials**: a signed `orderquery` for an order number that cannot exist. A
//!   business answer (`ORDERNOTEXIST`) whose sign verifies means WeChat Pay knows the appid
//!   and mch_id and accepted our key and sign type; `签名错误` and the other envelope
//!   refusals name what is wrong.
//! - **refund channel**: `/secapi/pay/refund` over mutual TLS for that same impossible order.
//!   Refused as unknown means the certificate was accepted; there is no order to refund.
//! - **clock**: WeChat Pay's HTTP `Date` against ours.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use paydesk_types::doctor::{
    CertificateFacts, DoctorCheck, DoctorLine, DoctorReport, DoctorTarget, EnvelopeProblem,
    Finding, UrlProblem, NOTIFY_URL_VAR, REFUND_NOTIFY_URL_VAR,
};
use time::OffsetDateTime;

use crate::audit::{self, action, Actor};
use crate::error::ConflictReason;
use crate::{now_ms, CoreError, Db};

/// How far WeChat Pay's clock and ours may drift apart before requests risk refusal.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(60);
/// A certificate this close to its end passes with a warning.
const CERT_WARN_DAYS: i64 = 30;
/// The least time between two runs through [`Doctor`]: each run makes three calls to
/// WeChat Pay, and a button held down must not become a stream of them.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// What the checks need to know beyond the database and the client: the parts of the
/// configuration that only the server's settings hold.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Whom the client asks: WeChat Pay, or the built-in simulator.
    pub target: DoctorTarget,
    /// What `paydesk serve` thinks of the configuration: `Err` holds its first refusal,
    /// naming the key.
    pub configuration: Result<(), String>,
    /// The payment notify URL (`PAYDESK_WXPAY__NOTIFY_URL`), if set.
    pub notify_url: Option<String>,
    /// The refund notify URL (`PAYDESK_WXPAY__REFUND_NOTIFY_URL`), if set.
    pub refund_notify_url: Option<String>,
    /// The rules the notify URLs are judged by.
    pub notify_url_rules: wxpay::NotifyUrlRules,
    /// `PAYDESK_DISK__LOW_FREE_MIB`.
    pub low_free_mib: u64,
}

/// Runs every check, in order. Its calls go through `client`, so a client with an observer
/// records them in the outbound-call log like any other.
pub async fn check(setup: &Setup, db: &Db, client: &wxpay::Client) -> Vec<DoctorLine> {
    let mut lines = vec![configuration(setup, client)];
    lines.push(database(db).await);
    lines.push(disk(db, setup));
    lines.extend(notify_urls(setup));
    lines.extend(credentials(client).await);
    lines.push(certificate(client));
    lines.push(refund_channel(client).await);
    lines.push(clock(client).await);
    lines
}

/// [`check`] for a running server: one run at a time and at most one per [`MIN_INTERVAL`],
/// each audited (`doctor.run`) before its first call.
pub struct Doctor {
    setup: Setup,
    gate: Mutex<Gate>,
}

#[derive(Debug, Default)]
struct Gate {
    running: bool,
    last_started: Option<Instant>,
}

/// Marks the run over when dropped, also when the request is abandoned midway.
struct Running<'a>(&'a Mutex<Gate>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).running = false;
    }
}

impl Doctor {
    /// A doctor for this server's `setup`.
    pub fn new(setup: Setup) -> Doctor {
        Doctor {
            setup,
            gate: Mutex::new(Gate::default()),
        }
    }

    /// Runs the checks for `actor`. Refused while another run is under way
    /// ([`ConflictReason::DoctorRunning`]) and within [`MIN_INTERVAL`] of the last start
    /// ([`CoreError::TooSoon`]); the audit entry is written before any call is made, so a
    /// run that cannot be recorded does not happen.
    pub async fn run(
        &self,
        db: &Db,
        client: &wxpay::Client,
        actor: &Actor,
    ) -> Result<DoctorReport, CoreError> {
        let _running = self.enter(Instant::now())?;
        let ran_at = now_ms();
        let detail = match self.setup.target {
            DoctorTarget::WechatPay => {
                format!("against WeChat Pay at {}", client.config().base_url)
            }
            DoctorTarget::Simulator => "against the built-in simulator (sandbox)".to_owned(),
        };
        audit::record(
            db.writer(),
            audit::Entry {
                actor,
                action: action::DOCTOR_RUN,
                target: Some(&client.config().mch_id),
                detail: Some(&detail),
            },
        )
        .await?;
        let lines = check(&self.setup, db, client).await;
        Ok(DoctorReport::new(self.setup.target, ran_at, lines))
    }

    fn enter(&self, now: Instant) -> Result<Running<'_>, CoreError> {
        let mut gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        if gate.running {
            return Err(CoreError::Conflict(ConflictReason::DoctorRunning));
        }
        if let Some(last) = gate.last_started {
            let since = now.saturating_duration_since(last);
            if since < MIN_INTERVAL {
                let wait = MIN_INTERVAL - since;
                return Err(CoreError::TooSoon {
                    seconds: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                });
            }
        }
        gate.running = true;
        gate.last_started = Some(now);
        Ok(Running(&self.gate))
    }
}

/// Whether paydesk would start, and where its calls fail over to (the client's own
/// configuration: what it will really do).
fn configuration(setup: &Setup, client: &wxpay::Client) -> DoctorLine {
    let check = DoctorCheck::Configuration;
    let config = client.config();
    match &setup.configuration {
        Ok(()) => DoctorLine::pass(
            check,
            Finding::ConfigurationOk {
                backup: config.backup_base_url.clone(),
                refund_own_base: config.refund_base_url.is_some(),
                refund_backup: config.refund_backup_base_url.clone(),
            },
        ),
        Err(error) => DoctorLine::fail(
            check,
            Finding::ConfigurationRefused {
                error: error.clone(),
            },
        ),
    }
}

async fn database(db: &Db) -> DoctorLine {
    let check = DoctorCheck::Database;
    match db.probe_writable().await {
        Ok(()) => DoctorLine::pass(
            check,
            Finding::DatabaseWritable {
                backend: format!("{:?}", db.backend()),
            },
        ),
        Err(e) => DoctorLine::fail(
            check,
            Finding::DatabaseNotWritable {
                error: e.to_string(),
            },
        ),
    }
}

fn disk(db: &Db, setup: &Setup) -> DoctorLine {
    let check = DoctorCheck::Disk;
    let Some(file) = db.sqlite_file() else {
        return DoctorLine::skip(check, Finding::DiskPostgres);
    };
    let mib = |b: u64| b / (1024 * 1024);
    match crate::disk::free_bytes(file) {
        Ok(free) if mib(free) < setup.low_free_mib => DoctorLine::fail(
            check,
            Finding::DiskLow {
                free_mib: mib(free),
                threshold_mib: setup.low_free_mib,
            },
        ),
        Ok(free) => DoctorLine::pass(
            check,
            Finding::DiskFree {
                free_mib: mib(free),
            },
        ),
        Err(e) => DoctorLine::fail(
            check,
            Finding::DiskUnknown {
                error: e.to_string(),
            },
        ),
    }
}

fn notify_urls(setup: &Setup) -> [DoctorLine; 2] {
    let rules = setup.notify_url_rules;
    let line = |check, variable: &str, url: &Option<String>| match url {
        None => DoctorLine::fail(
            check,
            Finding::UrlMissing {
                variable: variable.to_owned(),
            },
        ),
        Some(url) => match wxpay::check_notify_url(url, rules) {
            Ok(()) if setup.target == DoctorTarget::Simulator => {
                DoctorLine::pass(check, Finding::UrlSandbox { url: url.clone() })
            }
            Ok(()) if rules == wxpay::NotifyUrlRules::Loopback => {
                DoctorLine::pass(check, Finding::UrlLoopback { url: url.clone() })
            }
            Ok(()) => DoctorLine::pass(check, Finding::UrlPublic { url: url.clone() }),
            Err(e) => DoctorLine::fail(
                check,
                Finding::UrlRefused {
                    variable: variable.to_owned(),
                    said: e.to_string(),
                    problem: url_problem(e),
                    url: url.clone(),
                },
            ),
        },
    };
    [
        line(DoctorCheck::NotifyUrl, NOTIFY_URL_VAR, &setup.notify_url),
        line(
            DoctorCheck::RefundNotifyUrl,
            REFUND_NOTIFY_URL_VAR,
            &setup.refund_notify_url,
        ),
    ]
}

fn url_problem(e: wxpay::NotifyUrlError) -> UrlProblem {
    use wxpay::NotifyUrlError as E;
    match e {
        E::Empty => UrlProblem::Empty,
        E::TooLong(len) => UrlProblem::TooLong {
            len,
            max: wxpay::MAX_NOTIFY_URL_LEN,
        },
        E::Whitespace => UrlProblem::Whitespace,
        E::NotHttps => UrlProblem::NotHttps,
        E::Credentials => UrlProblem::Credentials,
        E::NoHost => UrlProblem::NoHost,
        E::Query => UrlProblem::Query,
        E::NotPublic(host) => UrlProblem::NotPublic { host },
    }
}

/// An order and refund number no shop ever uses: the calls that carry it cannot move money.
fn impossible_number() -> String {
    format!(
        "PAYDESKDOCTOR{}",
        OffsetDateTime::now_utc().unix_timestamp()
    )
}

fn refused(return_msg: String) -> Finding {
    Finding::Refused {
        problem: EnvelopeProblem::from_return_msg(&return_msg),
        return_msg,
    }
}

async fn credentials(client: &wxpay::Client) -> [DoctorLine; 2] {
    let (creds, sign) = (DoctorCheck::Credentials, DoctorCheck::SignType);
    let sign_accepted = DoctorLine::pass(
        sign,
        Finding::SignTypeAccepted {
            sign_type: client.sign_type().to_string(),
        },
    );
    let sign_unknown = DoctorLine::skip(sign, Finding::AwaitsCredentials);
    let no = impossible_number();
    let answer = client
        .order_query(wxpay::OrderQuery::ByOutTradeNo(no.clone()))
        .await;
    match answer {
        Err(wxpay::Error::ResultFail { err_code, .. }) if err_code == "ORDERNOTEXIST" => [
            DoctorLine::pass(
                creds,
                Finding::CredentialsAccepted {
                    appid: client.config().appid.clone(),
                    mch_id: client.config().mch_id.clone(),
                    out_trade_no: no,
                },
            ),
            sign_accepted,
        ],
        Ok(_) | Err(wxpay::Error::ResultFail { .. }) => [
            DoctorLine::pass(creds, Finding::CredentialsSignedAnswer),
            sign_accepted,
        ],
        Err(wxpay::Error::ReturnFail { return_msg }) => {
            let sign_type_refused = return_msg.contains("类型");
            let finding = refused(return_msg);
            [
                DoctorLine::fail(creds, finding.clone()),
                if sign_type_refused {
                    DoctorLine::fail(sign, finding)
                } else {
                    sign_unknown
                },
            ]
        }
        Err(e @ (wxpay::Error::BadSignature | wxpay::Error::MissingSign)) => [
            DoctorLine::fail(
                creds,
                Finding::AnswerUnverified {
                    error: e.to_string(),
                },
            ),
            sign_unknown,
        ],
        Err(e) => [
            DoctorLine::fail(
                creds,
                Finding::NoAnswer {
                    base_url: client.config().base_url.clone(),
                    error: e.to_string(),
                },
            ),
            sign_unknown,
        ],
    }
}

fn certificate(client: &wxpay::Client) -> DoctorLine {
    let check = DoctorCheck::Certificate;
    let Some(identity) = &client.config().identity else {
        return DoctorLine::skip(check, Finding::NoCertificate);
    };
    let info = match identity.certificate_info() {
        Ok(info) => info,
        Err(e) => {
            return DoctorLine::fail(
                check,
                Finding::CertificateUnreadable {
                    error: e.to_string(),
                },
            )
        }
    };
    let now = OffsetDateTime::now_utc();
    let mch_id = &client.config().mch_id;
    let cert = CertificateFacts {
        subject: info.subject.clone(),
        serial: info.serial.clone(),
        not_after: paydesk_types::unix_ms(info.not_after),
    };
    if now < info.not_before {
        DoctorLine::fail(check, Finding::CertificateNotYetValid { cert })
    } else if now >= info.not_after {
        DoctorLine::fail(check, Finding::CertificateExpired { cert })
    } else if !info.subject.contains(mch_id.as_str()) {
        DoctorLine::fail(
            check,
            Finding::CertificateForeign {
                cert,
                mch_id: mch_id.clone(),
            },
        )
    } else if info.expires_within(CERT_WARN_DAYS, now) {
        DoctorLine::pass(
            check,
            Finding::CertificateExpiresSoon {
                cert,
                days_left: info.days_left(now),
            },
        )
    } else {
        DoctorLine::pass(check, Finding::CertificateValid { cert })
    }
}

async fn refund_channel(client: &wxpay::Client) -> DoctorLine {
    let check = DoctorCheck::RefundChannel;
    if client.config().identity.is_none() {
        return DoctorLine::skip(check, Finding::RefundChannelNoCertificate);
    }
    let no = impossible_number();
    let refund = wxpay::RefundRequest::new(wxpay::OrderRef::OutTradeNo(no.clone()), no, 1, 1);
    match client.refund(&refund).await {
        Err(wxpay::Error::ResultFail { err_code, .. }) => {
            DoctorLine::pass(check, Finding::RefundChannelOpen { err_code })
        }
        Err(wxpay::Error::ReturnFail { return_msg }) => {
            DoctorLine::fail(check, refused(return_msg))
        }
        Ok(_) => DoctorLine::fail(check, Finding::RefundAccepted),
        Err(e) => DoctorLine::fail(
            check,
            Finding::RefundChannelClosed {
                error: e.to_string(),
            },
        ),
    }
}

async fn clock(client: &wxpay::Client) -> DoctorLine {
    let check = DoctorCheck::Clock;
    match client.server_time().await {
        Ok(Some(theirs)) => {
            let drift = (OffsetDateTime::now_utc() - theirs).abs();
            if drift > CLOCK_TOLERANCE {
                DoctorLine::fail(
                    check,
                    Finding::ClockOff {
                        seconds: drift.whole_seconds(),
                    },
                )
            } else {
                DoctorLine::pass(
                    check,
                    Finding::ClockWithin {
                        seconds: drift.whole_seconds().max(1),
                    },
                )
            }
        }
        Ok(None) => DoctorLine::skip(check, Finding::ClockNoDate),
        Err(e) => DoctorLine::fail(
            check,
            Finding::ClockNoAnswer {
                error: e.to_string(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doctor() -> Doctor {
        Doctor::new(Setup {
            target: DoctorTarget::Simulator,
            configuration: Ok(()),
            notify_url: None,
            refund_notify_url: None,
            notify_url_rules: wxpay::NotifyUrlRules::Loopback,
            low_free_mib: 0,
        })
    }

    #[test]
    fn a_run_under_way_refuses_a_second_one() {
        let d = doctor();
        let now = Instant::now();
        let running = d.enter(now).unwrap();
        assert!(matches!(
            d.enter(now + MIN_INTERVAL * 2),
            Err(CoreError::Conflict(ConflictReason::DoctorRunning))
        ));
        drop(running);
        assert!(d.enter(now + MIN_INTERVAL * 2).is_ok());
    }

    #[test]
    fn a_run_too_soon_after_the_last_start_says_how_long_to_wait() {
        let d = doctor();
        let now = Instant::now();
        drop(d.enter(now).unwrap());
        match d.enter(now + Duration::from_millis(2_500)) {
            Err(CoreError::TooSoon { seconds }) => assert_eq!(seconds, 8),
            other => panic!("expected TooSoon, got {:?}", other.map(|_| ())),
        }
        assert!(d.enter(now + MIN_INTERVAL).is_ok());
    }

    #[test]
    fn notify_urls_of_the_sandbox_are_named_as_such() {
        let setup = Setup {
            notify_url: Some("http://127.0.0.1:3000/wxpay/notify/payment".into()),
            refund_notify_url: Some("https://127.0.0.1/refund".into()),
            ..doctor().setup
        };
        let [pay, refund] = notify_urls(&setup);
        assert!(matches!(pay.finding, Finding::UrlSandbox { .. }), "{pay:?}");
        assert!(
            matches!(refund.finding, Finding::UrlSandbox { .. }),
            "{refund:?}"
        );
        let public = Setup {
            target: DoctorTarget::WechatPay,
            notify_url_rules: wxpay::NotifyUrlRules::Public,
            ..setup
        };
        let [pay, _] = notify_urls(&public);
        assert_eq!(
            pay.finding.to_string(),
            "PAYDESK_WXPAY__NOTIFY_URL must be an absolute https:// URL: http://127.0.0.1:3000/wxpay/notify/payment"
        );
        assert_eq!(
            pay.finding,
            Finding::UrlRefused {
                variable: NOTIFY_URL_VAR.into(),
                problem: UrlProblem::NotHttps,
                said: "must be an absolute https:// URL".into(),
                url: "http://127.0.0.1:3000/wxpay/notify/payment".into(),
            }
        );
    }
}
