//! downloadbill (docs/wechatpay-v2.md §8.7): the trade bill of a Beijing date, built from the simulator's
//! orders and refunds; text with backtick-prefixed cells, yuan amounts, the fee with 5
//! decimals at 0.60%, a summary; gzip with `tar_type=GZIP`.

use std::io::Write as _;

use time::{Date, Duration, OffsetDateTime, Time};
use wxpay::{wxtime, Params};

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
    let text = build(sim, date, bill_type, &orders, &refunds);
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

/// The bill text, or `None` for "No Bill Exist".
fn build(
    sim: &Sim,
    date: Date,
    bill_type: &str,
    orders: &[Order],
    refunds: &[Refund],
) -> Option<String> {
    let order_of = |otn: &str| orders.iter().find(|o| o.out_trade_no == otn);
    let paid: Vec<&Order> = orders
        .iter()
        .filter(|o| o.state.is_paid() && o.time_end.is_some_and(|t| beijing_date(t) == date))
        .collect();
    let refunded: Vec<(&Refund, &Order)> = refunds
        .iter()
        .filter(|r| beijing_date(r.created_at) == date)
        .filter_map(|r| order_of(&r.out_trade_no).map(|o| (r, o)))
        .collect();
    let (with_payments, with_refunds) = match bill_type {
        "ALL" => (true, true),
        "SUCCESS" => (true, false),
        "REFUND" => (false, true),
        _ => (false, false),
    };
    let count =
        usize::from(with_payments) * paid.len() + usize::from(with_refunds) * refunded.len();
    if count == 0 {
        return None;
    }
    let header = match bill_type {
        "SUCCESS" => SUCCESS_HEADER,
        "REFUND" => REFUND_HEADER,
        _ => ALL_HEADER,
    };
    let mut out = String::new();
    out.push_str(header);
    out.push_str("\r\n");
    let (mut settle, mut refund_total, mut fees, mut order_total, mut apply_total) =
        (0_i64, 0_i64, 0_i64, 0_i64, 0_i64);
    // Refund rows carry no order amounts (they are summed in the refund columns).
    let common = |o: &Order, when: OffsetDateTime, state: &str| -> Vec<String> {
        let cash = if state == "SUCCESS" {
            o.cash_fee.unwrap_or(o.total_fee)
        } else {
            0
        };
        let coupon = if state == "SUCCESS" {
            o.total_fee - cash
        } else {
            0
        };
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
            yuan(cash),
            yuan(coupon),
        ]
    };
    if with_payments {
        for o in &paid {
            let cash = o.cash_fee.unwrap_or(o.total_fee);
            let fee = cash * FEE_MILLIFEN_PER_FEN;
            let mut cells = common(o, o.time_end.unwrap_or(o.created_at), "SUCCESS");
            if bill_type == "ALL" {
                cells.extend(["0", "", "0.00", "0.00", "", ""].map(String::from));
            }
            cells.extend([
                o.body.clone(),
                o.attach.clone().unwrap_or_default(),
                yuan5(fee),
                "0.60%".into(),
                yuan(o.total_fee),
            ]);
            if bill_type == "ALL" {
                cells.push("0.00".into());
            }
            cells.push(String::new());
            settle += cash;
            fees += fee;
            order_total += o.total_fee;
            out.push_str(&line(&cells));
            out.push_str("\r\n");
        }
    }
    if with_refunds {
        for (r, o) in &refunded {
            let fee = -(r.refund_fee * FEE_MILLIFEN_PER_FEN);
            let status = match r.status {
                RefundState::Success => "SUCCESS",
                RefundState::Processing => "PROCESSING",
                RefundState::Refundclose => "FAIL",
                RefundState::Change => "CHANGE",
            };
            let mut cells = common(o, r.created_at, "REFUND");
            if bill_type == "REFUND" {
                cells.push(wxtime::format_display(r.created_at));
                cells.push(
                    r.success_time
                        .map(wxtime::format_display)
                        .unwrap_or_default(),
                );
            }
            cells.extend([
                r.refund_id.clone(),
                r.out_refund_no.clone(),
                yuan(r.refund_fee),
                "0.00".into(),
                "ORIGINAL".into(),
                status.into(),
                o.body.clone(),
                o.attach.clone().unwrap_or_default(),
                yuan5(fee),
                "0.60%".into(),
                "0.00".into(),
                yuan(r.refund_fee),
                String::new(),
            ]);
            refund_total += r.refund_fee;
            apply_total += r.refund_fee;
            fees += fee;
            out.push_str(&line(&cells));
            out.push_str("\r\n");
        }
    }
    out.push_str(SUMMARY_HEADER);
    out.push_str("\r\n");
    out.push_str(&line(&[
        count.to_string(),
        yuan(settle),
        yuan(refund_total),
        "0.00".into(),
        yuan5(fees),
        yuan(order_total),
        yuan(apply_total),
    ]));
    out.push_str("\r\n");
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
