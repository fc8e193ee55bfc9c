//! What `paydesk doctor` reports (README "paydesk doctor"), as data: each line is a stable
//! check key, a verdict, and a [`Finding`] — a code with the values it names. The English
//! wording is [`Finding`]'s `Display` (the command line prints exactly that); the dashboard
//! words the same codes in Chinese. The checks themselves run in `paydesk_core::doctor`.

use serde::{Deserialize, Serialize};

use crate::format_shanghai;

/// The environment variable of the payment notify URL.
pub const NOTIFY_URL_VAR: &str = "PAYDESK_WXPAY__NOTIFY_URL";
/// The environment variable of the refund notify URL.
pub const REFUND_NOTIFY_URL_VAR: &str = "PAYDESK_WXPAY__REFUND_NOTIFY_URL";

/// What one line checks, in the order the checklist runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoctorCheck {
    /// Everything `paydesk serve` would refuse to start with.
    Configuration,
    /// A write transaction, rolled back.
    Database,
    /// Free space beside a SQLite database.
    Disk,
    /// The payment notify URL.
    NotifyUrl,
    /// The refund notify URL.
    RefundNotifyUrl,
    /// appid, mch_id and API key, through a signed orderquery.
    Credentials,
    /// The sign type of requests.
    SignType,
    /// The merchant certificate for refunds.
    Certificate,
    /// `/secapi/pay/refund` over mutual TLS.
    RefundChannel,
    /// WeChat Pay's clock against ours.
    Clock,
}

impl DoctorCheck {
    /// The name the command line prints (a contract: scripts match on it).
    pub fn label(self) -> &'static str {
        match self {
            DoctorCheck::Configuration => "configuration",
            DoctorCheck::Database => "database",
            DoctorCheck::Disk => "disk",
            DoctorCheck::NotifyUrl => "notify URL",
            DoctorCheck::RefundNotifyUrl => "refund notify",
            DoctorCheck::Credentials => "credentials",
            DoctorCheck::SignType => "sign type",
            DoctorCheck::Certificate => "certificate",
            DoctorCheck::RefundChannel => "refund channel",
            DoctorCheck::Clock => "clock",
        }
    }
}

/// A line's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckVerdict {
    /// It works.
    Pass,
    /// It does not; the finding says what to change.
    Fail,
    /// It does not apply to this configuration.
    Skip,
}

/// What WeChat Pay was asked: the real service, or the built-in simulator of sandbox mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoctorTarget {
    /// The configured WeChat Pay endpoint (merchant mode).
    WechatPay,
    /// The in-process simulator (sandbox mode): a real run, but not against WeChat Pay.
    Simulator,
}

/// What an envelope refusal (`return_code=FAIL`) says is wrong, read from its `return_msg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeProblem {
    /// The sign type is refused.
    SignType,
    /// The signature was refused: the API key is wrong.
    ApiKey,
    /// The appid does not belong to this merchant.
    Appid,
    /// The merchant number is unknown.
    MchId,
    /// Something else.
    Other,
}

impl EnvelopeProblem {
    /// Reads WeChat Pay's `return_msg` (Chinese, e.g. `签名错误`).
    pub fn from_return_msg(return_msg: &str) -> EnvelopeProblem {
        if return_msg.contains("签名") && return_msg.contains("类型") {
            EnvelopeProblem::SignType
        } else if return_msg.contains("签名") {
            EnvelopeProblem::ApiKey
        } else if return_msg.contains("appid") {
            EnvelopeProblem::Appid
        } else if return_msg.contains("mch_id") {
            EnvelopeProblem::MchId
        } else {
            EnvelopeProblem::Other
        }
    }
}

impl std::fmt::Display for EnvelopeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnvelopeProblem::SignType => "the sign type (PAYDESK_WXPAY__SIGN_TYPE) is refused",
            EnvelopeProblem::ApiKey => {
                "the signature was refused: wrong API key (PAYDESK_WXPAY__API_KEY)"
            }
            EnvelopeProblem::Appid => {
                "the appid does not belong to this merchant (PAYDESK_WXPAY__APPID)"
            }
            EnvelopeProblem::MchId => "the merchant number is unknown (PAYDESK_WXPAY__MCH_ID)",
            EnvelopeProblem::Other => "WeChat Pay refused the request",
        })
    }
}

/// Why a notify URL would not work with WeChat Pay (the codes of `wxpay::NotifyUrlError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum UrlProblem {
    /// Blank.
    Empty,
    /// Longer than WeChat Pay takes.
    TooLong {
        /// Its length.
        len: usize,
        /// The most WeChat Pay takes.
        max: usize,
    },
    /// White space or control characters.
    Whitespace,
    /// Not an absolute `https://` URL.
    NotHttps,
    /// A user name or password before the host.
    Credentials,
    /// No valid host.
    NoHost,
    /// A query string or fragment.
    Query,
    /// A loopback, private or otherwise non-public address.
    NotPublic {
        /// The host as written.
        host: String,
    },
}

/// A merchant certificate as a line names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateFacts {
    /// Subject DN.
    pub subject: String,
    /// Serial number, hex.
    pub serial: String,
    /// End of validity (UTC ms).
    pub not_after: i64,
}

impl std::fmt::Display for CertificateFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "subject {:?}, serial {}, valid until {}",
            self.subject,
            self.serial,
            format_shanghai(self.not_after)
        )
    }
}

/// What a line found: a code and the values it names. `Display` is the English the command
/// line prints; `error` fields carry a lower layer's own text (a database or transport
/// error) as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Finding {
    /// `paydesk serve` would start with this configuration, failing over as said (§2.1).
    ConfigurationOk {
        /// Where the calls fail over to (`None`: failover is off).
        backup: Option<String>,
        /// Whether refunds have a base of their own (`PAYDESK_WXPAY__REFUND_BASE_URL`).
        refund_own_base: bool,
        /// Where refunds fail over to, when they have a base of their own.
        refund_backup: Option<String>,
    },
    /// It would not: the first problem, naming its key.
    ConfigurationRefused {
        /// What validation said.
        error: String,
    },
    /// The database takes writes.
    DatabaseWritable {
        /// SQLite or PostgreSQL.
        backend: String,
    },
    /// It does not.
    DatabaseNotWritable {
        /// The database's error.
        error: String,
    },
    /// PostgreSQL: its own server watches its disk.
    DiskPostgres,
    /// Free space beside the SQLite file is below the threshold.
    DiskLow {
        /// MiB free.
        free_mib: u64,
        /// `PAYDESK_DISK__LOW_FREE_MIB`.
        threshold_mib: u64,
    },
    /// Enough free space.
    DiskFree {
        /// MiB free.
        free_mib: u64,
    },
    /// Free space could not be read.
    DiskUnknown {
        /// The system's error.
        error: String,
    },
    /// A notify URL is not set.
    UrlMissing {
        /// Its environment variable.
        variable: String,
    },
    /// A notify URL takes the loopback rules a local simulator allows (explicitly relaxed).
    UrlLoopback {
        /// The URL.
        url: String,
    },
    /// A notify URL of sandbox mode, judged with the loopback rules of the built-in
    /// simulator (the only sender that reaches it).
    UrlSandbox {
        /// The URL.
        url: String,
    },
    /// A public `https://` notify URL.
    UrlPublic {
        /// The URL.
        url: String,
    },
    /// A notify URL WeChat Pay would refuse or could not reach.
    UrlRefused {
        /// Its environment variable.
        variable: String,
        /// What is wrong, as a code.
        problem: UrlProblem,
        /// The same in `wxpay`'s words.
        said: String,
        /// The URL.
        url: String,
    },
    /// orderquery for an impossible order answered `ORDERNOTEXIST`, signed with our key.
    CredentialsAccepted {
        /// Our appid.
        appid: String,
        /// Our mch_id.
        mch_id: String,
        /// The impossible order number asked about.
        out_trade_no: String,
    },
    /// orderquery answered another signed business result.
    CredentialsSignedAnswer,
    /// WeChat Pay refused the request's envelope (`return_code=FAIL`).
    Refused {
        /// What its `return_msg` names.
        problem: EnvelopeProblem,
        /// Its `return_msg`.
        return_msg: String,
    },
    /// The answer's sign does not verify with our key.
    AnswerUnverified {
        /// The verification error.
        error: String,
    },
    /// No answer from the API.
    NoAnswer {
        /// Where it was asked.
        base_url: String,
        /// The transport error.
        error: String,
    },
    /// The sign type was accepted.
    SignTypeAccepted {
        /// `MD5` or `HMAC-SHA256`.
        sign_type: String,
    },
    /// Not known until the credentials pass.
    AwaitsCredentials,
    /// No merchant certificate configured.
    NoCertificate,
    /// The certificate cannot be read.
    CertificateUnreadable {
        /// The error.
        error: String,
    },
    /// Not valid yet.
    CertificateNotYetValid {
        /// The certificate.
        cert: CertificateFacts,
    },
    /// Expired.
    CertificateExpired {
        /// The certificate.
        cert: CertificateFacts,
    },
    /// It does not name this merchant.
    CertificateForeign {
        /// The certificate.
        cert: CertificateFacts,
        /// Our mch_id.
        mch_id: String,
    },
    /// Valid, but expires within 30 days.
    CertificateExpiresSoon {
        /// The certificate.
        cert: CertificateFacts,
        /// Whole days left.
        days_left: i64,
    },
    /// Valid.
    CertificateValid {
        /// The certificate.
        cert: CertificateFacts,
    },
    /// The refund channel was not tried: no certificate.
    RefundChannelNoCertificate,
    /// Mutual TLS accepted our certificate; the impossible refund was refused.
    RefundChannelOpen {
        /// The business refusal (`ORDERNOTEXIST`, …).
        err_code: String,
    },
    /// A refund of an order that cannot exist was accepted.
    RefundAccepted,
    /// The refund host refused our certificate or did not answer.
    RefundChannelClosed {
        /// The transport error.
        error: String,
    },
    /// Our clock is too far off.
    ClockOff {
        /// Seconds apart.
        seconds: i64,
    },
    /// Close enough.
    ClockWithin {
        /// Seconds apart (at least 1).
        seconds: i64,
    },
    /// The answer carried no `Date`.
    ClockNoDate,
    /// No answer.
    ClockNoAnswer {
        /// The transport error.
        error: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::ConfigurationOk {
                backup,
                refund_own_base,
                refund_backup,
            } => {
                let shown = |b: &Option<String>| b.clone().unwrap_or_else(|| "off".to_owned());
                write!(f, "paydesk would start with it; backup host {}", shown(backup))?;
                if *refund_own_base {
                    write!(f, ", refund backup {}", shown(refund_backup))?;
                }
                Ok(())
            }
            Finding::ConfigurationRefused { error } => f.write_str(error),
            Finding::DatabaseWritable { backend } => write!(f, "{backend} takes writes"),
            Finding::DatabaseNotWritable { error } => write!(f, "does not take writes: {error}"),
            Finding::DiskPostgres => f.write_str("PostgreSQL: its server watches its own disk"),
            Finding::DiskLow {
                free_mib,
                threshold_mib,
            } => write!(
                f,
                "{free_mib} MiB free beside the database, below PAYDESK_DISK__LOW_FREE_MIB ({threshold_mib} MiB)"
            ),
            Finding::DiskFree { free_mib } => {
                write!(f, "{free_mib} MiB free beside the database")
            }
            Finding::DiskUnknown { error } => write!(f, "free space unknown: {error}"),
            Finding::UrlMissing { variable } => write!(f, "{variable} is not set"),
            Finding::UrlLoopback { url } => write!(
                f,
                "{url} (only checked for a local simulator: PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS=on)"
            ),
            Finding::UrlSandbox { url } => write!(
                f,
                "{url} (sandbox: checked with the loopback rules of the built-in simulator)"
            ),
            Finding::UrlPublic { url } => write!(f, "{url} is public https"),
            Finding::UrlRefused {
                variable,
                said,
                url,
                ..
            } => write!(f, "{variable} {said}: {url}"),
            Finding::CredentialsAccepted {
                appid,
                mch_id,
                out_trade_no,
            } => write!(
                f,
                "appid {appid} and mch_id {mch_id} accepted: orderquery for {out_trade_no} answered ORDERNOTEXIST, signed with our key"
            ),
            Finding::CredentialsSignedAnswer => {
                f.write_str("orderquery answered a signed business result")
            }
            Finding::Refused {
                problem,
                return_msg,
            } => write!(f, "{problem}; WeChat Pay said {return_msg:?}"),
            Finding::AnswerUnverified { error } => write!(
                f,
                "WeChat Pay's answer does not verify with our API key ({error}): the key (PAYDESK_WXPAY__API_KEY) is not this merchant's"
            ),
            Finding::NoAnswer { base_url, error } => {
                write!(f, "WeChat Pay did not answer at {base_url}: {error}")
            }
            Finding::SignTypeAccepted { sign_type } => write!(f, "{sign_type} accepted"),
            Finding::AwaitsCredentials => f.write_str("not known until the credentials pass"),
            Finding::NoCertificate => f.write_str(
                "none configured (PAYDESK_WXPAY__CERT_PEM + __KEY_PEM, or __P12): refunds cannot run",
            ),
            Finding::CertificateUnreadable { error } => write!(f, "unreadable: {error}"),
            Finding::CertificateNotYetValid { cert } => write!(f, "not valid yet: {cert}"),
            Finding::CertificateExpired { cert } => write!(
                f,
                "expired: {cert}; download a new one in the merchant platform (API安全)"
            ),
            Finding::CertificateForeign { cert, mch_id } => write!(
                f,
                "it is not this merchant's: {cert} does not name mch_id {mch_id}"
            ),
            Finding::CertificateExpiresSoon { cert, days_left } => {
                write!(f, "{cert}; renew it within {days_left} days")
            }
            Finding::CertificateValid { cert } => write!(f, "{cert}"),
            Finding::RefundChannelNoCertificate => f.write_str("no certificate configured"),
            Finding::RefundChannelOpen { err_code } => write!(
                f,
                "mutual TLS accepted our certificate: a refund of an order that cannot exist was refused as {err_code}"
            ),
            Finding::RefundAccepted => f.write_str(
                "WeChat Pay accepted a refund of an order that cannot exist: check the base URL",
            ),
            Finding::RefundChannelClosed { error } => write!(
                f,
                "the refund host refused our certificate or did not answer: {error}"
            ),
            Finding::ClockOff { seconds } => write!(
                f,
                "ours is {seconds} s off WeChat Pay's: fix NTP on this machine"
            ),
            Finding::ClockWithin { seconds } => write!(f, "within {seconds} s of WeChat Pay's"),
            Finding::ClockNoDate => f.write_str("WeChat Pay's answer carried no Date"),
            Finding::ClockNoAnswer { error } => write!(f, "WeChat Pay did not answer: {error}"),
        }
    }
}

/// One checked thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorLine {
    /// What was checked.
    pub check: DoctorCheck,
    /// The verdict.
    pub verdict: CheckVerdict,
    /// What was found.
    pub finding: Finding,
}

impl DoctorLine {
    /// A passing line.
    pub fn pass(check: DoctorCheck, finding: Finding) -> DoctorLine {
        DoctorLine {
            check,
            verdict: CheckVerdict::Pass,
            finding,
        }
    }

    /// A failing line.
    pub fn fail(check: DoctorCheck, finding: Finding) -> DoctorLine {
        DoctorLine {
            check,
            verdict: CheckVerdict::Fail,
            finding,
        }
    }

    /// A line that does not apply.
    pub fn skip(check: DoctorCheck, finding: Finding) -> DoctorLine {
        DoctorLine {
            check,
            verdict: CheckVerdict::Skip,
            finding,
        }
    }
}

/// A whole run: what was asked, when, every line, and the verdict over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// WeChat Pay, or the built-in simulator.
    pub target: DoctorTarget,
    /// When the run started (UTC ms).
    pub ran_at: i64,
    /// [`CheckVerdict::Fail`] when any line failed, else [`CheckVerdict::Pass`] (skipped
    /// lines do not count, as for the command's exit code).
    pub verdict: CheckVerdict,
    /// The lines, in the order they ran.
    pub lines: Vec<DoctorLine>,
}

impl DoctorReport {
    /// The report of `lines`, its verdict derived from them.
    pub fn new(target: DoctorTarget, ran_at: i64, lines: Vec<DoctorLine>) -> DoctorReport {
        DoctorReport {
            target,
            ran_at,
            verdict: overall(&lines),
            lines,
        }
    }

    /// How many lines failed.
    pub fn failed(&self) -> usize {
        failed(&self.lines)
    }
}

/// How many of `lines` failed.
pub fn failed(lines: &[DoctorLine]) -> usize {
    lines
        .iter()
        .filter(|l| l.verdict == CheckVerdict::Fail)
        .count()
}

/// The verdict over `lines`: a single failure fails the run; skipped lines do not count.
pub fn overall(lines: &[DoctorLine]) -> CheckVerdict {
    if failed(lines) == 0 {
        CheckVerdict::Pass
    } else {
        CheckVerdict::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_travel_as_a_code_with_their_values() {
        let finding = Finding::Refused {
            problem: EnvelopeProblem::ApiKey,
            return_msg: "签名错误".into(),
        };
        let json = serde_json::to_value(&finding).unwrap();
        assert_eq!(json["code"], "refused");
        assert_eq!(json["problem"], "api_key");
        assert_eq!(
            serde_json::from_value::<Finding>(json).unwrap(),
            finding,
            "round trip"
        );
        assert_eq!(
            finding.to_string(),
            "the signature was refused: wrong API key (PAYDESK_WXPAY__API_KEY); WeChat Pay said \"签名错误\""
        );
    }

    #[test]
    fn a_failure_fails_the_run_and_a_skip_does_not() {
        let pass = DoctorLine::pass(DoctorCheck::Clock, Finding::ClockWithin { seconds: 1 });
        let skip = DoctorLine::skip(DoctorCheck::Disk, Finding::DiskPostgres);
        let fail = DoctorLine::fail(DoctorCheck::Certificate, Finding::NoCertificate);
        assert_eq!(overall(&[pass.clone(), skip.clone()]), CheckVerdict::Pass);
        let report = DoctorReport::new(DoctorTarget::Simulator, 0, vec![pass, skip, fail]);
        assert_eq!((report.verdict, report.failed()), (CheckVerdict::Fail, 1));
    }
}
