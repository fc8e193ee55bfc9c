//! HTTP tests: the real application on a loopback port, a real database per test (SQLite,
//! and PostgreSQL when the test command provides one), driven with reqwest.

mod callbacks;
mod helpers;

mod alerts;
mod assets;
mod auth;
mod dashboard_admin;
mod demo;
mod doctor;
mod doctor_panel;
mod events;
mod explain;
mod failover;
mod flood;
mod hostile_bodies;
mod logs;
mod mp;
mod mp_limits;
mod notify;
mod notify_failures;
mod notify_urls;
mod ops;
mod orders_dashboard;
mod products;
mod protocol;
mod reconcile;
mod refund_crash;
mod refunds;
mod refunds_dashboard;
mod retention;
mod roles;
mod sandbox;
mod sandbox_key;
mod sync;
mod throttles;
mod users;
