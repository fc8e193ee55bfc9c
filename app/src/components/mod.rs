//! Shared components.

pub mod live;
pub mod shell;
pub mod status;
