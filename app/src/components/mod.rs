//! Shared components.

pub mod live;
pub mod shell;
