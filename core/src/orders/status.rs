//! The order state machine (docs/design.md "Data"): `OrderStatus` and its transitions live
//! in `paydesk-types` (the browser shows them too); [`super::transitions`] is the only
//! writer of `orders.status`.

pub use paydesk_types::{IllegalTransition, OrderStatus};
