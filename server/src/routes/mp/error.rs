//! The mini-program API's errors: JSON `{code, message}` with the right HTTP status. The
//! message is for the shopper (Chinese, short); no internal detail ever leaks into it —
//! causes are logged with the request's span instead.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use paydesk_core::CoreError;
use serde::Serialize;

/// Every `code` the API answers with (the OpenAPI document lists the same).
pub const CODES: [&str; 13] = [
    "INVALID_REQUEST",
    "METHOD_NOT_ALLOWED",
    "UNAUTHENTICATED",
    "LOGIN_FAILED",
    "NOT_FOUND",
    "ORDER_NOT_FOUND",
    "IDEMPOTENCY_KEY_REUSED",
    "ORDER_STATE",
    "CLOSE_SCHEDULED",
    "REFUND_REQUEST_OPEN",
    "RATE_LIMITED",
    "PAYMENT_UNAVAILABLE",
    "INTERNAL",
];

/// An error answer.
#[derive(Debug)]
pub struct MpError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl MpError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> MpError {
        MpError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is not what the API accepts (bad JSON, missing or invalid fields).
    pub fn invalid(message: impl Into<String>) -> MpError {
        MpError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// 401: no valid bearer token.
    pub fn unauthenticated() -> MpError {
        MpError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "请先登录 (missing or expired token)",
        )
    }

    /// 401: the `wx.login` code was refused by WeChat.
    pub fn login_failed() -> MpError {
        MpError::new(
            StatusCode::UNAUTHORIZED,
            "LOGIN_FAILED",
            "登录失败，请重试 (the login code was not accepted)",
        )
    }

    /// 404: no such order (or not the shopper's).
    pub fn order_not_found() -> MpError {
        MpError::new(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", "订单不存在")
    }

    /// 404: no such endpoint under `/api/mp` (see `/api/mp/openapi.json`).
    pub fn no_such_endpoint() -> MpError {
        MpError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such endpoint; see /api/mp/openapi.json",
        )
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> MpError {
        MpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "this endpoint does not take that method; see /api/mp/openapi.json",
        )
    }

    /// 409: the idempotency key was used for a different cart.
    pub fn idempotency_conflict() -> MpError {
        MpError::new(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_KEY_REUSED",
            "this idempotency_key was already used for a different order",
        )
    }

    /// 409: the order can no longer be paid or cancelled in its state.
    pub fn order_state(status: &str) -> MpError {
        let message = match status {
            "PAID" | "PARTIALLY_REFUNDED" | "REFUNDED" => "订单已支付",
            "CLOSED" => "订单已关闭",
            "PAYERROR" => "订单支付失败，请重新下单",
            // Unpaid, but WeChat Pay refused to renew its payment (a re-entry refused as
            // "number used"): only a new order (a new number) can be paid.
            "NOTPAY" => "该订单无法继续支付，请重新下单",
            _ => "订单状态不允许此操作",
        };
        MpError::new(StatusCode::CONFLICT, "ORDER_STATE", message)
    }

    /// 409: a cancel within 5 minutes of creation, which WeChat Pay does not take: the
    /// order closes by itself at `closes_at` (UTC ms) unless it is paid before.
    pub fn close_scheduled(closes_at: i64) -> MpError {
        MpError::new(
            StatusCode::CONFLICT,
            "CLOSE_SCHEDULED",
            format!(
                "订单创建5分钟后才能关闭，将于 {} 自动关闭",
                paydesk_types::format_shanghai(closes_at)
            ),
        )
    }

    /// 409: the order cannot be refunded (not paid, or refunded in full).
    pub fn refund_not_allowed() -> MpError {
        MpError::new(StatusCode::CONFLICT, "ORDER_STATE", "该订单当前不能退款")
    }

    /// 409: the shopper already has an open refund request for this order (one at a time;
    /// it is settled by a manager).
    pub fn refund_request_open() -> MpError {
        MpError::new(
            StatusCode::CONFLICT,
            "REFUND_REQUEST_OPEN",
            "该订单已有一个退款申请正在处理，请等待处理结果",
        )
    }

    /// 429: too many requests from this token or address (or logins from this address);
    /// `Retry-After` says when to try again ([`super::limits`]).
    pub fn rate_limited() -> MpError {
        MpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "请求过于频繁，请稍后再试",
        )
    }

    /// 502: WeChat Pay did not take the order now; trying again (same idempotency key) is
    /// safe.
    pub fn payment_unavailable() -> MpError {
        MpError::new(
            StatusCode::BAD_GATEWAY,
            "PAYMENT_UNAVAILABLE",
            "微信支付暂时不可用，请稍后重试",
        )
    }

    /// 409 `ORDER_STATE`: the order changed while the request was handled (another
    /// request, a notification, the sync job); fetching it again shows how it stands.
    pub fn order_changed() -> MpError {
        MpError::new(
            StatusCode::CONFLICT,
            "ORDER_STATE",
            "订单状态已变化，请刷新后重试",
        )
    }

    /// 500: our fault; the cause is in the server log.
    pub fn internal() -> MpError {
        MpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "服务暂时不可用，请稍后重试",
        )
    }
}

impl IntoResponse for MpError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(Body {
                code: self.code,
                message: &self.message,
            }),
        )
            .into_response()
    }
}

impl From<CoreError> for MpError {
    fn from(e: CoreError) -> MpError {
        match e {
            CoreError::Invalid { field, message, .. } => {
                MpError::invalid(format!("{field}: {message}"))
            }
            CoreError::NotFound => MpError::order_not_found(),
            // A conflict no route words itself (the order changed status under the request,
            // say): the request cannot succeed as it stands and nothing failed on our side,
            // so 409 and no error in the log, never a 500.
            CoreError::Conflict(reason) => {
                tracing::info!(%reason, "mini-program request refused: the order changed");
                MpError::order_changed()
            }
            other => {
                tracing::error!(error = %other, "mini-program request failed");
                MpError::internal()
            }
        }
    }
}

impl From<JsonRejection> for MpError {
    fn from(e: JsonRejection) -> MpError {
        // The rejection text names the offending field or syntax error; it holds nothing of
        // ours, only what the client sent.
        MpError::invalid(e.body_text())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use paydesk_core::error::ConflictReason;
    use paydesk_core::CoreError;

    use super::MpError;

    #[test]
    fn a_conflict_is_a_409_not_a_server_error() {
        let e = MpError::from(CoreError::Conflict(ConflictReason::StatusChanged {
            status: "NOTPAY".into(),
        }));
        assert_eq!((e.status, e.code), (StatusCode::CONFLICT, "ORDER_STATE"));
        let e = MpError::from(CoreError::Internal(anyhow::anyhow!("disk on fire")));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
        );
    }
}
