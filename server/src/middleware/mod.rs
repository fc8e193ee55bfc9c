//! What runs around the dashboard's handlers before they see a request: who the client is
//! ([`client_ip`]) and whether a mutation comes from the dashboard's own pages
//! ([`same_origin`]). Request metrics are in [`crate::metrics::track`].

pub mod client_ip;
pub mod same_origin;
