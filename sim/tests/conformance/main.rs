//! Conformance tests of paydesk-sim through the wxpay client: real HTTP on loopback, real
//! mutual TLS with the generated certificates, a small axum receiver for notifications.

mod bill_login;
mod common;
mod faults;
mod hosts;
mod notifications;
mod notify_urls;
mod orders;
mod reconciliation;
mod refunds;
mod restore;
mod sandbox;
mod unsigned;
