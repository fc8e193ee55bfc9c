//! The catalogue (docs/design.md "Data": products). The mini program sends product ids and
//! quantities; every price comes from here, never from the client.

use sqlx::FromRow;

use crate::audit::{self, action, Actor, Entry};
use crate::{now_ms, CoreError, Db};

/// A product.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Product {
    /// Row id (what the mini program orders by).
    pub id: i64,
    /// The name shown to shoppers (and in the order's description).
    pub name: String,
    /// Unit price in fen.
    pub price_fen: i64,
    /// Whether it can be ordered.
    pub active: bool,
}

/// `active` is read as 0/1: sqlx's Any driver cannot decode SQLite's BOOLEAN.
#[derive(FromRow)]
struct Row {
    id: i64,
    name: String,
    price_fen: i64,
    active: i64,
}

impl From<Row> for Product {
    fn from(r: Row) -> Product {
        Product {
            id: r.id,
            name: r.name,
            price_fen: r.price_fen,
            active: r.active != 0,
        }
    }
}

const COLUMNS: &str = "id, name, price_fen, (case when active then 1 else 0 end) as active";

/// Products shoppers can order, by name.
pub async fn list_active(db: &Db) -> Result<Vec<Product>, CoreError> {
    Ok(sqlx::query_as::<_, Row>(&format!(
        "select {COLUMNS} from products where active = true order by id"
    ))
    .fetch_all(db.reader())
    .await?
    .into_iter()
    .map(Product::from)
    .collect())
}

/// Every product, active or not (for admins).
pub async fn list_all(db: &Db) -> Result<Vec<Product>, CoreError> {
    Ok(
        sqlx::query_as::<_, Row>(&format!("select {COLUMNS} from products order by id"))
            .fetch_all(db.reader())
            .await?
            .into_iter()
            .map(Product::from)
            .collect(),
    )
}

/// One product by id, active or not.
pub async fn find(db: &Db, id: i64) -> Result<Option<Product>, CoreError> {
    Ok(
        sqlx::query_as::<_, Row>(&format!("select {COLUMNS} from products where id = $1"))
            .bind(id)
            .fetch_optional(db.reader())
            .await?
            .map(Product::from),
    )
}

fn check(name: &str, price_fen: i64) -> Result<(), CoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 40 {
        return Err(CoreError::invalid(
            "name",
            "a name needs 1 to 40 characters",
        ));
    }
    if !(1..=100_000_000).contains(&price_fen) {
        return Err(CoreError::invalid(
            "price_fen",
            "a price must be between ¥0.01 and ¥1,000,000.00",
        ));
    }
    Ok(())
}

/// Adds a product (audited).
pub async fn create(
    db: &Db,
    actor: &Actor,
    name: &str,
    price_fen: i64,
) -> Result<Product, CoreError> {
    check(name, price_fen)?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let product: Product = sqlx::query_as::<_, Row>(&format!(
        r#"insert into products (name, price_fen, active, created_at, updated_at)
           values ($1, $2, true, $3, $3) returning {COLUMNS}"#
    ))
    .bind(name.trim())
    .bind(price_fen)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?
    .into();
    let detail = format!(
        "{} {}",
        product.name,
        paydesk_types::Fen(product.price_fen).display_yuan()
    );
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: action::PRODUCT_CREATE,
            target: Some(&product.id.to_string()),
            detail: Some(&detail),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(product)
}

/// Changes a product's name, price and availability (audited). Orders already made keep
/// the price they were made with (order_items holds it).
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: i64,
    name: &str,
    price_fen: i64,
    active: bool,
) -> Result<Product, CoreError> {
    check(name, price_fen)?;
    let mut tx = db.begin_write().await?;
    let product: Product = sqlx::query_as::<_, Row>(&format!(
        r#"update products set name = $1, price_fen = $2, active = ($3 = 1), updated_at = $4
           where id = $5 returning {COLUMNS}"#
    ))
    .bind(name.trim())
    .bind(price_fen)
    .bind(i64::from(active))
    .bind(now_ms())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .map(Product::from)
    .ok_or(CoreError::NotFound)?;
    let detail = format!(
        "{} {} {}",
        product.name,
        paydesk_types::Fen(product.price_fen).display_yuan(),
        if product.active { "active" } else { "inactive" }
    );
    audit::record(
        &mut *tx,
        Entry {
            actor,
            action: action::PRODUCT_UPDATE,
            target: Some(&product.id.to_string()),
            detail: Some(&detail),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(product)
}

/// The demo catalogue for a fresh sandbox database.
pub const DEMO_PRODUCTS: [(&str, i64); 6] = [
    ("西湖龙井 50g", 3800),
    ("桂花乌龙 袋泡茶", 4200),
    ("燕麦拿铁", 2800),
    ("芝士蛋糕", 3550),
    ("手工黄油曲奇", 1990),
    ("保温随行杯", 12900),
];

/// Adds [`DEMO_PRODUCTS`] when the catalogue is empty. Returns how many were added.
pub async fn seed_demo(db: &Db) -> Result<usize, CoreError> {
    let count: i64 = sqlx::query_scalar("select count(*) from products")
        .fetch_one(db.reader())
        .await?;
    if count > 0 {
        return Ok(0);
    }
    for (name, price) in DEMO_PRODUCTS {
        create(db, &Actor::system(), name, price).await?;
    }
    Ok(DEMO_PRODUCTS.len())
}
