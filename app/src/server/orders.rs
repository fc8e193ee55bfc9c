//! The Orders pages' server functions: the filtered list with the search box (staff and up),
//! one order with its timeline (staff and up), and the order actions — sync from WeChat Pay
//! now and close (support and up). Refund requests use `refunds/request`. The CSV export is
//! a plain GET route in the server crate (`/orders/export.csv`), not a server function, so
//! the browser can download it.

// `list_orders` takes one argument per URL query field. Expected for the whole module: the
// `#[server]` macro generates a different set of functions for the server and the browser.
#![expect(
    clippy::too_many_arguments,
    reason = "one server function argument per URL query field"
)]

use leptos::prelude::*;
use paydesk_types::OrderStatus;

use crate::dto::orders::{OrderDetail, OrdersView};
use crate::error::AppError;

/// Orders per page.
pub const PAGE_SIZE: i64 = 50;

/// The orders page for its URL query (staff and up). `q` is the search box: an exact
/// out_trade_no, transaction_id, out_refund_no or refund_id answers `jump` to the order; an
/// openid answers `jump` to the list filtered to that customer. The filter fields are the
/// URL's (`status` comma-separated; days `YYYY-MM-DD`, Asia/Shanghai; amounts in yuan);
/// `after` is the keyset cursor of the page.
#[server(endpoint = "orders/list")]
pub async fn list_orders(
    q: String,
    status: String,
    from: String,
    to: String,
    min: String,
    max: String,
    openid: String,
    after: String,
) -> Result<OrdersView, AppError> {
    super::ssr::as_role(paydesk_types::Role::Staff, |viewer| async move {
        use paydesk_core::orders::filter::FilterQuery;
        use paydesk_core::orders::{
            list,
            lookup::{self, Found},
        };
        use paydesk_core::sql::Cursor;
        use paydesk_types::Role;

        // A bare `/orders` opens on the last seven days (Asia/Shanghai, today included), what
        // staff look at most; the filter form shows the dates and "all time" is one click
        // away (`?all`). Either costs under a millisecond for the sum since the running
        // totals (`paydesk_core::orders::totals`, docs/benchmarks.md).
        if from == RECENT {
            let today = paydesk_types::format_shanghai_date(paydesk_core::now_ms());
            let week_ago = paydesk_types::format_shanghai_date(
                paydesk_core::now_ms() - (RECENT_DAYS - 1) * 86_400_000,
            );
            let query = FilterQuery {
                from: week_ago,
                to: today,
                ..FilterQuery::default()
            };
            return Ok(jump(format!("/orders?{}", query.to_query())));
        }
        let db = &viewer.server.db;
        let mut not_found = None;
        if !q.trim().is_empty() {
            match lookup::find_by_any_id(db, &q).await? {
                Found::Order(order) => {
                    return Ok(jump(format!("/orders/{}", order.out_trade_no)));
                }
                Found::Customer { openid, .. } => {
                    let query = FilterQuery {
                        openid,
                        ..FilterQuery::default()
                    };
                    return Ok(jump(format!("/orders?{}", query.to_query())));
                }
                Found::Nothing => not_found = Some(q.trim().to_owned()),
            }
        }
        let query = FilterQuery::from_pairs([
            ("status", status.as_str()),
            ("from", &from),
            ("to", &to),
            ("min", &min),
            ("max", &max),
            ("openid", &openid),
        ]);
        let filter = query.parse()?;
        let after = Cursor::decode(&after);
        let (page, (count, sum_fen)) =
            list::page_and_totals(db, &filter, after.as_ref(), PAGE_SIZE).await?;
        Ok(OrdersView {
            jump: None,
            not_found,
            orders: page.orders.into_iter().map(list_item).collect(),
            next: page.next.map(|c| c.encode()),
            count,
            sum_fen,
            filter_query: query.to_query(),
            can_export: viewer.user.role.includes(Role::Manager),
        })
    })
    .await
}

/// What the page sends as `from` for a bare `/orders` (no query at all): the server answers
/// with a jump to the last [`RECENT_DAYS`] days.
pub const RECENT: &str = "recent";

/// How many days a bare `/orders` shows.
#[cfg(feature = "ssr")]
const RECENT_DAYS: i64 = 7;

#[cfg(feature = "ssr")]
fn jump(to: String) -> OrdersView {
    OrdersView {
        jump: Some(to),
        not_found: None,
        orders: Vec::new(),
        next: None,
        count: 0,
        sum_fen: 0,
        filter_query: String::new(),
        can_export: false,
    }
}

#[cfg(feature = "ssr")]
fn list_item(o: paydesk_core::orders::Order) -> crate::dto::orders::OrderListItem {
    crate::dto::orders::OrderListItem {
        out_trade_no: o.out_trade_no,
        transaction_id: o.transaction_id,
        openid: o.openid,
        total_fee: o.total_fee,
        status: o.status,
        created_at: o.created_at,
        paid_at: o.paid_at,
    }
}

/// One order with every field and its timeline (staff and up); 404 when there is none.
#[server(endpoint = "orders/detail")]
pub async fn get_order(out_trade_no: String) -> Result<OrderDetail, AppError> {
    super::ssr::as_role(paydesk_types::Role::Staff, |viewer| async move {
        use paydesk_core::orders::{self, timeline};
        use paydesk_types::Role;

        let db = &viewer.server.db;
        let order = orders::find_by_out_trade_no(db, out_trade_no.trim())
            .await?
            .ok_or(AppError::NotFound)?;
        let (items, history) =
            tokio::try_join!(orders::items(db, order.id), timeline::for_order(db, &order))?;
        Ok(detail(
            order,
            items,
            history,
            viewer.user.role.includes(Role::Support),
        ))
    })
    .await
}

#[cfg(feature = "ssr")]
fn detail(
    o: paydesk_core::orders::Order,
    items: Vec<paydesk_core::orders::OrderItem>,
    history: paydesk_core::orders::timeline::History,
    can_act: bool,
) -> OrderDetail {
    use crate::dto::orders::{OrderLine, TimelineItem};

    OrderDetail {
        refunded_fen: history.refunded_fen(),
        refundable_fen: history.refundable_fen(&o),
        trade_type: history.trade_type.clone(),
        timeline: history
            .entries
            .into_iter()
            .map(|e| TimelineItem {
                at: e.at,
                what: timeline_what(e.event),
            })
            .collect(),
        items: items
            .into_iter()
            .map(|i| OrderLine {
                name: i.name,
                unit_price_fen: i.unit_price_fen,
                quantity: i.quantity,
            })
            .collect(),
        id: o.id,
        out_trade_no: o.out_trade_no,
        transaction_id: o.transaction_id,
        openid: o.openid,
        description: o.description,
        total_fee: o.total_fee,
        status: o.status,
        sign_type: o.sign_type.as_str().to_owned(),
        prepay_id: o.prepay_id,
        prepay_expires_at: o.prepay_expires_at,
        bank_type: o.bank_type,
        client_ip: o.client_ip,
        created_at: o.created_at,
        paid_at: o.paid_at,
        expires_at: o.expires_at,
        updated_at: o.updated_at,
        sync_attempts: o.sync_attempts,
        can_act,
    }
}

#[cfg(feature = "ssr")]
fn timeline_what(event: paydesk_core::orders::timeline::Event) -> crate::dto::orders::TimelineWhat {
    use crate::dto::orders::TimelineCall;
    use paydesk_core::bodies::clip;

    event.map(
        |c| TimelineCall {
            ok: c.succeeded(),
            outcome: c
                .err_code
                .clone()
                .or_else(|| c.error.clone())
                .or_else(|| c.result_code.clone())
                .or_else(|| c.return_code.clone())
                .map(|o| clip(&o)),
            id: c.id,
            endpoint: c.endpoint,
            out_refund_no: c.out_refund_no,
            latency_ms: c.latency_ms,
        },
        // A refused callback's detail can quote what its sender wrote.
        |n| paydesk_types::NotificationSummary {
            detail: clip(&n.detail),
            ..n
        },
    )
}

/// Asks WeChat Pay about the order now (orderquery; support and up; audited). Returns the
/// status afterwards.
#[server(endpoint = "orders/sync")]
pub async fn sync_order(out_trade_no: String) -> Result<OrderStatus, AppError> {
    act(out_trade_no, false).await
}

/// Closes the unpaid order at WeChat Pay (closeorder; support and up; audited). Returns the
/// status afterwards.
#[server(endpoint = "orders/close")]
pub async fn close_order(out_trade_no: String) -> Result<OrderStatus, AppError> {
    act(out_trade_no, true).await
}

#[cfg(feature = "ssr")]
async fn act(out_trade_no: String, close: bool) -> Result<OrderStatus, AppError> {
    use paydesk_core::orders::actions as order_actions;

    super::ssr::as_role(paydesk_types::Role::Support, |support| async move {
        let actor = support.actor().await;
        let super::ssr::ServerContext {
            db, events, wxpay, ..
        } = &support.server;
        let order = if close {
            order_actions::close_now(db, wxpay.as_ref(), events, &actor, &out_trade_no).await?
        } else {
            order_actions::sync_now(db, wxpay.as_ref(), events, &actor, &out_trade_no).await?
        };
        Ok(order.status)
    })
    .await
}
