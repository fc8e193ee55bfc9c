//! The trade bill of downloadbill (docs/wechatpay-v2.md §8.7).
//!
//! Format: a header line of comma-separated Chinese column titles; detail lines whose cells
//! each start with a backtick `` ` ``; a summary header line; a summary line (backticks
//! again). Amounts are yuan text; [`Bill::records`] and [`Bill::summary`] convert them to
//! integer fen, and the 手续费 (fee) column with its 5 decimals to milli-fen (1/1000 fen),
//! exactly, through [`crate::money`] — never through floats.
//!
//! Detail lines are split on `` ,` `` (comma followed by the backtick that starts the next
//! cell) rather than on every comma, so a comma inside a product name does not shift the
//! columns. Extra trailing columns are tolerated (the format grew over time); cells are
//! looked up by column title.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::money::{yuan_to_fen, yuan_to_millifen};
use crate::{wxtime, Error};

/// A bill fetched with `tar_type=GZIP` (§8.7): the bytes as they came, and the bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzippedBill {
    /// The gzip body WeChat Pay sent.
    pub gzip: Vec<u8>,
    /// The bill it inflates to.
    pub bill: Bill,
}

/// A parsed bill (§8.7): raw cells, with the typed views [`Bill::records`] and
/// [`Bill::summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    /// Column titles of the detail lines.
    pub header: Vec<String>,
    /// Detail lines, cells without their leading backtick.
    pub rows: Vec<Vec<String>>,
    /// Column titles of the summary line.
    pub summary_header: Vec<String>,
    /// The summary cells, without backticks.
    pub summary_row: Vec<String>,
}

fn bill_err(line: usize, reason: impl Into<String>) -> Error {
    Error::Bill {
        line,
        reason: reason.into(),
    }
}

/// Split a backtick-prefixed line into its cells (§8.7).
fn backtick_cells(line: &str, line_no: usize) -> Result<Vec<String>, Error> {
    let rest = line
        .strip_prefix('`')
        .ok_or_else(|| bill_err(line_no, "data line does not start with a backtick"))?;
    Ok(rest.split(",`").map(str::to_owned).collect())
}

fn header_cells(line: &str) -> Vec<String> {
    line.split(',').map(|s| s.trim().to_owned()).collect()
}

impl Bill {
    /// Parse bill text (§8.7): lines split on `\r?\n`, blank lines dropped, the last two
    /// lines are the summary header and values.
    pub fn parse(text: &str) -> Result<Bill, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<(usize, &str)> = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
            .filter(|(_, l)| !l.trim().is_empty())
            .collect();
        if lines.len() < 3 {
            return Err(bill_err(
                lines.len(),
                "a bill needs a header line, a summary header line and a summary line",
            ));
        }
        let (first_no, first) = lines[0];
        if first.starts_with('`') {
            return Err(bill_err(first_no, "expected the column header line"));
        }
        let (sum_head_no, sum_head) = lines[lines.len() - 2];
        if sum_head.starts_with('`') {
            return Err(bill_err(sum_head_no, "expected the summary header line"));
        }
        let (sum_no, sum) = lines[lines.len() - 1];
        let rows = lines[1..lines.len() - 2]
            .iter()
            .map(|(no, l)| backtick_cells(l, *no))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Bill {
            header: header_cells(first),
            rows,
            summary_header: header_cells(sum_head),
            summary_row: backtick_cells(sum, sum_no)?,
        })
    }

    /// Detail rows as column title → cell maps (extra cells without a title are left out).
    pub fn rows_as_maps(&self) -> Vec<BTreeMap<String, String>> {
        self.rows
            .iter()
            .map(|row| {
                self.header
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .collect()
            })
            .collect()
    }

    /// The summary as column title → cell.
    pub fn summary_map(&self) -> BTreeMap<String, String> {
        self.summary_header
            .iter()
            .cloned()
            .zip(self.summary_row.iter().cloned())
            .collect()
    }

    /// Typed detail records with amounts in fen (§8.7).
    pub fn records(&self) -> Result<Vec<BillRecord>, Error> {
        self.records_iter().collect()
    }

    /// [`Bill::records`] one at a time: a caller that turns each record into something
    /// smaller never holds them all (a big merchant's day is 100,000 rows and more).
    pub fn records_iter(&self) -> impl Iterator<Item = Result<BillRecord, Error>> + '_ {
        let col = |name: &str| self.header.iter().position(|h| h == name);
        let cols = Columns {
            trade_time: col("交易时间"),
            appid: col("公众账号ID"),
            mch_id: col("商户号"),
            sub_mch_id: col("特约商户号"),
            device_info: col("设备号"),
            transaction_id: col("微信订单号"),
            out_trade_no: col("商户订单号"),
            openid: col("用户标识"),
            trade_type: col("交易类型"),
            trade_state: col("交易状态"),
            bank_type: col("付款银行"),
            fee_type: col("货币种类"),
            settlement_total_fee: col("应结订单金额"),
            coupon_fee: col("代金券金额"),
            refund_apply_time: col("退款申请时间"),
            refund_success_time: col("退款成功时间"),
            refund_id: col("微信退款单号"),
            out_refund_no: col("商户退款单号"),
            settlement_refund_fee: col("退款金额"),
            coupon_refund_fee: col("充值券退款金额"),
            refund_type: col("退款类型"),
            refund_status: col("退款状态"),
            body: col("商品名称"),
            attach: col("商户数据包"),
            poundage: col("手续费"),
            rate: col("费率"),
            total_fee: col("订单金额"),
            refund_fee: col("申请退款金额"),
            rate_note: col("费率备注"),
        };
        self.rows
            .iter()
            .enumerate()
            .map(move |(i, row)| cols.record(row, i + 2))
    }

    /// The typed summary (§8.7), current and legacy layouts.
    pub fn summary(&self) -> Result<BillSummary, Error> {
        let map = self.summary_map();
        let line = 0;
        let fen = |name: &str| -> Result<Option<i64>, Error> {
            map.get(name)
                .filter(|v| !v.is_empty())
                .map(|v| yuan_to_fen(v).map_err(|e| bill_err(line, format!("{name}: {e}"))))
                .transpose()
        };
        Ok(BillSummary {
            trade_count: map
                .get("总交易单数")
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| bill_err(line, format!("总交易单数: {v:?}")))
                })
                .transpose()?,
            settlement_total_fee: fen("应结订单总金额")?,
            refund_total_fee: fen("退款总金额")?,
            coupon_refund_total_fee: fen("充值券退款总金额")?,
            poundage_millifen: map
                .get("手续费总金额")
                .filter(|v| !v.is_empty())
                .map(|v| {
                    yuan_to_millifen(v).map_err(|e| bill_err(line, format!("手续费总金额: {e}")))
                })
                .transpose()?,
            total_fee: fen("订单总金额")?,
            apply_refund_total_fee: fen("申请退款总金额")?,
            legacy_total_fee: fen("总交易额")?,
            legacy_refund_total_fee: fen("总退款金额")?,
            legacy_coupon_refund_total_fee: fen("总代金券或立减优惠退款金额")?,
        })
    }
}

struct Columns {
    trade_time: Option<usize>,
    appid: Option<usize>,
    mch_id: Option<usize>,
    sub_mch_id: Option<usize>,
    device_info: Option<usize>,
    transaction_id: Option<usize>,
    out_trade_no: Option<usize>,
    openid: Option<usize>,
    trade_type: Option<usize>,
    trade_state: Option<usize>,
    bank_type: Option<usize>,
    fee_type: Option<usize>,
    settlement_total_fee: Option<usize>,
    coupon_fee: Option<usize>,
    refund_apply_time: Option<usize>,
    refund_success_time: Option<usize>,
    refund_id: Option<usize>,
    out_refund_no: Option<usize>,
    settlement_refund_fee: Option<usize>,
    coupon_refund_fee: Option<usize>,
    refund_type: Option<usize>,
    refund_status: Option<usize>,
    body: Option<usize>,
    attach: Option<usize>,
    poundage: Option<usize>,
    rate: Option<usize>,
    total_fee: Option<usize>,
    refund_fee: Option<usize>,
    rate_note: Option<usize>,
}

impl Columns {
    fn record(&self, row: &[String], line: usize) -> Result<BillRecord, Error> {
        let cell = |c: Option<usize>| {
            c.and_then(|i| row.get(i))
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let text = |c: Option<usize>| cell(c).map(str::to_owned);
        let fen = |c: Option<usize>| {
            cell(c)
                .map(|v| yuan_to_fen(v).map_err(|e| bill_err(line, e.to_string())))
                .transpose()
        };
        let time = |c: Option<usize>, name: &str| {
            cell(c)
                .map(|v| {
                    // An old doc sample used full-width colons (`16：33：45`), §8.7.
                    let normalised = v.replace('：', ":");
                    wxtime::parse_display(&normalised)
                        .map_err(|_| bill_err(line, format!("{name}: {v:?}")))
                })
                .transpose()
        };
        Ok(BillRecord {
            trade_time: time(self.trade_time, "交易时间")?,
            appid: text(self.appid),
            mch_id: text(self.mch_id),
            sub_mch_id: text(self.sub_mch_id),
            device_info: text(self.device_info),
            transaction_id: text(self.transaction_id),
            out_trade_no: text(self.out_trade_no),
            openid: text(self.openid),
            trade_type: text(self.trade_type),
            trade_state: text(self.trade_state),
            bank_type: text(self.bank_type),
            fee_type: text(self.fee_type),
            settlement_total_fee: fen(self.settlement_total_fee)?,
            coupon_fee: fen(self.coupon_fee)?,
            refund_apply_time: time(self.refund_apply_time, "退款申请时间")?,
            refund_success_time: time(self.refund_success_time, "退款成功时间")?,
            refund_id: text(self.refund_id),
            out_refund_no: text(self.out_refund_no),
            settlement_refund_fee: fen(self.settlement_refund_fee)?,
            coupon_refund_fee: fen(self.coupon_refund_fee)?,
            refund_type: text(self.refund_type),
            refund_status: text(self.refund_status),
            body: text(self.body),
            attach: text(self.attach),
            poundage_millifen: cell(self.poundage)
                .map(|v| yuan_to_millifen(v).map_err(|e| bill_err(line, e.to_string())))
                .transpose()?,
            rate: text(self.rate),
            total_fee: fen(self.total_fee)?,
            refund_fee: fen(self.refund_fee)?,
            rate_note: text(self.rate_note),
        })
    }
}

/// One detail line of a bill with typed amounts (§8.7). Columns absent from the bill type
/// (e.g. refund columns in a `SUCCESS` bill) are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRecord {
    /// 交易时间 (UTC+8).
    pub trade_time: Option<OffsetDateTime>,
    /// 公众账号ID.
    pub appid: Option<String>,
    /// 商户号.
    pub mch_id: Option<String>,
    /// 特约商户号.
    pub sub_mch_id: Option<String>,
    /// 设备号.
    pub device_info: Option<String>,
    /// 微信订单号.
    pub transaction_id: Option<String>,
    /// 商户订单号.
    pub out_trade_no: Option<String>,
    /// 用户标识.
    pub openid: Option<String>,
    /// 交易类型.
    pub trade_type: Option<String>,
    /// 交易状态.
    pub trade_state: Option<String>,
    /// 付款银行.
    pub bank_type: Option<String>,
    /// 货币种类.
    pub fee_type: Option<String>,
    /// 应结订单金额, fen.
    pub settlement_total_fee: Option<i64>,
    /// 代金券金额, fen.
    pub coupon_fee: Option<i64>,
    /// 退款申请时间 (UTC+8): when the refund was asked for. `REFUND` bills only.
    pub refund_apply_time: Option<OffsetDateTime>,
    /// 退款成功时间 (UTC+8): when it succeeded; empty (`None`) while it is not done.
    /// `REFUND` bills only.
    pub refund_success_time: Option<OffsetDateTime>,
    /// 微信退款单号.
    pub refund_id: Option<String>,
    /// 商户退款单号.
    pub out_refund_no: Option<String>,
    /// 退款金额, fen.
    pub settlement_refund_fee: Option<i64>,
    /// 充值券退款金额, fen.
    pub coupon_refund_fee: Option<i64>,
    /// 退款类型.
    pub refund_type: Option<String>,
    /// 退款状态.
    pub refund_status: Option<String>,
    /// 商品名称.
    pub body: Option<String>,
    /// 商户数据包.
    pub attach: Option<String>,
    /// 手续费 in milli-fen (1/1000 fen; the column has 5 decimals of yuan).
    pub poundage_millifen: Option<i64>,
    /// 费率, e.g. `0.60%`, kept as text.
    pub rate: Option<String>,
    /// 订单金额, fen.
    pub total_fee: Option<i64>,
    /// 申请退款金额, fen.
    pub refund_fee: Option<i64>,
    /// 费率备注.
    pub rate_note: Option<String>,
}

/// The summary line (§8.7). Amounts in fen, the fee total in milli-fen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillSummary {
    /// 总交易单数.
    pub trade_count: Option<i64>,
    /// 应结订单总金额.
    pub settlement_total_fee: Option<i64>,
    /// 退款总金额.
    pub refund_total_fee: Option<i64>,
    /// 充值券退款总金额.
    pub coupon_refund_total_fee: Option<i64>,
    /// 手续费总金额 in milli-fen.
    pub poundage_millifen: Option<i64>,
    /// 订单总金额.
    pub total_fee: Option<i64>,
    /// 申请退款总金额.
    pub apply_refund_total_fee: Option<i64>,
    /// 总交易额 (legacy layout).
    pub legacy_total_fee: Option<i64>,
    /// 总退款金额 (legacy layout).
    pub legacy_refund_total_fee: Option<i64>,
    /// 总代金券或立减优惠退款金额 (legacy layout).
    pub legacy_coupon_refund_total_fee: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_inside_a_cell_and_crlf() {
        let text = "交易时间,商品名称,订单金额\r\n`2024-01-01 12:00:00,`a,b,`1.50\r\n\r\n总交易单数,订单总金额\r\n`1,`1.50\r\n";
        let bill = Bill::parse(text).unwrap();
        assert_eq!(bill.rows, vec![vec!["2024-01-01 12:00:00", "a,b", "1.50"]]);
        let rec = &bill.records().unwrap()[0];
        assert_eq!(rec.total_fee, Some(150));
        assert_eq!(rec.body.as_deref(), Some("a,b"));
        assert_eq!(bill.summary().unwrap().total_fee, Some(150));
    }

    #[test]
    fn a_refund_bill_keeps_when_each_refund_was_asked_for_and_succeeded() {
        let text = "交易时间,商户订单号,退款申请时间,退款成功时间,商户退款单号,申请退款金额\r\n\
                    `2024-01-01 12:00:00,`A1,`2024-01-01 12:00:00,`2024-01-01 12:03:10,`R1,`1.00\r\n\
                    `2024-01-01 13:00:00,`A2,`2024-01-01 13:00:00,`,`R2,`2.00\r\n\
                    总交易单数,申请退款总金额\r\n`2,`3.00\r\n";
        let records = Bill::parse(text).unwrap().records().unwrap();
        let shown = |t: Option<OffsetDateTime>| t.map(wxtime::format_display);
        assert_eq!(
            shown(records[0].refund_apply_time).as_deref(),
            Some("2024-01-01 12:00:00")
        );
        assert_eq!(
            shown(records[0].refund_success_time).as_deref(),
            Some("2024-01-01 12:03:10")
        );
        assert_eq!(records[1].refund_success_time, None, "still in progress");
        let bad = "退款成功时间\n`yesterday\n总交易单数\n`1";
        assert!(Bill::parse(bad).unwrap().records().is_err());
    }

    #[test]
    fn full_width_colons_and_errors() {
        let text = "交易时间\n`2024-01-01 16：33：45\n总交易单数\n`1";
        let rec = &Bill::parse(text).unwrap().records().unwrap()[0];
        assert_eq!(
            rec.trade_time.map(wxtime::format_display).as_deref(),
            Some("2024-01-01 16:33:45")
        );
        assert!(Bill::parse("a\nb").is_err());
        assert!(Bill::parse("a\nnot backticked\nc\n`1").is_err());
        let bad_amount = Bill::parse("订单金额\n`1.234\n总交易单数\n`1").unwrap();
        assert!(bad_amount.records().is_err());
    }
}
