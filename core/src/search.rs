//! The old home of the order list, the any-id search, support's lookup, the CSV export
//! and the day helpers, kept as re-exports for the crates that still import them from here
//! (app, server, bench). They live in [`crate::orders`] (`list`, `lookup`, `export`,
//! `filter`), [`crate::sql`] and [`crate::time`]; new code imports them from there.

pub use crate::orders::export::{export_csv, record_export, CSV_HEADER, FORMULA_LEADS};
pub use crate::orders::filter::OrderFilter;
pub use crate::orders::list::{list_orders, totals, totals_from_orders, OrderPage, MAX_PAGE};
pub use crate::orders::lookup::{
    find_by_any_id, lookup, AmountQuery, Found, CUSTOMER_ORDERS, LOOKUP_LIMIT,
};
pub use crate::sql::Cursor;
pub use crate::time::{days_ago, shanghai_day, shanghai_day_start};
