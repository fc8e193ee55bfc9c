//! The notification rows the database refused (it was down, read-only or full), kept in
//! memory until it takes writes again (the server's backlog job writes them), bounded in
//! bytes ([`super::FloodPolicy::backlog_bytes`]).
//!
//! A flood during an outage must not push out what matters: when a row does not fit, the
//! oldest *refused* rows (nothing verified them) go first, and they are counted in
//! `refused_callback_counts` instead, so every refused callback is still stored or
//! counted. Only a backlog of verified rows alone can lose its oldest (logged as an
//! error). Even then the notification itself is not lost: while the database refused its
//! write it was answered `FAIL`, so WeChat Pay sends it again.

use std::collections::VecDeque;

use super::Unrecorded;

/// What a row is reckoned to cost in memory besides its text.
const ROW_OVERHEAD: usize = 160;

/// The rows waiting for the database: verified ones and refused ones, each oldest first.
#[derive(Debug)]
pub(crate) struct Backlog {
    verified: VecDeque<Unrecorded>,
    refused: VecDeque<Unrecorded>,
    bytes: usize,
    limit: usize,
}

impl Unrecorded {
    /// What this row holds in memory, roughly.
    fn size(&self) -> usize {
        ROW_OVERHEAD
            + self.raw_body.len()
            + self.detail.len()
            + self.peer.as_ref().map_or(0, String::len)
            + self.out_trade_no.as_ref().map_or(0, String::len)
            + self.transaction_id.as_ref().map_or(0, String::len)
    }
}

impl Backlog {
    /// An empty backlog that keeps at most `limit` bytes of rows.
    pub(crate) fn new(limit: usize) -> Backlog {
        Backlog {
            verified: VecDeque::new(),
            refused: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Rows waiting.
    pub(crate) fn len(&self) -> usize {
        self.verified.len() + self.refused.len()
    }

    /// Bytes held (as [`Unrecorded::size`] reckons them).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps `row`, making room by evicting refused rows first (the oldest first); returns
    /// the refused rows that did not fit (`row` itself among them when nothing verified
    /// could make way for it), for the caller to count.
    pub(crate) fn push(&mut self, row: Unrecorded) -> Vec<Unrecorded> {
        let size = row.size();
        let mut evicted = Vec::new();
        while self.bytes + size > self.limit {
            if let Some(old) = self.refused.pop_front() {
                self.bytes -= old.size();
                evicted.push(old);
            } else if !row.verified {
                evicted.push(row);
                return evicted;
            } else if let Some(old) = self.verified.pop_front() {
                self.bytes -= old.size();
                tracing::error!(
                    order.out_trade_no = old.out_trade_no.as_deref().unwrap_or("-"),
                    "notification backlog full of verified rows: the oldest is not recorded (WeChat Pay was answered FAIL and resends it)"
                );
            } else {
                // One row larger than the whole limit: kept, alone.
                break;
            }
        }
        self.bytes += size;
        if row.verified {
            self.verified.push_back(row);
        } else {
            self.refused.push_back(row);
        }
        evicted
    }

    /// Takes the next row to write: verified ones first, each kind oldest first.
    pub(crate) fn take(&mut self) -> Option<Unrecorded> {
        let row = self
            .verified
            .pop_front()
            .or_else(|| self.refused.pop_front())?;
        self.bytes -= row.size();
        Some(row)
    }

    /// Puts back a row [`Backlog::take`] gave out and could not write, in front of its kind
    /// (it is allowed past the limit: it was in before).
    pub(crate) fn put_back(&mut self, row: Unrecorded) {
        self.bytes += row.size();
        if row.verified {
            self.verified.push_front(row);
        } else {
            self.refused.push_front(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Unrecorded, Verdict};
    use super::*;

    fn row(verified: bool, body_len: usize, tag: &str) -> Unrecorded {
        Unrecorded {
            kind: "payment",
            received_at: 0,
            peer: Some("203.0.113.9:1".into()),
            raw_body: "x".repeat(body_len),
            raw_length: None,
            out_trade_no: Some(tag.into()),
            transaction_id: None,
            total_fee: None,
            verdict: if verified {
                Verdict::InternalError
            } else {
                Verdict::Malformed
            },
            detail: String::new(),
            duration_us: 0,
            order_id: None,
            verified,
        }
    }

    fn tags(b: &mut Backlog) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(r) = b.take() {
            out.push(r.out_trade_no.unwrap());
        }
        out
    }

    #[test]
    fn the_backlog_is_bounded_in_bytes_and_evicts_refused_rows_before_verified_ones() {
        // Arrange: room for about ten 1,000-byte rows
        let one = row(true, 1000, "v00").size();
        let mut b = Backlog::new(10 * one);
        for k in 0..4 {
            assert!(b.push(row(true, 1000, &format!("v{k:02}"))).is_empty());
        }
        for k in 0..6 {
            assert!(b.push(row(false, 1000, &format!("r{k:02}"))).is_empty());
        }
        assert_eq!(b.bytes(), 10 * one);

        // Act: three more verified rows, then a refused one when only verified rows are left
        let mut evicted = Vec::new();
        for k in 4..7 {
            evicted.extend(b.push(row(true, 1000, &format!("v{k:02}"))));
        }
        for k in 7..11 {
            evicted.extend(b.push(row(true, 1000, &format!("v{k:02}"))));
        }
        let refused_new = b.push(row(false, 1000, "rnw"));

        // Assert: the refused rows went first, oldest first, and are handed back to be
        // counted; then the newest refused row itself; the bound held throughout
        let evicted: Vec<_> = evicted
            .into_iter()
            .map(|r| r.out_trade_no.unwrap())
            .collect();
        assert_eq!(evicted, ["r00", "r01", "r02", "r03", "r04", "r05"]);
        assert_eq!(refused_new.len(), 1);
        assert!(b.bytes() <= 10 * one);
        assert_eq!(b.len(), 10);
        let kept = tags(&mut b);
        assert_eq!(
            kept,
            ["v01", "v02", "v03", "v04", "v05", "v06", "v07", "v08", "v09", "v10"]
        );
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn a_row_put_back_is_written_first_next_time() {
        let mut b = Backlog::new(1 << 20);
        b.push(row(false, 10, "r0"));
        b.push(row(true, 10, "v0"));
        let first = b.take().unwrap();
        assert_eq!(first.out_trade_no.as_deref(), Some("v0"));
        b.put_back(first);
        assert_eq!(tags(&mut b), ["v0", "r0"]);
    }
}
