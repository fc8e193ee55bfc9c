//! `AppError`: what a server function can answer (style.md §5). Internals never cross the
//! wire: a database failure is logged on the server and arrives as a bare `Internal`.

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

use crate::i18n::{Lang, Msg};

/// An error a server function returns to the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Not signed in (401).
    #[error("not signed in")]
    Unauthorized,
    /// Signed in, but the role does not allow this (403).
    #[error("forbidden")]
    Forbidden {
        /// Why, when there is more to say than "your role is too low".
        reason: Option<String>,
    },
    /// The thing does not exist (404).
    #[error("not found")]
    NotFound,
    /// The input is not acceptable (422).
    #[error("{field}: {message}")]
    Invalid {
        /// Which input.
        field: String,
        /// What is wrong with it.
        message: String,
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
    /// The HTTP status a server function answers with this error (set by
    /// `server::ssr::respond`).
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthorized | AppError::InvalidCredentials => 401,
            AppError::Forbidden { .. } | AppError::OwnPayment { .. } => 403,
            AppError::NotFound => 404,
            AppError::Invalid { .. } => 422,
            AppError::Throttled { .. } => 429,
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
            AppError::Forbidden { reason: Some(r) } => {
                format!("{} {}", Msg::Forbidden.text(lang), localize_reason(r, lang))
            }
            AppError::NotFound => Msg::NotFound.text(lang).to_owned(),
            AppError::Invalid { field, message } => localize_invalid(field, message, lang),
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
            AppError::Busy => Msg::Busy.text(lang).to_owned(),
            AppError::Internal | AppError::ServerFn(_) => Msg::InternalError.text(lang).to_owned(),
        }
    }
}

fn localize_reason(reason: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return reason.to_owned();
    }
    if reason.contains("last active admin") {
        "这是最后一个启用的管理员账户，请先指定其他管理员。".to_owned()
    } else if reason.contains("your own account") {
        "不能修改自己的角色或停用自己的账户。".to_owned()
    } else {
        reason.to_owned()
    }
}

fn localize_invalid(field: &str, message: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return format!("{}{field}: {message}", Msg::InvalidInput.text(lang));
    }
    let zh = match (field, message) {
        ("password", m) if m.contains("at least") => "密码至少需要 10 个字符。",
        ("password", m) if m.contains("at most") => "密码最多 128 个字符。",
        ("current_password", _) => "当前密码不正确。",
        ("username", m) if m.contains("taken") => "该用户名已被使用。",
        ("username", m) if m.contains("characters") && m.contains("2 to 32") => {
            "用户名长度须为 2–32 个字符。"
        }
        ("username", _) => "用户名只能包含字母、数字、下划线、点和连字符。",
        ("confirm", _) => Msg::PasswordsDiffer.text(lang),
        ("role", _) => "无效的角色。",
        _ => return format!("{}{field}: {message}", Msg::InvalidInput.text(lang)),
    };
    zh.to_owned()
}

#[cfg(feature = "ssr")]
impl From<paydesk_core::CoreError> for AppError {
    fn from(err: paydesk_core::CoreError) -> Self {
        use paydesk_core::CoreError;
        match err {
            CoreError::NotFound => AppError::NotFound,
            CoreError::Invalid { field, message } => AppError::Invalid {
                field: field.to_owned(),
                message,
            },
            CoreError::Forbidden(reason) | CoreError::Conflict(reason) => AppError::Forbidden {
                reason: Some(reason),
            },
            CoreError::Throttled { minutes } => AppError::Throttled { minutes },
            CoreError::Busy => AppError::Busy,
            CoreError::OwnPayment { openid } => AppError::OwnPayment { openid },
            CoreError::Db(e) => {
                tracing::error!(error = %e, "database error in a server function");
                AppError::Internal
            }
            CoreError::Internal(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "internal error in a server function"
                );
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
    let forbidden = matches!(error, AppError::Forbidden { .. });
    view! {
        <div class="refused" data-testid="refused">
            <ErrorBanner error/>
            {forbidden.then(|| view! { <p class="refused__hint">{crate::i18n::Msg::ForbiddenHint.text(lang)}</p> })}
        </div>
    }
}
