//! `AppError`: what a server function can answer (docs/style.md §5). Internals never cross the
//! wire: a database failure is logged on the server and arrives as a bare `Internal`.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use paydesk_types::{ConflictReason, ForbiddenReason, InvalidReason};

use crate::i18n::{Lang, Msg};

/// An error a server function returns to the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Not signed in (401).
    #[error("not signed in")]
    Unauthorized,
    /// Signed in, but this actor may not do this (403): the role is too low (no reason), or
    /// a rule about who acts says no (the reason).
    #[error("forbidden")]
    Forbidden {
        /// Why, when there is more to say than "your role is too low".
        reason: Option<ForbiddenReason>,
    },
    /// The request clashes with the state things are in (409): already decided, not
    /// refundable, …
    #[error("conflict: {reason}")]
    Conflict {
        /// What it clashes with.
        reason: ConflictReason,
    },
    /// The thing does not exist (404).
    #[error("not found")]
    NotFound,
    /// The input is not acceptable (422).
    #[error("{field}: {message}")]
    Invalid {
        /// Which input.
        field: String,
        /// What is wrong with it (English).
        message: String,
        /// The same as a code, for the refusals the dashboard words itself.
        reason: Option<InvalidReason>,
    },
    /// Sign-in refused: unknown user, wrong password or disabled account (401).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Sign-in refused: too many recent failures (429).
    #[error("too many failed sign-ins; try again in {minutes} minutes")]
    Throttled {
        /// Minutes to wait.
        minutes: i64,
    },
    /// Approval refused: the order was paid by one of the approver's own openids (403).
    #[error("the order was paid by your own openid {openid}")]
    OwnPayment {
        /// The approver's openid that paid the order.
        openid: String,
    },
    /// The same work ran moments ago; it may run again in `seconds` (429).
    #[error("ran moments ago; try again in {seconds} s")]
    TooSoon {
        /// Whole seconds to wait.
        seconds: u64,
    },
    /// The server is at its bound for this work (password hashing); try again shortly (503).
    #[error("busy, try again")]
    Busy,
    /// Something broke on the server; details are in the server log only (500).
    #[error("internal error")]
    Internal,
    /// The request never reached the function (network, encoding).
    #[error("{0}")]
    ServerFn(ServerFnErrorErr),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::ServerFn(value)
    }
}

impl AppError {
    /// [`AppError::Invalid`] with an English message only.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
            reason: None,
        }
    }

    /// [`AppError::Invalid`] for a reason the dashboard words itself.
    pub fn invalid_because(field: impl Into<String>, reason: InvalidReason) -> AppError {
        AppError::Invalid {
            field: field.into(),
            message: reason.to_string(),
            reason: Some(reason),
        }
    }

    /// The HTTP status a server function answers with this error (set by
    /// `server::ssr::respond`).
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthorized | AppError::InvalidCredentials => 401,
            AppError::Forbidden { .. } | AppError::OwnPayment { .. } => 403,
            AppError::NotFound => 404,
            AppError::Conflict { .. } => 409,
            AppError::Invalid { .. } => 422,
            AppError::Throttled { .. } | AppError::TooSoon { .. } => 429,
            AppError::Busy => 503,
            AppError::Internal => 500,
            AppError::ServerFn(ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_)) => 400,
            AppError::ServerFn(_) => 500,
        }
    }

    /// A message for the person looking at the page, in `lang`.
    pub fn describe(&self, lang: Lang) -> String {
        match self {
            AppError::Unauthorized => Msg::SessionExpired.text(lang).to_owned(),
            AppError::Forbidden { reason: None } => Msg::Forbidden.text(lang).to_owned(),
            AppError::Forbidden { reason: Some(r) } => forbidden_text(*r, lang).to_owned(),
            AppError::Conflict { reason } => conflict_text(reason, lang),
            AppError::NotFound => Msg::NotFound.text(lang).to_owned(),
            AppError::Invalid {
                reason: Some(r), ..
            } => invalid_text(*r, lang),
            AppError::Invalid { field, message, .. } => {
                format!("{}{field}: {message}", Msg::InvalidInput.text(lang))
            }
            AppError::InvalidCredentials => Msg::InvalidCredentials.text(lang).to_owned(),
            AppError::Throttled { minutes } => {
                format!(
                    "{}{minutes}{}",
                    Msg::ThrottledPrefix.text(lang),
                    Msg::ThrottledSuffix.text(lang)
                )
            }
            AppError::OwnPayment { openid } => {
                format!(
                    "{}{openid}{}",
                    Msg::OwnPaymentPrefix.text(lang),
                    Msg::OwnPaymentSuffix.text(lang)
                )
            }
            AppError::TooSoon { seconds } => format!(
                "{}{seconds}{}",
                Msg::TooSoonPrefix.text(lang),
                Msg::TooSoonSuffix.text(lang)
            ),
            AppError::Busy => Msg::Busy.text(lang).to_owned(),
            AppError::Internal | AppError::ServerFn(_) => Msg::InternalError.text(lang).to_owned(),
        }
    }
}

crate::messages! {
/// The words for each refusal reason (`paydesk_types::{ConflictReason, ForbiddenReason,
/// InvalidReason}`); a `…Prefix`/`…Suffix` pair frames a value the server sent.
pub enum ReasonMsg {
    AlreadyDecidedPrefix => "该退款已被处理，当前状态：", "This refund was already decided: it is ";
    DecidedByPrefix => "，处理人：", " (by ";
    DecidedBySuffix => "", ")";
    RefundedInFull => "该订单已全额退款，没有可退的金额。", "The order has been refunded in full.";
    NotRefundablePrefix => "只有已支付的订单可以退款；该订单当前状态：", "Only a paid order can be refunded; this one is ";
    RefundRequestOpen => "该订单已有一个退款申请正在处理，请等待处理结果。", "A refund request for this order is already open.";
    NotClosablePrefix => "只有未支付的订单可以关闭；该订单当前状态：", "Only an unpaid order can be closed; this one is ";
    TooEarlyToClosePrefix => "微信支付规定订单创建 5 分钟后才能关闭；该订单将于 ", "WeChat Pay closes an order only 5 minutes after it was created; this one closes by itself at ";
    TooEarlyToCloseSuffix => " 自动关闭（除非在此之前已支付）", " unless it is paid before";
    IllegalTransitionPrefix => "订单状态不能这样变更：", "An order cannot go from ";
    IllegalTransitionTo => " → ", " to ";
    StatusChangedPrefix => "订单状态已被其他操作改变（不再是 ", "The order changed meanwhile (it is no longer ";
    StatusChangedSuffix => "），请刷新后重试", "); reload and try again";
    LastActiveAdmin => "这是最后一个启用的管理员账户，请先指定其他管理员。", "This is the last active admin; make someone else admin first.";
    OwnRefundRequest => "不能审批自己提交的退款申请，请交给其他经理。", "Nobody approves or rejects a refund they requested themselves: another manager must decide it.";
    OwnAccount => "不能修改自己的角色或停用自己的账户。", "You cannot change your own role or disable your own account.";
    PasswordTooShortPrefix => "密码至少需要 ", "A password needs at least ";
    PasswordTooLongPrefix => "密码最多 ", "A password has at most ";
    CharactersSuffix => " 个字符。", " characters.";
    WrongCurrentPassword => "当前密码不正确。", "The current password is not correct.";
    UsernameTaken => "该用户名已被使用。", "This username is already taken.";
    UsernameLength => "用户名长度须为 2–32 个字符。", "A username has 2 to 32 characters.";
    UsernameCharset => "用户名只能包含字母、数字、下划线、点和连字符。", "A username may only contain letters, digits, '_', '.' and '-'.";
    UnknownRole => "无效的角色。", "Unknown role.";
    DoctorRunning => "自检正在运行中，请等待本次结果。", "A pre-flight check is running already; its result shows when it ends.";
    FullStop => "。", ".";
}
}

fn forbidden_text(reason: ForbiddenReason, lang: Lang) -> &'static str {
    match reason {
        ForbiddenReason::OwnRefundRequest => ReasonMsg::OwnRefundRequest,
        ForbiddenReason::OwnAccount => ReasonMsg::OwnAccount,
    }
    .text(lang)
}

fn conflict_text(reason: &ConflictReason, lang: Lang) -> String {
    let t = |m: ReasonMsg| m.text(lang);
    let end = t(ReasonMsg::FullStop);
    match reason {
        ConflictReason::AlreadyDecided { status, by } => {
            let by = by
                .as_deref()
                .map(|by| {
                    format!(
                        "{}{by}{}",
                        t(ReasonMsg::DecidedByPrefix),
                        t(ReasonMsg::DecidedBySuffix)
                    )
                })
                .unwrap_or_default();
            format!("{}{status}{by}{end}", t(ReasonMsg::AlreadyDecidedPrefix))
        }
        ConflictReason::RefundedInFull => t(ReasonMsg::RefundedInFull).to_owned(),
        ConflictReason::NotRefundable { status } => {
            format!("{}{status}{end}", t(ReasonMsg::NotRefundablePrefix))
        }
        ConflictReason::RefundRequestOpen => t(ReasonMsg::RefundRequestOpen).to_owned(),
        ConflictReason::NotClosable { status } => {
            format!("{}{status}{end}", t(ReasonMsg::NotClosablePrefix))
        }
        ConflictReason::IllegalTransition { from, to } => format!(
            "{}{from}{}{to}{end}",
            t(ReasonMsg::IllegalTransitionPrefix),
            t(ReasonMsg::IllegalTransitionTo)
        ),
        ConflictReason::StatusChanged { status } => format!(
            "{}{status}{}{end}",
            t(ReasonMsg::StatusChangedPrefix),
            t(ReasonMsg::StatusChangedSuffix)
        ),
        ConflictReason::LastActiveAdmin => t(ReasonMsg::LastActiveAdmin).to_owned(),
        ConflictReason::DoctorRunning => t(ReasonMsg::DoctorRunning).to_owned(),
        ConflictReason::TooEarlyToClose { closes_at } => format!(
            "{}{}{}{end}",
            t(ReasonMsg::TooEarlyToClosePrefix),
            paydesk_types::format_shanghai(*closes_at),
            t(ReasonMsg::TooEarlyToCloseSuffix)
        ),
    }
}

fn invalid_text(reason: InvalidReason, lang: Lang) -> String {
    let t = |m: ReasonMsg| m.text(lang);
    let chars = t(ReasonMsg::CharactersSuffix);
    match reason {
        InvalidReason::PasswordTooShort { min } => {
            format!("{}{min}{chars}", t(ReasonMsg::PasswordTooShortPrefix))
        }
        InvalidReason::PasswordTooLong { max } => {
            format!("{}{max}{chars}", t(ReasonMsg::PasswordTooLongPrefix))
        }
        InvalidReason::WrongCurrentPassword => t(ReasonMsg::WrongCurrentPassword).to_owned(),
        InvalidReason::PasswordsDiffer => Msg::PasswordsDiffer.text(lang).to_owned(),
        InvalidReason::UsernameTaken => t(ReasonMsg::UsernameTaken).to_owned(),
        InvalidReason::UsernameLength => t(ReasonMsg::UsernameLength).to_owned(),
        InvalidReason::UsernameCharset => t(ReasonMsg::UsernameCharset).to_owned(),
        InvalidReason::UnknownRole => t(ReasonMsg::UnknownRole).to_owned(),
    }
}

#[cfg(feature = "ssr")]
impl From<paydesk_core::CoreError> for AppError {
    fn from(err: paydesk_core::CoreError) -> Self {
        use paydesk_core::CoreError;
        match err {
            CoreError::NotFound => AppError::NotFound,
            CoreError::Invalid {
                field,
                message,
                reason,
            } => AppError::Invalid {
                field: field.to_owned(),
                message,
                reason,
            },
            CoreError::Forbidden(reason) => AppError::Forbidden {
                reason: Some(reason),
            },
            CoreError::Conflict(reason) => AppError::Conflict { reason },
            CoreError::Throttled { minutes } => AppError::Throttled { minutes },
            CoreError::Busy => AppError::Busy,
            CoreError::TooSoon { seconds } => AppError::TooSoon { seconds },
            CoreError::OwnPayment { openid } => AppError::OwnPayment { openid },
            // Their Display carries the cause (the database's own text); it stays in the log.
            e @ (CoreError::Db(_) | CoreError::Internal(_)) => {
                tracing::error!(error = %e, "a server function failed");
                AppError::Internal
            }
        }
    }
}

/// Shows an error in a red banner.
#[component]
pub fn ErrorBanner(error: AppError) -> impl IntoView {
    let lang = crate::i18n::use_lang();
    view! { <p class="banner banner--error" role="alert">{error.describe(lang)}</p> }
}

/// A page's data refused or failed: the error, and for a refusal a hint about roles.
#[component]
pub fn Refused(error: AppError) -> impl IntoView {
    let lang = crate::i18n::use_lang();
    let forbidden = matches!(error, AppError::Forbidden { reason: None });
    view! {
        <div class="refused" data-testid="refused">
            <ErrorBanner error/>
            {forbidden.then(|| view! { <p class="refused__hint">{crate::i18n::Msg::ForbiddenHint.text(lang)}</p> })}
        </div>
    }
}
