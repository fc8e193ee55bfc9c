//! The shared SQL builder: a `where` clause built from the filters actually set, with its
//! values bound in order, and keyset pagination (`created_at desc, id desc`) for every list
//! (orders, notifications, API calls).
//!
//! Every query is built from the filters actually set, so each engine plans it with the
//! real constraints and picks the matching index: an `(x is null or col = x)` predicate
//! would hide the constraint from SQLite's planner and force a scan. Values are always
//! bound; only names from our own enums (never from input) are written into the SQL text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::orders::Order;

/// A bound value of a built query.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// A `where` clause under construction, with its `$n` placeholders numbered in order.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    pub(crate) sql: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Conditions {
    /// Adds `arg` and returns its placeholder.
    pub(crate) fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub(crate) fn push(&mut self, condition: String) {
        self.sql.push(condition);
    }

    /// `where a and b …`, or nothing.
    pub(crate) fn where_clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("where {}", self.sql.join(" and "))
        }
    }
}

/// Binds `args` to a query in order.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// Adds the keyset condition "after `cursor`" for a list ordered by `time_col desc, id desc`.
/// `time_col <= at` gives both engines a range to start the index walk at (see
/// [`list_orders`]).
pub(crate) fn push_after(c: &mut Conditions, time_col: &str, cursor: &Cursor) {
    let at = c.bind(Arg::Int(cursor.created_at));
    let id = c.bind(Arg::Int(cursor.id));
    c.push(format!(
        "{time_col} <= {at} and ({time_col} < {at} or id < {id})"
    ));
}

/// Cuts a page fetched with one row more than `limit` back to `limit`, and returns the
/// cursor for the next page when that extra row was there.
pub(crate) fn finish_page<T>(
    rows: &mut Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> Cursor,
) -> Option<Cursor> {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(cursor)
    } else {
        None
    }
}

/// Where the next page starts: the `(created_at, id)` of the last order shown. Opaque to
/// the browser ([`Cursor::encode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last order's `created_at` (UTC ms).
    pub created_at: i64,
    /// The last order's id.
    pub id: i64,
}

impl Cursor {
    /// URL-safe text for a `?after=` parameter.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.created_at, self.id))
    }

    /// The cursor [`Cursor::encode`] made, or `None` for anything else (a tampered or
    /// truncated parameter just starts from the first page).
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let (created_at, id) = text.split_once('.')?;
        Some(Cursor {
            created_at: created_at.parse().ok()?,
            id: id.parse().ok()?,
        })
    }

    /// Where the page after `order` starts.
    pub(crate) fn of(order: &Order) -> Cursor {
        Cursor {
            created_at: order.created_at,
            id: order.id,
        }
    }
}

/// `$first, $first+1, …`: `n` numbered placeholders for an `in (…)` list of bound values.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_garbage_is_none() {
        let c = Cursor {
            created_at: 1_795_365_000_123,
            id: 42,
        };
        let text = c.encode();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&text), Some(c));
        for bad in ["", "!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("1.x")] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
