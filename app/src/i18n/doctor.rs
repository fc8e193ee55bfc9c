//! The pre-flight check's words (`paydesk_types::doctor`): each check's name, each verdict,
//! and each finding. A finding's English is its `Display` — the very line `paydesk doctor`
//! prints — and its Chinese is written here from the same code and values, so neither
//! language is pieced together from the other's sentences.

use paydesk_types::doctor::{
    CertificateFacts, CheckVerdict, DoctorCheck, EnvelopeProblem, Finding, UrlProblem,
};
use paydesk_types::format_shanghai;

use super::Lang;

crate::messages! {
    /// Check names and verdicts.
    pub enum DoctorMsg {
        Configuration => "配置", "Configuration";
        Database => "数据库", "Database";
        Disk => "磁盘空间", "Disk";
        NotifyUrl => "支付回调地址", "Payment notify URL";
        RefundNotifyUrl => "退款回调地址", "Refund notify URL";
        Credentials => "商户凭据（AppID、商户号、API 密钥）", "Credentials (AppID, mch_id, API key)";
        SignType => "签名方式", "Sign type";
        Certificate => "商户证书", "Merchant certificate";
        RefundChannel => "退款通道（双向 TLS）", "Refund channel (mutual TLS)";
        Clock => "服务器时钟", "Clock";
        Pass => "✓ 通过", "✓ Pass";
        Fail => "✗ 未通过", "✗ Fail";
        Skip => "— 不适用", "— Does not apply";
    }
}

/// A check's name.
pub fn check_name(check: DoctorCheck, lang: Lang) -> &'static str {
    match check {
        DoctorCheck::Configuration => DoctorMsg::Configuration,
        DoctorCheck::Database => DoctorMsg::Database,
        DoctorCheck::Disk => DoctorMsg::Disk,
        DoctorCheck::NotifyUrl => DoctorMsg::NotifyUrl,
        DoctorCheck::RefundNotifyUrl => DoctorMsg::RefundNotifyUrl,
        DoctorCheck::Credentials => DoctorMsg::Credentials,
        DoctorCheck::SignType => DoctorMsg::SignType,
        DoctorCheck::Certificate => DoctorMsg::Certificate,
        DoctorCheck::RefundChannel => DoctorMsg::RefundChannel,
        DoctorCheck::Clock => DoctorMsg::Clock,
    }
    .text(lang)
}

/// A verdict, with its mark.
pub fn verdict_words(verdict: CheckVerdict, lang: Lang) -> &'static str {
    match verdict {
        CheckVerdict::Pass => DoctorMsg::Pass,
        CheckVerdict::Fail => DoctorMsg::Fail,
        CheckVerdict::Skip => DoctorMsg::Skip,
    }
    .text(lang)
}

/// What a line found, in `lang`.
pub fn finding_words(finding: &Finding, lang: Lang) -> String {
    match lang {
        Lang::En => finding.to_string(),
        Lang::Zh => finding_zh(finding),
    }
}

fn finding_zh(finding: &Finding) -> String {
    match finding {
        Finding::ConfigurationOk {
            backup,
            refund_own_base,
            refund_backup,
        } => {
            let shown = |b: &Option<String>| b.clone().unwrap_or_else(|| "关闭".to_owned());
            let mut text = format!("paydesk 可以用此配置启动；备用域名 {}", shown(backup));
            if *refund_own_base {
                text.push_str(&format!("，退款备用域名 {}", shown(refund_backup)));
            }
            text
        }
        Finding::ConfigurationRefused { error } => {
            format!("paydesk 无法用此配置启动：{error}")
        }
        Finding::DatabaseWritable { backend } => format!("数据库（{backend}）可以写入"),
        Finding::DatabaseNotWritable { error } => format!("数据库无法写入：{error}"),
        Finding::DiskPostgres => "PostgreSQL：磁盘由数据库服务器自行监控".to_owned(),
        Finding::DiskLow {
            free_mib,
            threshold_mib,
        } => format!(
            "数据库所在磁盘仅剩 {free_mib} MiB，低于 PAYDESK_DISK__LOW_FREE_MIB（{threshold_mib} MiB）"
        ),
        Finding::DiskFree { free_mib } => format!("数据库所在磁盘剩余 {free_mib} MiB"),
        Finding::DiskUnknown { error } => format!("无法读取剩余空间：{error}"),
        Finding::UrlMissing { variable } => format!("未设置 {variable}"),
        Finding::UrlLoopback { url } => format!(
            "{url}（已开启 PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS，只按本机模拟器的规则检查；真实的微信支付无法访问本机地址）"
        ),
        Finding::UrlSandbox { url } => {
            format!("{url}（沙箱：按内置模拟器接受的本机地址规则检查）")
        }
        Finding::UrlPublic { url } => format!("{url} 是公网 https 地址"),
        Finding::UrlRefused {
            variable,
            problem,
            url,
            ..
        } => format!("{variable} {}：{url}", url_problem_zh(problem)),
        Finding::CredentialsAccepted {
            appid,
            mch_id,
            out_trade_no,
        } => format!(
            "AppID {appid} 与商户号 {mch_id} 有效：查询不存在的订单 {out_trade_no} 得到 ORDERNOTEXIST，应答签名经我方密钥验证无误"
        ),
        Finding::CredentialsSignedAnswer => "订单查询返回了签名有效的业务结果".to_owned(),
        Finding::Refused {
            problem,
            return_msg,
        } => format!(
            "{}；微信支付返回「{return_msg}」",
            envelope_problem_zh(*problem)
        ),
        Finding::AnswerUnverified { error } => format!(
            "微信支付的应答无法用我方 API 密钥验签（{error}）：PAYDESK_WXPAY__API_KEY 不是该商户的密钥"
        ),
        Finding::NoAnswer { base_url, error } => {
            format!("微信支付（{base_url}）没有应答：{error}")
        }
        Finding::SignTypeAccepted { sign_type } => format!("{sign_type} 被接受"),
        Finding::AwaitsCredentials => "商户凭据通过后才能判断".to_owned(),
        Finding::NoCertificate => {
            "未配置（PAYDESK_WXPAY__CERT_PEM + __KEY_PEM，或 __P12）：无法退款".to_owned()
        }
        Finding::CertificateUnreadable { error } => format!("无法读取：{error}"),
        Finding::CertificateNotYetValid { cert } => format!("尚未生效：{}", cert_zh(cert)),
        Finding::CertificateExpired { cert } => format!(
            "已过期：{}；请在商户平台（API安全）下载新证书",
            cert_zh(cert)
        ),
        Finding::CertificateForeign { cert, mch_id } => format!(
            "不是本商户的证书：{}，其中没有商户号 {mch_id}",
            cert_zh(cert)
        ),
        Finding::CertificateExpiresSoon { cert, days_left } => {
            format!("{}；请在 {days_left} 天内更换", cert_zh(cert))
        }
        Finding::CertificateValid { cert } => cert_zh(cert),
        Finding::RefundChannelNoCertificate => "未配置商户证书".to_owned(),
        Finding::RefundChannelOpen { err_code } => format!(
            "双向 TLS 接受了我方证书：对不存在订单的退款被拒绝（{err_code}），没有发生退款"
        ),
        Finding::RefundAccepted => {
            "微信支付接受了一笔不存在订单的退款：请检查 API 地址".to_owned()
        }
        Finding::RefundChannelClosed { error } => {
            format!("退款接口拒绝了我方证书或没有应答：{error}")
        }
        Finding::ClockOff { seconds } => {
            format!("本机时钟与微信支付相差 {seconds} 秒：请修正本机的 NTP 时间同步")
        }
        Finding::ClockWithin { seconds } => format!("与微信支付相差不超过 {seconds} 秒"),
        Finding::ClockNoDate => "微信支付的应答没有 Date 头".to_owned(),
        Finding::ClockNoAnswer { error } => format!("微信支付没有应答：{error}"),
    }
}

fn url_problem_zh(problem: &UrlProblem) -> String {
    match problem {
        UrlProblem::Empty => "为空".to_owned(),
        UrlProblem::TooLong { len, max } => {
            format!("长 {len} 个字符，微信支付最多接受 {max} 个")
        }
        UrlProblem::Whitespace => "含有空白或控制字符".to_owned(),
        UrlProblem::NotHttps => "必须是完整的 https:// 地址".to_owned(),
        UrlProblem::Credentials => "不能包含用户名或密码".to_owned(),
        UrlProblem::NoHost => "没有有效的主机名".to_owned(),
        UrlProblem::Query => "不能带查询参数或片段（微信支付不接受参数）".to_owned(),
        UrlProblem::NotPublic { host } => format!("指向 {host}，微信支付无法访问"),
    }
}

fn envelope_problem_zh(problem: EnvelopeProblem) -> &'static str {
    match problem {
        EnvelopeProblem::SignType => "签名方式（PAYDESK_WXPAY__SIGN_TYPE）被拒绝",
        EnvelopeProblem::ApiKey => "签名被拒绝：API 密钥错误（PAYDESK_WXPAY__API_KEY）",
        EnvelopeProblem::Appid => "AppID 不属于该商户（PAYDESK_WXPAY__APPID）",
        EnvelopeProblem::MchId => "商户号不存在（PAYDESK_WXPAY__MCH_ID）",
        EnvelopeProblem::Other => "微信支付拒绝了请求",
    }
}

fn cert_zh(cert: &CertificateFacts) -> String {
    format!(
        "主题 {}，序列号 {}，有效期至 {}",
        cert.subject,
        cert.serial,
        format_shanghai(cert.not_after)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_reads_in_chinese_and_as_the_command_line_prints_it() {
        let finding = Finding::Refused {
            problem: EnvelopeProblem::ApiKey,
            return_msg: "签名错误".into(),
        };
        assert_eq!(
            finding_words(&finding, Lang::Zh),
            "签名被拒绝：API 密钥错误（PAYDESK_WXPAY__API_KEY）；微信支付返回「签名错误」"
        );
        assert_eq!(finding_words(&finding, Lang::En), finding.to_string());
    }
}
