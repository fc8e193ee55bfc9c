//! Domain primitives that both the server and the browser need.
//!
//! This crate has no features and no I/O so that `app` can use it when compiled to
//! WebAssembly; everything touching the database lives in `paydesk-core`, which re-exports
//! these types (style.md §1, §6).

mod money;
mod role;
mod time_fmt;
mod username;

pub use money::{Fen, ParseFenError};
pub use role::{ParseRoleError, Role};
pub use time_fmt::{format_shanghai, format_shanghai_date, SHANGHAI};
pub use username::{Username, UsernameError};
