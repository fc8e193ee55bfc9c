//! The orders page: a filtered, keyset-paginated list, newest first, and its totals
//! (docs/design.md "Users and what they need").

use super::filter::OrderFilter;
use super::totals::BAND_FEN;
use super::{Order, ORDER_COLUMNS};
use crate::sql::{bind_all, Arg, Conditions, Cursor};
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

impl OrderPage {
    /// The page of `limit` orders out of `limit + 1` read (one more tells whether a next
    /// page exists).
    fn of(mut orders: Vec<Order>, limit: i64) -> OrderPage {
        let next = if orders.len() as i64 > limit {
            orders.truncate(limit as usize);
            orders.last().map(Cursor::of)
        } else {
            None
        };
        OrderPage { orders, next }
    }
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
/// matching orders to find the newest. A rare amount range goes in through the amount
/// index instead, and one that nothing matches reads no orders ([`Walk`]).
pub async fn list_orders(
    db: &Db,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<OrderPage, CoreError> {
    let walk = Walk::choose(db, filter, None, limit).await?;
    list_by(db, filter, after, limit, walk).await
}

/// [`list_orders`] and [`totals`] for one page view, the totals read once for both: they
/// also tell the list how to find its page ([`Walk`]).
pub async fn page_and_totals(
    db: &Db,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(OrderPage, (i64, i64)), CoreError> {
    if !Walk::may_differ(filter) {
        // No choice to make: both at once, as before.
        return tokio::try_join!(
            list_by(db, filter, after, limit, Walk::Time),
            totals(db, filter)
        );
    }
    match crate::orders::totals::totals(db, filter).await? {
        Some(found) => {
            let walk = Walk::choose(db, filter, Some(found.0), limit).await?;
            Ok((list_by(db, filter, after, limit, walk).await?, found))
        }
        None => tokio::try_join!(
            list_by(db, filter, after, limit, Walk::Time),
            totals_from_orders(db, filter)
        ),
    }
}

/// How a page of an amount range is found. Newest first means walking the time index
/// (`created_at`, or `status, created_at` for a status) and keeping the orders in the range:
/// cheap when they are common, but a rare range (`¥1,000–¥2,000` in a shop of coffee
/// orders) walks every order of the dates to fill a page: 127 ms p50 for `PAID` at a
/// million orders, with no match at all (docs/benchmarks.md). The running totals say how
/// many orders match and how many each index range holds, for a few milliseconds, so the
/// cheaper way in is chosen from them; when they cannot answer (a customer, a date that is
/// not a whole day, less than a yuan) it is the time walk, as before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// The time index, newest first, keeping what matches.
    Time,
    /// The amount index (`total_fee, created_at`): every order in the amount range, the
    /// newest of them sorted out by id, then their rows.
    Amount,
    /// Nothing matches: no query.
    Nothing,
}

impl Walk {
    /// The walk for one page of `limit` orders of `filter`; `matches` is the filter's count
    /// when the caller already has it.
    pub(crate) async fn choose(
        db: &Db,
        filter: &OrderFilter,
        matches: Option<i64>,
        limit: i64,
    ) -> Result<Walk, CoreError> {
        if !Walk::may_differ(filter) {
            return Ok(Walk::Time);
        }
        let counts = crate::orders::totals::totals;
        let matches = match matches {
            Some(n) => Some(n),
            None => counts(db, filter).await?.map(|(n, _)| n),
        };
        let Some(matches) = matches else {
            return Ok(Walk::Time);
        };
        if matches == 0 {
            return Ok(Walk::Nothing);
        }
        let time_range = OrderFilter {
            min_fee: None,
            max_fee: None,
            ..filter.clone()
        };
        // An estimate: widened to whole yuan, so the yuan bands alone answer it (a bound
        // inside a yuan would make the totals count that yuan's orders one by one).
        let amount_range = OrderFilter {
            min_fee: filter
                .min_fee
                .map(|min| min.div_euclid(BAND_FEN) * BAND_FEN),
            max_fee: filter
                .max_fee
                .map(|max| max.div_euclid(BAND_FEN) * BAND_FEN + BAND_FEN - 1),
            ..OrderFilter::default()
        };
        let (time_range, amount_range) =
            tokio::try_join!(counts(db, &time_range), counts(db, &amount_range))?;
        Ok(match (time_range, amount_range) {
            (Some((in_time, _)), Some((in_amount, _))) => Walk::cheaper(
                matches,
                in_time,
                in_amount,
                !filter.statuses.is_empty(),
                limit.clamp(1, MAX_PAGE),
            ),
            _ => Walk::Time,
        })
    }

    /// Whether a walk other than [`Walk::Time`] can serve `filter`: an amount range (one
    /// amount, `total_fee = x`, walks the amount index in time order already), no customer
    /// (a customer's orders have their own index).
    fn may_differ(filter: &OrderFilter) -> bool {
        let ranged = match (filter.min_fee, filter.max_fee) {
            (None, None) => false,
            (Some(min), Some(max)) => min != max,
            _ => true,
        };
        ranged && filter.openid.is_none()
    }

    /// The cheaper walk for a page of `limit` orders out of `matches`, when the time index
    /// range holds `in_time` orders and the amount range `in_amount` (all dates, all
    /// statuses). The time walk stops once it has the page: it reads about `in_time ×
    /// (limit + 1) / matches` entries, matches spread evenly. The amount walk reads every
    /// entry of its range and sorts what passes the dates; with a status it also reads each
    /// one's row (counted four entries). It must win by half to be taken: sorting costs,
    /// and an even spread is a guess.
    pub(crate) fn cheaper(
        matches: i64,
        in_time: i64,
        in_amount: i64,
        status: bool,
        limit: i64,
    ) -> Walk {
        if matches <= 0 {
            return Walk::Nothing;
        }
        let time = in_time as f64 * ((limit + 1) as f64 / matches as f64).min(1.0);
        let amount = in_amount as f64 * if status { 4.0 } else { 1.0 };
        if amount * 2.0 < time {
            Walk::Amount
        } else {
            Walk::Time
        }
    }
}

/// [`list_orders`] the way `walk` says.
pub(crate) async fn list_by(
    db: &Db,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: i64,
    walk: Walk,
) -> Result<OrderPage, CoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    match walk {
        Walk::Nothing => {
            return Ok(OrderPage {
                orders: Vec::new(),
                next: None,
            })
        }
        Walk::Amount => return list_by_amount(db, filter, after, limit).await,
        Walk::Time => {}
    }
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
    let orders = bind_all!(sqlx::query_as::<_, Order>(&sql), &c.args)
        .fetch_all(db.reader())
        .await?;
    Ok(OrderPage::of(orders, limit))
}

/// A page found through the amount index ([`Walk::Amount`]; `limit` clamped by [`list_by`]): the ids of the newest orders
/// in the range, sorted from the index entries alone (`total_fee, created_at` and the id),
/// then only their rows. The time and status conditions are kept off every index
/// (`+created_at`, `status || ''`, and the order by on expressions), so both engines take
/// the amount range as the way in.
async fn list_by_amount(
    db: &Db,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<OrderPage, CoreError> {
    let mut c = Conditions::default();
    for (bound, condition) in [
        (filter.min_fee, "total_fee >="),
        (filter.max_fee, "total_fee <="),
        (filter.created_from, "+created_at >="),
        (filter.created_to, "+created_at <"),
    ] {
        if let Some(value) = bound {
            let p = c.bind(Arg::Int(value));
            c.push(format!("{condition} {p}"));
        }
    }
    if let Some(cursor) = after {
        let at = c.bind(Arg::Int(cursor.created_at));
        let id = c.bind(Arg::Int(cursor.id));
        c.push(format!(
            "(+created_at < {at} or (+created_at = {at} and +id < {id}))"
        ));
    }
    if let Some(cond) =
        OrderFilter::status_condition_on("status || ''", &filter.distinct_statuses())
    {
        c.push(cond);
    }
    let take = c.bind(Arg::Int(limit + 1));
    let sql = format!(
        "select {ORDER_COLUMNS} from orders where id in (select id from orders {} \
         order by +created_at desc, +id desc limit {take}) order by created_at desc, id desc",
        c.where_clause()
    );
    let orders = bind_all!(sqlx::query_as::<_, Order>(&sql), &c.args)
        .fetch_all(db.reader())
        .await?;
    Ok(OrderPage::of(orders, limit))
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

#[cfg(test)]
mod tests {
    use super::{list_by, Walk};
    use crate::orders::filter::OrderFilter;
    use crate::orders::OrderStatus;
    use crate::sql::Cursor;
    use crate::testing;

    #[test]
    fn a_rare_amount_range_is_found_through_the_amount_index() {
        // Coffee shop, last 7 days: 80,000 orders, 60 of them in ¥1,000–¥2,000, which
        // holds 600 orders over all time.
        assert_eq!(Walk::cheaper(60, 80_000, 600, false, 50), Walk::Amount);
        // The same with a status: four entries per row read, still far cheaper.
        assert_eq!(Walk::cheaper(60, 80_000, 600, true, 50), Walk::Amount);
    }

    #[test]
    fn a_common_amount_range_walks_time_and_stops_at_the_page() {
        // A fifth of the 80,000 match: the time walk reads about 255 entries.
        assert_eq!(
            Walk::cheaper(16_000, 80_000, 200_000, false, 50),
            Walk::Time
        );
        // Rare, but its amount range is crowded with other dates' orders.
        assert_eq!(Walk::cheaper(60, 80_000, 70_000, false, 50), Walk::Time);
    }

    #[test]
    fn nothing_matching_needs_no_walk() {
        assert_eq!(Walk::cheaper(0, 80_000, 600, false, 50), Walk::Nothing);
    }

    /// Every page of `filter` through `walk`, seven at a time, cursors passed as text.
    async fn all_pages(db: &crate::Db, filter: &OrderFilter, walk: Walk) -> Vec<String> {
        let mut got = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = list_by(db, filter, after.as_ref(), 7, walk).await.unwrap();
            assert!(page.orders.len() <= 7);
            got.extend(page.orders.into_iter().map(|o| o.out_trade_no));
            match page.next {
                Some(next) => after = Some(Cursor::decode(&next.encode()).unwrap()),
                None => return got,
            }
        }
    }

    #[tokio::test]
    async fn the_amount_walk_pages_exactly_like_the_time_walk() {
        for t in testing::databases().await {
            // Arrange: 120 orders over ten days, three at each moment (the id breaks ties),
            // every status, amounts ¥1.00–¥6.99.
            let start = crate::now_ms() - 10 * 86_400_000;
            for i in 0..120i64 {
                let status = OrderStatus::ALL[(i % 6) as usize];
                let paid = status.was_paid();
                sqlx::query(
                    "insert into orders (out_trade_no, openid, description, total_fee, status, \
                     sign_type, transaction_id, paid_at, created_at, updated_at) \
                     values ($1, 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o', 'x', $2, $3, 'MD5', $4, $5, $6, $6)",
                )
                .bind(format!("W{i:04}"))
                .bind(100 + (i * 53) % 600)
                .bind(status.as_str())
                .bind(paid.then(|| format!("42000000{i:020}")))
                .bind(paid.then_some(start + (i / 3) * 7_200_000 + 1))
                .bind(start + (i / 3) * 7_200_000)
                .execute(t.db.writer())
                .await
                .unwrap();
            }
            // The choice, from the running totals: 18 of 120 in ¥6.00–¥6.99 is rare enough for
            // the amount index, nothing costs nothing, and everything walks time.
            let range = |min, max| OrderFilter {
                min_fee: Some(min),
                max_fee: Some(max),
                ..OrderFilter::default()
            };
            for (filter, walk) in [
                (range(600, 699), Walk::Amount),
                (range(700, 800), Walk::Nothing),
                (range(100, 699), Walk::Time),
            ] {
                let chosen = Walk::choose(&t.db, &filter, None, 7).await.unwrap();
                assert_eq!(chosen, walk, "{}: {filter:?}", t.label);
                let listed = super::list_orders(&t.db, &filter, None, 7).await.unwrap();
                let by_time = all_pages(&t.db, &filter, Walk::Time).await;
                assert_eq!(
                    listed
                        .orders
                        .iter()
                        .map(|o| &o.out_trade_no)
                        .collect::<Vec<_>>(),
                    by_time.iter().take(7).collect::<Vec<_>>(),
                    "{}: {filter:?}",
                    t.label
                );
            }
            let day = 86_400_000;
            let statuses = [
                vec![],
                vec![OrderStatus::Paid],
                vec![OrderStatus::Paid, OrderStatus::Closed],
            ];
            let dates = [
                (None, None),
                (Some(start + 2 * day), None),
                (Some(start + day), Some(start + 8 * day)),
            ];
            let amounts = [
                (Some(200), Some(400)),
                (Some(590), Some(699)),
                (Some(450), None),
                (None, Some(150)),
            ];
            let mut compared = 0;
            for statuses in &statuses {
                for (created_from, created_to) in dates {
                    for (min_fee, max_fee) in amounts {
                        let filter = OrderFilter {
                            statuses: statuses.clone(),
                            created_from,
                            created_to,
                            min_fee,
                            max_fee,
                            openid: None,
                        };
                        // Act
                        let by_time = all_pages(&t.db, &filter, Walk::Time).await;
                        let by_amount = all_pages(&t.db, &filter, Walk::Amount).await;
                        // Assert
                        assert_eq!(by_amount, by_time, "{}: {filter:?}", t.label);
                        compared += usize::from(by_time.len() > 7);
                    }
                }
            }
            assert!(compared > 10, "{}: too few filters span pages", t.label);
        }
    }
}
