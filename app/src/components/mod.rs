//! Shared components.

pub mod body;
pub mod filtered_list;
pub mod live;
pub mod pager;
pub mod shell;
pub mod status;
pub mod table;
