//! Shared components.

pub mod shell;
