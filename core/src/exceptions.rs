//! The exceptions inbox (异常): one queue of everything that needs a person, each item with
//! its cause in plain words, the order, its age, and what to do ([`Kind`]).
//!
//! [`scan`] runs in the background (the server's `exceptions` job, every minute): it raises
//! an item when a condition appears and clears the open items whose condition went away (the
//! order got paid, the refund succeeded). The rest a person closes with a note ([`close`],
//! audited). An item is identified by (kind, subject) — a difference, an order, a refund, a
//! transaction — so the same cause is never raised twice, and a closed one is not raised
//! again.
//!
//! Every raise query reads an index range: conditions whose own time is within
//! [`RAISE_WINDOW_MS`] (7 days: a scan that was down for days still finds them), refunds by
//! status. The clear checks read only the open items.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::audit::{self, Actor};
use crate::time::DAY_MS;
use crate::{CoreError, Db};

/// How far back a scan looks for new conditions.
pub const RAISE_WINDOW_MS: i64 = 7 * DAY_MS;
/// A refund in `PROCESSING` or `CHANGE` longer than this is stuck.
pub const STUCK_REFUND_MS: i64 = DAY_MS;
/// Two payments of the same cart by the same shopper within this much of each other.
pub const DOUBLE_CART_MS: i64 = 10 * 60_000;
/// How far back a scan looks for carts paid twice: the scan runs every minute, so this only
/// bounds what a scan that was down misses.
pub const DOUBLE_CART_WINDOW_MS: i64 = DAY_MS;

/// What needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An open reconciliation difference (`reconcile`).
    Reconciliation,
    /// A verified payment notification whose total_fee is not the order's.
    AmountMismatch,
    /// A verified payment for an order that was closed (or had expired) here.
    PaidAfterClose,
    /// A second payment of a paid order, with another transaction_id.
    SecondPayment,
    /// A refund in `PROCESSING` or `CHANGE` for more than a day.
    RefundStuck,
    /// A refund that ended `FAILED`.
    RefundFailed,
    /// A merchant alert whose delivery gave up.
    AlertFailed,
    /// The same shopper paid the same cart twice within 10 minutes.
    DoubleCart,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Kind::Reconciliation,
        Kind::AmountMismatch,
        Kind::PaidAfterClose,
        Kind::SecondPayment,
        Kind::RefundStuck,
        Kind::RefundFailed,
        Kind::AlertFailed,
        Kind::DoubleCart,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Reconciliation => "reconciliation",
            Kind::AmountMismatch => "amount_mismatch",
            Kind::PaidAfterClose => "paid_after_close",
            Kind::SecondPayment => "second_payment",
            Kind::RefundStuck => "refund_stuck",
            Kind::RefundFailed => "refund_failed",
            Kind::AlertFailed => "alert_failed",
            Kind::DoubleCart => "double_cart",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Its short name (Chinese, English).
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Kind::Reconciliation => ("对账差异", "Reconciliation"),
            Kind::AmountMismatch => ("金额不符", "Amount mismatch"),
            Kind::PaidAfterClose => ("关单后支付", "Paid after close"),
            Kind::SecondPayment => ("重复支付", "Paid twice"),
            Kind::RefundStuck => ("退款超时", "Refund stuck"),
            Kind::RefundFailed => ("退款失败", "Refund failed"),
            Kind::AlertFailed => ("提醒失败", "Alert failed"),
            Kind::DoubleCart => ("重复下单", "Same cart twice"),
        }
    }

    /// The cause and what to do (Chinese).
    pub fn zh(self) -> &'static str {
        match self {
            Kind::Reconciliation => "对账差异：微信账单与本系统不一致。打开对账页查看并处理（补单或说明）。",
            Kind::AmountMismatch => "支付金额不符：微信通知的金额与订单金额不同，未入账。请核对订单与微信商户平台的交易。",
            Kind::PaidAfterClose => "订单关闭后被支付：顾客付了款，但订单已关闭。请联系顾客，退款或补发货。",
            Kind::SecondPayment => "重复支付：已支付的订单又收到一笔不同微信支付单号的付款。请为多付的一笔退款。",
            Kind::RefundStuck => "退款处理超过 24 小时：仍在处理中或异常（CHANGE）。请在微信商户平台查看，必要时线下处理。",
            Kind::RefundFailed => "退款失败：请查看失败原因（如余额不足、证书问题），处理后重新发起。",
            Kind::AlertFailed => "商户提醒发送失败：多次重试后放弃。请检查提醒的 Webhook 地址。",
            Kind::DoubleCart => "同一顾客 10 分钟内为同样的商品付了两次款：可能重复下单，请联系顾客，必要时退款。",
        }
    }

    /// The cause and what to do (English).
    pub fn en(self) -> &'static str {
        match self {
            Kind::Reconciliation => "Reconciliation difference: WeChat Pay's bill and ours disagree. Open the Reconciliation page to sync or explain it.",
            Kind::AmountMismatch => "Paid amount mismatch: the notification's amount is not the order's; nothing was applied. Check the order against the merchant platform.",
            Kind::PaidAfterClose => "Paid after it was closed: the shopper paid an order closed here. Contact them: refund or deliver.",
            Kind::SecondPayment => "Paid twice: a paid order received another payment with another transaction_id. Refund the extra one.",
            Kind::RefundStuck => "Refund in progress for over 24 hours (PROCESSING or CHANGE). Check it in the merchant platform; handle it offline if needed.",
            Kind::RefundFailed => "Refund failed: see why (balance, certificate, …), fix it and request it again.",
            Kind::AlertFailed => "A merchant alert gave up after its retries. Check the alert webhook URL.",
            Kind::DoubleCart => "The same shopper paid the same items twice within 10 minutes: maybe a double order. Contact them; refund if so.",
        }
    }
}

impl TryFrom<String> for Kind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Kind::parse(&s).ok_or_else(|| format!("unknown exception kind {s:?}"))
    }
}

/// An item of the inbox.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, Deserialize)]
pub struct Exception {
    /// Row id.
    pub id: i64,
    /// What kind.
    #[sqlx(try_from = "String")]
    pub kind: Kind,
    /// What it is about, unique within its kind.
    pub subject: String,
    /// The order.
    pub order_id: Option<i64>,
    /// Its number.
    pub out_trade_no: Option<String>,
    /// The refund's number.
    pub out_refund_no: Option<String>,
    /// The amount concerned (fen): the order's, the refund's.
    pub amount_fen: Option<i64>,
    /// The other amount (fen): what WeChat Pay said, the second payment's.
    pub other_fen: Option<i64>,
    /// Facts (a difference's class, a refund's status, an error), not words.
    pub detail: Option<String>,
    /// `open`, `cleared` (its condition went away) or `closed` (by a person).
    pub state: String,
    /// When the condition appeared (UTC ms).
    pub raised_at: i64,
    /// The closing note.
    pub note: Option<String>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// When it was closed or cleared.
    pub closed_at: Option<i64>,
}

const COLUMNS: &str = "id, kind, subject, order_id, out_trade_no, out_refund_no, amount_fen, \
    other_fen, detail, state, raised_at, note, closed_by, closed_at";

/// A condition found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Raised {
    kind: Kind,
    subject: String,
    order_id: Option<i64>,
    out_trade_no: Option<String>,
    out_refund_no: Option<String>,
    amount_fen: Option<i64>,
    other_fen: Option<i64>,
    detail: Option<String>,
    raised_at: i64,
}

impl Raised {
    fn new(kind: Kind, subject: impl ToString, raised_at: i64) -> Raised {
        Raised {
            kind,
            subject: subject.to_string(),
            order_id: None,
            out_trade_no: None,
            out_refund_no: None,
            amount_fen: None,
            other_fen: None,
            detail: None,
            raised_at,
        }
    }

    fn order(mut self, id: Option<i64>, no: Option<String>) -> Raised {
        self.order_id = id;
        self.out_trade_no = no;
        self
    }
}

/// What a scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Items raised.
    pub raised: u64,
    /// Items cleared.
    pub cleared: u64,
}

impl ScanReport {
    /// Whether the inbox changed.
    pub fn changed(&self) -> bool {
        self.raised + self.cleared > 0
    }
}

/// Raises the new conditions and clears the open items whose condition went away (module
/// docs). Idempotent: a second scan at once changes nothing.
pub async fn scan(db: &Db, now: i64) -> Result<ScanReport, CoreError> {
    let mut found = Vec::new();
    found.extend(reconciliation(db, now).await?);
    found.extend(notifications(db, now).await?);
    found.extend(refunds(db, now).await?);
    found.extend(alerts(db, now).await?);
    found.extend(double_carts(db, now).await?);
    let mut report = ScanReport::default();
    for r in &found {
        report.raised += insert(db, r, now).await?;
    }
    report.cleared = clear(db, now).await?;
    Ok(report)
}

async fn insert(db: &Db, r: &Raised, now: i64) -> Result<u64, CoreError> {
    Ok(sqlx::query(
        r#"insert into exceptions (kind, subject, order_id, out_trade_no, out_refund_no,
               amount_fen, other_fen, detail, state, raised_at, created_at, updated_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $10, $10)
           on conflict (kind, subject) do nothing"#,
    )
    .bind(r.kind.as_str())
    .bind(&r.subject)
    .bind(r.order_id)
    .bind(r.out_trade_no.as_deref())
    .bind(r.out_refund_no.as_deref())
    .bind(r.amount_fen)
    .bind(r.other_fen)
    .bind(r.detail.as_deref())
    .bind(r.raised_at)
    .bind(now)
    .execute(db.writer())
    .await?
    .rows_affected())
}

#[derive(FromRow)]
struct DifferenceRow {
    id: i64,
    order_id: Option<i64>,
    out_trade_no: Option<String>,
    out_refund_no: Option<String>,
    class: String,
    our_fen: Option<i64>,
    their_fen: Option<i64>,
    day: i64,
}

async fn reconciliation(db: &Db, now: i64) -> Result<Vec<Raised>, CoreError> {
    let rows: Vec<DifferenceRow> = sqlx::query_as(
        "select id, order_id, out_trade_no, out_refund_no, class, our_fen, their_fen, day \
         from recon_differences where state = 'open' and day >= $1",
    )
    .bind(crate::time::day_number(now - RAISE_WINDOW_MS) - 1)
    .fetch_all(db.reader())
    .await?;
    // Raised as of the day it is about; the detail names the class and the day (the inbox
    // links to the day).
    Ok(rows
        .into_iter()
        .map(|d| Raised {
            out_refund_no: d.out_refund_no,
            amount_fen: d.our_fen,
            other_fen: d.their_fen,
            detail: Some(format!("{} {}", d.class, crate::reconcile::day_text(d.day))),
            ..Raised::new(
                Kind::Reconciliation,
                d.id,
                crate::time::day_number_start(d.day),
            )
            .order(d.order_id, d.out_trade_no)
        })
        .collect())
}

#[derive(FromRow)]
struct RefusedRow {
    verdict: String,
    order_id: i64,
    out_trade_no: String,
    transaction_id: Option<String>,
    total_fee: Option<i64>,
    received_at: i64,
    status: String,
    order_transaction_id: Option<String>,
    order_total_fee: i64,
}

/// Verified payment notifications that were not applied for a reason a person must handle:
/// the amount, a closed order, a second transaction.
async fn notifications(db: &Db, now: i64) -> Result<Vec<Raised>, CoreError> {
    let rows: Vec<RefusedRow> = sqlx::query_as(
        "select n.verdict, n.order_id, o.out_trade_no, n.transaction_id, n.total_fee, \
         n.received_at, o.status, o.transaction_id as order_transaction_id, \
         o.total_fee as order_total_fee \
         from notifications n join orders o on o.id = n.order_id \
         where n.verdict in ('amount_mismatch', 'internal_error') and n.received_at >= $1 \
         and n.kind = 'payment' and n.order_id is not null",
    )
    .bind(now - RAISE_WINDOW_MS)
    .fetch_all(db.reader())
    .await?;
    let mut out = Vec::new();
    for n in rows {
        let paid = matches!(
            n.status.as_str(),
            "PAID" | "PARTIALLY_REFUNDED" | "REFUNDED"
        );
        let raised = if n.verdict == "amount_mismatch" {
            Raised::new(Kind::AmountMismatch, n.order_id, n.received_at)
        } else if n.transaction_id.is_none() {
            continue;
        } else if n.status == "CLOSED" {
            Raised::new(Kind::PaidAfterClose, n.order_id, n.received_at)
        } else if !paid {
            // Not applied for another reason (the database failed): WeChat Pay sends it
            // again, and the order sync asks about it.
            continue;
        } else if n.transaction_id != n.order_transaction_id {
            let tid = n.transaction_id.clone().unwrap_or_default();
            Raised::new(Kind::SecondPayment, tid, n.received_at)
        } else {
            continue;
        };
        out.push(Raised {
            amount_fen: Some(n.order_total_fee),
            other_fen: n.total_fee,
            detail: n.transaction_id.map(|t| format!("transaction_id {t}")),
            ..raised.order(Some(n.order_id), Some(n.out_trade_no))
        });
    }
    Ok(out)
}

#[derive(FromRow)]
struct RefundRow {
    id: i64,
    order_id: i64,
    out_trade_no: String,
    out_refund_no: String,
    amount_fen: i64,
    status: String,
    accepted_at: Option<i64>,
    created_at: i64,
    last_error: Option<String>,
}

async fn refunds(db: &Db, now: i64) -> Result<Vec<Raised>, CoreError> {
    let rows: Vec<RefundRow> = sqlx::query_as(
        "select r.id, r.order_id, o.out_trade_no, r.out_refund_no, r.amount_fen, r.status, \
         r.accepted_at, r.created_at, r.last_error from refunds r \
         join orders o on o.id = r.order_id \
         where (r.status in ('PROCESSING', 'CHANGE') and r.created_at < $1) \
            or (r.status = 'FAILED' and r.created_at >= $2)",
    )
    .bind(now - STUCK_REFUND_MS)
    .bind(now - RAISE_WINDOW_MS)
    .fetch_all(db.reader())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let since = r.accepted_at.unwrap_or(r.created_at);
        let kind = if r.status == "FAILED" {
            Kind::RefundFailed
        } else if since < now - STUCK_REFUND_MS {
            Kind::RefundStuck
        } else {
            continue;
        };
        out.push(Raised {
            out_refund_no: Some(r.out_refund_no),
            amount_fen: Some(r.amount_fen),
            detail: Some(match r.last_error {
                Some(e) => format!("{}: {e}", r.status),
                None => r.status,
            }),
            ..Raised::new(kind, r.id, since).order(Some(r.order_id), Some(r.out_trade_no))
        });
    }
    Ok(out)
}

#[derive(FromRow)]
struct AlertRow {
    id: i64,
    order_id: i64,
    out_trade_no: String,
    last_error: Option<String>,
    updated_at: i64,
}

async fn alerts(db: &Db, now: i64) -> Result<Vec<Raised>, CoreError> {
    let rows: Vec<AlertRow> = sqlx::query_as(
        "select id, order_id, out_trade_no, last_error, updated_at from alert_deliveries \
         where status = 'failed' and updated_at >= $1",
    )
    .bind(now - RAISE_WINDOW_MS)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .map(|a| Raised {
            detail: a.last_error,
            ..Raised::new(Kind::AlertFailed, a.id, a.updated_at)
                .order(Some(a.order_id), Some(a.out_trade_no))
        })
        .collect())
}

#[derive(FromRow)]
struct PaidRow {
    id: i64,
    openid: String,
    created_at: i64,
    total_fee: i64,
    out_trade_no: String,
}

/// Orders paid recently whose shopper paid the same items in another order created within
/// [`DOUBLE_CART_MS`] of it. Subject: both order ids, smaller first.
async fn double_carts(db: &Db, now: i64) -> Result<Vec<Raised>, CoreError> {
    let recent: Vec<PaidRow> = sqlx::query_as(
        "select id, openid, created_at, total_fee, out_trade_no from orders \
         where paid_at >= $1",
    )
    .bind(now - DOUBLE_CART_WINDOW_MS)
    .fetch_all(db.reader())
    .await?;
    let mut by_shopper: HashMap<&str, Vec<&PaidRow>> = HashMap::new();
    for o in &recent {
        by_shopper.entry(o.openid.as_str()).or_default().push(o);
    }
    let mut out = Vec::new();
    for orders in by_shopper.values().filter(|v| v.len() > 1) {
        for (i, a) in orders.iter().enumerate() {
            for b in &orders[i + 1..] {
                if a.total_fee != b.total_fee
                    || (a.created_at - b.created_at).abs() > DOUBLE_CART_MS
                {
                    continue;
                }
                if items(db, a.id).await? != items(db, b.id).await? {
                    continue;
                }
                let (first, second) = if a.id < b.id { (a, b) } else { (b, a) };
                out.push(Raised {
                    amount_fen: Some(first.total_fee),
                    other_fen: Some(second.total_fee),
                    detail: Some(format!("also {}", first.out_trade_no)),
                    ..Raised::new(
                        Kind::DoubleCart,
                        format!("{}-{}", first.id, second.id),
                        second.created_at,
                    )
                    .order(Some(second.id), Some(second.out_trade_no.clone()))
                });
            }
        }
    }
    Ok(out)
}

/// An order's items, sorted: (product, name, unit price, quantity).
async fn items(db: &Db, order_id: i64) -> Result<Vec<(Option<i64>, String, i64, i64)>, CoreError> {
    let mut rows: Vec<(Option<i64>, String, i64, i64)> = sqlx::query_as(
        "select product_id, name, unit_price_fen, quantity from order_items where order_id = $1",
    )
    .bind(order_id)
    .fetch_all(db.reader())
    .await?;
    rows.sort();
    Ok(rows)
}

/// Clears the open items whose condition went away.
async fn clear(db: &Db, now: i64) -> Result<u64, CoreError> {
    let conditions = [
        // The difference was synced, resolved or no longer found.
        "kind = 'reconciliation' and not exists (select 1 from recon_differences d \
         where cast(d.id as text) = exceptions.subject and d.state = 'open')",
        // The refund moved on (succeeded, closed, or was made again). By the order first:
        // its refunds are an index range, the subject (the refund's id as text) is not.
        "kind = 'refund_stuck' and not exists (select 1 from refunds r \
         where r.order_id = exceptions.order_id and cast(r.id as text) = exceptions.subject \
         and r.status in ('PROCESSING', 'CHANGE'))",
        "kind = 'refund_failed' and not exists (select 1 from refunds r \
         where r.order_id = exceptions.order_id and cast(r.id as text) = exceptions.subject \
         and r.status = 'FAILED')",
        // The alert was delivered after all (sent again). One alert per order.
        "kind = 'alert_failed' and not exists (select 1 from alert_deliveries a \
         where a.order_id = exceptions.order_id and a.status = 'failed')",
        // The second payment was refunded.
        "kind in ('double_cart', 'second_payment') and exists (select 1 from orders o \
         where o.id = exceptions.order_id and o.status in ('PARTIALLY_REFUNDED', 'REFUNDED'))",
    ];
    let mut cleared = 0;
    for condition in conditions {
        cleared += sqlx::query(&format!(
            "update exceptions set state = 'cleared', closed_at = $1, updated_at = $1 \
             where state = 'open' and {condition}"
        ))
        .bind(now)
        .execute(db.writer())
        .await?
        .rows_affected();
    }
    Ok(cleared)
}

/// How many items are open (the top bar's count).
pub async fn open_count(db: &Db) -> Result<i64, CoreError> {
    Ok(
        sqlx::query_scalar("select count(*) from exceptions where state = 'open'")
            .fetch_one(db.reader())
            .await?,
    )
}

/// The open items, oldest first (or, with `closed`, the latest closed and cleared ones,
/// newest first), at most `limit`.
pub async fn list(db: &Db, closed: bool, limit: i64) -> Result<Vec<Exception>, CoreError> {
    let sql = if closed {
        format!(
            "select {COLUMNS} from exceptions where state in ('closed', 'cleared') \
             order by closed_at desc limit $1"
        )
    } else {
        format!("select {COLUMNS} from exceptions where state = 'open' order by raised_at limit $1")
    };
    Ok(sqlx::query_as::<_, Exception>(&sql)
        .bind(limit.clamp(1, 1000))
        .fetch_all(db.reader())
        .await?)
}

/// Closes an open item with a note, as `actor`, audited in the same transaction.
pub async fn close(db: &Db, id: i64, note: &str, actor: &Actor) -> Result<Exception, CoreError> {
    let note = audit::required_note(note)?;
    let now = crate::now_ms();
    let mut tx = db.begin_write().await?;
    let changed = sqlx::query(
        r#"update exceptions set state = 'closed', note = $1, closed_by = $2,
               closed_by_user_id = $3, closed_at = $4, updated_at = $4
           where id = $5 and state = 'open'"#,
    )
    .bind(note)
    .bind(&actor.name)
    .bind(actor.user_id)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let item =
        sqlx::query_as::<_, Exception>(&format!("select {COLUMNS} from exceptions where id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(CoreError::NotFound)?;
    if changed == 0 {
        return Err(CoreError::invalid(
            "exception",
            format!("it is {}, not open", item.state),
        ));
    }
    audit::record(
        &mut *tx,
        audit::Entry {
            actor,
            action: audit::action::EXCEPTION_CLOSE,
            target: Some(item.out_trade_no.as_deref().unwrap_or(&item.subject)),
            detail: Some(&format!("{}: {note}", item.kind.as_str())),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(item)
}
