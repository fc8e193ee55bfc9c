//! Orders: the merchant order number, the order state machine, and the order queries
//! (design.md "Data", "Pay"; spec §8.1, §10).

use std::fmt;

use sqlx::FromRow;
use wxpay::SignType;

use crate::error::is_unique_violation;
pub(crate) use crate::order_keys::OrderKey;
use crate::{now_ms, CoreError, Db};

/// A merchant order number (`out_trade_no`, spec §8.1): 1–32 characters of
/// `[0-9A-Za-z_-|*]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutTradeNo(String);

/// Why a string is not an [`OutTradeNo`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutTradeNoError {
    /// Empty or longer than 32 characters.
    #[error("out_trade_no must have 1 to 32 characters")]
    Length,
    /// A character outside `[0-9A-Za-z_-|*]`.
    #[error("out_trade_no may only contain letters, digits and _ - | *")]
    Charset,
}

impl OutTradeNo {
    /// The longest `out_trade_no` WeChat Pay accepts (spec §8.1).
    pub const MAX_LEN: usize = 32;

    /// Parses an order number (spec §8.1 field limits).
    pub fn parse(s: &str) -> Result<Self, OutTradeNoError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(OutTradeNoError::Length);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
        {
            return Err(OutTradeNoError::Charset);
        }
        Ok(OutTradeNo(s.to_owned()))
    }

    /// The order number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutTradeNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub use paydesk_types::{IllegalTransition, OrderStatus};

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Row id.
    pub id: i64,
    /// The merchant order number.
    pub out_trade_no: String,
    /// The payer's openid.
    pub openid: String,
    /// The `body` sent to unifiedorder.
    pub description: String,
    /// The amount in fen.
    pub total_fee: i64,
    /// Where the order is in its state machine.
    pub status: OrderStatus,
    /// The algorithm the order was created (and its notifications are verified) with.
    pub sign_type: SignType,
    /// `prepay_id` from unifiedorder.
    pub prepay_id: Option<String>,
    /// When the prepay_id expires (UTC ms).
    pub prepay_expires_at: Option<i64>,
    /// WeChat's `transaction_id`, once paid.
    pub transaction_id: Option<String>,
    /// The payer's bank (`bank_type`).
    pub bank_type: Option<String>,
    /// When it was paid (from `time_end`, UTC ms).
    pub paid_at: Option<i64>,
    /// The shopper's IP address.
    pub client_ip: Option<String>,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// When the order stops being payable (`time_expire`, UTC ms).
    pub expires_at: Option<i64>,
    /// When the sync job next looks at it (UTC ms), while `NOTPAY`.
    pub next_sync_at: Option<i64>,
    /// How many times the sync job has asked WeChat about it.
    pub sync_attempts: i64,
    /// Created (UTC ms).
    pub created_at: i64,
    /// Last changed (UTC ms).
    pub updated_at: i64,
}

#[derive(FromRow)]
pub(crate) struct OrderRow {
    id: i64,
    out_trade_no: String,
    openid: String,
    description: String,
    total_fee: i64,
    status: String,
    sign_type: String,
    prepay_id: Option<String>,
    prepay_expires_at: Option<i64>,
    transaction_id: Option<String>,
    bank_type: Option<String>,
    paid_at: Option<i64>,
    client_ip: Option<String>,
    idempotency_key: Option<String>,
    expires_at: Option<i64>,
    next_sync_at: Option<i64>,
    sync_attempts: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<OrderRow> for Order {
    type Error = CoreError;

    fn try_from(r: OrderRow) -> Result<Self, CoreError> {
        Ok(Order {
            id: r.id,
            out_trade_no: r.out_trade_no,
            openid: r.openid,
            description: r.description,
            total_fee: r.total_fee,
            status: r.status.parse()?,
            sign_type: r.sign_type.parse().map_err(|e: wxpay::UnknownSignType| {
                anyhow::anyhow!("stored sign_type {:?}", e.0)
            })?,
            prepay_id: r.prepay_id,
            prepay_expires_at: r.prepay_expires_at,
            transaction_id: r.transaction_id,
            bank_type: r.bank_type,
            paid_at: r.paid_at,
            client_ip: r.client_ip,
            idempotency_key: r.idempotency_key,
            expires_at: r.expires_at,
            next_sync_at: r.next_sync_at,
            sync_attempts: r.sync_attempts,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub(crate) const ORDER_COLUMNS: &str = "id, out_trade_no, openid, description, total_fee, \
    status, sign_type, prepay_id, prepay_expires_at, transaction_id, bank_type, paid_at, \
    client_ip, idempotency_key, expires_at, next_sync_at, sync_attempts, created_at, updated_at";

/// One line of a new order. The amount comes from the caller (later: from `products`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderItem {
    /// The product, when the line is a catalogue product.
    pub product_id: Option<i64>,
    /// The name shown to the shopper.
    pub name: String,
    /// Unit price in fen (> 0).
    pub unit_price_fen: i64,
    /// Quantity (> 0).
    pub quantity: i64,
}

/// An order to create (status `NOTPAY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The merchant order number.
    pub out_trade_no: OutTradeNo,
    /// The payer's openid.
    pub openid: String,
    /// The `body` for unifiedorder.
    pub description: String,
    /// The lines; `total_fee` is their sum.
    pub items: Vec<NewOrderItem>,
    /// The algorithm for this order's signatures.
    pub sign_type: SignType,
    /// The shopper's IP address.
    pub client_ip: Option<String>,
    /// The client's idempotency key (unique when set).
    pub idempotency_key: Option<String>,
    /// When the order stops being payable (UTC ms), if it expires.
    pub expires_at: Option<i64>,
    /// When the sync job should first ask WeChat about it (UTC ms), if at all.
    pub next_sync_at: Option<i64>,
}

impl NewOrder {
    /// The sum of the lines in fen, or `None` on overflow.
    pub fn total_fee(&self) -> Option<i64> {
        self.items.iter().try_fold(0i64, |acc, item| {
            acc.checked_add(item.unit_price_fen.checked_mul(item.quantity)?)
        })
    }
}

/// Stores a new `NOTPAY` order with its items in one transaction. An `out_trade_no` or
/// idempotency key already in use is [`CoreError::Invalid`].
#[tracing::instrument(skip_all, fields(order.out_trade_no = %new.out_trade_no))]
pub async fn create_order(db: &Db, new: NewOrder) -> Result<Order, CoreError> {
    if new.items.is_empty() {
        return Err(CoreError::invalid(
            "items",
            "an order needs at least one item",
        ));
    }
    if new
        .items
        .iter()
        .any(|i| i.unit_price_fen <= 0 || i.quantity <= 0)
    {
        return Err(CoreError::invalid(
            "items",
            "prices and quantities must be positive",
        ));
    }
    let total_fee = new
        .total_fee()
        .ok_or_else(|| CoreError::invalid("items", "the total is too large"))?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query_as::<_, OrderRow>(&format!(
        r#"insert into orders (out_trade_no, openid, description, total_fee, status, sign_type,
               client_ip, idempotency_key, expires_at, next_sync_at, created_at, updated_at)
           values ($1, $2, $3, $4, 'NOTPAY', $5, $6, $7, $8, $9, $10, $10)
           returning {ORDER_COLUMNS}"#
    ))
    .bind(new.out_trade_no.as_str())
    .bind(&new.openid)
    .bind(&new.description)
    .bind(total_fee)
    .bind(new.sign_type.as_str())
    .bind(new.client_ip.as_deref())
    .bind(new.idempotency_key.as_deref())
    .bind(new.expires_at)
    .bind(new.next_sync_at)
    .bind(now)
    .fetch_one(&mut *tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(e) if is_unique_violation(&e) => {
            return Err(CoreError::invalid(
                "out_trade_no",
                "this order number or idempotency key is already in use",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    for item in &new.items {
        sqlx::query(
            r#"insert into order_items (order_id, product_id, name, unit_price_fen, quantity,
                   created_at, updated_at)
               values ($1, $2, $3, $4, $5, $6, $6)"#,
        )
        .bind(row.id)
        .bind(item.product_id)
        .bind(&item.name)
        .bind(item.unit_price_fen)
        .bind(item.quantity)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let order: Order = row.try_into()?;
    // Committed: from now on its key is known to exist.
    db.order_keys().insert(&OrderKey {
        id: order.id,
        out_trade_no: order.out_trade_no.clone(),
        sign_type: order.sign_type,
        total_fee: order.total_fee,
    });
    Ok(order)
}

/// The immutable part of the order with this merchant order number (for notifications):
/// from memory when held, else from the database (and then held).
pub(crate) async fn find_key_by_out_trade_no(
    db: &Db,
    out_trade_no: &str,
) -> Result<Option<OrderKey>, CoreError> {
    if let Some(key) = db.order_keys().get(out_trade_no) {
        return Ok(Some(key));
    }
    let fast = db.key_readers().map(|readers| readers.read(out_trade_no));
    let row: Option<(i64, String, i64)> = match fast {
        Some(Ok(row)) => row,
        slow => {
            if let Some(Err(e)) = slow {
                tracing::warn!(error = %e, "reading an order key directly failed; using the pool");
            }
            sqlx::query_as("select id, sign_type, total_fee from orders where out_trade_no = $1")
                .bind(out_trade_no)
                .fetch_optional(db.reader())
                .await?
        }
    };
    let Some((id, sign_type, total_fee)) = row else {
        return Ok(None);
    };
    let key = OrderKey {
        id,
        out_trade_no: out_trade_no.to_owned(),
        sign_type: sign_type.parse().map_err(|e: wxpay::UnknownSignType| {
            CoreError::Internal(anyhow::anyhow!("stored sign_type {:?}", e.0))
        })?,
        total_fee,
    };
    db.order_keys().insert(&key);
    Ok(Some(key))
}

/// The order with this merchant order number, if any.
pub async fn find_by_out_trade_no(db: &Db, out_trade_no: &str) -> Result<Option<Order>, CoreError> {
    sqlx::query_as::<_, OrderRow>(&format!(
        "select {ORDER_COLUMNS} from orders where out_trade_no = $1"
    ))
    .bind(out_trade_no)
    .fetch_optional(db.reader())
    .await?
    .map(Order::try_from)
    .transpose()
}

/// Moves an order to `next` if the state machine allows it from its current status. The
/// update is conditional on the status read (`where status = $current`), so of two
/// concurrent changes only one wins; the loser gets [`CoreError::Forbidden`].
#[tracing::instrument(skip_all, fields(order.id = id, order.next = %next))]
pub async fn transition(db: &Db, id: i64, next: OrderStatus) -> Result<Order, CoreError> {
    let mut tx = db.begin_write().await?;
    let current: String = sqlx::query_scalar("select status from orders where id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CoreError::NotFound)?;
    let current: OrderStatus = current.parse()?;
    current
        .transition_to(next)
        .map_err(|e| CoreError::Forbidden(e.to_string()))?;
    let updated = sqlx::query_as::<_, OrderRow>(&format!(
        r#"update orders set status = $1, updated_at = $2
           where id = $3 and status = $4
           returning {ORDER_COLUMNS}"#
    ))
    .bind(next.as_str())
    .bind(now_ms())
    .bind(id)
    .bind(current.as_str())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| CoreError::Forbidden(format!("the order is no longer {current}")))?;
    tx.commit().await?;
    updated.try_into()
}

/// The order made with this idempotency key, if any.
pub async fn find_by_idempotency_key(db: &Db, key: &str) -> Result<Option<Order>, CoreError> {
    sqlx::query_as::<_, OrderRow>(&format!(
        "select {ORDER_COLUMNS} from orders where idempotency_key = $1"
    ))
    .bind(key)
    .fetch_optional(db.reader())
    .await?
    .map(Order::try_from)
    .transpose()
}

/// A shopper's orders, newest first.
pub async fn list_for_openid(db: &Db, openid: &str, limit: i64) -> Result<Vec<Order>, CoreError> {
    sqlx::query_as::<_, OrderRow>(&format!(
        r#"select {ORDER_COLUMNS} from orders where openid = $1
           order by created_at desc, id desc limit $2"#
    ))
    .bind(openid)
    .bind(limit)
    .fetch_all(db.reader())
    .await?
    .into_iter()
    .map(Order::try_from)
    .collect()
}

/// Stores the `prepay_id` unifiedorder returned (only while the order is `NOTPAY`).
pub async fn set_prepay(
    db: &Db,
    id: i64,
    prepay_id: &str,
    prepay_expires_at: i64,
) -> Result<(), CoreError> {
    sqlx::query(
        r#"update orders set prepay_id = $1, prepay_expires_at = $2, updated_at = $3
           where id = $4 and status = 'NOTPAY'"#,
    )
    .bind(prepay_id)
    .bind(prepay_expires_at)
    .bind(now_ms())
    .bind(id)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Claims the right to ask WeChat Pay's orderquery about an unpaid order now for a
/// shopper's status call: true for exactly one caller per `min_interval_ms`, whichever
/// instance it runs on — one conditional update of `orders.status_queried_at`, so two
/// polls at once (here or on another instance sharing the database) make one call. A
/// caller that gets false answers from the database. False too for an order no longer
/// `NOTPAY` (nothing left to ask).
pub async fn claim_status_query(
    db: &Db,
    id: i64,
    now: i64,
    min_interval_ms: i64,
) -> Result<bool, CoreError> {
    let since = now.saturating_sub(min_interval_ms);
    // A poll inside the interval costs a read, not the writer: on SQLite every write queues
    // behind the one writer connection that payment notifications also need.
    let last: Option<Option<i64>> =
        sqlx::query_scalar("select status_queried_at from orders where id = $1")
            .bind(id)
            .fetch_optional(db.reader())
            .await?;
    if matches!(last, Some(Some(at)) if at > since) {
        return Ok(false);
    }
    let claimed = sqlx::query(
        r#"update orders set status_queried_at = $1
           where id = $2 and status = 'NOTPAY'
             and (status_queried_at is null or status_queried_at <= $3)"#,
    )
    .bind(now)
    .bind(id)
    .bind(since)
    .execute(db.writer())
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// One line of a stored order.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct OrderItem {
    /// The catalogue product, if it was one.
    pub product_id: Option<i64>,
    /// The name at the time of the order.
    pub name: String,
    /// The unit price at the time of the order (fen).
    pub unit_price_fen: i64,
    /// How many.
    pub quantity: i64,
}

/// The lines of an order, in the order they were added.
pub async fn items(db: &Db, order_id: i64) -> Result<Vec<OrderItem>, CoreError> {
    Ok(sqlx::query_as::<_, OrderItem>(
        r#"select product_id, name, unit_price_fen, quantity from order_items
           where order_id = $1 order by id"#,
    )
    .bind(order_id)
    .fetch_all(db.reader())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn out_trade_no_accepts_the_documented_charset_and_length() {
        assert!(OutTradeNo::parse("A1_b-2|c*3").is_ok());
        assert!(OutTradeNo::parse(&"x".repeat(32)).is_ok());
        assert_eq!(
            OutTradeNo::parse(&"x".repeat(33)),
            Err(OutTradeNoError::Length)
        );
        assert_eq!(OutTradeNo::parse(""), Err(OutTradeNoError::Length));
        for bad in ["a b", "订单1", "a/b", "a.b", "<x>"] {
            assert_eq!(
                OutTradeNo::parse(bad),
                Err(OutTradeNoError::Charset),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_documented_transitions_are_allowed() {
        use OrderStatus::*;
        for (from, to) in [
            (NotPay, Paid),
            (NotPay, Closed),
            (NotPay, PayError),
            (Paid, PartiallyRefunded),
            (Paid, Refunded),
            (PartiallyRefunded, Refunded),
        ] {
            assert_eq!(from.transition_to(to), Ok(to), "{from} -> {to}");
        }
    }

    #[test]
    fn nothing_moves_backwards_and_closed_orders_stay_closed() {
        use OrderStatus::*;
        for (from, to) in [
            (Paid, NotPay),
            (Refunded, Paid),
            (PartiallyRefunded, Paid),
            (Closed, Paid),
            (PayError, Paid),
            (NotPay, Refunded),
            (Paid, Paid),
        ] {
            assert_eq!(
                from.transition_to(to),
                Err(IllegalTransition { from, to }),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn status_names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>().unwrap(), s);
        }
        assert!("SUCCESS".parse::<OrderStatus>().is_err());
    }

    /// How far along the life of an order a status is; transitions never decrease it.
    fn rank(s: OrderStatus) -> u8 {
        match s {
            OrderStatus::NotPay => 0,
            OrderStatus::Closed | OrderStatus::PayError | OrderStatus::Paid => 1,
            OrderStatus::PartiallyRefunded => 2,
            OrderStatus::Refunded => 3,
        }
    }

    fn status() -> impl Strategy<Value = OrderStatus> {
        prop::sample::select(OrderStatus::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn any_walk_only_moves_forward_and_never_returns_to_notpay(
            steps in prop::collection::vec(status(), 0..20)
        ) {
            let mut current = OrderStatus::NotPay;
            for next in steps {
                match current.transition_to(next) {
                    Ok(s) => {
                        prop_assert!(rank(s) >= rank(current));
                        prop_assert_ne!(s, OrderStatus::NotPay);
                        prop_assert!(!current.was_paid() || s.was_paid(), "{current} -> {s}");
                        current = s;
                    }
                    Err(e) => prop_assert_eq!(e, IllegalTransition { from: current, to: next }),
                }
            }
        }

        #[test]
        fn terminal_statuses_have_no_way_out(next in status()) {
            for terminal in [OrderStatus::Closed, OrderStatus::PayError, OrderStatus::Refunded] {
                prop_assert!(terminal.transition_to(next).is_err());
            }
        }

        #[test]
        fn new_order_total_is_the_checked_sum_of_its_lines(
            lines in prop::collection::vec((1i64..1_000_000, 1i64..100), 1..10)
        ) {
            let order = NewOrder {
                out_trade_no: OutTradeNo::parse("T1").unwrap(),
                openid: "o".into(),
                description: "d".into(),
                items: lines.iter().map(|(p, q)| NewOrderItem {
                    product_id: None, name: "n".into(), unit_price_fen: *p, quantity: *q,
                }).collect(),
                sign_type: SignType::Md5,
                client_ip: None,
                idempotency_key: None,
                expires_at: None,
                next_sync_at: None,
            };
            prop_assert_eq!(order.total_fee(), Some(lines.iter().map(|(p, q)| p * q).sum()));
        }
    }
}
