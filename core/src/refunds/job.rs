//! Executing approved refunds against WeChat Pay: the refund job (docs/wechatpay-v2.md §8.5, §8.6).

use std::time::Duration;

use wxpay::{Api, OrderRef, RefundQuery, RefundQueryRequest, RefundRequest};

use super::outcome::{apply_and_publish, from_wechat, WxResult};
use super::{find, publish, reload, Refund, RefundStatus};
use crate::events::EventBus;
use crate::time::{duration_ms, unix_ms};
use crate::{now_ms, Backend, CoreError, Db};

// ---------------------------------------------------------------------------------------
// Execution: the refund job.

/// How the refund job paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPolicy {
    /// The wait before the first retry after a transient failure; doubled per attempt.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// The wait before a `PROCESSING` refund is first asked about with refundquery (the
    /// notification usually comes first). Later waits grow with the refund's age, up to
    /// `query_max`.
    pub query_delay: Duration,
    /// The longest wait between two refundqueries of one refund.
    pub query_max: Duration,
    /// How long a claim keeps other instances away: longer than one call with the client's
    /// timeouts, so a lease only runs out when its holder died.
    pub lease: Duration,
    /// The refund `notify_url` sent with every refund (docs/wechatpay-v2.md §8.5).
    pub notify_url: Option<String>,
    /// When a refund that ended `FAILED` after more than one call is asked about again
    /// with refundquery, counted from its failure: an earlier call's outcome was unknown,
    /// and WeChat Pay may have made the refund after all.
    pub failed_checks: [Duration; 2],
}

impl Default for RefundPolicy {
    fn default() -> Self {
        RefundPolicy {
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            query_delay: Duration::from_secs(60),
            query_max: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            notify_url: None,
            failed_checks: [Duration::from_secs(600), Duration::from_secs(86_400)],
        }
    }
}

impl RefundPolicy {
    /// The wait after the `attempts`-th failed attempt: `retry_base` doubled per attempt
    /// after the first, at most `retry_max`.
    pub fn retry_after(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.retry_base
            .saturating_mul(1 << doublings)
            .min(self.retry_max)
    }

    /// The wait before the next refundquery of a refund that has been in its status for
    /// `age`: as long as it has already waited (so the gaps double), between `query_delay`
    /// and `query_max`.
    fn query_after(&self, age: Duration) -> Duration {
        age.clamp(self.query_delay, self.query_max.max(self.query_delay))
    }
}

/// A refund claimed by this instance with [`claim_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The refund as claimed.
    pub refund: Refund,
    /// The lease's end (`next_attempt_at`): every write checks it, so a claim that ran out
    /// and was taken over by another instance writes nothing.
    lease_until: i64,
    /// When it was claimed (the database's clock at the claim): which of its scheduled
    /// looks this is.
    claimed_at: i64,
}

/// Claims up to `limit` due refunds (`APPROVED`, `SUBMITTED`, `PROCESSING`, `CHANGE`, and
/// `FAILED` ones due for a [check](RefundPolicy::failed_checks), with
/// `next_attempt_at <= now`) by moving their `next_attempt_at` to `now + lease` in one
/// statement, exactly like the order sync's claim: PostgreSQL skips rows another instance
/// is claiming (`for update skip locked`); on SQLite the statement is one write transaction.
/// `now` is the database's clock ([`crate::leases`]), as for every write below that renews
/// or ends the lease: an instance whose clock runs ahead takes no refund another holds.
pub async fn claim_due(db: &Db, lease: Duration, limit: i64) -> Result<Vec<Claimed>, CoreError> {
    let lock = match db.backend() {
        Backend::Postgres => "for update skip locked",
        Backend::Sqlite => "",
    };
    let clock = crate::leases::clock_ms(db.backend());
    let lease_ms = duration_ms(lease);
    let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
        r#"update refunds set next_attempt_at = {clock} + $1
           where status in ('APPROVED', 'SUBMITTED', 'PROCESSING', 'CHANGE', 'FAILED')
             and id in (select id from refunds
                        where status in ('APPROVED', 'SUBMITTED', 'PROCESSING', 'CHANGE', 'FAILED')
                          and next_attempt_at <= {clock}
                        order by next_attempt_at
                        limit $2
                        {lock})
           returning id, next_attempt_at"#
    ))
    .bind(lease_ms)
    .bind(limit)
    .fetch_all(db.writer())
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (id, until) in rows {
        if let Some(refund) = find(db, id).await? {
            claimed.push(Claimed {
                refund,
                lease_until: until,
                claimed_at: until.saturating_sub(lease_ms),
            });
        }
    }
    Ok(claimed)
}

/// Gives claimed refunds back before their lease runs out (an instance stopping with work
/// it has not started): each is due again at once for any instance, unless its lease was
/// taken over meanwhile. Returns how many were given back.
pub async fn release(db: &Db, claimed: &[Claimed]) -> Result<u64, CoreError> {
    let clock = crate::leases::clock_ms(db.backend());
    let sql = format!(
        "update refunds set next_attempt_at = {clock} where id = $1 and next_attempt_at = $2"
    );
    let mut released = 0;
    for c in claimed {
        released += sqlx::query(&sql)
            .bind(c.refund.id)
            .bind(c.lease_until)
            .execute(db.writer())
            .await?
            .rows_affected();
    }
    Ok(released)
}

/// Works on one refund claimed by [`claim_due`]:
///
/// - `APPROVED` → [submitted](RefundStatus::Submitted) (committed, attempts + 1), then
///   `/secapi/pay/refund` with the order's `total_fee`, the refund's amount and its
///   `out_refund_no`;
/// - `SUBMITTED` (an earlier call's outcome is unknown, or it failed transiently) →
///   refundquery first: found → its state is adopted; `REFUNDNOTEXIST` → sent again exactly
///   as before; anything else → asked again later;
/// - `PROCESSING`, `CHANGE` → refundquery; a changed state is applied, else it is asked
///   again later (waits growing with its age);
/// - `FAILED` (due for a [check](RefundPolicy::failed_checks)) → refundquery; found → its
///   state is adopted; otherwise the next check, or none after the last.
///
/// The refund call's answer: accepted → `PROCESSING` with `refund_id`; timeout, transport
/// error, 5xx, `SYSTEMERROR`, `BIZERR_NEED_RETRY`, `FREQUENCY_LIMITED` → stays `SUBMITTED`,
/// retried after [`RefundPolicy::retry_after`]; no certificate, a certificate refused in
/// the handshake, or a business error (`NOTENOUGH`, `ERROR`, …) → `FAILED` with the reason in
/// plain words. Returns the refund as stored afterwards.
#[tracing::instrument(skip_all, fields(refund.out_refund_no = %claimed.refund.out_refund_no))]
pub async fn process_claimed(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    policy: &RefundPolicy,
    claimed: &Claimed,
) -> Result<Refund, CoreError> {
    let refund = &claimed.refund;
    match refund.status {
        RefundStatus::Approved => submit(db, api, events, policy, claimed).await,
        RefundStatus::Submitted => match query(api, refund).await {
            Queried::Found(result) => {
                tracing::info!(status = %result.status, "refundquery found the submitted refund");
                apply_and_publish(db, events, policy, refund, &result).await
            }
            Queried::NotExist => submit(db, api, events, policy, claimed).await,
            Queried::Failed(e) => {
                let failure = classify(&e);
                retry_later(db, policy, claimed, &failure).await
            }
        },
        RefundStatus::Processing | RefundStatus::Change => {
            match query(api, refund).await {
                Queried::Found(result) if result.status != refund.status => {
                    return apply_and_publish(db, events, policy, refund, &result).await
                }
                Queried::Found(_) => {}
                Queried::NotExist => {
                    tracing::error!("refundquery does not know a refund WeChat Pay accepted");
                }
                Queried::Failed(e) => {
                    tracing::warn!(error = %e, "refundquery failed; asked again later");
                }
            }
            let age = Duration::from_millis(
                u64::try_from(now_ms().saturating_sub(refund.updated_at)).unwrap_or(0),
            );
            reschedule(db, claimed, policy.query_after(age)).await
        }
        RefundStatus::Failed => {
            match query(api, refund).await {
                Queried::Found(result) => {
                    tracing::warn!(status = %result.status, "a refund that ended FAILED went through after all (refundquery)");
                    return apply_and_publish(db, events, policy, refund, &result).await;
                }
                Queried::NotExist => {
                    tracing::info!("refundquery confirms the failed refund was never made");
                }
                Queried::Failed(e) => {
                    tracing::warn!(error = %e, "refundquery of a failed refund failed; asked at the next check");
                }
            }
            check_failed_later(db, policy, claimed).await
        }
        // Nothing to do (it changed after the claim was read).
        _ => reload(db, refund.id).await,
    }
}

/// Marks the refund `SUBMITTED` (committed), then calls the refund endpoint.
async fn submit(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    policy: &RefundPolicy,
    claimed: &Claimed,
) -> Result<Refund, CoreError> {
    let refund = &claimed.refund;
    let now = now_ms();
    // The lease is renewed with the mark, so it covers the call that follows.
    let clock = crate::leases::clock_ms(db.backend());
    let marked: Option<i64> = sqlx::query_scalar(&format!(
        r#"update refunds
           set status = 'SUBMITTED', attempts = attempts + 1, next_attempt_at = {clock} + $1,
               updated_at = $2
           where id = $3 and status in ('APPROVED', 'SUBMITTED') and next_attempt_at = $4
           returning next_attempt_at"#
    ))
    .bind(duration_ms(policy.lease))
    .bind(now)
    .bind(refund.id)
    .bind(claimed.lease_until)
    .fetch_optional(db.writer())
    .await?;
    let Some(lease_until) = marked else {
        tracing::info!("the refund's lease was taken over; leaving it");
        return reload(db, refund.id).await;
    };
    let submitted = reload(db, refund.id).await?;
    if refund.status != RefundStatus::Submitted {
        publish(events, &submitted);
    }
    let total_fee: i64 = sqlx::query_scalar("select total_fee from orders where id = $1")
        .bind(refund.order_id)
        .fetch_one(db.reader())
        .await?;
    let mut req = RefundRequest::new(
        OrderRef::OutTradeNo(refund.out_trade_no.clone()),
        refund.out_refund_no.clone(),
        total_fee,
        refund.amount_fen,
    );
    req.notify_url = policy.notify_url.clone();
    // The shopper's WeChat refund message says why (§8.5).
    req.refund_desc = wxpay::refund_desc(&refund.reason);
    let claimed = Claimed {
        refund: submitted,
        lease_until,
        claimed_at: claimed.claimed_at,
    };
    match api.refund(&req).await {
        Ok(accepted) => {
            if accepted.refund_fee != refund.amount_fen {
                tracing::error!(
                    wxpay.refund_fee = accepted.refund_fee,
                    "WeChat Pay accepted the refund with another amount; check it by hand"
                );
            }
            tracing::info!(refund.refund_id = %accepted.refund_id, "refund accepted");
            let result = WxResult {
                status: RefundStatus::Processing,
                refund_id: Some(accepted.refund_id),
                recv_accout: None,
                success_at: None,
            };
            apply_and_publish(db, events, policy, &claimed.refund, &result).await
        }
        Err(e) => {
            let failure = classify(&e);
            if failure.retry {
                tracing::warn!(error = %e, attempts = claimed.refund.attempts, "refund call failed; retried later with the same out_refund_no");
                retry_later(db, policy, &claimed, &failure).await
            } else {
                tracing::warn!(error = %e, code = %failure.code, "refund refused; it ends FAILED");
                fail(db, events, policy, &claimed, &failure).await
            }
        }
    }
}

/// A refund call's failure, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// Send it again later (the outcome is unknown or the error transient).
    retry: bool,
    /// `err_code`, or our own code for failures without one.
    code: String,
    /// Plain words for the dashboard.
    message: String,
}

/// Sorts a refund call's error (docs/wechatpay-v2.md §7): what is retried with the same number, and what
/// ends the refund with a reason a person can act on.
fn classify(e: &wxpay::Error) -> Failure {
    let fail = |code: &str, message: String| Failure {
        retry: false,
        code: code.to_owned(),
        message,
    };
    let retry = |code: &str, message: String| Failure {
        retry: true,
        code: code.to_owned(),
        message,
    };
    match e {
        wxpay::Error::NoIdentity => fail(
            "NO_CERTIFICATE",
            "no merchant client certificate is configured: refunds need it for WeChat Pay's \
             mutual TLS (PAYDESK_WXPAY__CERT_PEM and __KEY_PEM, or __P12)"
                .into(),
        ),
        wxpay::Error::Identity { reason } => fail(
            "NO_CERTIFICATE",
            format!("the merchant client certificate could not be used: {reason}"),
        ),
        wxpay::Error::Transport { .. } if certificate_refused(e) => fail(
            "CERTIFICATE_REFUSED",
            format!(
                "WeChat Pay refused the merchant client certificate in the TLS handshake \
                 (is it this merchant's apiclient_cert, issued by WeChat Pay?): {}",
                error_chain(e)
            ),
        ),
        wxpay::Error::HttpStatus {
            status: 400, body, ..
        } if body.to_ascii_lowercase().contains("certificate") => fail(
            "CERTIFICATE_REFUSED",
            format!("WeChat Pay's gateway refused the client certificate: {body}"),
        ),
        // A refusal without sign (§6) is sorted like a signed one: it still says "not done".
        wxpay::Error::ResultFail {
            err_code,
            err_code_des,
        }
        | wxpay::Error::UnsignedResultFail {
            err_code,
            err_code_des,
        } => match err_code.as_str() {
            "SYSTEMERROR" | "BIZERR_NEED_RETRY" | "FREQUENCY_LIMITED" => retry(
                err_code,
                format!("WeChat Pay asked to try again later ({err_code}: {err_code_des})"),
            ),
            code => fail(code, business_message(code, err_code_des)),
        },
        wxpay::Error::ReturnFail { return_msg } => fail(
            "RETURN_FAIL",
            format!(
                "WeChat Pay refused the request itself (check appid, mch_id, key): {return_msg}"
            ),
        ),
        _ if e.is_unknown_outcome() || e.retry_safe() => retry(
            match e {
                wxpay::Error::Timeout { .. } => "TIMEOUT",
                wxpay::Error::HttpStatus { .. } => "HTTP_STATUS",
                _ => "TRANSPORT",
            },
            format!(
                "no answer from WeChat Pay; retried with the same refund number: {}",
                error_chain(e)
            ),
        ),
        other => fail("ERROR", format!("the refund could not be sent: {other}")),
    }
}

/// The dashboard's words for WeChat Pay's refund `err_code`s (docs/wechatpay-v2.md §7).
fn business_message(code: &str, des: &str) -> String {
    let plain = match code {
        "NOTENOUGH" => "the merchant account's refundable balance is too low: top it up, then file the refund again",
        "TRADE_OVERDUE" => "the order was paid more than a year ago: WeChat Pay no longer refunds it; refund offline",
        "USER_ACCOUNT_ABNORMAL" => "the payer's WeChat account is closed or abnormal: refund offline",
        "ORDERNOTEXIST" => "WeChat Pay does not know this order as paid",
        "INVALID_REQUEST" | "REFUND_FEE_MISMATCH" => "WeChat Pay refused the amounts (over the refundable amount, or different from an earlier request with this number)",
        "ERROR" => "WeChat Pay refused the refund",
        "INVALID_TRANSACTIONID" => "WeChat Pay refused the order's transaction id",
        "PARAM_ERROR" => "WeChat Pay refused a parameter of the refund",
        _ => "WeChat Pay refused the refund",
    };
    if des.is_empty() {
        format!("{plain} ({code})")
    } else {
        format!("{plain} ({code}: {des})")
    }
}

/// Whether a transport error is the TLS handshake refusing our client certificate (the
/// server's alert names it). Nothing reached the refund endpoint then, so it is not an
/// unknown outcome: retrying cannot help until someone fixes the certificate.
fn certificate_refused(e: &wxpay::Error) -> bool {
    let chain = error_chain(e).to_ascii_lowercase();
    chain.contains("certificate") || chain.contains("alert") || chain.contains("handshake")
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Keeps a `SUBMITTED` refund for a later attempt (if this instance still holds it).
async fn retry_later(
    db: &Db,
    policy: &RefundPolicy,
    claimed: &Claimed,
    failure: &Failure,
) -> Result<Refund, CoreError> {
    let clock = crate::leases::clock_ms(db.backend());
    sqlx::query(&format!(
        r#"update refunds
           set last_error_code = $1, last_error = $2, next_attempt_at = {clock} + $3,
               updated_at = $4
           where id = $5 and status = 'SUBMITTED' and next_attempt_at = $6"#
    ))
    .bind(&failure.code)
    .bind(&failure.message)
    .bind(duration_ms(
        policy.retry_after(claimed.refund.attempts.max(1)),
    ))
    .bind(now_ms())
    .bind(claimed.refund.id)
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    reload(db, claimed.refund.id).await
}

/// `SUBMITTED → FAILED` with the reason. After more than one call (an earlier one's outcome
/// was unknown) the first [check](RefundPolicy::failed_checks) is scheduled.
async fn fail(
    db: &Db,
    events: &EventBus,
    policy: &RefundPolicy,
    claimed: &Claimed,
    failure: &Failure,
) -> Result<Refund, CoreError> {
    let check = (claimed.refund.attempts > 1).then(|| duration_ms(policy.failed_checks[0]));
    let clock = crate::leases::clock_ms(db.backend());
    let updated = sqlx::query(&format!(
        r#"update refunds
           set status = 'FAILED', last_error_code = $1, last_error = $2,
               next_attempt_at = {clock} + $3, updated_at = $4
           where id = $5 and status = 'SUBMITTED' and next_attempt_at = $6"#
    ))
    .bind(&failure.code)
    .bind(&failure.message)
    .bind(check)
    .bind(now_ms())
    .bind(claimed.refund.id)
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    let refund = reload(db, claimed.refund.id).await?;
    if updated.rows_affected() == 1 {
        publish(events, &refund);
    }
    Ok(refund)
}

/// Schedules a checked `FAILED` refund's next [check](RefundPolicy::failed_checks): the
/// first one counted from its failure (`updated_at`) that falls after this check's claim,
/// or none after the last (if this instance still holds it).
async fn check_failed_later(
    db: &Db,
    policy: &RefundPolicy,
    claimed: &Claimed,
) -> Result<Refund, CoreError> {
    let failed_at = claimed.refund.updated_at;
    let next = policy
        .failed_checks
        .iter()
        .map(|d| failed_at.saturating_add(duration_ms(*d)))
        .find(|at| *at > claimed.claimed_at);
    sqlx::query(
        r#"update refunds set next_attempt_at = $1
           where id = $2 and status = 'FAILED' and next_attempt_at = $3"#,
    )
    .bind(next)
    .bind(claimed.refund.id)
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    reload(db, claimed.refund.id).await
}

/// Sets the next look at a claimed refund (if this instance still holds it).
async fn reschedule(db: &Db, claimed: &Claimed, after: Duration) -> Result<Refund, CoreError> {
    // updated_at stays: it marks when the status last changed (the query backoff's base).
    let clock = crate::leases::clock_ms(db.backend());
    sqlx::query(&format!(
        r#"update refunds set next_attempt_at = {clock} + $1
           where id = $2 and status = $3 and next_attempt_at = $4"#
    ))
    .bind(duration_ms(after))
    .bind(claimed.refund.id)
    .bind(claimed.refund.status.as_str())
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    reload(db, claimed.refund.id).await
}

/// What refundquery said when reconciliation re-checked a refund ([`recheck`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rechecked {
    /// WeChat Pay has it; its answer was applied through the normal path. The refund as
    /// stored afterwards.
    Found(Box<Refund>),
    /// WeChat Pay has no refund with this number.
    NotExist,
    /// The query failed (or answered another amount); the refund is unchanged.
    Failed(String),
}

/// Asks WeChat Pay about a refund with refundquery and applies the answer, as the refund job
/// does: reconciliation re-checks a refund before raising a difference about it.
pub async fn recheck(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    policy: &RefundPolicy,
    refund: &Refund,
) -> Result<Rechecked, CoreError> {
    Ok(match query(api, refund).await {
        Queried::Found(result) => Rechecked::Found(Box::new(
            apply_and_publish(db, events, policy, refund, &result).await?,
        )),
        Queried::NotExist => Rechecked::NotExist,
        Queried::Failed(e) => Rechecked::Failed(e.to_string()),
    })
}

enum Queried {
    Found(WxResult),
    NotExist,
    Failed(wxpay::Error),
}

/// refundquery by `out_refund_no` (docs/wechatpay-v2.md §8.6), reduced to this refund's state. An answer
/// whose amount differs from ours is not adopted (it is logged and treated as a failure).
async fn query(api: &dyn Api, refund: &Refund) -> Queried {
    let req = RefundQueryRequest::from(RefundQuery::ByOutRefundNo(refund.out_refund_no.clone()));
    match api.refund_query(req).await {
        Ok(answer) => {
            let Some(item) = answer
                .refunds
                .into_iter()
                .find(|i| i.out_refund_no == refund.out_refund_no)
            else {
                return Queried::NotExist;
            };
            if item.refund_fee != refund.amount_fen {
                tracing::error!(
                    wxpay.refund_fee = item.refund_fee,
                    "refundquery answers another amount for our refund number; check it by hand"
                );
                return Queried::Failed(wxpay::Error::InvalidField {
                    field: "refund_fee".into(),
                    value: item.refund_fee.to_string(),
                    reason: "differs from the requested amount",
                });
            }
            let Some(status) = from_wechat(&item.refund_status) else {
                tracing::warn!(status = %item.refund_status, "refundquery: unknown refund_status, treated as in progress");
                return Queried::Found(WxResult {
                    status: RefundStatus::Processing,
                    refund_id: Some(item.refund_id),
                    recv_accout: item.refund_recv_accout,
                    success_at: None,
                });
            };
            Queried::Found(WxResult {
                status,
                refund_id: Some(item.refund_id),
                recv_accout: item.refund_recv_accout,
                success_at: item.refund_success_time.map(unix_ms),
            })
        }
        Err(e) if e.err_code() == Some("REFUNDNOTEXIST") => Queried::NotExist,
        Err(e) => Queried::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_business_errors_fail() {
        let p = RefundPolicy::default();
        let gaps: Vec<u64> = (1..=9).map(|n| p.retry_after(n).as_secs()).collect();
        assert_eq!(gaps, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        let sys = wxpay::Error::ResultFail {
            err_code: "SYSTEMERROR".into(),
            err_code_des: "系统超时".into(),
        };
        assert!(classify(&sys).retry);
        let broke = wxpay::Error::ResultFail {
            err_code: "NOTENOUGH".into(),
            err_code_des: "余额不足".into(),
        };
        let f = classify(&broke);
        assert!(!f.retry);
        assert_eq!(f.code, "NOTENOUGH");
        assert!(f.message.contains("balance"), "{}", f.message);
        let none = classify(&wxpay::Error::NoIdentity);
        assert!(!none.retry && none.code == "NO_CERTIFICATE");
        let timeout = wxpay::Error::Timeout {
            endpoint: "/secapi/pay/refund".into(),
        };
        assert!(classify(&timeout).retry);
    }
}
