//! `/api/mp/orders`: create (priced on the server, idempotent, unifiedorder, pay params),
//! list, show (asks orderquery while unpaid), cancel (closeorder).

use std::collections::BTreeMap;

use app::server::ssr::ClientIp;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use paydesk_core::error::ConflictReason;
use paydesk_core::orders::{
    self, NewOrder, NewOrderItem, Order, OrderItem, OrderStatus, OutTradeNo,
};
use paydesk_core::{now_ms, products, sync, CoreError};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use wxpay::{JsapiPayParams, UnifiedOrderRequest};

use super::error::MpError;
use super::{MpJson, Shopper};
use crate::state::AppState;

/// Most lines in one order.
const MAX_LINES: usize = 20;
/// Most of one product in one order.
const MAX_QUANTITY: i64 = 99;
/// How long WeChat Pay keeps a prepay_id valid (docs/wechatpay-v2.md §8.1).
const PREPAY_VALIDITY_MS: i64 = 2 * 3600 * 1000;
/// A prepay_id this close to expiring is renewed rather than handed out.
const PREPAY_MARGIN_MS: i64 = 60 * 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateOrder {
    items: Vec<LineIn>,
    idempotency_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    product_id: i64,
    quantity: i64,
}

/// What the mini program gets back for an order.
#[derive(Serialize)]
pub(super) struct OrderOut {
    out_trade_no: String,
    status: &'static str,
    description: String,
    total_fee: i64,
    created_at: i64,
    expires_at: Option<i64>,
    paid_at: Option<i64>,
    transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<OrderItem>>,
    /// Present when the order can be paid now: hand it to `wx.requestPayment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pay: Option<JsapiPayParams>,
}

fn order_out(
    order: &Order,
    items: Option<Vec<OrderItem>>,
    pay: Option<JsapiPayParams>,
) -> OrderOut {
    OrderOut {
        out_trade_no: order.out_trade_no.clone(),
        status: order.status.as_str(),
        description: order.description.clone(),
        total_fee: order.total_fee,
        created_at: order.created_at,
        expires_at: order.expires_at,
        paid_at: order.paid_at,
        transaction_id: order.transaction_id.clone(),
        items,
        pay,
    }
}

/// The cart, validated and merged by product: product id → quantity.
fn cart(lines: &[LineIn]) -> Result<BTreeMap<i64, i64>, MpError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(MpError::invalid(format!(
            "items: an order has 1 to {MAX_LINES} lines"
        )));
    }
    let mut cart = BTreeMap::new();
    for line in lines {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(MpError::invalid(format!(
                "items: quantity must be 1 to {MAX_QUANTITY}"
            )));
        }
        let q = cart.entry(line.product_id).or_insert(0);
        *q += line.quantity;
        if *q > MAX_QUANTITY {
            return Err(MpError::invalid(format!(
                "items: at most {MAX_QUANTITY} of one product"
            )));
        }
    }
    Ok(cart)
}

fn check_idempotency_key(key: &str) -> Result<(), MpError> {
    if key.is_empty()
        || key.len() > 64
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(MpError::invalid(
            "idempotency_key: 1 to 64 characters of A-Z a-z 0-9 - _ . :",
        ));
    }
    Ok(())
}

/// A new merchant order number: `PD`, Beijing time to the second, 12 random characters
/// (28 characters, within the 32 WeChat Pay allows).
fn new_out_trade_no() -> OutTradeNo {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let now = OffsetDateTime::now_utc();
    let mut rng = rand::thread_rng();
    let suffix: String = (0..12)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    OutTradeNo::parse(&format!("PD{}{suffix}", wxpay::wxtime::format_compact(now)))
        .expect("the generated order number is within the charset and length")
}

/// `body` for unifiedorder: the first product's name, "等N件" for more, cut to 127 bytes.
fn description(lines: &[NewOrderItem]) -> String {
    let count: i64 = lines.iter().map(|l| l.quantity).sum();
    let mut text = match lines {
        [only] if only.quantity == 1 => only.name.clone(),
        [first, ..] => format!("{} 等{count}件", first.name),
        [] => String::new(),
    };
    while text.len() > 127 {
        text.pop();
    }
    text
}

/// `POST /api/mp/orders`: prices the cart, stores the order `NOTPAY`, calls unifiedorder and
/// answers with the pay parameters. The same idempotency key returns the same order (201 the
/// first time, 200 after), renewing the payment only when needed.
pub(super) async fn create(
    State(state): State<AppState>,
    Extension(ClientIp(client_ip)): Extension<ClientIp>,
    shopper: Shopper,
    MpJson(req): MpJson<CreateOrder>,
) -> Result<(StatusCode, Json<OrderOut>), MpError> {
    check_idempotency_key(&req.idempotency_key)?;
    let wanted = cart(&req.items)?;
    let key = format!("{}:{}", shopper.customer.id, req.idempotency_key);

    if let Some(existing) = orders::find_by_idempotency_key(&state.db, &key).await? {
        return replay(&state, existing, &wanted).await;
    }

    let mut lines = Vec::with_capacity(wanted.len());
    for (&product_id, &quantity) in &wanted {
        let product = products::find(&state.db, product_id)
            .await?
            .filter(|p| p.active)
            .ok_or_else(|| {
                MpError::invalid(format!("items: product {product_id} is not available"))
            })?;
        lines.push(NewOrderItem {
            product_id: Some(product.id),
            name: product.name,
            unit_price_fen: product.price_fen,
            quantity,
        });
    }
    let now = now_ms();
    let expire_ms = paydesk_types::duration_ms(state.pay.order_expire);
    let first_sync_ms = i64::try_from(state.settings.sync.first_delay_seconds)
        .unwrap_or(60)
        .saturating_mul(1000);
    let new = NewOrder {
        out_trade_no: new_out_trade_no(),
        openid: shopper.customer.openid.clone(),
        description: description(&lines),
        items: lines,
        sign_type: state.pay.sign_type,
        client_ip: Some(client_ip.to_string()),
        idempotency_key: Some(key.clone()),
        expires_at: Some(now + expire_ms),
        next_sync_at: Some(now + first_sync_ms),
    };
    if new.total_fee().is_none_or(|t| t > i64::from(i32::MAX)) {
        return Err(MpError::invalid("items: the total is too large"));
    }
    let order = match orders::create_order(&state.db, new).await {
        Ok(order) => order,
        Err(CoreError::Invalid { .. }) => {
            // The same key submitted twice at once: the other request made the order.
            let existing = orders::find_by_idempotency_key(&state.db, &key)
                .await?
                .ok_or_else(MpError::internal)?;
            return replay(&state, existing, &wanted).await;
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(order.out_trade_no = %order.out_trade_no, total_fee = order.total_fee, "order created");
    let (order, pay) = payable(&state, order).await?;
    let items = orders::items(&state.db, order.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(order_out(&order, Some(items), pay)),
    ))
}

/// A repeated submit: the same cart gets the same order (and payment); another cart under
/// the same key is refused.
async fn replay(
    state: &AppState,
    existing: Order,
    wanted: &BTreeMap<i64, i64>,
) -> Result<(StatusCode, Json<OrderOut>), MpError> {
    let items = orders::items(&state.db, existing.id).await?;
    let had: BTreeMap<i64, i64> = items
        .iter()
        .filter_map(|i| Some((i.product_id?, i.quantity)))
        .collect();
    if &had != wanted {
        return Err(MpError::idempotency_conflict());
    }
    let (order, pay) = payable(state, existing).await?;
    Ok((StatusCode::OK, Json(order_out(&order, Some(items), pay))))
}

/// The pay parameters for a `NOTPAY` order: its still-valid prepay_id, or a fresh
/// unifiedorder with exactly the stored parameters (WeChat Pay accepts such a re-entry with
/// the same prepay_id). A paid order comes back without parameters; a closed one is 409.
async fn payable(
    state: &AppState,
    order: Order,
) -> Result<(Order, Option<JsapiPayParams>), MpError> {
    match order.status {
        OrderStatus::NotPay => {}
        s if s.was_paid() => return Ok((order, None)),
        s => return Err(MpError::order_state(s.as_str())),
    }
    let now = now_ms();
    if order
        .expires_at
        .is_some_and(|e| e <= now + PREPAY_MARGIN_MS)
    {
        return Err(MpError::order_state("CLOSED"));
    }
    let sign = |prepay_id: &str| {
        JsapiPayParams::new(
            &state.merchant.appid,
            prepay_id,
            order.sign_type,
            &state.merchant.api_key,
        )
    };
    if let (Some(prepay_id), Some(valid_until)) = (&order.prepay_id, order.prepay_expires_at) {
        if valid_until > now + PREPAY_MARGIN_MS {
            let pay = sign(prepay_id);
            return Ok((order, Some(pay)));
        }
    }
    let mut req = UnifiedOrderRequest::jsapi(
        order.description.clone(),
        order.out_trade_no.clone(),
        order.total_fee,
        order
            .client_ip
            .clone()
            .unwrap_or_else(|| "127.0.0.1".into()),
        state.pay.notify_url.clone(),
        order.openid.clone(),
    );
    req.time_expire = order
        .expires_at
        .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok());
    match state.wxpay.unified_order(&req).await {
        Ok(resp) => {
            let valid_until = (now + PREPAY_VALIDITY_MS).min(order.expires_at.unwrap_or(i64::MAX));
            orders::set_prepay(&state.db, order.id, &resp.prepay_id, valid_until).await?;
            let pay = sign(&resp.prepay_id);
            Ok((order, Some(pay)))
        }
        Err(e)
            if e.is_out_trade_no_used()
                || matches!(e.err_code(), Some("ORDERPAID" | "ORDERCLOSED")) =>
        {
            // WeChat knows this order in another state: learn it, never show the code.
            tracing::warn!(order.out_trade_no = %order.out_trade_no, error = %e, "unifiedorder re-entry refused; asking orderquery");
            let order = sync::refresh_order(&state.db, state.wxpay.as_ref(), &state.events, &order)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "orderquery after a refused re-entry failed");
                    MpError::payment_unavailable()
                })?;
            if order.status.was_paid() {
                Ok((order, None))
            } else {
                Err(MpError::order_state(order.status.as_str()))
            }
        }
        Err(e) => {
            tracing::error!(order.out_trade_no = %order.out_trade_no, error = %e, retry_safe = e.retry_safe(), "unifiedorder failed");
            Err(MpError::payment_unavailable())
        }
    }
}

/// The shopper's own order, or 404 (also for someone else's: order numbers are not a
/// way to learn about other shoppers).
async fn own_order(state: &AppState, shopper: &Shopper, no: &str) -> Result<Order, MpError> {
    if OutTradeNo::parse(no).is_err() {
        return Err(MpError::order_not_found());
    }
    orders::find_by_out_trade_no(&state.db, no)
        .await?
        .filter(|o| o.openid == shopper.customer.openid)
        .ok_or_else(MpError::order_not_found)
}

#[derive(Serialize)]
pub(super) struct OrdersOut {
    orders: Vec<OrderOut>,
}

/// `GET /api/mp/orders`: the shopper's latest 50 orders.
pub(super) async fn list(
    State(state): State<AppState>,
    shopper: Shopper,
) -> Result<Json<OrdersOut>, MpError> {
    let orders = orders::list_for_openid(&state.db, &shopper.customer.openid, 50).await?;
    Ok(Json(OrdersOut {
        orders: orders.iter().map(|o| order_out(o, None, None)).collect(),
    }))
}

/// `GET /api/mp/orders/{out_trade_no}`: while `NOTPAY` (and known to WeChat Pay) it asks
/// orderquery first, so the shopper sees the payment even before the notification — at
/// most once per `PAYDESK_MP_LIMITS__ORDER_QUERY_INTERVAL_SECONDS` for one order, across
/// every instance (a claim in the database); a poll in between answers what is stored.
pub(super) async fn show(
    State(state): State<AppState>,
    shopper: Shopper,
    Path(no): Path<String>,
) -> Result<Json<OrderOut>, MpError> {
    let mut order = own_order(&state, &shopper, &no).await?;
    let interval_ms = i64::try_from(state.settings.mp_limits.order_query_interval_seconds)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    if order.status.awaits_payment()
        && order.prepay_id.is_some()
        && orders::claim_status_query(&state.db, order.id, now_ms(), interval_ms).await?
    {
        match sync::refresh_order(&state.db, state.wxpay.as_ref(), &state.events, &order).await {
            Ok(fresh) => order = fresh,
            // The stored state is still right, only perhaps not the latest.
            Err(e) => {
                tracing::warn!(order.out_trade_no = %order.out_trade_no, error = %e, "orderquery for a status check failed")
            }
        }
    }
    let items = orders::items(&state.db, order.id).await?;
    Ok(Json(order_out(&order, Some(items), None)))
}

/// `POST /api/mp/orders/{out_trade_no}/cancel`: closeorder. Cancelling a closed order again
/// is fine; a paid one is 409.
pub(super) async fn cancel(
    State(state): State<AppState>,
    shopper: Shopper,
    Path(no): Path<String>,
) -> Result<Json<OrderOut>, MpError> {
    let order = own_order(&state, &shopper, &no).await?;
    let order = match order.status {
        s if s.awaits_payment() => {
            match sync::close_order(&state.db, state.wxpay.as_ref(), &state.events, &order).await {
                Ok(order) => order,
                Err(CoreError::Conflict(ConflictReason::TooEarlyToClose { closes_at })) => {
                    // WeChat Pay takes closeorder only 5 minutes after creation: closed then.
                    orders::close_at(&state.db, order.id, closes_at).await?;
                    tracing::info!(order.out_trade_no = %order.out_trade_no, closes_at, "cancel within 5 minutes of creation: the order closes by itself then");
                    return Err(MpError::close_scheduled(closes_at));
                }
                Err(e) => {
                    tracing::error!(order.out_trade_no = %order.out_trade_no, error = %e, "closeorder failed");
                    return Err(MpError::payment_unavailable());
                }
            }
        }
        OrderStatus::Closed => order,
        s => return Err(MpError::order_state(s.as_str())),
    };
    if order.status != OrderStatus::Closed {
        // closeorder found it paid after all.
        return Err(MpError::order_state(order.status.as_str()));
    }
    tracing::info!(order.out_trade_no = %order.out_trade_no, "order cancelled by the shopper");
    Ok(Json(order_out(&order, None, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, quantity: i64) -> NewOrderItem {
        NewOrderItem {
            product_id: Some(1),
            name: name.into(),
            unit_price_fen: 100,
            quantity,
        }
    }

    #[test]
    fn descriptions_name_the_first_product_and_fit_127_bytes() {
        assert_eq!(description(&[line("燕麦拿铁", 1)]), "燕麦拿铁");
        assert_eq!(description(&[line("燕麦拿铁", 2)]), "燕麦拿铁 等2件");
        assert_eq!(
            description(&[line("燕麦拿铁", 1), line("芝士蛋糕", 2)]),
            "燕麦拿铁 等3件"
        );
        let long = description(&[line(&"茶".repeat(60), 1)]);
        assert!(long.len() <= 127 && long.chars().all(|c| c == '茶'));
    }

    #[test]
    fn order_numbers_are_valid_and_distinct() {
        let a = new_out_trade_no();
        let b = new_out_trade_no();
        assert_eq!(a.as_str().len(), 28);
        assert!(a.as_str().starts_with("PD"));
        assert_ne!(a, b);
    }

    #[test]
    fn carts_merge_lines_and_refuse_nonsense() {
        let merged = cart(&[
            LineIn {
                product_id: 1,
                quantity: 2,
            },
            LineIn {
                product_id: 1,
                quantity: 3,
            },
            LineIn {
                product_id: 2,
                quantity: 1,
            },
        ])
        .unwrap();
        assert_eq!(merged, BTreeMap::from([(1, 5), (2, 1)]));
        assert!(cart(&[]).is_err());
        assert!(cart(&[LineIn {
            product_id: 1,
            quantity: 0
        }])
        .is_err());
        assert!(cart(&[LineIn {
            product_id: 1,
            quantity: 100
        }])
        .is_err());
        assert!(check_idempotency_key("a/b").is_err());
        assert!(check_idempotency_key("").is_err());
        assert!(check_idempotency_key("0f8c2e1a-checkout-1").is_ok());
    }
}
