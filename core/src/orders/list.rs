//! The orders page: a filtered, keyset-paginated list, newest first, and its totals
//! (docs/design.md "Users and what they need").

use super::filter::OrderFilter;
use super::{Order, ORDER_COLUMNS};
use crate::sql::{bind_all, Arg, Cursor};
use crate::{CoreError, Db};

/// One page of orders, newest first, and where the next one starts (`None`: this was the
/// last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    /// The orders on this page.
    pub orders: Vec<Order>,
    /// The cursor for the next page, if there is one.
    pub next: Option<Cursor>,
}

/// The largest page [`list_orders`] returns.
pub const MAX_PAGE: i64 = 500;

/// One page of the orders matching `filter`, newest first (`created_at desc, id desc`),
/// starting after `after`. `limit` is clamped to 1..=[`MAX_PAGE`].
///
/// Keyset pagination: the page after a cursor is `(created_at, id) < cursor`, an index range
/// that costs the same on page 1 and page 20,000 (OFFSET would read and discard every
/// earlier row). Several statuses become one branch per status (`union all`), each an
/// ordered range of the `(status, created_at, id)` index, so neither engine has to sort all
/// matching orders to find the newest.
pub async fn list_orders(
    db: &Db,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<OrderPage, CoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut c = filter.conditions_without_status(true);
    if let Some(cursor) = after {
        let at = c.bind(Arg::Int(cursor.created_at));
        let id = c.bind(Arg::Int(cursor.id));
        // `created_at <= at` gives both engines a range to start the index walk at; the `or`
        // alone (or a row value on SQLite) left PostgreSQL scanning from the newest order
        // and filtering: 200 ms for a page in the middle of a million.
        c.push(format!(
            "created_at <= {at} and (created_at < {at} or id < {id})"
        ));
    }
    // One more than asked tells whether a next page exists.
    let take = c.bind(Arg::Int(limit + 1));
    let order_by = "order by created_at desc, id desc";
    let statuses = filter.distinct_statuses();
    let sql = if statuses.len() <= 1 {
        if let Some(cond) = OrderFilter::status_condition(&statuses) {
            c.push(cond);
        }
        format!(
            "select {ORDER_COLUMNS} from orders {} {order_by} limit {take}",
            c.where_clause()
        )
    } else {
        let branches = statuses
            .iter()
            .enumerate()
            .map(|(i, status)| {
                let mut sql = c.sql.clone();
                sql.push(format!("status = '{}'", status.as_str()));
                format!(
                    "select {ORDER_COLUMNS} from (select {ORDER_COLUMNS} from orders where {} \
                     {order_by} limit {take}) as s{i}",
                    sql.join(" and ")
                )
            })
            .collect::<Vec<_>>()
            .join(" union all ");
        format!("select {ORDER_COLUMNS} from ({branches}) as u {order_by} limit {take}")
    };
    let mut orders = bind_all!(sqlx::query_as::<_, Order>(&sql), &c.args)
        .fetch_all(db.reader())
        .await?;
    let next = if orders.len() as i64 > limit {
        orders.truncate(limit as usize);
        orders.last().map(Cursor::of)
    } else {
        None
    };
    Ok(OrderPage { orders, next })
}

/// How many orders match `filter` and the sum of their amounts (fen): from the running
/// totals when they can answer it ([`crate::orders::totals`]), otherwise from the orders.
pub async fn totals(db: &Db, filter: &OrderFilter) -> Result<(i64, i64), CoreError> {
    if let Some(found) = crate::orders::totals::totals(db, filter).await? {
        return Ok(found);
    }
    totals_from_orders(db, filter).await
}

/// [`totals`] read from the orders themselves, for the filters the running totals cannot
/// answer (and for tests to compare with).
pub async fn totals_from_orders(db: &Db, filter: &OrderFilter) -> Result<(i64, i64), CoreError> {
    let mut c = filter.conditions_without_status(false);
    if let Some(cond) = OrderFilter::status_condition(&filter.distinct_statuses()) {
        c.push(cond);
    }
    // `coalesce(…, 0)`: sum over no rows is NULL. The cast keeps PostgreSQL's sum of
    // bigint (a numeric) readable as i64 through `Any`.
    let sql = format!(
        "select count(*), cast(coalesce(sum(total_fee), 0) as bigint) from orders {}",
        c.where_clause()
    );
    let (count, sum): (i64, i64) = bind_all!(sqlx::query_as(&sql), &c.args)
        .fetch_one(db.reader())
        .await?;
    Ok((count, sum))
}
