//! Reconciliation's tables (migration `…_reconciliation`): the days, the bills as they came
//! and as rows, the differences; and our side of a day, read for the comparison.

use std::collections::HashSet;

use paydesk_types::{OrderStatus, RefundStatus};
use sqlx::FromRow;
use wxpay::{BillSummary, GzippedBill};

use super::compare::{Found, OurOrder, OurRefund, Totals};
use super::lines::{Line, LineKind};
use super::{date_of, Class};
use crate::audit::{self, Actor};
use crate::{CoreError, Db};

/// Numbers per `in (…)` list.
const CHUNK: usize = 500;
/// Bill rows per insert statement (15 values each).
const ROWS_PER_INSERT: usize = 500;

/// Where a day stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayStatus {
    /// ✓: nothing open.
    Matched,
    /// ✗: at least one open difference.
    Differences,
    /// Only trades waiting for the next day's bill.
    Pending,
    /// The bill is not ready yet, or fetching it failed: tried again.
    Waiting,
    /// The bill came but could not be used (damaged), or the fetch was refused.
    Failed,
}

impl DayStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DayStatus::Matched => "matched",
            DayStatus::Differences => "differences",
            DayStatus::Pending => "pending",
            DayStatus::Waiting => "waiting",
            DayStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<DayStatus, String> {
        Ok(match s {
            "matched" => DayStatus::Matched,
            "differences" => DayStatus::Differences,
            "pending" => DayStatus::Pending,
            "waiting" => DayStatus::Waiting,
            "failed" => DayStatus::Failed,
            other => return Err(format!("unknown day status {other:?}")),
        })
    }
}

impl TryFrom<String> for DayStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DayStatus::parse(&s)
    }
}

/// A difference's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceState {
    /// Needs a person.
    Open,
    /// Waits for the next day's bill; not counted.
    Pending,
    /// A later comparison no longer finds it.
    Cleared,
    /// Closed by a person with a note.
    Resolved,
}

impl DifferenceState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DifferenceState::Open => "open",
            DifferenceState::Pending => "pending",
            DifferenceState::Cleared => "cleared",
            DifferenceState::Resolved => "resolved",
        }
    }
}

impl TryFrom<String> for DifferenceState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ok(match s.as_str() {
            "open" => DifferenceState::Open,
            "pending" => DifferenceState::Pending,
            "cleared" => DifferenceState::Cleared,
            "resolved" => DifferenceState::Resolved,
            other => return Err(format!("unknown difference state {other:?}")),
        })
    }
}

/// A reconciled (or tried) day.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Day {
    /// Shanghai day number.
    pub day: i64,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub status: DayStatus,
    /// `present`, `none` (No Bill Exist) or `missing`.
    pub bill: String,
    /// Our payments of the day.
    pub our_paid_count: i64,
    /// Their sum, fen.
    pub our_paid_fen: i64,
    /// Our refunds WeChat Pay accepted during the day.
    pub our_refund_count: i64,
    /// Their sum, fen.
    pub our_refund_fen: i64,
    /// The bill summary's 总交易单数 (every appid).
    pub bill_trade_count: Option<i64>,
    /// 订单总金额.
    pub bill_total_fen: Option<i64>,
    /// 应结订单总金额.
    pub bill_settlement_fen: Option<i64>,
    /// 退款总金额.
    pub bill_refund_fen: Option<i64>,
    /// 手续费总金额, milli-fen.
    pub bill_fee_millifen: Option<i64>,
    /// The bill's payment rows of our appid.
    pub bill_paid_count: i64,
    /// Their 订单金额.
    pub bill_paid_fen: i64,
    /// The bill's refund rows of our appid.
    pub bill_refund_count: i64,
    /// Their 申请退款金额.
    pub bill_refund_fen_ours: i64,
    /// Rows of other appids.
    pub not_ours_count: i64,
    /// Their payments' 订单金额.
    pub not_ours_fen: i64,
    /// Open differences.
    pub open_count: i64,
    /// Pending ones.
    pub pending_count: i64,
    /// Why it is waiting or failed.
    pub error: Option<String>,
    /// Fetches tried.
    pub attempts: i64,
    /// When it was last compared.
    pub reconciled_at: Option<i64>,
    /// Updated.
    pub updated_at: i64,
}

impl Day {
    /// The net settlement the bill states: 应结订单总金额 − 退款总金额 − 手续费 (rounded to
    /// the fen), fen.
    pub fn net_settlement_fen(&self) -> Option<i64> {
        Some(self.bill_settlement_fen? - self.bill_refund_fen.unwrap_or(0) - self.fee_fen()?)
    }

    /// The bill's 手续费总金额 rounded to the fen.
    pub fn fee_fen(&self) -> Option<i64> {
        self.bill_fee_millifen.map(|m| (m + 500).div_euclid(1000))
    }
}

/// A difference.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Difference {
    /// Row id.
    pub id: i64,
    /// Shanghai day number.
    pub day: i64,
    /// What kind.
    #[sqlx(try_from = "String")]
    pub class: Class,
    /// The order or refund number it is about.
    pub ref_no: String,
    /// The order's number.
    pub out_trade_no: Option<String>,
    /// The refund's number.
    pub out_refund_no: Option<String>,
    /// Our order.
    pub order_id: Option<i64>,
    /// Our refund.
    pub refund_row_id: Option<i64>,
    /// Our amount, fen.
    pub our_fen: Option<i64>,
    /// The bill's amount, fen.
    pub their_fen: Option<i64>,
    /// Our status.
    pub our_status: Option<String>,
    /// The bill's status.
    pub their_status: Option<String>,
    /// The bill row's time.
    pub their_time: Option<i64>,
    /// WeChat's transaction id.
    pub transaction_id: Option<String>,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub state: DifferenceState,
    /// The resolution's note.
    pub note: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// When.
    pub resolved_at: Option<i64>,
    /// First found.
    pub first_seen_at: i64,
    /// Last found.
    pub last_seen_at: i64,
}

impl TryFrom<String> for Class {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Class::parse(&s).ok_or_else(|| format!("unknown difference class {s:?}"))
    }
}

const DAY_COLUMNS: &str = "day, status, bill, our_paid_count, our_paid_fen, our_refund_count, \
    our_refund_fen, bill_trade_count, bill_total_fen, bill_settlement_fen, bill_refund_fen, \
    bill_fee_millifen, bill_paid_count, bill_paid_fen, bill_refund_count, bill_refund_fen_ours, \
    not_ours_count, not_ours_fen, open_count, pending_count, error, attempts, reconciled_at, \
    updated_at";

const DIFFERENCE_COLUMNS: &str = "id, day, class, ref_no, out_trade_no, out_refund_no, order_id, \
    refund_row_id, our_fen, their_fen, our_status, their_status, their_time, transaction_id, \
    state, note, resolved_by, resolved_at, first_seen_at, last_seen_at";

/// `YYYY-MM-DD` of Shanghai day number `day`.
pub fn day_text(day: i64) -> String {
    date_of(day).map_or_else(|| day.to_string(), |d| d.to_string())
}

/// The stored day, if it was ever tried.
pub async fn day_of(db: &Db, day: i64) -> Result<Option<Day>, CoreError> {
    Ok(sqlx::query_as::<_, Day>(&format!(
        "select {DAY_COLUMNS} from recon_days where day = $1"
    ))
    .bind(day)
    .fetch_optional(db.reader())
    .await?)
}

/// The stored days from `from` to `to` (both included), oldest first: the calendar.
pub async fn days_between(db: &Db, from: i64, to: i64) -> Result<Vec<Day>, CoreError> {
    Ok(sqlx::query_as::<_, Day>(&format!(
        "select {DAY_COLUMNS} from recon_days where day >= $1 and day <= $2 order by day"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(db.reader())
    .await?)
}

/// The day's differences as CSV, written like the orders export (UTF-8 with a byte-order
/// mark, CRLF, amounts as yuan text, times in Asia/Shanghai, formulas defused).
pub fn differences_csv(differences: &[Difference]) -> String {
    use crate::orders::export::push_csv_row;
    let yuan = |f: Option<i64>| f.map(wxpay::money::fen_to_yuan).unwrap_or_default();
    let mut out = String::from("\u{feff}");
    push_csv_row(
        &mut out,
        [
            "日期",
            "差异类型",
            "说明",
            "商户订单号",
            "商户退款单号",
            "我方金额",
            "微信金额",
            "我方状态",
            "微信状态",
            "微信时间",
            "微信支付单号",
            "处理状态",
            "处理说明",
            "处理人",
        ]
        .into_iter()
        .map(str::to_owned),
    );
    for d in differences {
        push_csv_row(
            &mut out,
            [
                day_text(d.day),
                d.class.as_str().to_owned(),
                d.class.zh().to_owned(),
                d.out_trade_no.clone().unwrap_or_default(),
                d.out_refund_no.clone().unwrap_or_default(),
                yuan(d.our_fen),
                yuan(d.their_fen),
                d.our_status.clone().unwrap_or_default(),
                d.their_status.clone().unwrap_or_default(),
                d.their_time
                    .map(paydesk_types::format_shanghai)
                    .unwrap_or_default(),
                d.transaction_id.clone().unwrap_or_default(),
                d.state.as_str().to_owned(),
                d.note.clone().unwrap_or_default(),
                d.resolved_by.clone().unwrap_or_default(),
            ]
            .into_iter(),
        );
    }
    out
}

/// The day's differences, open ones first.
pub async fn differences(db: &Db, day: i64) -> Result<Vec<Difference>, CoreError> {
    Ok(sqlx::query_as::<_, Difference>(&format!(
        "select {DIFFERENCE_COLUMNS} from recon_differences where day = $1 \
         order by case state when 'open' then 0 when 'pending' then 1 else 2 end, class, ref_no"
    ))
    .bind(day)
    .fetch_all(db.reader())
    .await?)
}

/// One difference.
pub async fn find_difference(db: &Db, id: i64) -> Result<Option<Difference>, CoreError> {
    Ok(sqlx::query_as::<_, Difference>(&format!(
        "select {DIFFERENCE_COLUMNS} from recon_differences where id = $1"
    ))
    .bind(id)
    .fetch_optional(db.reader())
    .await?)
}

/// Closes an open (or pending) difference with a note, as `actor`, audited in the same
/// transaction. The resolution survives later comparisons of the day.
pub async fn resolve(db: &Db, id: i64, note: &str, actor: &Actor) -> Result<Difference, CoreError> {
    let note = audit::required_note(note)?;
    let now = crate::now_ms();
    let mut tx = db.begin_write().await?;
    let changed = sqlx::query(
        r#"update recon_differences
           set state = 'resolved', note = $1, resolved_by = $2, resolved_by_user_id = $3,
               resolved_at = $4, updated_at = $4
           where id = $5 and state in ('open', 'pending')"#,
    )
    .bind(note)
    .bind(&actor.name)
    .bind(actor.user_id)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let d = sqlx::query_as::<_, Difference>(&format!(
        "select {DIFFERENCE_COLUMNS} from recon_differences where id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CoreError::NotFound)?;
    if changed == 0 {
        return Err(CoreError::invalid(
            "difference",
            format!("it is {}, not open", d.state.as_str()),
        ));
    }
    audit::record(
        &mut *tx,
        audit::Entry {
            actor,
            action: audit::action::RECONCILE_RESOLVE,
            target: Some(&d.ref_no),
            detail: Some(&format!(
                "day {} {}: {note}",
                day_text(d.day),
                d.class.as_str()
            )),
        },
    )
    .await?;
    recount(&mut tx, d.day, now).await?;
    tx.commit().await?;
    Ok(d)
}

/// Sets the day's counts and status from its differences.
async fn recount(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    day: i64,
    now: i64,
) -> Result<(), CoreError> {
    sqlx::query(
        r#"update recon_days set
             open_count = (select count(*) from recon_differences
                           where day = $1 and state = 'open'),
             pending_count = (select count(*) from recon_differences
                              where day = $1 and state = 'pending'),
             updated_at = $2
           where day = $1"#,
    )
    .bind(day)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        r#"update recon_days set status = case
               when open_count > 0 then 'differences'
               when pending_count > 0 then 'pending'
               else 'matched' end
           where day = $1 and status in ('matched', 'differences', 'pending')"#,
    )
    .bind(day)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes sure the day has a row, then sets its status and error (a failed or waiting fetch).
pub(super) async fn mark(
    db: &Db,
    day: i64,
    status: DayStatus,
    error: &str,
    now: i64,
) -> Result<(), CoreError> {
    sqlx::query(
        r#"insert into recon_days (day, status, bill, error, attempts, created_at, updated_at)
           values ($1, $2, 'missing', $3, 1, $4, $4)
           on conflict (day) do update set status = excluded.status, error = excluded.error,
               attempts = recon_days.attempts + 1, updated_at = excluded.updated_at"#,
    )
    .bind(day)
    .bind(status.as_str())
    .bind(error)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Keeps a bill that parsed and adds up: the gzip as it came and its rows (replacing an
/// earlier fetch of the day), and the summary on the day.
pub(super) async fn keep_bill(
    db: &Db,
    day: i64,
    fetched: &GzippedBill,
    lines: &[Line],
    summary: &BillSummary,
    now: i64,
) -> Result<(), CoreError> {
    let mut tx = db.begin_write().await?;
    put_raw(&mut tx, day, fetched, lines.len(), now).await?;
    sqlx::query("delete from recon_bill_rows where day = $1")
        .bind(day)
        .execute(&mut *tx)
        .await?;
    for chunk in lines.chunks(ROWS_PER_INSERT) {
        insert_rows(&mut tx, day, chunk, now).await?;
    }
    sqlx::query(
        r#"insert into recon_days (day, status, bill, bill_trade_count, bill_total_fen,
               bill_settlement_fen, bill_refund_fen, bill_fee_millifen, error, attempts,
               created_at, updated_at)
           values ($1, 'waiting', 'present', $2, $3, $4, $5, $6, null, 1, $7, $7)
           on conflict (day) do update set bill = 'present',
               bill_trade_count = excluded.bill_trade_count,
               bill_total_fen = excluded.bill_total_fen,
               bill_settlement_fen = excluded.bill_settlement_fen,
               bill_refund_fen = excluded.bill_refund_fen,
               bill_fee_millifen = excluded.bill_fee_millifen,
               error = null, attempts = recon_days.attempts + 1,
               updated_at = excluded.updated_at"#,
    )
    .bind(day)
    .bind(summary.trade_count)
    .bind(summary.total_fee.or(summary.legacy_total_fee))
    .bind(summary.settlement_total_fee)
    .bind(summary.refund_total_fee.or(summary.legacy_refund_total_fee))
    .bind(summary.poundage_millifen)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Keeps a damaged bill as it came (no rows), for a person to look at.
pub(super) async fn keep_damaged_bill(
    db: &Db,
    day: i64,
    fetched: &GzippedBill,
    now: i64,
) -> Result<(), CoreError> {
    let mut tx = db.begin_write().await?;
    put_raw(&mut tx, day, fetched, fetched.bill.rows.len(), now).await?;
    sqlx::query("delete from recon_bill_rows where day = $1")
        .bind(day)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// "No Bill Exist": no trades that day at WeChat Pay.
pub(super) async fn keep_no_bill(db: &Db, day: i64, now: i64) -> Result<(), CoreError> {
    let mut tx = db.begin_write().await?;
    sqlx::query("delete from recon_bill_rows where day = $1")
        .bind(day)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from recon_bills where day = $1")
        .bind(day)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        r#"insert into recon_days (day, status, bill, bill_trade_count, bill_total_fen,
               bill_settlement_fen, bill_refund_fen, bill_fee_millifen, attempts, created_at,
               updated_at)
           values ($1, 'waiting', 'none', 0, 0, 0, 0, 0, 1, $2, $2)
           on conflict (day) do update set bill = 'none', bill_trade_count = 0,
               bill_total_fen = 0, bill_settlement_fen = 0, bill_refund_fen = 0,
               bill_fee_millifen = 0, error = null, attempts = recon_days.attempts + 1,
               updated_at = excluded.updated_at"#,
    )
    .bind(day)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn put_raw(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    day: i64,
    fetched: &GzippedBill,
    rows: usize,
    now: i64,
) -> Result<(), CoreError> {
    let text_bytes: usize = fetched
        .bill
        .rows
        .iter()
        .map(|r| r.iter().map(String::len).sum::<usize>())
        .sum();
    sqlx::query(
        r#"insert into recon_bills (day, gzip, text_bytes, row_count, fetched_at)
           values ($1, $2, $3, $4, $5)
           on conflict (day) do update set gzip = excluded.gzip,
               text_bytes = excluded.text_bytes, row_count = excluded.row_count,
               fetched_at = excluded.fetched_at"#,
    )
    .bind(day)
    .bind(fetched.gzip.clone())
    .bind(i64::try_from(text_bytes).unwrap_or(i64::MAX))
    .bind(i64::try_from(rows).unwrap_or(i64::MAX))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    day: i64,
    lines: &[Line],
    now: i64,
) -> Result<(), CoreError> {
    const COLUMNS: usize = 16;
    let values = (0..lines.len())
        .map(|i| {
            let b = i * COLUMNS;
            let cells: Vec<String> = (1..=COLUMNS).map(|c| format!("${}", b + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "insert into recon_bill_rows (day, line, kind, ours, appid, out_trade_no, \
         transaction_id, out_refund_no, refund_id, state, trade_time, total_fee, \
         settlement_fee, refund_fee, fee_millifen, fetched_at) values {values}"
    );
    let mut q = sqlx::query(&sql);
    for l in lines {
        q = q
            .bind(day)
            .bind(l.line)
            .bind(l.kind.as_str())
            .bind(i64::from(l.ours))
            .bind(l.appid.clone())
            .bind(l.out_trade_no.clone())
            .bind(l.transaction_id.clone())
            .bind(l.out_refund_no.clone())
            .bind(l.refund_id.clone())
            .bind(l.state.clone())
            .bind(l.trade_time)
            .bind(l.total_fee)
            .bind(l.settlement_fee)
            .bind(l.refund_fee)
            .bind(l.fee_millifen)
            .bind(now);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

#[derive(FromRow)]
struct LineRow {
    line: i64,
    kind: String,
    ours: i64,
    appid: Option<String>,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    out_refund_no: Option<String>,
    refund_id: Option<String>,
    state: Option<String>,
    trade_time: Option<i64>,
    total_fee: Option<i64>,
    settlement_fee: Option<i64>,
    refund_fee: Option<i64>,
    fee_millifen: Option<i64>,
}

/// The stored rows of the day's bill.
pub(super) async fn lines(db: &Db, day: i64) -> Result<Vec<Line>, CoreError> {
    let rows = sqlx::query_as::<_, LineRow>(
        "select line, kind, ours, appid, out_trade_no, transaction_id, out_refund_no, \
         refund_id, state, trade_time, total_fee, settlement_fee, refund_fee, fee_millifen \
         from recon_bill_rows where day = $1 order by line",
    )
    .bind(day)
    .fetch_all(db.reader())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Line {
                line: r.line,
                kind: LineKind::parse(&r.kind).ok_or_else(|| {
                    CoreError::Internal(anyhow::anyhow!("bill row kind {:?}", r.kind))
                })?,
                ours: r.ours != 0,
                appid: r.appid,
                out_trade_no: r.out_trade_no,
                transaction_id: r.transaction_id,
                out_refund_no: r.out_refund_no,
                refund_id: r.refund_id,
                state: r.state,
                trade_time: r.trade_time,
                total_fee: r.total_fee,
                settlement_fee: r.settlement_fee,
                refund_fee: r.refund_fee,
                fee_millifen: r.fee_millifen,
            })
        })
        .collect()
}

/// Which of `numbers` (order or refund numbers) the stored bill of `day` holds; `None` when
/// that day's bill has not been fetched ("No Bill Exist" counts as fetched, holding none).
pub(super) async fn numbers_on_bill(
    db: &Db,
    day: i64,
    numbers: &[&str],
) -> Result<Option<HashSet<String>>, CoreError> {
    let bill: Option<String> = sqlx::query_scalar("select bill from recon_days where day = $1")
        .bind(day)
        .fetch_optional(db.reader())
        .await?;
    if !matches!(bill.as_deref(), Some("present" | "none")) {
        return Ok(None);
    }
    let mut held = HashSet::new();
    for chunk in numbers.chunks(CHUNK) {
        let list = crate::sql::placeholders(2, chunk.len());
        let sql = format!(
            "select coalesce(out_refund_no, out_trade_no) from recon_bill_rows \
             where day = $1 and (out_trade_no in ({list}) or out_refund_no in ({list}))"
        );
        let mut q = sqlx::query_scalar::<_, Option<String>>(&sql).bind(day);
        for n in chunk {
            q = q.bind(*n);
        }
        held.extend(q.fetch_all(db.reader()).await?.into_iter().flatten());
    }
    // A payment row's order number is held too when a refund row of it matched.
    Ok(Some(held))
}

type OrderRow = (i64, String, String, i64, Option<String>, Option<i64>);

fn our_order(r: OrderRow) -> Result<OurOrder, CoreError> {
    Ok(OurOrder {
        id: r.0,
        out_trade_no: r.1,
        status: OrderStatus::try_from(r.2).map_err(|e| CoreError::Internal(anyhow::anyhow!(e)))?,
        total_fee: r.3,
        transaction_id: r.4,
        paid_at: r.5,
    })
}

const OUR_ORDER: &str = "select id, out_trade_no, status, total_fee, transaction_id, paid_at \
                         from orders";

/// Our orders with these numbers (any status).
pub(super) async fn orders_by_number(
    db: &Db,
    numbers: &[&str],
) -> Result<Vec<OurOrder>, CoreError> {
    let mut out = Vec::with_capacity(numbers.len());
    for chunk in numbers.chunks(CHUNK) {
        let sql = format!(
            "{OUR_ORDER} where out_trade_no in ({})",
            crate::sql::placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, OrderRow>(&sql);
        for n in chunk {
            q = q.bind(*n);
        }
        for row in q.fetch_all(db.reader()).await? {
            out.push(our_order(row)?);
        }
    }
    Ok(out)
}

/// Our orders paid in `[start, end)`.
pub(super) async fn orders_paid_between(
    db: &Db,
    start: i64,
    end: i64,
) -> Result<Vec<OurOrder>, CoreError> {
    sqlx::query_as::<_, OrderRow>(&format!("{OUR_ORDER} where paid_at >= $1 and paid_at < $2"))
        .bind(start)
        .bind(end)
        .fetch_all(db.reader())
        .await?
        .into_iter()
        .map(our_order)
        .collect()
}

type RefundRow = (i64, String, String, i64, String, Option<i64>);

fn our_refund(r: RefundRow) -> Result<OurRefund, CoreError> {
    Ok(OurRefund {
        id: r.0,
        out_refund_no: r.1,
        out_trade_no: r.2,
        amount_fen: r.3,
        status: RefundStatus::try_from(r.4).map_err(|e| CoreError::Internal(anyhow::anyhow!(e)))?,
        accepted_at: r.5,
    })
}

const OUR_REFUND: &str = "select r.id, r.out_refund_no, o.out_trade_no, r.amount_fen, r.status, \
                          r.accepted_at from refunds r join orders o on o.id = r.order_id";

/// Our refunds with these numbers.
pub(super) async fn refunds_by_number(
    db: &Db,
    numbers: &[&str],
) -> Result<Vec<OurRefund>, CoreError> {
    let mut out = Vec::with_capacity(numbers.len());
    for chunk in numbers.chunks(CHUNK) {
        let sql = format!(
            "{OUR_REFUND} where r.out_refund_no in ({})",
            crate::sql::placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, RefundRow>(&sql);
        for n in chunk {
            q = q.bind(*n);
        }
        for row in q.fetch_all(db.reader()).await? {
            out.push(our_refund(row)?);
        }
    }
    Ok(out)
}

/// Our refunds WeChat Pay accepted in `[start, end)`, in a state it knows them in.
pub(super) async fn refunds_accepted_between(
    db: &Db,
    start: i64,
    end: i64,
) -> Result<Vec<OurRefund>, CoreError> {
    sqlx::query_as::<_, RefundRow>(&format!(
        "{OUR_REFUND} where r.accepted_at >= $1 and r.accepted_at < $2 \
         and r.status in ('PROCESSING', 'SUCCESS', 'CHANGE', 'REFUNDCLOSE')"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(db.reader())
    .await?
    .into_iter()
    .map(our_refund)
    .collect()
}

/// Records a comparison: each difference found is inserted or updated (a resolved one stays
/// resolved), those no longer found are cleared, and the day gets its totals, counts and
/// status; one transaction.
pub(super) async fn record(
    db: &Db,
    day: i64,
    found: &[Found],
    totals: &Totals,
    now: i64,
) -> Result<(), CoreError> {
    let mut tx = db.begin_write().await?;
    for f in found {
        let state = if f.pending { "pending" } else { "open" };
        sqlx::query(
            r#"insert into recon_differences (day, class, ref_no, out_trade_no, out_refund_no,
                   order_id, refund_row_id, our_fen, their_fen, our_status, their_status,
                   their_time, transaction_id, state, first_seen_at, last_seen_at, created_at,
                   updated_at)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15,
                   $15, $15)
               on conflict (day, class, ref_no) do update set
                   out_trade_no = excluded.out_trade_no, out_refund_no = excluded.out_refund_no,
                   order_id = excluded.order_id, refund_row_id = excluded.refund_row_id,
                   our_fen = excluded.our_fen, their_fen = excluded.their_fen,
                   our_status = excluded.our_status, their_status = excluded.their_status,
                   their_time = excluded.their_time, transaction_id = excluded.transaction_id,
                   state = case when recon_differences.state = 'resolved' then 'resolved'
                                else excluded.state end,
                   last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at"#,
        )
        .bind(day)
        .bind(f.class.as_str())
        .bind(&f.ref_no)
        .bind(f.out_trade_no.as_deref())
        .bind(f.out_refund_no.as_deref())
        .bind(f.order_id)
        .bind(f.refund_row_id)
        .bind(f.our_fen)
        .bind(f.their_fen)
        .bind(f.our_status.as_deref())
        .bind(f.their_status.as_deref())
        .bind(f.their_time)
        .bind(f.transaction_id.as_deref())
        .bind(state)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        r#"update recon_differences set state = 'cleared', updated_at = $2
           where day = $1 and state in ('open', 'pending') and last_seen_at < $2"#,
    )
    .bind(day)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        r#"update recon_days set status = 'matched', our_paid_count = $2, our_paid_fen = $3,
               our_refund_count = $4, our_refund_fen = $5, bill_paid_count = $6,
               bill_paid_fen = $7, bill_refund_count = $8, bill_refund_fen_ours = $9,
               not_ours_count = $10, not_ours_fen = $11, error = null, reconciled_at = $12,
               updated_at = $12
           where day = $1"#,
    )
    .bind(day)
    .bind(totals.our_paid.0)
    .bind(totals.our_paid.1)
    .bind(totals.our_refunds.0)
    .bind(totals.our_refunds.1)
    .bind(totals.bill_paid.0)
    .bind(totals.bill_paid.1)
    .bind(totals.bill_refunds.0)
    .bind(totals.bill_refunds.1)
    .bind(totals.not_ours.0)
    .bind(totals.not_ours.1)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    recount(&mut tx, day, now).await?;
    tx.commit().await?;
    Ok(())
}
