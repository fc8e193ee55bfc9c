//! HTTP routes that are not dashboard pages. Each module exposes `router()`, merged in
//! [`crate::router::router`] (docs/style.md §9).

pub mod assets;
pub mod events;
pub mod mp;
pub mod ops;
pub mod orders;
pub mod prefs;
pub mod wxpay;
