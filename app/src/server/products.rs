//! The Products page: the catalogue the mini program sells from (admins manage it; prices
//! are entered in yuan and stored as exact fen).

use leptos::prelude::*;

use crate::dto::ProductSummary;
use crate::error::AppError;

#[cfg(feature = "ssr")]
fn summary(p: paydesk_core::products::Product) -> ProductSummary {
    ProductSummary {
        id: p.id,
        name: p.name,
        price_fen: p.price_fen,
        active: p.active,
    }
}

/// `12.34` → 1234 fen, exactly (no floating point), or a field error.
#[cfg(feature = "ssr")]
fn parse_price(price: &str) -> Result<i64, AppError> {
    price
        .trim()
        .trim_start_matches('¥')
        .parse::<paydesk_types::Fen>()
        .map(|f| f.0)
        .map_err(|e| AppError::invalid("price", e.to_string()))
}

/// Every product, active or not (admin only).
#[server(endpoint = "products/list")]
pub async fn list_products() -> Result<Vec<ProductSummary>, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        let products = paydesk_core::products::list_all(&admin.server.db).await?;
        Ok(products.into_iter().map(summary).collect())
    })
    .await
}

/// Adds a product; `price` in yuan, e.g. `12.34` (admin only).
#[server(endpoint = "products/add")]
pub async fn add_product(name: String, price: String) -> Result<ProductSummary, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        let price_fen = parse_price(&price)?;
        let actor = admin.actor().await;
        let product =
            paydesk_core::products::create(&admin.server.db, &actor, &name, price_fen).await?;
        Ok(summary(product))
    })
    .await
}

/// Changes a product's name, price (yuan) and availability (admin only).
#[server(endpoint = "products/update")]
pub async fn update_product(
    id: i64,
    name: String,
    price: String,
    active: bool,
) -> Result<ProductSummary, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        let price_fen = parse_price(&price)?;
        let actor = admin.actor().await;
        let product =
            paydesk_core::products::update(&admin.server.db, &actor, id, &name, price_fen, active)
                .await?;
        Ok(summary(product))
    })
    .await
}
