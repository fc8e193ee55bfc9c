//! The paydesk server: configuration, the axum router (dashboard, server functions,
//! operations endpoints), background jobs and the command line.
//!
//! [`startup::Application::build`] constructs everything from [`config::Settings`] so the
//! tests build exactly what production runs, bound to port 0 (docs/style.md §2).

pub mod cli;
pub mod config;
pub mod doctor;
pub mod jobs;
pub mod metrics;
pub mod middleware;
pub mod router;
pub mod routes;
pub mod sandbox;
pub mod startup;
pub mod state;
pub mod summary;
pub mod telemetry;

pub use router::router;
pub use startup::Application;
pub use state::AppState;
