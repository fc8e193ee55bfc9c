//! The order queries: create, find, list, and the columns an order has besides its status
//! (which only [`super::transitions`] changes).

use super::{NewOrder, Order, OrderItem, OrderKey, ORDER_COLUMNS};
use crate::error::{unique_violation, UniqueKey};
use crate::{now_ms, CoreError, Db};
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
    let inserted = sqlx::query_as::<_, Order>(&format!(
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
    let order = match inserted {
        Ok(order) => order,
        Err(e)
            if matches!(
                unique_violation(&e),
                Some(UniqueKey::OrderOutTradeNo | UniqueKey::OrderIdempotencyKey)
            ) =>
        {
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
        .bind(order.id)
        .bind(item.product_id)
        .bind(&item.name)
        .bind(item.unit_price_fen)
        .bind(item.quantity)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
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
    sqlx::query_as::<_, Order>(&format!(
        "select {ORDER_COLUMNS} from orders where out_trade_no = $1"
    ))
    .bind(out_trade_no)
    .fetch_optional(db.reader())
    .await
    .map_err(Into::into)
}

/// Every order paid in `[start, end)` (UTC ms), oldest payment first (the reconciliation
/// benchmark's day of trades; `orders_paid_at_fee_idx`).
pub async fn paid_between(db: &Db, start: i64, end: i64) -> Result<Vec<Order>, CoreError> {
    sqlx::query_as::<_, Order>(&format!(
        "select {ORDER_COLUMNS} from orders where paid_at >= $1 and paid_at < $2 order by paid_at"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(db.reader())
    .await
    .map_err(Into::into)
}

/// The first order paid in `[start, end)` (UTC ms) that is still just paid (no refund).
pub async fn first_paid_between(db: &Db, start: i64, end: i64) -> Result<Option<Order>, CoreError> {
    sqlx::query_as::<_, Order>(&format!(
        "select {ORDER_COLUMNS} from orders where paid_at >= $1 and paid_at < $2 \
         and status = 'PAID' order by paid_at limit 1"
    ))
    .bind(start)
    .bind(end)
    .fetch_optional(db.reader())
    .await
    .map_err(Into::into)
}

/// The `limit` newest orders, oldest of them first (the sandbox hands them to a fresh
/// simulator: `orders_created_at_idx`, read backwards).
pub async fn newest(db: &Db, limit: i64) -> Result<Vec<Order>, CoreError> {
    let mut orders = sqlx::query_as::<_, Order>(&format!(
        "select {ORDER_COLUMNS} from orders order by created_at desc, id desc limit $1"
    ))
    .bind(limit)
    .fetch_all(db.reader())
    .await?;
    orders.reverse();
    Ok(orders)
}

/// The order made with this idempotency key, if any.
pub async fn find_by_idempotency_key(db: &Db, key: &str) -> Result<Option<Order>, CoreError> {
    sqlx::query_as::<_, Order>(&format!(
        "select {ORDER_COLUMNS} from orders where idempotency_key = $1"
    ))
    .bind(key)
    .fetch_optional(db.reader())
    .await
    .map_err(Into::into)
}

/// A shopper's orders, newest first.
pub async fn list_for_openid(db: &Db, openid: &str, limit: i64) -> Result<Vec<Order>, CoreError> {
    sqlx::query_as::<_, Order>(&format!(
        r#"select {ORDER_COLUMNS} from orders where openid = $1
           order by created_at desc, id desc limit $2"#
    ))
    .bind(openid)
    .bind(limit)
    .fetch_all(db.reader())
    .await
    .map_err(Into::into)
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

/// Brings an unpaid order's end forward to `at` (UTC ms): it expires then and the sync job
/// looks at it then, so it is closed as soon as WeChat Pay allows (a shopper's cancel within
/// 5 minutes of creation). A later end already set stays earlier; paid orders are untouched.
pub async fn close_at(db: &Db, id: i64, at: i64) -> Result<(), CoreError> {
    sqlx::query(
        r#"update orders
           set expires_at = case when expires_at is null or expires_at > $1 then $1
                                 else expires_at end,
               next_sync_at = case when next_sync_at is null or next_sync_at > $1 then $1
                                   else next_sync_at end,
               updated_at = $2
           where id = $3 and status in ('NOTPAY', 'PAYERROR')"#,
    )
    .bind(at)
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
