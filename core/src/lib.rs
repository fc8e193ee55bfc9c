//! paydesk's domain crate: domain types, state machines and every SQL statement.
//!
//! Both the axum routes (`server`) and the Leptos server functions (`app`, feature `ssr`)
//! call into this crate; neither writes SQL. Queries are written once, as runtime
//! `sqlx::query_as` over [`sqlx::Any`], and run on SQLite and PostgreSQL alike (docs/style.md §7,
//! "Our decision"). Times are UTC milliseconds (`i64`), money is fen (`i64`).

pub mod alerts;
pub mod api_calls;
pub mod audit;
pub mod auth;
pub mod bodies;
pub mod customers;
pub mod db;
pub mod disk;
pub mod doctor;
pub mod error;
pub mod events;
pub mod exceptions;
pub mod leases;
pub mod notify;
pub mod orders;
pub mod own_openids;
pub mod password;
pub mod products;
pub mod reconcile;
pub mod refunds;
pub mod retention;
pub mod seed;
pub mod sessions;
pub mod sql;
mod sqlite_raw;
pub mod stats;
pub mod sync;
pub mod time;
pub mod users;
pub mod wal;

pub use db::{Backend, Db};
pub use error::CoreError;
pub use paydesk_types::{Fen, Role, Username};
pub use time::now_ms;

#[cfg(feature = "testing")]
pub mod testing;
