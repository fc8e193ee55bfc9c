//! Reading the notification log for the dashboard: the filtered, keyset-paginated list,
//! one notification with the order it was matched to, and the verification failures
//! grouped by cause with the signature debugger's view of each (docs/design.md "notifications").
//!
//! Queries are built from the filters actually set (as in [`crate::sql`]), so each engine
//! uses the `(kind, verdict, received_at, id)` family of indexes (migration `…_logs`).

use sqlx::FromRow;
use wxpay::explain::Explanation;
use wxpay::{ApiKey, SignType};

use super::Verdict;
use crate::sql::{bind_all, finish_page, push_after, Arg, Conditions, Cursor};
use crate::{CoreError, Db};

/// What the notifications page filters on. `Default` is everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    /// `payment` or `refund` (anything else is refused by [`list`]).
    pub kind: Option<String>,
    /// Only this verdict.
    pub verdict: Option<Verdict>,
    /// Received at or after (UTC ms).
    pub from: Option<i64>,
    /// Received before (UTC ms): the range is `[from, to)`.
    pub to: Option<i64>,
}

/// One line of the notification log (the body is only read for the detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Row id.
    pub id: i64,
    /// `payment` or `refund`.
    pub kind: String,
    /// When it arrived (UTC ms).
    pub received_at: i64,
    /// The sender's address.
    pub peer: Option<String>,
    /// `out_trade_no` as claimed.
    pub out_trade_no: Option<String>,
    /// `out_refund_no` of a refund notification.
    pub out_refund_no: Option<String>,
    /// `total_fee` from the verified notification.
    pub total_fee: Option<i64>,
    /// `refund_fee` of a refund notification.
    pub refund_fee: Option<i64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, for people.
    pub detail: String,
    /// `SUCCESS` or `FAIL`.
    pub reply: String,
}

#[derive(FromRow)]
struct EntryRow {
    id: i64,
    kind: String,
    received_at: i64,
    peer: Option<String>,
    out_trade_no: Option<String>,
    out_refund_no: Option<String>,
    total_fee: Option<i64>,
    refund_fee: Option<i64>,
    verdict: String,
    detail: String,
    reply: String,
}

const ENTRY_COLUMNS: &str = "id, kind, received_at, peer, out_trade_no, out_refund_no, \
    total_fee, refund_fee, verdict, detail, reply";

impl TryFrom<EntryRow> for LogEntry {
    type Error = CoreError;

    fn try_from(r: EntryRow) -> Result<Self, CoreError> {
        Ok(LogEntry {
            id: r.id,
            kind: r.kind,
            received_at: r.received_at,
            peer: r.peer,
            out_trade_no: r.out_trade_no,
            out_refund_no: r.out_refund_no,
            total_fee: r.total_fee,
            refund_fee: r.refund_fee,
            verdict: r.verdict.parse()?,
            detail: r.detail,
            reply: r.reply,
        })
    }
}

/// One page of the log, newest first, and where the next starts (`None`: the last page).
/// The cursor's `created_at` is the last entry's `received_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The notifications on this page.
    pub entries: Vec<LogEntry>,
    /// The cursor for the next page.
    pub next: Option<Cursor>,
}

/// The largest page [`list`] returns.
pub const MAX_PAGE: i64 = 200;

/// The notifications matching `filter`, newest first (`received_at desc, id desc`), after
/// `after`, at most `limit` (clamped to 1..=[`MAX_PAGE`]). Keyset pagination as in
/// [`crate::orders::list::list_orders`].
pub async fn list(
    db: &Db,
    filter: &NotificationFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<LogPage, CoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut c = Conditions::default();
    if let Some(kind) = &filter.kind {
        if kind != "payment" && kind != "refund" {
            return Err(CoreError::invalid("kind", "payment or refund"));
        }
        let p = c.bind(Arg::Text(kind.clone()));
        c.push(format!("kind = {p}"));
    }
    if let Some(verdict) = filter.verdict {
        c.push(format!("verdict = '{}'", verdict.as_str()));
    }
    if let Some(from) = filter.from {
        let p = c.bind(Arg::Int(from));
        c.push(format!("received_at >= {p}"));
    }
    if let Some(to) = filter.to {
        let p = c.bind(Arg::Int(to));
        c.push(format!("received_at < {p}"));
    }
    if let Some(cursor) = after {
        push_after(&mut c, "received_at", cursor);
    }
    let take = c.bind(Arg::Int(limit + 1));
    let sql = format!(
        "select {ENTRY_COLUMNS} from notifications {} \
         order by received_at desc, id desc limit {take}",
        c.where_clause()
    );
    let rows = bind_all!(sqlx::query_as::<_, EntryRow>(&sql), &c.args)
        .fetch_all(db.reader())
        .await?;
    let mut entries = rows
        .into_iter()
        .map(LogEntry::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let next = finish_page(&mut entries, limit, |e| Cursor {
        created_at: e.received_at,
        id: e.id,
    });
    Ok(LogPage { entries, next })
}

/// One notification with what the detail page shows besides the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedNotification {
    /// The stored notification.
    pub notification: Notification,
    /// `out_refund_no` of a refund notification.
    pub out_refund_no: Option<String>,
    /// `refund_fee` of a refund notification.
    pub refund_fee: Option<i64>,
    /// The order it was matched to (verified), by its number.
    pub matched_out_trade_no: Option<String>,
}

#[derive(FromRow)]
struct DetailExtra {
    out_refund_no: Option<String>,
    refund_fee: Option<i64>,
    matched_out_trade_no: Option<String>,
}

/// The notification `id`, or `None`.
pub async fn get(db: &Db, id: i64) -> Result<Option<LoggedNotification>, CoreError> {
    let Some(row) = sqlx::query_as::<_, StoredRow>(&format!(
        "select {NOTIFICATION_COLUMNS} from notifications where id = $1"
    ))
    .bind(id)
    .fetch_optional(db.reader())
    .await?
    else {
        return Ok(None);
    };
    let extra = sqlx::query_as::<_, DetailExtra>(
        r#"select n.out_refund_no, n.refund_fee, o.out_trade_no as matched_out_trade_no
           from notifications n left join orders o on o.id = n.order_id
           where n.id = $1"#,
    )
    .bind(id)
    .fetch_one(db.reader())
    .await?;
    Ok(Some(LoggedNotification {
        notification: row.try_into()?,
        out_refund_no: extra.out_refund_no,
        refund_fee: extra.refund_fee,
        matched_out_trade_no: extra.matched_out_trade_no,
    }))
}

// ---------------------------------------------------------------------------------------
// Verification failures.

/// Why a notification was refused: its verdict, with the two verdicts that cover several
/// different mistakes split by what the handler wrote in `detail` (the wording of wxpay's
/// errors and of [`super::receive_oversize`]; the tests pin it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The signature does not match: wrong key, or the body was changed.
    BadSignature,
    /// Signed with another algorithm than the order's (an MD5 downgrade) or an unknown one.
    SignTypeMismatch,
    /// No `sign` at all.
    MissingSign,
    /// Not a well-formed notification.
    Malformed,
    /// Longer than [`super::MAX_BODY`].
    Oversize,
    /// A DOCTYPE or entity declaration.
    ForbiddenXml,
    /// Another appid.
    WrongAppid,
    /// Another mch_id.
    WrongMchId,
    /// No such order (or refund).
    UnknownOrder,
    /// The amount differs from ours.
    AmountMismatch,
    /// `req_info` did not decrypt.
    DecryptFailed,
    /// WeChat Pay says the payment failed.
    ResultFail,
    /// We could not process it.
    InternalError,
}

/// `detail` of a bad signature without `sign` (wxpay `Error::MissingSign`).
const MISSING_SIGN_DETAIL: &str = "message has no sign";
/// `detail` prefixes of a sign type problem (wxpay `SignTypeDowngrade`,
/// `UnsupportedSignType`).
const SIGN_TYPE_DETAILS: [&str; 2] = ["MD5 signature refused", "unsupported sign_type"];
/// `detail` prefix of an over-long body ([`super::receive_oversize`]).
const OVERSIZE_DETAIL: &str = "the body is longer than";

impl Cause {
    /// Every cause.
    pub const ALL: [Cause; 13] = [
        Cause::BadSignature,
        Cause::SignTypeMismatch,
        Cause::MissingSign,
        Cause::Malformed,
        Cause::Oversize,
        Cause::ForbiddenXml,
        Cause::WrongAppid,
        Cause::WrongMchId,
        Cause::UnknownOrder,
        Cause::AmountMismatch,
        Cause::DecryptFailed,
        Cause::ResultFail,
        Cause::InternalError,
    ];

    /// The name on the page and in URLs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::SignTypeMismatch => "sign_type_mismatch",
            Cause::MissingSign => "missing_sign",
            Cause::Oversize => "oversize",
            other => other.verdict().as_str(),
        }
    }

    /// The verdict it is a case of.
    pub const fn verdict(self) -> Verdict {
        match self {
            Cause::BadSignature | Cause::SignTypeMismatch | Cause::MissingSign => {
                Verdict::BadSignature
            }
            Cause::Malformed | Cause::Oversize => Verdict::Malformed,
            Cause::ForbiddenXml => Verdict::ForbiddenXml,
            Cause::WrongAppid => Verdict::WrongAppid,
            Cause::WrongMchId => Verdict::WrongMchId,
            Cause::UnknownOrder => Verdict::UnknownOrder,
            Cause::AmountMismatch => Verdict::AmountMismatch,
            Cause::DecryptFailed => Verdict::DecryptFailed,
            Cause::ResultFail => Verdict::ResultFail,
            Cause::InternalError => Verdict::InternalError,
        }
    }

    /// The cause named `name`.
    pub fn parse(name: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether the signature debugger has something to say (signature or key problems).
    pub const fn wants_debugger(self) -> bool {
        matches!(
            self,
            Cause::BadSignature
                | Cause::SignTypeMismatch
                | Cause::MissingSign
                | Cause::DecryptFailed
        )
    }

    /// The split of a verdict by `detail`, as SQL (constants only, nothing from input).
    fn detail_condition(self) -> Option<String> {
        let like = |prefix: &str| format!("detail like '{prefix}%'");
        let sign_type = format!(
            "({})",
            SIGN_TYPE_DETAILS
                .iter()
                .map(|p| like(p))
                .collect::<Vec<_>>()
                .join(" or ")
        );
        match self {
            Cause::MissingSign => Some(format!("detail = '{MISSING_SIGN_DETAIL}'")),
            Cause::SignTypeMismatch => Some(sign_type),
            Cause::BadSignature => Some(format!(
                "detail <> '{MISSING_SIGN_DETAIL}' and not {sign_type}"
            )),
            Cause::Oversize => Some(like(OVERSIZE_DETAIL)),
            Cause::Malformed => Some(format!("not {}", like(OVERSIZE_DETAIL))),
            _ => None,
        }
    }

    /// The rows of this cause, as SQL.
    fn condition(self) -> String {
        let verdict = format!("verdict = '{}'", self.verdict().as_str());
        match self.detail_condition() {
            Some(d) => format!("{verdict} and {d}"),
            None => verdict,
        }
    }

    /// A `case` expression naming each failing row's cause.
    fn case_sql() -> String {
        let split = [Cause::MissingSign, Cause::SignTypeMismatch, Cause::Oversize]
            .into_iter()
            .map(|c| format!("when {} then '{}'", c.condition(), c.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        format!("case {split} else verdict end")
    }
}

/// The verdicts that are failures ([`Verdict::is_failure`]).
pub fn failing_verdicts() -> impl Iterator<Item = Verdict> {
    Verdict::ALL.into_iter().filter(|v| v.is_failure())
}

/// One cause's failures in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseGroup {
    /// The cause.
    pub cause: Cause,
    /// How many.
    pub count: i64,
    /// The earliest in the window (UTC ms).
    pub first_seen: i64,
    /// The latest (UTC ms).
    pub last_seen: i64,
}

/// The failures received at or after `since`, grouped by cause, the most recent group
/// first. Each verdict is one range of the `(verdict, received_at)` index.
pub async fn failure_groups(db: &Db, since: i64) -> Result<Vec<CauseGroup>, CoreError> {
    let verdicts = failing_verdicts()
        .map(|v| format!("'{}'", v.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        r#"select cause, count(*) as n, min(received_at) as first_seen,
                  max(received_at) as last_seen
           from (select {} as cause, received_at from notifications
                 where verdict in ({verdicts}) and received_at >= $1) as f
           group by cause
           order by last_seen desc"#,
        Cause::case_sql()
    );
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(&sql)
        .bind(since)
        .fetch_all(db.reader())
        .await?;
    rows.into_iter()
        .map(|(cause, count, first_seen, last_seen)| {
            let cause = Cause::parse(&cause).ok_or_else(|| {
                CoreError::Internal(anyhow::anyhow!("unknown failure cause {cause:?}"))
            })?;
            Ok(CauseGroup {
                cause,
                count,
                first_seen,
                last_seen,
            })
        })
        .collect()
}

/// One failure with the signature debugger's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stored notification (its `raw_body` only as much as the debugger reads).
    pub notification: Notification,
    /// Its cause.
    pub cause: Cause,
    /// The sign type of the order it claims, if we have that order (what it should have
    /// been signed with).
    pub expected_sign_type: Option<SignType>,
    /// [`wxpay::explain::explain`] of the body with our key, for the causes where it helps
    /// ([`Cause::wants_debugger`]). It never holds the key: the canonical string ends in
    /// `&key=[API key, N chars]`.
    pub explanation: Option<Explanation>,
}

/// How many failures of one cause [`failures`] returns at most.
pub const MAX_FAILURES: i64 = 100;

/// The newest failures of `cause` received at or after `since` (at most `limit`, clamped to
/// [`MAX_FAILURES`]), each explained with `key` when the cause is about the signature.
/// Each [`Failure::notification`]'s `raw_body` holds only the start of the body, enough
/// for the debugger to explain it or to say it is too large to debug.
pub async fn failures(
    db: &Db,
    cause: Cause,
    since: i64,
    key: &ApiKey,
    limit: i64,
) -> Result<Vec<Failure>, CoreError> {
    // The debugger reads at most `MAX_DEBUG_BODY` bytes: read no more of a body than tells
    // it the body is longer (characters, so one more than that many bytes at least).
    let columns = NOTIFICATION_COLUMNS
        .split(',')
        .map(|c| match c.trim() {
            "raw_body" => format!(
                "substr(raw_body, 1, {}) as raw_body",
                wxpay::explain::MAX_DEBUG_BODY + 1
            ),
            c => c.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query_as::<_, StoredRow>(&format!(
        "select {columns} from notifications \
         where {} and received_at >= $1 order by received_at desc, id desc limit $2",
        cause.condition()
    ))
    .bind(since)
    .bind(limit.clamp(1, MAX_FAILURES))
    .fetch_all(db.reader())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let notification = Notification::try_from(row)?;
        let expected_sign_type = match (&notification.out_trade_no, notification.kind.as_str()) {
            (Some(no), "payment") => crate::orders::find_key_by_out_trade_no(db, no)
                .await?
                .map(|o| o.sign_type),
            _ => None,
        };
        let explanation = cause.wants_debugger().then(|| {
            wxpay::explain::explain(notification.raw_body.as_bytes(), key, expected_sign_type)
        });
        out.push(Failure {
            notification,
            cause,
            expected_sign_type,
            explanation,
        });
    }
    Ok(out)
}

/// A stored notification (for the dashboard's logs and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// `payment` or `refund`.
    pub kind: String,
    /// When it arrived (UTC ms).
    pub received_at: i64,
    /// The sender's address.
    pub peer: Option<String>,
    /// The body as received (lossy UTF-8), or only its start when nothing verified it (then
    /// `raw_length` says how long it was).
    pub raw_body: String,
    /// The body's full length in bytes when `raw_body` holds only its start.
    pub raw_length: Option<i64>,
    /// `out_trade_no` as claimed (unverified unless the verdict says otherwise).
    pub out_trade_no: Option<String>,
    /// `transaction_id` from the verified notification.
    pub transaction_id: Option<String>,
    /// `total_fee` from the verified notification.
    pub total_fee: Option<i64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, for people.
    pub detail: String,
    /// `SUCCESS` or `FAIL`.
    pub reply: String,
    /// Handling time in microseconds.
    pub duration_us: i64,
    /// The order it concerns, once verified.
    pub order_id: Option<i64>,
}

#[derive(FromRow)]
pub(crate) struct StoredRow {
    id: i64,
    kind: String,
    received_at: i64,
    peer: Option<String>,
    raw_body: String,
    raw_length: Option<i64>,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    total_fee: Option<i64>,
    verdict: String,
    detail: String,
    reply: String,
    duration_us: i64,
    order_id: Option<i64>,
}

impl TryFrom<StoredRow> for Notification {
    type Error = CoreError;

    fn try_from(r: StoredRow) -> Result<Self, CoreError> {
        Ok(Notification {
            id: r.id,
            kind: r.kind,
            received_at: r.received_at,
            peer: r.peer,
            raw_body: r.raw_body,
            raw_length: r.raw_length,
            out_trade_no: r.out_trade_no,
            transaction_id: r.transaction_id,
            total_fee: r.total_fee,
            verdict: r.verdict.parse()?,
            detail: r.detail,
            reply: r.reply,
            duration_us: r.duration_us,
            order_id: r.order_id,
        })
    }
}

pub(crate) const NOTIFICATION_COLUMNS: &str = "id, kind, received_at, peer, raw_body, raw_length, \
    out_trade_no, transaction_id, total_fee, verdict, detail, reply, duration_us, order_id";
