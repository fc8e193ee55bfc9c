//! The logs' server functions: the notification log and one notification (staff and up),
//! verification failures with the signature debugger, support's lookup, and the outbound
//! API call log (support and up). Read-only; every one checks the role first.
//!
//! The API key reaches the failures view only inside `wxpay::explain`, which masks it; the
//! signatures it would give are cut short here, and the finished view is checked for the
//! key before it leaves the server.
//!
//! Everything shown here was sent by someone else, so every stored text leaves through
//! `paydesk_core::bodies`: a body laid out up to its display cap ([`bodies::pretty`]), a
//! short field cut to a line ([`bodies::clip`]), control characters made visible.

use leptos::prelude::*;

use crate::dto::{
    ApiCallDetail, ApiCallPage, FailuresView, LookupResult, NotificationDetail, NotificationPage,
};
use crate::error::AppError;

/// Filters arrive as the page's query parameters: empty means "not set".
#[cfg(feature = "ssr")]
mod convert {
    use paydesk_core::api_calls::{ApiCall, Outcome};
    use paydesk_core::bodies::{self, clip};
    use paydesk_core::notify::log::{Failure, LogEntry};
    use paydesk_core::notify::Notification;
    use paydesk_core::sql::Cursor;
    use paydesk_core::time::shanghai_day;

    use crate::dto::{ApiCallRow, FailureRow, NotificationRow, ShownBody, SignatureDebug};
    use crate::error::AppError;

    /// How many characters of an expected signature the page shows.
    const SIGN_PREFIX: usize = 8;

    pub fn set(text: &str) -> Option<&str> {
        Some(text.trim()).filter(|t| !t.is_empty())
    }

    /// An optional filter read by `parse`; text it cannot read is a field error saying what
    /// the field takes.
    pub fn choice<T>(
        text: &str,
        field: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, AppError> {
        set(text)
            .map(|t| parse(t).ok_or_else(|| AppError::invalid(field, expected)))
            .transpose()
    }

    /// `from` and `to` dates (Asia/Shanghai, both days included) as `[from, to)` UTC ms.
    pub fn dates(from: &str, to: &str) -> Result<(Option<i64>, Option<i64>), AppError> {
        let day = |field: &str, text: &str| match set(text) {
            None => Ok(None),
            Some(t) => shanghai_day(t)
                .map(Some)
                .ok_or_else(|| AppError::invalid(field, "a date as YYYY-MM-DD")),
        };
        Ok((
            day("from", from)?.map(|(start, _)| start),
            day("to", to)?.map(|(_, end)| end),
        ))
    }

    pub fn cursor(after: &str) -> Option<Cursor> {
        set(after).and_then(Cursor::decode)
    }

    /// A stored body: its start laid out, and the whole text for the copy button.
    pub fn shown(body: &str) -> ShownBody {
        let pretty = bodies::pretty(body);
        ShownBody {
            pretty: pretty.text,
            format: pretty.format.as_str().into(),
            raw: body.to_owned(),
            shown: pretty.shown as u64,
            total: pretty.total as u64,
        }
    }

    fn clip_opt(text: Option<&str>) -> Option<String> {
        text.map(clip)
    }

    pub fn entry(e: LogEntry) -> NotificationRow {
        NotificationRow {
            id: e.id,
            amount_fen: if e.kind == "refund" {
                e.refund_fee
            } else {
                e.total_fee
            },
            kind: e.kind,
            received_at: e.received_at,
            peer: clip_opt(e.peer.as_deref()),
            out_trade_no: clip_opt(e.out_trade_no.as_deref()),
            out_refund_no: clip_opt(e.out_refund_no.as_deref()),
            verdict: e.verdict,
            detail: clip(&e.detail),
            reply: e.reply,
        }
    }

    pub fn notification_row(
        n: &Notification,
        out_refund_no: Option<String>,
        refund_fee: Option<i64>,
    ) -> NotificationRow {
        NotificationRow {
            id: n.id,
            kind: n.kind.clone(),
            received_at: n.received_at,
            peer: clip_opt(n.peer.as_deref()),
            out_trade_no: clip_opt(n.out_trade_no.as_deref()),
            out_refund_no: clip_opt(out_refund_no.as_deref()),
            amount_fen: if n.kind == "refund" {
                refund_fee
            } else {
                n.total_fee
            },
            verdict: n.verdict,
            detail: clip(&n.detail),
            reply: n.reply.clone(),
        }
    }

    fn prefix(sign: Option<String>) -> Option<String> {
        sign.map(|s| format!("{}…", s.chars().take(SIGN_PREFIX).collect::<String>()))
    }

    pub fn failure(f: Failure) -> FailureRow {
        let debugger = f.explanation.map(|e| SignatureDebug {
            valid: e.is_valid(),
            diagnosis: clip(&e.diagnosis),
            refused: clip_opt(e.refused.as_deref()),
            sign_type: e.sign_type.map(|t| t.to_string()),
            sign_type_source: e.sign_type_source.map(|s| {
                match s {
                    wxpay::explain::SignTypeSource::Field => "field",
                    wxpay::explain::SignTypeSource::Expected => "expected",
                    wxpay::explain::SignTypeSource::SignLength => "sign_length",
                }
                .into()
            }),
            expected_sign_type: f.expected_sign_type.map(|t| t.to_string()),
            received_sign: clip_opt(e.received_sign.as_deref()),
            expected_md5: prefix(e.expected_md5),
            expected_hmac_sha256: prefix(e.expected_hmac_sha256),
            // Bounded by the debugger's caps (wxpay::explain::MAX_DEBUG_BODY).
            canonical_string: e.canonical_string.as_deref().map(bodies::visible),
            skipped: e.skipped.into_iter().map(|s| (s.name, s.reason)).collect(),
            warnings: e.warnings,
            key_len: e.key_len,
        });
        let n = f.notification;
        FailureRow {
            id: n.id,
            kind: n.kind,
            received_at: n.received_at,
            peer: clip_opt(n.peer.as_deref()),
            out_trade_no: clip_opt(n.out_trade_no.as_deref()),
            detail: clip(&n.detail),
            raw_length: n.raw_length,
            debugger,
        }
    }

    pub fn call(c: &ApiCall) -> ApiCallRow {
        ApiCallRow {
            id: c.id,
            endpoint: c.endpoint.clone(),
            out_trade_no: clip_opt(c.out_trade_no.as_deref()),
            out_refund_no: clip_opt(c.out_refund_no.as_deref()),
            http_status: c.http_status,
            return_code: clip_opt(c.return_code.as_deref()),
            result_code: clip_opt(c.result_code.as_deref()),
            err_code: clip_opt(c.err_code.as_deref()),
            latency_ms: c.latency_ms,
            error: clip_opt(c.error.as_deref()),
            host: clip_opt(c.host().as_deref()),
            attempt: c.attempt,
            created_at: c.created_at,
            outcome: Outcome::of(c).as_str().into(),
        }
    }
}

/// The page size of both logs.
#[cfg(feature = "ssr")]
const PAGE: i64 = 50;

/// The notification log, newest first (staff and up). `kind`: `payment`/`refund`;
/// `verdict`: a verdict's stored name; `from`/`to`: Shanghai dates, both included; `after`:
/// the previous page's `next`. Empty means not set.
#[server(endpoint = "logs/notifications")]
pub async fn list_notifications(
    kind: String,
    verdict: String,
    from: String,
    to: String,
    after: String,
) -> Result<NotificationPage, AppError> {
    super::ssr::as_role(paydesk_types::Role::Staff, |viewer| async move {
        use convert::{choice, cursor, dates, entry, set};
        use paydesk_core::notify::log::{self, NotificationFilter};

        let (from, to) = dates(&from, &to)?;
        let filter = NotificationFilter {
            kind: set(&kind).map(str::to_owned),
            verdict: choice(&verdict, "verdict", "unknown verdict", |v| v.parse().ok())?,
            from,
            to,
        };
        let page = log::list(&viewer.server.db, &filter, cursor(&after).as_ref(), PAGE).await?;
        Ok(NotificationPage {
            rows: page.entries.into_iter().map(entry).collect(),
            next: page.next.map(|c| c.encode()),
        })
    })
    .await
}

/// One notification: verdict, matched order, reply, and the body as received and masked
/// (staff and up).
#[server(endpoint = "logs/notification")]
pub async fn get_notification(id: i64) -> Result<NotificationDetail, AppError> {
    super::ssr::as_role(paydesk_types::Role::Staff, |viewer| async move {
        use convert::{notification_row, shown};
        use paydesk_core::bodies::{clip, sanitize};
        use paydesk_core::notify::log;

        let found = log::get(&viewer.server.db, id)
            .await?
            .ok_or(AppError::NotFound)?;
        let n = &found.notification;
        Ok(NotificationDetail {
            row: notification_row(n, found.out_refund_no.clone(), found.refund_fee),
            transaction_id: n.transaction_id.as_deref().map(clip),
            matched_out_trade_no: found.matched_out_trade_no.clone(),
            duration_us: n.duration_us,
            reply_body: paydesk_core::notify::VerdictReply::reply_body(n.verdict),
            body: shown(&n.raw_body),
            sanitized: shown(&sanitize(&n.raw_body)),
        })
    })
    .await
}

/// How many failures of each cause the failures view shows.
#[cfg(feature = "ssr")]
const FAILURES_PER_CAUSE: i64 = 20;

/// How many (sender, cause) counts of refusals not stored the failures view shows.
#[cfg(feature = "ssr")]
const COUNTED_ROWS: i64 = 50;

/// Verification failures in the last `window` (`24h`, `7d`, `30d`; empty = `24h`), grouped
/// by cause, each with its newest failures and the signature debugger where it helps
/// (support and up).
#[server(endpoint = "logs/failures")]
pub async fn list_failures(window: String) -> Result<FailuresView, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |viewer| async move {
        use crate::dto::FailureGroup;
        use paydesk_core::notify::log;

        let (window, hours) = match convert::set(&window).unwrap_or("24h") {
            "24h" => ("24h", 24),
            "7d" => ("7d", 7 * 24),
            "30d" => ("30d", 30 * 24),
            _ => return Err(AppError::invalid("window", "24h, 7d or 30d")),
        };
        let since = paydesk_core::now_ms() - hours * 3_600_000;
        let db = &viewer.server.db;
        // The key callbacks are verified with: in WeChat Pay's sandbox the sandbox key, which
        // the server fetched at start (the client keeps it).
        let key = viewer.server.wxpay.signing_key().await.map_err(|e| {
            tracing::error!(error = %e, "the signature debugger has no key");
            AppError::Internal
        })?;
        let mut groups = Vec::new();
        for g in log::failure_groups(db, since).await? {
            let failures = log::failures(db, g.cause, since, &key, FAILURES_PER_CAUSE).await?;
            groups.push(FailureGroup {
                cause: g.cause.as_str().into(),
                count: g.count,
                first_seen: g.first_seen,
                last_seen: g.last_seen,
                failures: failures.into_iter().map(convert::failure).collect(),
            });
        }
        let counted = paydesk_core::notify::counted_since(db, since, COUNTED_ROWS)
            .await?
            .into_iter()
            .map(|c| crate::dto::CountedRow {
                sender: c.sender,
                cause: c.cause.as_str().into(),
                count: c.count,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
            })
            .collect();
        let view = FailuresView {
            window: window.into(),
            groups,
            counted,
        };
        // Defence in depth: the debugger masks the key; make sure nothing else let it out.
        let json = serde_json::to_string(&view).map_err(|_| AppError::Internal)?;
        if key.len() >= 8 && json.contains(key.expose()) {
            tracing::error!("the failures view contained the API key; refused to send it");
            return Err(AppError::Internal);
        }
        Ok(view)
    })
    .await
}

/// Support's lookup: an id, or an amount with an approximate time (support and up).
#[server(endpoint = "logs/lookup")]
pub async fn lookup(text: String) -> Result<LookupResult, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |viewer| async move {
        use crate::dto::LookupRow;
        use paydesk_core::orders::lookup::{self, AmountQuery};

        let text = text.trim();
        if text.is_empty() {
            return Ok(LookupResult {
                amount_fen: None,
                range: None,
                rows: Vec::new(),
            });
        }
        if text.chars().count() > 100 {
            return Err(AppError::invalid("text", "at most 100 characters"));
        }
        let orders = lookup::lookup(&viewer.server.db, text).await?;
        let amount = AmountQuery::parse(text, paydesk_core::now_ms());
        // An id match wins (see `lookup::lookup`); the amount is only what was searched for
        // when the text was read as one.
        let by_amount = amount.filter(|q| orders.iter().all(|o| o.total_fee == q.fen));
        Ok(LookupResult {
            amount_fen: by_amount.map(|q| q.fen),
            range: by_amount.map(|q| (q.from, q.to)),
            rows: orders
                .into_iter()
                .map(|o| LookupRow {
                    out_trade_no: o.out_trade_no,
                    status: o.status,
                    total_fee: o.total_fee,
                    description: o.description,
                    created_at: o.created_at,
                    paid_at: o.paid_at,
                    transaction_id: o.transaction_id,
                })
                .collect(),
        })
    })
    .await
}

/// The outbound call log, newest first (support and up). `endpoint`: a path like
/// `/pay/orderquery`; `outcome`: `ok`, `business` or `transport`; `from`/`to`: Shanghai
/// dates; `after`: the previous page's `next`.
#[server(endpoint = "logs/api_calls")]
pub async fn list_api_calls(
    endpoint: String,
    outcome: String,
    from: String,
    to: String,
    after: String,
) -> Result<ApiCallPage, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |viewer| async move {
        use convert::{choice, cursor, dates, set};
        use paydesk_core::api_calls::{self, CallFilter, Outcome};

        let (from, to) = dates(&from, &to)?;
        let filter = CallFilter {
            endpoint: set(&endpoint).map(str::to_owned),
            outcome: choice(
                &outcome,
                "outcome",
                "ok, business or transport",
                Outcome::parse,
            )?,
            from,
            to,
        };
        let page =
            api_calls::list(&viewer.server.db, &filter, cursor(&after).as_ref(), PAGE).await?;
        Ok(ApiCallPage {
            rows: page.calls.iter().map(convert::call).collect(),
            next: page.next.map(|c| c.encode()),
        })
    })
    .await
}

/// One outbound call with its request and response bodies (support and up).
#[server(endpoint = "logs/api_call")]
pub async fn get_api_call(id: i64) -> Result<ApiCallDetail, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |viewer| async move {
        use paydesk_core::api_calls;

        let call = api_calls::get(&viewer.server.db, id)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(ApiCallDetail {
            row: convert::call(&call),
            transaction_id: call
                .transaction_id
                .as_deref()
                .map(paydesk_core::bodies::clip),
            url: call.url.as_deref().map(paydesk_core::bodies::clip),
            request: convert::shown(call.request_body.as_deref().unwrap_or("")),
            response: convert::shown(call.response_body.as_deref().unwrap_or("")),
        })
    })
    .await
}
