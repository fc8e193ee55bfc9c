//! What runs around the dashboard's handlers: who the client is ([`client_ip`]), whether a
//! mutation comes from the dashboard's own pages ([`same_origin`]), and the protections
//! every response asks of the browser ([`security_headers`]). Request metrics are in
//! [`crate::metrics::track`].

pub mod client_ip;
pub mod same_origin;
pub mod security_headers;
