//! The comparison itself, without I/O: one day's bill rows against our orders and refunds,
//! matched by out_trade_no / out_refund_no, fen-exact. Every difference gets a [`Class`];
//! trades that straddle midnight are matched against the neighbouring day's bill, or wait
//! for it ([`Found::pending`]).

use std::collections::{HashMap, HashSet};

use paydesk_types::{OrderStatus, RefundStatus};

use super::lines::{Line, LineKind};
use super::Class;
use crate::time::{day_number_start, DAY_MS};

/// How close to midnight a trade must be for the neighbouring day's bill to hold it.
pub const STRADDLE_MS: i64 = 10 * 60_000;

/// One of our orders, as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurOrder {
    /// Row id.
    pub id: i64,
    /// Merchant order number.
    pub out_trade_no: String,
    /// Status.
    pub status: OrderStatus,
    /// Amount, fen.
    pub total_fee: i64,
    /// WeChat's transaction id, once paid.
    pub transaction_id: Option<String>,
    /// When it was paid (UTC ms).
    pub paid_at: Option<i64>,
}

/// One of our refunds, as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurRefund {
    /// Row id.
    pub id: i64,
    /// Merchant refund number.
    pub out_refund_no: String,
    /// The order's number.
    pub out_trade_no: String,
    /// Amount, fen.
    pub amount_fen: i64,
    /// Status.
    pub status: RefundStatus,
    /// When WeChat Pay accepted it (UTC ms).
    pub accepted_at: Option<i64>,
}

/// The neighbouring days' bills: which numbers each holds, `None` when it has not been
/// fetched yet.
#[derive(Debug, Clone, Default)]
pub struct Neighbours {
    /// The day before: out_trade_no and out_refund_no of its rows.
    pub before: Option<HashSet<String>>,
    /// The day after.
    pub after: Option<HashSet<String>>,
}

/// What the comparison reads.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The Shanghai day number.
    pub day: i64,
    /// The bill's rows; `None` for "No Bill Exist".
    pub lines: Option<&'a [Line]>,
    /// Our orders named by the bill's payment rows (any status), by out_trade_no.
    pub orders_on_bill: &'a HashMap<String, OurOrder>,
    /// Our orders paid during the day.
    pub paid_that_day: &'a [OurOrder],
    /// Our refunds named by the bill's refund rows, by out_refund_no.
    pub refunds_on_bill: &'a HashMap<String, OurRefund>,
    /// Our refunds WeChat Pay accepted during the day.
    pub refunds_that_day: &'a [OurRefund],
    /// The neighbouring days' bills.
    pub neighbours: &'a Neighbours,
}

/// A difference found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// What kind.
    pub class: Class,
    /// The number it is about: out_refund_no for refund classes, out_trade_no otherwise.
    pub ref_no: String,
    /// The order's number.
    pub out_trade_no: Option<String>,
    /// The refund's number (refund classes).
    pub out_refund_no: Option<String>,
    /// Our order.
    pub order_id: Option<i64>,
    /// Our refund.
    pub refund_row_id: Option<i64>,
    /// Our amount.
    pub our_fen: Option<i64>,
    /// The bill's amount.
    pub their_fen: Option<i64>,
    /// Our status.
    pub our_status: Option<String>,
    /// The bill's status.
    pub their_status: Option<String>,
    /// The bill row's time.
    pub their_time: Option<i64>,
    /// WeChat's transaction id (the bill's, else ours).
    pub transaction_id: Option<String>,
    /// Waits for the next day's bill (a trade just before midnight): listed, not counted.
    pub pending: bool,
}

impl Found {
    fn new(class: Class, ref_no: &str) -> Found {
        Found {
            class,
            ref_no: ref_no.to_owned(),
            out_trade_no: None,
            out_refund_no: None,
            order_id: None,
            refund_row_id: None,
            our_fen: None,
            their_fen: None,
            our_status: None,
            their_status: None,
            their_time: None,
            transaction_id: None,
            pending: false,
        }
    }

    fn with_line(mut self, l: &Line) -> Found {
        self.out_trade_no = l.out_trade_no.clone().or(self.out_trade_no);
        self.out_refund_no = l.out_refund_no.clone().or(self.out_refund_no);
        self.their_fen = match l.kind {
            LineKind::Payment => l.total_fee,
            LineKind::Refund => l.refund_fee,
        };
        self.their_status = l.state.clone();
        self.their_time = l.trade_time;
        self.transaction_id = l.transaction_id.clone().or(self.transaction_id);
        self
    }

    fn with_order(mut self, o: &OurOrder) -> Found {
        self.out_trade_no = Some(o.out_trade_no.clone());
        self.order_id = Some(o.id);
        self.our_fen = Some(o.total_fee);
        self.our_status = Some(o.status.as_str().to_owned());
        self.transaction_id = self.transaction_id.or_else(|| o.transaction_id.clone());
        self
    }

    fn with_refund(mut self, r: &OurRefund) -> Found {
        self.out_trade_no = Some(r.out_trade_no.clone());
        self.out_refund_no = Some(r.out_refund_no.clone());
        self.refund_row_id = Some(r.id);
        self.our_fen = Some(r.amount_fen);
        self.our_status = Some(r.status.as_str().to_owned());
        self
    }
}

/// Both sides' figures for the day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Our payments of the day: count and fen.
    pub our_paid: (i64, i64),
    /// Our refunds accepted during the day: count and fen.
    pub our_refunds: (i64, i64),
    /// The bill's payment rows of our appid: count and 订单金额.
    pub bill_paid: (i64, i64),
    /// The bill's refund rows of our appid: count and 申请退款金额.
    pub bill_refunds: (i64, i64),
    /// Rows of other appids: count, and their payments' 订单金额.
    pub not_ours: (i64, i64),
}

/// Whether we paid the order (paid, or paid and refunded since).
fn is_paid(s: OrderStatus) -> bool {
    matches!(
        s,
        OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::Refunded
    )
}

/// Whether WeChat Pay has accepted the refund by our records.
fn is_accepted(s: RefundStatus) -> bool {
    matches!(
        s,
        RefundStatus::Processing
            | RefundStatus::Success
            | RefundStatus::Change
            | RefundStatus::RefundClose
    )
}

/// Whether our refund status agrees with the bill's 退款状态. The bill is a snapshot taken
/// when it was made: a refund it shows in progress may have ended since.
pub fn refund_states_agree(ours: RefundStatus, theirs: Option<&str>) -> bool {
    match theirs.unwrap_or("") {
        "SUCCESS" => ours == RefundStatus::Success,
        "PROCESSING" => is_accepted(ours),
        "CHANGE" => matches!(ours, RefundStatus::Change | RefundStatus::Success),
        "FAIL" | "REFUNDCLOSE" => ours == RefundStatus::RefundClose,
        // A state this build does not know: not a difference by itself.
        _ => is_accepted(ours),
    }
}

/// Near the end of `day` (within [`STRADDLE_MS`] of its midnight)?
fn near_end(day: i64, t: Option<i64>) -> bool {
    let end = day_number_start(day) + DAY_MS;
    t.is_some_and(|t| t >= end - STRADDLE_MS)
}

/// Compares the day (module docs). Returns the differences and both sides' totals.
pub fn compare(inputs: &Inputs<'_>) -> (Vec<Found>, Totals) {
    let mut found = Vec::new();
    let mut totals = Totals::default();
    let lines = inputs.lines.unwrap_or(&[]);
    let mut on_bill: HashSet<&str> = HashSet::new();
    for l in lines {
        if !l.ours {
            totals.not_ours.0 += 1;
            totals.not_ours.1 += l.total_fee.unwrap_or(0);
            continue;
        }
        match l.kind {
            LineKind::Payment => {
                totals.bill_paid.0 += 1;
                totals.bill_paid.1 += l.total_fee.unwrap_or(0);
                let Some(no) = l.out_trade_no.as_deref() else {
                    continue;
                };
                on_bill.insert(no);
                found.extend(payment(l, no, inputs.orders_on_bill.get(no)));
            }
            LineKind::Refund => {
                totals.bill_refunds.0 += 1;
                totals.bill_refunds.1 += l.refund_fee.unwrap_or(0);
                let Some(no) = l.out_refund_no.as_deref() else {
                    continue;
                };
                on_bill.insert(no);
                found.extend(refund(l, no, inputs.refunds_on_bill.get(no)));
            }
        }
    }
    for o in inputs.paid_that_day {
        totals.our_paid.0 += 1;
        totals.our_paid.1 += o.total_fee;
        if on_bill.contains(o.out_trade_no.as_str()) {
            continue;
        }
        if let Some(f) = missing_there(inputs, &o.out_trade_no, o.paid_at, Class::PaidHereOnly) {
            found.push(f.with_order(o));
        }
    }
    for r in inputs.refunds_that_day {
        totals.our_refunds.0 += 1;
        totals.our_refunds.1 += r.amount_fen;
        if on_bill.contains(r.out_refund_no.as_str()) {
            continue;
        }
        if let Some(f) = missing_there(
            inputs,
            &r.out_refund_no,
            r.accepted_at,
            Class::RefundHereOnly,
        ) {
            found.push(f.with_refund(r));
        }
    }
    (found, totals)
}

/// A payment row against our order.
fn payment(l: &Line, no: &str, ours: Option<&OurOrder>) -> Option<Found> {
    let Some(o) = ours else {
        return Some(Found::new(Class::UnknownOrder, no).with_line(l));
    };
    let class = if !is_paid(o.status) {
        if o.status == OrderStatus::Closed {
            Class::StatusDiffers
        } else {
            Class::PaidThereOnly
        }
    } else if l.total_fee != Some(o.total_fee) {
        Class::AmountDiffers
    } else if l.transaction_id.is_some() && l.transaction_id != o.transaction_id {
        Class::TransactionDiffers
    } else {
        return None;
    };
    Some(Found::new(class, no).with_order(o).with_line(l))
}

/// A refund row against our refund.
fn refund(l: &Line, no: &str, ours: Option<&OurRefund>) -> Option<Found> {
    let Some(r) = ours else {
        return Some(Found::new(Class::RefundThereOnly, no).with_line(l));
    };
    let class = if l.refund_fee != Some(r.amount_fen) {
        Class::RefundAmountDiffers
    } else if !refund_states_agree(r.status, l.state.as_deref()) {
        Class::RefundStatusDiffers
    } else {
        return None;
    };
    Some(Found::new(class, no).with_refund(r).with_line(l))
}

/// Ours but not on the day's bill: matched if a neighbouring day's bill holds it (filed on
/// the other side of midnight), pending while the next day's bill is not here and it was
/// near midnight, else a difference.
fn missing_there(inputs: &Inputs<'_>, no: &str, at: Option<i64>, class: Class) -> Option<Found> {
    let held = |n: &Option<HashSet<String>>| n.as_ref().is_some_and(|set| set.contains(no));
    let n = inputs.neighbours;
    if held(&n.before) || held(&n.after) {
        return None;
    }
    let mut f = Found::new(class, no);
    f.pending = n.after.is_none() && near_end(inputs.day, at);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::day_number;

    const DAY: i64 = 20_423; // 2025-12-01 in Shanghai

    fn at(offset_ms: i64) -> i64 {
        day_number_start(DAY) + offset_ms
    }

    fn pay(no: &str, fee: i64, tx: &str) -> Line {
        Line {
            line: 1,
            kind: LineKind::Payment,
            ours: true,
            appid: Some("wxA".into()),
            out_trade_no: Some(no.into()),
            transaction_id: Some(tx.into()),
            out_refund_no: None,
            refund_id: None,
            state: Some("SUCCESS".into()),
            trade_time: Some(at(3_600_000)),
            total_fee: Some(fee),
            settlement_fee: Some(fee),
            refund_fee: None,
            fee_millifen: Some(fee * 6),
        }
    }

    fn refund_line(no: &str, order: &str, fee: i64, state: &str) -> Line {
        Line {
            kind: LineKind::Refund,
            out_trade_no: Some(order.into()),
            out_refund_no: Some(no.into()),
            refund_id: Some(format!("W{no}")),
            state: Some(state.into()),
            total_fee: None,
            settlement_fee: None,
            refund_fee: Some(fee),
            ..pay(order, 0, "T")
        }
    }

    fn order(id: i64, no: &str, fee: i64, status: OrderStatus, tx: &str) -> OurOrder {
        OurOrder {
            id,
            out_trade_no: no.into(),
            status,
            total_fee: fee,
            transaction_id: Some(tx.into()),
            paid_at: Some(at(3_600_000)),
        }
    }

    fn our_refund(id: i64, no: &str, fee: i64, status: RefundStatus) -> OurRefund {
        OurRefund {
            id,
            out_refund_no: no.into(),
            out_trade_no: "O1".into(),
            amount_fen: fee,
            status,
            accepted_at: Some(at(7_200_000)),
        }
    }

    fn by_no<T: Clone>(items: &[T], key: fn(&T) -> &str) -> HashMap<String, T> {
        items
            .iter()
            .map(|i| (key(i).to_owned(), i.clone()))
            .collect()
    }

    fn run(
        lines: &[Line],
        orders: &[OurOrder],
        paid: &[OurOrder],
        refunds: &[OurRefund],
    ) -> Vec<Found> {
        run_with(lines, orders, paid, refunds, &Neighbours::default())
    }

    fn run_with(
        lines: &[Line],
        orders: &[OurOrder],
        paid: &[OurOrder],
        refunds: &[OurRefund],
        neighbours: &Neighbours,
    ) -> Vec<Found> {
        let orders = by_no(orders, |o| &o.out_trade_no);
        let on_bill = by_no(refunds, |r| &r.out_refund_no);
        let inputs = Inputs {
            day: DAY,
            lines: Some(lines),
            orders_on_bill: &orders,
            paid_that_day: paid,
            refunds_on_bill: &on_bill,
            refunds_that_day: refunds,
            neighbours,
        };
        compare(&inputs).0
    }

    fn classes(found: &[Found]) -> Vec<(Class, &str, bool)> {
        found
            .iter()
            .map(|f| (f.class, f.ref_no.as_str(), f.pending))
            .collect()
    }

    #[test]
    fn the_day_number_used_here_is_the_one_time_computes() {
        assert_eq!(day_number(at(0)), DAY);
        assert_eq!(day_number(at(DAY_MS - 1)), DAY);
    }

    #[test]
    fn matching_rows_are_no_difference_and_each_kind_is_classified() {
        let o1 = order(1, "O1", 1234, OrderStatus::Paid, "T1");
        let one = std::slice::from_ref(&o1);
        assert!(run(&[pay("O1", 1234, "T1")], one, one, &[]).is_empty());

        let notpay = order(2, "O2", 500, OrderStatus::NotPay, "");
        let closed = order(3, "O3", 500, OrderStatus::Closed, "");
        let other_amount = order(4, "O4", 999, OrderStatus::Paid, "T4");
        let other_tx = order(5, "O5", 100, OrderStatus::PartiallyRefunded, "T5-ours");
        let here_only = order(6, "O6", 700, OrderStatus::Paid, "T6");
        let lines = [
            pay("O2", 500, "T2"),
            pay("O3", 500, "T3"),
            pay("O4", 1000, "T4"),
            pay("O5", 100, "T5-theirs"),
            pay("X9", 100, "T9"),
        ];
        let found = run(
            &lines,
            &[notpay, closed, other_amount.clone(), other_tx.clone()],
            &[other_amount, other_tx, here_only],
            &[],
        );
        assert_eq!(
            classes(&found),
            [
                (Class::PaidThereOnly, "O2", false),
                (Class::StatusDiffers, "O3", false),
                (Class::AmountDiffers, "O4", false),
                (Class::TransactionDiffers, "O5", false),
                (Class::UnknownOrder, "X9", false),
                (Class::PaidHereOnly, "O6", false),
            ]
        );
        let amount = &found[2];
        assert_eq!((amount.our_fen, amount.their_fen), (Some(999), Some(1000)));
        assert_eq!(amount.order_id, Some(4));
    }

    #[test]
    fn refunds_are_matched_by_number_amount_and_status() {
        let ok = our_refund(1, "R1", 200, RefundStatus::Success);
        let later = our_refund(2, "R2", 200, RefundStatus::Success);
        let amount = our_refund(3, "R3", 200, RefundStatus::Success);
        let status = our_refund(4, "R4", 200, RefundStatus::Processing);
        let here_only = our_refund(5, "R5", 200, RefundStatus::Processing);
        let lines = [
            refund_line("R1", "O1", 200, "SUCCESS"),
            // The bill saw it in progress; it has succeeded since: agreed.
            refund_line("R2", "O1", 200, "PROCESSING"),
            refund_line("R3", "O1", 201, "SUCCESS"),
            refund_line("R4", "O1", 200, "SUCCESS"),
            refund_line("R6", "O1", 300, "SUCCESS"),
        ];
        let found = run(&lines, &[], &[], &[ok, later, amount, status, here_only]);
        assert_eq!(
            classes(&found),
            [
                (Class::RefundAmountDiffers, "R3", false),
                (Class::RefundStatusDiffers, "R4", false),
                (Class::RefundThereOnly, "R6", false),
                (Class::RefundHereOnly, "R5", false),
            ]
        );
        assert_eq!(found[2].out_trade_no.as_deref(), Some("O1"));
    }

    #[test]
    fn trades_straddling_midnight_wait_for_the_next_bill_or_match_it() {
        let mut late = order(1, "O1", 100, OrderStatus::Paid, "T1");
        late.paid_at = Some(at(DAY_MS - 100));
        let mut early = order(2, "O2", 100, OrderStatus::Paid, "T2");
        early.paid_at = Some(at(50));
        // Next bill not fetched: the late one waits; the early one is a difference (the
        // day before's bill, when fetched, would have held it).
        let found = run(&[], &[], &[late.clone(), early.clone()], &[]);
        assert_eq!(
            classes(&found),
            [
                (Class::PaidHereOnly, "O1", true),
                (Class::PaidHereOnly, "O2", false)
            ]
        );
        // Both neighbours fetched: the late one is on the next day's bill, the early one on
        // the day before's: nothing.
        let neighbours = Neighbours {
            before: Some(HashSet::from(["O2".to_owned()])),
            after: Some(HashSet::from(["O1".to_owned()])),
        };
        assert!(run_with(&[], &[], &[late.clone(), early], &[], &neighbours).is_empty());
        // Next bill fetched without it: a real difference now.
        let neighbours = Neighbours {
            before: None,
            after: Some(HashSet::new()),
        };
        let found = run_with(&[], &[], &[late], &[], &neighbours);
        assert_eq!(classes(&found), [(Class::PaidHereOnly, "O1", false)]);
    }

    #[test]
    fn rows_of_another_appid_are_counted_apart() {
        let mut other = pay("Z1", 900, "TZ");
        other.ours = false;
        let orders = HashMap::new();
        let refunds = HashMap::new();
        let inputs = Inputs {
            day: DAY,
            lines: Some(&[other]),
            orders_on_bill: &orders,
            paid_that_day: &[],
            refunds_on_bill: &refunds,
            refunds_that_day: &[],
            neighbours: &Neighbours::default(),
        };
        let (found, totals) = compare(&inputs);
        assert!(found.is_empty(), "never offered for 补单");
        assert_eq!(totals.not_ours, (1, 900));
        assert_eq!(totals.bill_paid, (0, 0));
    }
}
