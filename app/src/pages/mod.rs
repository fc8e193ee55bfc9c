//! One routed page per module (style.md §12).

pub mod account;
pub mod login;
pub mod logs;
pub mod not_found;
pub mod products;
pub mod refunds;
pub mod users;
