//! Domain primitives that both the server and the browser need.
//!
//! This crate has no features and no I/O so that `app` can use it when compiled to
//! WebAssembly; everything touching the database lives in `paydesk-core`, which re-exports
//! these types (docs/style.md §1, §6).

pub mod doctor;
mod event;
mod money;
mod paid_order;
mod reason;
mod role;
mod status;
mod time_fmt;
mod timeline;
mod username;
mod verdict;
mod wire;

pub use event::{Event, PaidVia};
pub use money::{grouped, Fen, ParseFenError};
pub use paid_order::PaidOrder;
pub use reason::{ConflictReason, ForbiddenReason, InvalidReason};
pub use role::{ParseRoleError, Role};
pub use status::{IllegalTransition, OrderStatus, RefundStatus};
pub use time_fmt::{
    duration_ms, format_shanghai, format_shanghai_date, shanghai_date_to_ms, unix_ms, DAY_MS,
    SHANGHAI, SHANGHAI_OFFSET_MS,
};
pub use timeline::{NotificationSummary, OrderEvent};
pub use username::{Username, UsernameError};
pub use verdict::Verdict;
pub use wire::UnknownName;

/// A `next=` redirect target made safe: only a path on this site (`/orders?x=1`), never
/// another origin (`//evil.example`, `https://…`, `/\evil`). Anything else becomes `/`.
pub fn safe_next(next: &str) -> String {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && next.len() <= 2048;
    if ok {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_redirects_stay_on_this_site() {
        assert_eq!(safe_next("/users?page=2"), "/users?page=2");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "",
            "/a\nb",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }
}
