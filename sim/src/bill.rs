//! downloadbill (docs/wechatpay-v2.md §8.7): the trade bill of a Beijing date, built from the simulator's
//! orders and refunds; text with backtick-prefixed cells, yuan amounts, the fee with 5
//! decimals at 0.60%, a summary; gzip with `tar_type=GZIP`. Bill faults (§10.3,
//! [`crate::BillFault`]) make it differ from the simulator's records on purpose.

use std::io::Write as _;

use time::{Date, Duration, OffsetDateTime, Time};
use wxpay::{wxtime, Params};

use crate::faults::{changed_amounts, BillFaults};
use crate::store::{Order, Refund, RefundState};
use crate::wechat::{optional, required, Answer, Failure};
use crate::Sim;

/// Fee rate 0.60% = 6 milli-fen per fen.
const FEE_MILLIFEN_PER_FEN: i64 = 6;

const ALL_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const SUCCESS_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注";
const REFUND_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

fn yuan(fen: i64) -> String {
    wxpay::money::fen_to_yuan(fen)
}

/// Milli-fen as yuan with 5 decimals.
fn yuan5(millifen: i64) -> String {
    let sign = if millifen < 0 { "-" } else { "" };
    let abs = millifen.unsigned_abs();
    format!("{sign}{}.{:05}", abs / 100_000, abs % 100_000)
}

fn bill_fail(msg: &str, code: Option<&str>) -> Answer {
    Answer::BillFail {
        return_msg: msg.into(),
        error_code: code.map(str::to_owned),
    }
}

fn beijing_date(t: OffsetDateTime) -> Date {
    t.to_offset(wxtime::BEIJING).date()
}

/// The endpoint (§8.7). Bills for a date are ready from 10:00 Beijing time the next day
/// (`Bill Creating` before, on the simulator clock: advance it to fetch today's bill).
pub(crate) fn download_bill(sim: &Sim, p: &Params) -> Result<Answer, Failure> {
    let date_text = required(p, "bill_date")?;
    let bill_type = optional(p, "bill_type").unwrap_or("ALL");
    if !matches!(bill_type, "ALL" | "SUCCESS" | "REFUND" | "RECHARGE_REFUND") {
        return Ok(bill_fail("invalid bill_type", Some("20001")));
    }
    let gzip = match optional(p, "tar_type") {
        None => false,
        Some("GZIP") => true,
        Some(_) => return Ok(bill_fail("invalid tar_type", Some("20001"))),
    };
    let Ok(date) = wxtime::parse_date(date_text) else {
        return Ok(bill_fail("invalid bill_date", Some("20001")));
    };
    let now = sim.clock.now().to_offset(wxtime::BEIJING);
    let ready_at = date
        .next_day()
        .map(|d| d.with_time(Time::from_hms(10, 0, 0).unwrap_or(Time::MIDNIGHT)))
        .map(|dt| dt.assume_offset(wxtime::BEIJING));
    match ready_at {
        Some(ready) if now >= ready => {}
        _ => return Ok(bill_fail("Bill Creating", None)),
    }
    if date < now.date() - Duration::days(92) {
        return Ok(bill_fail("invalid bill_date", Some("20001")));
    }

    let store = sim.store();
    let orders = store.orders_sorted();
    let refunds = store.refunds_sorted();
    drop(store);
    let faults = sim.faults().bill_faults();
    let text = build(sim, date, bill_type, (&orders, &refunds), &faults);
    let Some(text) = text else {
        return Ok(bill_fail("No Bill Exist", Some("20002")));
    };
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        if enc.write_all(text.as_bytes()).is_err() {
            return Ok(bill_fail("CompressGZip Error", None));
        }
        match enc.finish() {
            Ok(body) => Ok(Answer::Raw {
                content_type: "application/octet-stream",
                body,
            }),
            Err(_) => Ok(bill_fail("CompressGZip Error", None)),
        }
    } else {
        Ok(Answer::Raw {
            content_type: "text/plain; charset=utf-8",
            body: text.into_bytes(),
        })
    }
}

fn line(cells: &[String]) -> String {
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('`');
        s.push_str(c);
    }
    s
}

fn push_line(out: &mut String, cells: &[String]) {
    out.push_str(&line(cells));
    out.push_str("\r\n");
}

/// A payment row as the bill prints it: its time and amounts after the bill faults (§10.3).
struct PaymentRow<'a> {
    order: &'a Order,
    /// 交易时间 (`time_end`, plus any lag).
    at: OffsetDateTime,
    /// 订单金额.
    total_fee: i64,
    /// 应结订单金额 (the cash part; the rest is 代金券金额).
    cash_fee: i64,
}

impl PaymentRow<'_> {
    /// 手续费: 0.60% of the settled amount.
    fn fee_millifen(&self) -> i64 {
        self.cash_fee * FEE_MILLIFEN_PER_FEN
    }
}

/// A refund row as the bill prints it.
struct RefundRow<'a> {
    refund: &'a Refund,
    order: &'a Order,
    /// 交易时间 = 退款申请时间 (acceptance, plus any lag).
    at: OffsetDateTime,
    /// 退款成功时间 (plus any lag).
    success_at: Option<OffsetDateTime>,
}

impl RefundRow<'_> {
    /// 手续费 given back: negative.
    fn fee_millifen(&self) -> i64 {
        -(self.refund.refund_fee * FEE_MILLIFEN_PER_FEN)
    }
}

/// The summary line, summed from the rows as printed (so a bill fault keeps the bill
/// consistent in itself, as WeChat's own bill would be).
#[derive(Default)]
struct Totals {
    count: usize,
    settle: i64,
    refund: i64,
    fees: i64,
    order: i64,
    apply: i64,
}

impl Totals {
    fn add_payment(&mut self, p: &PaymentRow) {
        self.count += 1;
        self.settle += p.cash_fee;
        self.fees += p.fee_millifen();
        self.order += p.total_fee;
    }

    fn add_refund(&mut self, r: &RefundRow) {
        self.count += 1;
        self.refund += r.refund.refund_fee;
        self.apply += r.refund.refund_fee;
        self.fees += r.fee_millifen();
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.count.to_string(),
            yuan(self.settle),
            yuan(self.refund),
            "0.00".into(),
            yuan5(self.fees),
            yuan(self.order),
            yuan(self.apply),
        ]
    }
}

/// The paid orders billed on `date`: `omit` leaves an order out, `lag` moves it, `amount`
/// changes what it says.
fn payment_rows<'a>(date: Date, orders: &'a [Order], faults: &BillFaults) -> Vec<PaymentRow<'a>> {
    orders
        .iter()
        .filter(|o| o.state.is_paid() && !faults.omits(&o.out_trade_no))
        .filter_map(|o| {
            let at = o.time_end?.checked_add(faults.lag(&o.out_trade_no))?;
            (beijing_date(at) == date).then(|| payment_row(o, at, faults))
        })
        .collect()
}

fn payment_row<'a>(order: &'a Order, at: OffsetDateTime, faults: &BillFaults) -> PaymentRow<'a> {
    let delta = faults.amount_delta(&order.out_trade_no);
    let held = (order.total_fee, order.cash_fee.unwrap_or(order.total_fee));
    let (total_fee, cash_fee) = if delta == 0 {
        held
    } else if let Some(changed) = changed_amounts(order, delta) {
        changed
    } else {
        tracing::warn!(order.out_trade_no = %order.out_trade_no, delta, "amount bill fault would leave no positive amount: not applied");
        held
    };
    PaymentRow {
        order,
        at,
        total_fee,
        cash_fee,
    }
}

/// The refunds billed on `date` (accepted that day, whatever their status), with the same
/// `omit` and `lag` as their order's payment.
fn refund_rows<'a>(
    date: Date,
    orders: &'a [Order],
    refunds: &'a [Refund],
    faults: &BillFaults,
) -> Vec<RefundRow<'a>> {
    refunds
        .iter()
        .filter(|r| !faults.omits(&r.out_trade_no))
        .filter_map(|r| {
            let order = orders.iter().find(|o| o.out_trade_no == r.out_trade_no)?;
            let lag = faults.lag(&r.out_trade_no);
            let at = r.created_at.checked_add(lag)?;
            (beijing_date(at) == date).then(|| RefundRow {
                refund: r,
                order,
                at,
                success_at: r.success_time.and_then(|t| t.checked_add(lag)),
            })
        })
        .collect()
}

/// The cells every row starts with, 交易时间 … 代金券金额.
fn leading_cells(
    sim: &Sim,
    o: &Order,
    when: OffsetDateTime,
    state: &str,
    settle: i64,
    coupon: i64,
) -> Vec<String> {
    vec![
        wxtime::format_display(when),
        sim.config.appid.clone(),
        sim.config.mch_id.clone(),
        "0".into(),
        o.device_info.clone().unwrap_or_default(),
        o.transaction_id.clone().unwrap_or_default(),
        o.out_trade_no.clone(),
        o.openid.clone().unwrap_or_default(),
        o.trade_type.clone(),
        state.into(),
        o.bank_type.clone().unwrap_or_default(),
        "CNY".into(),
        yuan(settle),
        yuan(coupon),
    ]
}

fn payment_cells(sim: &Sim, p: &PaymentRow, bill_type: &str) -> Vec<String> {
    let o = p.order;
    let coupon = p.total_fee - p.cash_fee;
    let mut cells = leading_cells(sim, o, p.at, "SUCCESS", p.cash_fee, coupon);
    if bill_type == "ALL" {
        cells.extend(["0", "", "0.00", "0.00", "", ""].map(String::from));
    }
    cells.extend([
        o.body.clone(),
        o.attach.clone().unwrap_or_default(),
        yuan5(p.fee_millifen()),
        "0.60%".into(),
        yuan(p.total_fee),
    ]);
    if bill_type == "ALL" {
        cells.push("0.00".into());
    }
    cells.push(String::new());
    cells
}

/// Refund rows carry no order amounts (they are summed in the refund columns).
fn refund_cells(sim: &Sim, r: &RefundRow, bill_type: &str) -> Vec<String> {
    let (refund, o) = (r.refund, r.order);
    let status = match refund.status {
        RefundState::Success => "SUCCESS",
        RefundState::Processing => "PROCESSING",
        RefundState::Refundclose => "FAIL",
        RefundState::Change => "CHANGE",
    };
    let mut cells = leading_cells(sim, o, r.at, "REFUND", 0, 0);
    if bill_type == "REFUND" {
        cells.push(wxtime::format_display(r.at));
        cells.push(r.success_at.map(wxtime::format_display).unwrap_or_default());
    }
    cells.extend([
        refund.refund_id.clone(),
        refund.out_refund_no.clone(),
        yuan(refund.refund_fee),
        "0.00".into(),
        "ORIGINAL".into(),
        status.into(),
        o.body.clone(),
        o.attach.clone().unwrap_or_default(),
        yuan5(r.fee_millifen()),
        "0.60%".into(),
        "0.00".into(),
        yuan(refund.refund_fee),
        String::new(),
    ]);
    cells
}

/// The bill text, or `None` for "No Bill Exist".
fn build(
    sim: &Sim,
    date: Date,
    bill_type: &str,
    (orders, refunds): (&[Order], &[Refund]),
    faults: &BillFaults,
) -> Option<String> {
    let (with_payments, with_refunds) = match bill_type {
        "ALL" => (true, true),
        "SUCCESS" => (true, false),
        "REFUND" => (false, true),
        _ => (false, false),
    };
    let payments = match with_payments {
        true => payment_rows(date, orders, faults),
        false => Vec::new(),
    };
    let refunded = match with_refunds {
        true => refund_rows(date, orders, refunds, faults),
        false => Vec::new(),
    };
    if payments.is_empty() && refunded.is_empty() {
        return None;
    }
    let header = match bill_type {
        "SUCCESS" => SUCCESS_HEADER,
        "REFUND" => REFUND_HEADER,
        _ => ALL_HEADER,
    };
    let mut out = format!("{header}\r\n");
    let mut totals = Totals::default();
    for p in &payments {
        push_line(&mut out, &payment_cells(sim, p, bill_type));
        totals.add_payment(p);
    }
    for r in &refunded {
        push_line(&mut out, &refund_cells(sim, r, bill_type));
        totals.add_refund(r);
    }
    out.push_str(SUMMARY_HEADER);
    out.push_str("\r\n");
    push_line(&mut out, &totals.cells());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_column_has_five_decimals_and_a_sign() {
        assert_eq!(yuan5(100 * FEE_MILLIFEN_PER_FEN), "0.00600");
        assert_eq!(yuan5(-(12345 * FEE_MILLIFEN_PER_FEN)), "-0.74070");
        assert_eq!(yuan(12345), "123.45");
    }
}
