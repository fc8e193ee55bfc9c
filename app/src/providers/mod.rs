//! Context providers.

pub mod auth;
