//! Shared components.

pub mod body;
pub mod filtered_list;
pub mod form;
pub mod live;
pub mod page;
pub mod pager;
pub mod shell;
pub mod status;
pub mod table;
