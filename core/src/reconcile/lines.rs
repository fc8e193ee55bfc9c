//! A bill's rows as reconciliation reads them ([`Line`]), and the check that a bill is whole:
//! its summary line must equal the sum of its rows (docs/wechatpay-v2.md §8.7).

use wxpay::{Bill, BillRecord, BillSummary};

use crate::time::unix_ms;

/// How far the summary's fee total may be from the sum of the rows' fees, in milli-fen:
/// rows carry 5 decimals of yuan, the summary may be rounded to whole fen.
pub const FEE_ROUNDING_MILLIFEN: i64 = 1_000;

/// What a bill row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A successful payment (交易状态 `SUCCESS`).
    Payment,
    /// A refund (a row with 商户退款单号).
    Refund,
}

impl LineKind {
    /// As stored in `recon_bill_rows.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Payment => "payment",
            LineKind::Refund => "refund",
        }
    }

    /// From `recon_bill_rows.kind`.
    pub fn parse(s: &str) -> Option<LineKind> {
        match s {
            "payment" => Some(LineKind::Payment),
            "refund" => Some(LineKind::Refund),
            _ => None,
        }
    }
}

/// One bill row, typed: amounts in fen, the fee in milli-fen, the time in UTC ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its position among the bill's detail rows (1-based).
    pub line: i64,
    /// Payment or refund.
    pub kind: LineKind,
    /// Whether its appid is ours (one bill covers every appid of the merchant number).
    pub ours: bool,
    /// 公众账号ID.
    pub appid: Option<String>,
    /// 商户订单号.
    pub out_trade_no: Option<String>,
    /// 微信订单号.
    pub transaction_id: Option<String>,
    /// 商户退款单号 (refund rows).
    pub out_refund_no: Option<String>,
    /// 微信退款单号 (refund rows).
    pub refund_id: Option<String>,
    /// 交易状态 (payments) or 退款状态 (refunds).
    pub state: Option<String>,
    /// 交易时间 (payments: when it was paid; refunds: when it was asked for).
    pub trade_time: Option<i64>,
    /// 订单金额 (payments).
    pub total_fee: Option<i64>,
    /// 应结订单金额 (payments; after platform coupons).
    pub settlement_fee: Option<i64>,
    /// 申请退款金额 (refunds).
    pub refund_fee: Option<i64>,
    /// 手续费, milli-fen (negative on refund rows).
    pub fee_millifen: Option<i64>,
}

/// Why a bill cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damaged {
    /// A row or the summary did not parse.
    #[error("the bill does not parse: {0}")]
    Unreadable(String),
    /// A row is neither a payment nor a refund.
    #[error("row {line}: neither a payment nor a refund (交易状态 {state:?})")]
    UnknownRow {
        /// The row.
        line: i64,
        /// Its 交易状态.
        state: Option<String>,
    },
    /// The summary disagrees with the rows.
    #[error("the summary's {field} is {summary}, its rows sum to {rows}")]
    Summary {
        /// The summary column.
        field: &'static str,
        /// What the summary says.
        summary: i64,
        /// What the rows add up to.
        rows: i64,
    },
}

/// The bill's rows, checked against its summary. `appid`: ours, to tell our rows from those
/// of other appids on the same merchant number.
pub fn read(bill: &Bill, appid: &str) -> Result<(Vec<Line>, BillSummary), Damaged> {
    let summary = bill
        .summary()
        .map_err(|e| Damaged::Unreadable(e.to_string()))?;
    // One record at a time: only the (smaller) lines are kept.
    let lines = bill
        .records_iter()
        .enumerate()
        .map(|(i, r)| {
            let r = r.map_err(|e| Damaged::Unreadable(e.to_string()))?;
            line(i64::try_from(i).unwrap_or(i64::MAX) + 1, &r, appid)
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_summary(&lines, &summary)?;
    Ok((lines, summary))
}

fn line(no: i64, r: &BillRecord, appid: &str) -> Result<Line, Damaged> {
    let kind = if r.out_refund_no.is_some() || r.trade_state.as_deref() == Some("REFUND") {
        LineKind::Refund
    } else if r.trade_state.as_deref() == Some("SUCCESS") {
        LineKind::Payment
    } else {
        return Err(Damaged::UnknownRow {
            line: no,
            state: r.trade_state.clone(),
        });
    };
    let refund = kind == LineKind::Refund;
    Ok(Line {
        line: no,
        kind,
        ours: r.appid.as_deref() == Some(appid),
        appid: r.appid.clone(),
        out_trade_no: r.out_trade_no.clone(),
        transaction_id: r.transaction_id.clone(),
        out_refund_no: r.out_refund_no.clone(),
        refund_id: r.refund_id.clone(),
        state: if refund {
            r.refund_status.clone()
        } else {
            r.trade_state.clone()
        },
        trade_time: r.trade_time.map(unix_ms),
        total_fee: (!refund).then_some(r.total_fee).flatten(),
        settlement_fee: (!refund).then_some(r.settlement_total_fee).flatten(),
        refund_fee: refund
            .then(|| r.refund_fee.or(r.settlement_refund_fee))
            .flatten(),
        fee_millifen: r.poundage_millifen,
    })
}

/// The summary must be the sum of the rows (§8.7); the fee within [`FEE_ROUNDING_MILLIFEN`].
/// A summary column the bill's layout does not have is not checked.
pub fn check_summary(lines: &[Line], summary: &BillSummary) -> Result<(), Damaged> {
    let sum = |f: fn(&Line) -> Option<i64>| lines.iter().filter_map(f).sum::<i64>();
    let exact = |field: &'static str, summary: Option<i64>, rows: i64| match summary {
        Some(s) if s != rows => Err(Damaged::Summary {
            field,
            summary: s,
            rows,
        }),
        _ => Ok(()),
    };
    let count = i64::try_from(lines.len()).unwrap_or(i64::MAX);
    exact("总交易单数", summary.trade_count, count)?;
    exact("订单总金额", summary.total_fee, sum(|l| l.total_fee))?;
    exact(
        "应结订单总金额",
        summary.settlement_total_fee,
        sum(|l| l.settlement_fee),
    )?;
    exact(
        "申请退款总金额",
        summary.apply_refund_total_fee,
        sum(|l| l.refund_fee),
    )?;
    let fees = sum(|l| l.fee_millifen);
    if let Some(s) = summary.poundage_millifen {
        if (s - fees).abs() > FEE_ROUNDING_MILLIFEN {
            return Err(Damaged::Summary {
                field: "手续费总金额",
                summary: s,
                rows: fees,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
    const SUMMARY: &str =
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

    fn bill(summary: &str) -> Bill {
        let text = format!(
            "{HEADER}\r\n\
             `2026-12-01 10:00:00,`wxA,`10000100,`0,`,`T1,`O1,`oid,`JSAPI,`SUCCESS,`CMB_DEBIT,`CNY,`12.34,`0.00,`0,`,`0.00,`0.00,`,`,`Tea,`,`0.07404,`0.60%,`12.34,`0.00,`\r\n\
             `2026-12-01 11:00:00,`wxB,`10000100,`0,`,`T2,`O2,`oid,`JSAPI,`SUCCESS,`CMB_DEBIT,`CNY,`1.00,`0.00,`0,`,`0.00,`0.00,`,`,`Tea,`,`0.00600,`0.60%,`1.00,`0.00,`\r\n\
             `2026-12-01 12:00:00,`wxA,`10000100,`0,`,`T1,`O1,`oid,`JSAPI,`REFUND,`CMB_DEBIT,`CNY,`0.00,`0.00,`R9,`RF1,`2.00,`0.00,`ORIGINAL,`SUCCESS,`Tea,`,`-0.01200,`0.60%,`0.00,`2.00,`\r\n\
             {SUMMARY}\r\n{summary}\r\n"
        );
        Bill::parse(&text).unwrap()
    }

    #[test]
    fn rows_are_typed_and_told_apart_by_appid() {
        let (lines, _) = read(&bill("`3,`13.34,`2.00,`0.00,`0.06804,`13.34,`2.00"), "wxA").unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].kind, LineKind::Payment);
        assert_eq!(lines[0].total_fee, Some(1234));
        assert_eq!(lines[0].fee_millifen, Some(7_404));
        assert!(lines[0].ours && !lines[1].ours);
        assert_eq!(lines[2].kind, LineKind::Refund);
        assert_eq!(lines[2].out_refund_no.as_deref(), Some("RF1"));
        assert_eq!(lines[2].refund_fee, Some(200));
        assert_eq!(
            lines[2].total_fee, None,
            "a refund row's 0.00 is not an order amount"
        );
        assert_eq!(lines[2].state.as_deref(), Some("SUCCESS"));
    }

    #[test]
    fn a_summary_that_is_not_the_sum_of_the_rows_is_damage() {
        let wrong_total = read(&bill("`3,`13.34,`2.00,`0.00,`0.06804,`13.35,`2.00"), "wxA");
        assert!(
            matches!(
                wrong_total,
                Err(Damaged::Summary {
                    field: "订单总金额",
                    summary: 1335,
                    rows: 1334
                })
            ),
            "{wrong_total:?}"
        );
        let wrong_count = read(&bill("`4,`13.34,`2.00,`0.00,`0.06804,`13.34,`2.00"), "wxA");
        assert!(matches!(
            wrong_count,
            Err(Damaged::Summary {
                field: "总交易单数",
                ..
            })
        ));
        // Fees: the summary rounded to whole fen is fine, 2 fen off is not.
        assert!(read(&bill("`3,`13.34,`2.00,`0.00,`0.07,`13.34,`2.00"), "wxA").is_ok());
        let fees = read(&bill("`3,`13.34,`2.00,`0.00,`0.09,`13.34,`2.00"), "wxA");
        assert!(matches!(
            fees,
            Err(Damaged::Summary {
                field: "手续费总金额",
                ..
            })
        ));
    }
}
