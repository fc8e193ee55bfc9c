//! One routed page per module (docs/style.md §12).

pub mod account;
pub mod audit;
pub mod exceptions;
pub mod home;
pub mod login;
pub mod logs;
pub mod not_found;
pub mod order_detail;
pub mod orders;
pub mod products;
pub mod reconciliation;
pub mod refunds;
pub mod settings;
pub mod users;
