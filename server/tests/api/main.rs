//! HTTP tests: the real application on a loopback port, a real database per test (SQLite,
//! and PostgreSQL when the test command provides one), driven with reqwest.

mod helpers;

mod auth;
mod explain;
mod notify;
mod ops;
mod sync;
mod users;
