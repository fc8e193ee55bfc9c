//! The logs: the notification log and one notification, verification failures, support's
//! lookup, and the outbound API call log. Filters are query parameters of plain GET forms,
//! so every view is a link and works before the WebAssembly has loaded.

pub mod api_calls;
pub mod failures;
pub mod lookup;
pub mod notifications;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use paydesk_types::Verdict;

use crate::components::status::{Status, Tone};
use crate::i18n::Lang;

crate::messages! {
/// The logs pages' words.
pub enum LogsMsg {
    NotificationsIntro => "微信支付发来的每一条回调（支付与退款），无论成功与否都完整记录，最新的在前。", "Every callback WeChat Pay sent (payments and refunds), good or bad, kept whole. Newest first.";
    Kind => "类型", "Kind";
    KindPayment => "支付", "Payment";
    KindRefund => "退款", "Refund";
    All => "全部", "All";
    Verdict => "处理结果", "Verdict";
    Received => "收到时间", "Received";
    OrderNo => "商户订单号", "Order no.";
    RefundNo => "商户退款单号", "Refund no.";
    Amount => "金额", "Amount";
    Peer => "来源地址", "From address";
    Reply => "我们的回复", "Our reply";
    Detail => "详情", "Details";
    NoNotifications => "没有符合条件的通知。", "No notifications match.";
    NotificationTitle => "回调通知", "Notification";
    MatchedOrder => "匹配的订单", "Matched order";
    NotMatched => "未匹配到订单", "Not matched to an order";
    Claimed => "报文声称的订单号", "order number it claims";
    TransactionId => "微信支付单号", "Transaction id";
    Duration => "处理耗时", "Handled in";
    TechnicalDetail => "技术细节", "Technical detail";
    RawBody => "原始报文", "Raw body";
    SanitizedBody => "脱敏报文（openid、签名等已遮盖）", "Sanitized body (openid, sign and the like masked)";
    Copy => "复制", "Copy";
    CopySanitized => "复制脱敏版", "Copy sanitized";
    FailuresIntro => "未被接受的回调，按原因分组。每组可展开查看每一条失败、原因说明和签名调试信息。API 密钥不会出现在页面上。", "Callbacks we refused, grouped by cause. Open a group for each failure, what went wrong and what to check, and the signature debugger. The API key never appears on this page.";
    Last24h => "最近 24 小时", "Last 24 h";
    Last7d => "最近 7 天", "Last 7 days";
    Last30d => "最近 30 天", "Last 30 days";
    NoFailures => "该时间段内没有验证失败。", "No verification failures in this window.";
    CountedTitle => "只计数、未保存的拒绝回调", "Refused callbacks counted, not stored";
    CountedIntro => "同一来源地址每分钟只保存有限条被拒绝的回调，超出的按来源、原因和分钟计数，不再逐条保存，以免恶意请求占满磁盘。签名有效的回调从不受此限制；声称是我方订单的回调仍会保存。", "Each sender address gets only so many refused callbacks stored a minute; beyond that they are counted by sender, cause and minute instead of stored one by one, so a flood cannot fill the disk. Callbacks with a valid signature are never limited, and those naming one of our orders are still stored.";
    Sender => "来源地址", "Sender";
    Cause => "原因", "Cause";
    BodyCut => "报文只保存了开头，原长", "Only the start of the body was stored; its full length was";
    Bytes => "字节", "bytes";
    Count => "次数", "Count";
    FirstSeen => "首次", "First seen";
    LastSeen => "最近", "Last seen";
    WhatToCheck => "如何排查", "What to check";
    ShowingNewest => "显示最新的", "Showing the newest";
    Debugger => "签名调试", "Signature debugger";
    Diagnosis => "诊断", "Diagnosis";
    SignTypeUsed => "验签算法", "Checked with";
    OrderSignType => "订单的签名方式", "The order's sign type";
    ReceivedSign => "收到的签名", "Received sign";
    ExpectedMd5 => "我方密钥计算的 MD5（前 8 位）", "MD5 with our key (first 8)";
    ExpectedHmac => "我方密钥计算的 HMAC-SHA256（前 8 位）", "HMAC-SHA256 with our key (first 8)";
    CanonicalString => "待签名串（密钥已遮盖）", "String signed (key masked)";
    Skipped => "未参与签名的字段", "Fields not signed";
    Warnings => "提示", "Warnings";
    KeyLength => "我方密钥长度", "Our key's length";
    SourceField => "报文的 sign_type 字段", "the sign_type field";
    SourceExpected => "订单创建时的签名方式", "the order's sign type";
    SourceLength => "签名长度推断", "the length of sign";
    LookupIntro => "粘贴顾客提供的任何信息：订单号、微信支付单号、退款单号、openid，或“金额 + 大概时间”，如 12.34 昨天下午3点、12.34 2026-11-20 15:00。", "Paste anything a customer gives you: an order number, transaction id, refund number, openid, or an amount and a rough time, e.g. 12.34 昨天下午3点 or 12.34 2026-11-20 15:00.";
    LookupPlaceholder => "订单号 / 微信支付单号 / 金额 + 时间", "id / transaction id / amount + time";
    Search => "查找", "Search";
    NothingFound => "没有找到匹配的订单。试试只输入金额，或换一个时间说法。", "No matching order. Try the amount alone, or put the time another way.";
    SearchedAmount => "按金额查找", "Searched for";
    Between => "时间范围", "between";
    ApiCallsIntro => "我们发给微信支付的每一次请求（下单、查单、关单、退款、查退款、对账单、小程序登录），含请求与响应报文。报文带签名 sign，但从不包含 API 密钥。", "Every request we sent to WeChat Pay (order, query, close, refund, refund query, bill, mini-program login), with request and response bodies. Bodies carry sign but never the API key.";
    Endpoint => "接口", "API";
    Outcome => "结果", "Outcome";
    OutcomeOk => "成功", "OK";
    OutcomeBusiness => "业务错误", "Business error";
    OutcomeTransport => "网络/传输错误", "Transport error";
    Latency => "耗时", "Latency";
    CalledAt => "调用时间", "Called at";
    NoApiCalls => "没有符合条件的接口调用。", "No API calls match.";
    ApiCallTitle => "接口调用", "API call";
    Request => "请求报文", "Request body";
    Response => "响应报文", "Response body";
    Error => "错误", "Error";
    NoBody => "（无）", "(none)";
    KeyNeverStored => "API 密钥不参与任何报文，也从不存储；请求中的 sign 是用它计算出的签名。", "The API key is part of no message and is never stored; the request's sign is computed with it.";
    EpUnifiedOrder => "统一下单", "Unified order";
    EpOrderQuery => "查询订单", "Order query";
    EpCloseOrder => "关闭订单", "Close order";
    EpRefund => "申请退款", "Refund";
    EpRefundQuery => "查询退款", "Refund query";
    EpDownloadBill => "下载对账单", "Download bill";
    EpLogin => "小程序登录", "Mini-program login";
    EpSignKey => "获取沙箱密钥", "Sandbox sign key";
    Host => "域名", "Host";
    Attempt => "尝试", "Attempt";
    BackupHost => "备用域名", "backup host";
    BackupHostNote => "主域名连接失败或返回 5xx 后，由备用域名应答（同一请求，不会重复执行）", "answered by the backup host after the primary failed to connect or answered 5xx (the same request, never carried out twice)";
    FirstAttempt => "第 1 次（配置的域名）", "1st (the configured host)";
    SecondAttempt => "第 2 次（备用域名）", "2nd (the backup host)";
    ProbeAttempt => "探测（不切换备用域名）", "probe (no failover)";
    CauseSignTypeMismatch => "签名算法不符", "Sign type mismatch";
    CauseMissingSign => "缺少签名", "No signature";
    CauseOversize => "报文过大", "Too large";
    CauseUnknown => "未知", "Unknown";
}
}

/// The endpoints the API log filters on, with their names.
pub const ENDPOINTS: [(&str, LogsMsg); 8] = [
    ("/pay/unifiedorder", LogsMsg::EpUnifiedOrder),
    ("/pay/orderquery", LogsMsg::EpOrderQuery),
    ("/pay/closeorder", LogsMsg::EpCloseOrder),
    ("/secapi/pay/refund", LogsMsg::EpRefund),
    ("/pay/refundquery", LogsMsg::EpRefundQuery),
    ("/pay/downloadbill", LogsMsg::EpDownloadBill),
    ("/sns/jscode2session", LogsMsg::EpLogin),
    ("/pay/getsignkey", LogsMsg::EpSignKey),
];

/// A failure cause's short name and its badge's tone: a verdict, or one of the finer causes
/// the failures page groups refused callbacks by.
pub fn cause_label(name: &str, lang: Lang) -> (&'static str, Tone) {
    if let Ok(verdict) = name.parse::<Verdict>() {
        let status = Status::from(verdict);
        return (status.label(lang), status.tone());
    }
    let msg = match name {
        "sign_type_mismatch" => LogsMsg::CauseSignTypeMismatch,
        "missing_sign" => LogsMsg::CauseMissingSign,
        "oversize" => LogsMsg::CauseOversize,
        _ => return (LogsMsg::CauseUnknown.text(lang), Tone::Off),
    };
    (msg.text(lang), Tone::Bad)
}

/// What a verdict or failure cause means and what to check, in plain words.
pub fn verdict_explanation(name: &str, lang: Lang) -> &'static str {
    let zh = lang == Lang::Zh;
    match (name, zh) {
        ("applied", true) => "签名、AppID、商户号和金额都核对无误，订单已标记为已支付（或退款已更新），并已回复微信支付 SUCCESS。",
        ("applied", false) => "Signature, appid, mch_id and amount all checked out; the order was marked paid (or the refund updated) and WeChat Pay was told SUCCESS.",
        ("duplicate", true) => "这条通知此前已处理过，本次没有任何改动，再次回复 SUCCESS 让微信支付停止重发。微信支付重发通知是正常现象。",
        ("duplicate", false) => "This notification was already applied; nothing changed, and SUCCESS was answered again so WeChat Pay stops resending. Resends are normal.",
        ("bad_signature", true) => "报文的签名与用我方 API 密钥计算的结果不一致：报文在途中被改动，或发送方使用了别的密钥。请核对商户平台上的 API 密钥（32 位）是否与 PAYDESK_WXPAY__API_KEY 一致；如果密钥无误，这条通知可能是伪造的，不要手动补单。",
        ("bad_signature", false) => "The signature does not match the one our API key gives: the body was changed on the way, or the sender used another key. Check that the API key in the merchant platform (32 characters) is PAYDESK_WXPAY__API_KEY; if it is, the notification may be forged — do not mark the order paid by hand.",
        ("sign_type_mismatch", true) => "签名算法与订单下单时使用的不一致（例如订单用 HMAC-SHA256 下单，通知却用 MD5 签名），按规范拒绝以防降级攻击。请检查下单时的 sign_type 配置（PAYDESK_WXPAY__SIGN_TYPE）。",
        ("sign_type_mismatch", false) => "The signing algorithm differs from the one the order was created with (e.g. an HMAC-SHA256 order notified with MD5), refused to prevent a downgrade. Check the sign_type used for new orders (PAYDESK_WXPAY__SIGN_TYPE).",
        ("missing_sign", true) => "报文没有 sign 字段。真正的微信支付通知一定带签名：这条多半不是微信支付发来的，请核对来源地址。",
        ("missing_sign", false) => "The body has no sign. Genuine WeChat Pay notifications are always signed: this one most likely did not come from WeChat Pay — check the sender's address.",
        ("malformed", true) => "报文不是合法的通知（不是 XML，或缺少必需字段）。偶发可忽略（扫描器、探测请求）；若持续出现，请对照原始报文检查发送方。",
        ("malformed", false) => "Not a valid notification (not XML, or required fields missing). Once in a while it is a scanner or probe; if it keeps happening, check the sender against the raw body.",
        ("oversize", true) => "报文超过 1 MiB 的上限，只保存了前面一部分，未作解析。真正的通知只有几百字节：这通常是攻击或误配置的请求。",
        ("oversize", false) => "The body is over the 1 MiB limit; only its start was kept, unparsed. Real notifications are a few hundred bytes: this is usually an attack or a misdirected request.",
        ("forbidden_xml", true) => "报文包含 DOCTYPE 或实体声明（XXE 攻击手法），已按规范拒绝且未解析。微信支付从不发送这类报文，请关注来源地址。",
        ("forbidden_xml", false) => "The body has a DOCTYPE or entity declaration (an XXE attack), refused without parsing. WeChat Pay never sends these — watch the sender's address.",
        ("wrong_appid", true) => "签名正确，但 appid 不是本小程序的。通常是同一商户号下的另一个应用把通知地址配成了我们：请检查各应用的 notify_url，或我方 PAYDESK_WXPAY__APPID 配置。",
        ("wrong_appid", false) => "Correctly signed, but for another appid. Usually another app under the same merchant uses our notify URL: check each app's notify_url, or our PAYDESK_WXPAY__APPID.",
        ("wrong_mch_id", true) => "签名正确，但商户号不是我们的：请检查 PAYDESK_WXPAY__MCH_ID 配置，以及其他商户号是否误用了我们的回调地址。",
        ("wrong_mch_id", false) => "Correctly signed, but for another mch_id: check PAYDESK_WXPAY__MCH_ID, and whether another merchant uses our callback URL.",
        ("unknown_order", true) => "签名正确，但我们没有这个商户订单号（或退款单号）：微信支付已收款，我们却没有这笔订单。已记录并回复 SUCCESS（重发也无法让订单出现），需要人工处理。常见于测试环境与生产环境共用商户号、或数据库被恢复到更早的状态。请用“客服查单”搜索报文中的订单号，再在商户平台退款或补录这笔交易。",
        ("unknown_order", false) => "Correctly signed, but we have no such order (or refund) number: WeChat Pay took the money for an order we do not have. Recorded and answered SUCCESS (a resend cannot make the order appear); a person must act. Common when test and production share a merchant id, or after restoring an older database. Search the number in Lookup, then refund it in the merchant platform or record the sale.",
        ("amount_mismatch", true) => "签名正确，但金额与我们的订单金额不一致，未入账。这不应发生：请核对订单金额与微信支付商户平台上的交易，必要时联系微信支付。",
        ("amount_mismatch", false) => "Correctly signed, but the amount differs from our order's, so nothing was applied. This should never happen: compare the order with the transaction in the merchant platform, and contact WeChat Pay if needed.",
        ("decrypt_failed", true) => "退款通知的 req_info 无法用我方 API 密钥解密：密钥可能已在商户平台更换，或通知是伪造的。请核对 PAYDESK_WXPAY__API_KEY。",
        ("decrypt_failed", false) => "The refund notification's req_info does not decrypt with our API key: the key may have been changed in the merchant platform, or the notification is forged. Check PAYDESK_WXPAY__API_KEY.",
        ("result_fail", true) => "微信支付通知该笔支付失败（如银行卡被拒），订单已标记为支付失败，并已回复 SUCCESS。顾客仍可在订单过期前再次付款：付款成功后订单会自动变为已支付。",
        ("result_fail", false) => "WeChat Pay reported that a payment attempt failed (e.g. the card was refused); the order is marked as payment failed and SUCCESS was answered. The customer may still pay before the order expires: it then becomes paid by itself.",
        ("internal_error", true) => "我们处理时出错（如数据库暂时不可用），已回复 FAIL，微信支付会稍后重发。若持续出现，请查看服务器日志。",
        ("internal_error", false) => "We failed to process it (e.g. the database was unavailable) and answered FAIL; WeChat Pay resends later. If it persists, read the server log.",
        (_, true) => "未知的处理结果。",
        (_, false) => "Unknown verdict.",
    }
}

/// The `{id}` of a detail page's path (0, which matches nothing, when it is not a number).
pub fn id_param() -> Memo<i64> {
    let params = use_params_map();
    Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse().ok()).unwrap_or(0)))
}

/// Handling time for people: `850 µs`, `12.3 ms`.
pub fn duration_text(us: i64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_has_a_label_and_an_explanation_in_both_languages() {
        for name in Verdict::ALL.iter().map(|v| v.as_str()).chain([
            "sign_type_mismatch",
            "missing_sign",
            "oversize",
        ]) {
            for lang in [Lang::Zh, Lang::En] {
                assert_ne!(
                    cause_label(name, lang).0,
                    cause_label("?", lang).0,
                    "{name}"
                );
                assert_ne!(
                    verdict_explanation(name, lang),
                    verdict_explanation("?", lang),
                    "{name}"
                );
            }
        }
    }
}
