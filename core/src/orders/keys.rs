//! What a payment notification needs to know about its order before it can be verified and
//! applied, kept in memory: `out_trade_no → (id, sign_type, total_fee)`.
//!
//! Those columns never change once an order is created (nothing updates them, and orders are
//! never deleted), so an entry is correct for as long as the database lives and needs no
//! invalidation: another instance on the same PostgreSQL cannot make it stale. The status is
//! deliberately not here; the conditional update of the group commit alone decides `PAID`.
//! A miss (an order created by another process, or evicted) just reads the database.
//!
//! Only committed orders go in: [`crate::orders::create_order`] adds its order after the
//! commit, and lookups add what they read. Bounded by two generations: new entries go into
//! the young map; when it is full the old map is dropped and the young one becomes old. A hit
//! in the old map moves the entry to the young one, so orders in use stay.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use wxpay::SignType;

use crate::sqlite_raw::{Handle, StatementId, Value};
use crate::CoreError;

/// The immutable part of an order that a notification is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderKey {
    /// Row id.
    pub id: i64,
    /// The merchant order number.
    pub out_trade_no: String,
    /// The algorithm its notifications are verified with.
    pub sign_type: SignType,
    /// The amount in fen.
    pub total_fee: i64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: i64,
    sign_type: SignType,
    total_fee: i64,
}

/// Entries per generation: at most twice this many are held.
pub(crate) const GENERATION: usize = 50_000;

/// The bounded map (one per [`crate::Db`], shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct OrderKeys {
    maps: Mutex<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<String, Entry>,
    old: HashMap<String, Entry>,
}

impl Generations {
    fn insert(&mut self, out_trade_no: String, entry: Entry) {
        if self.young.len() >= GENERATION && !self.young.contains_key(&out_trade_no) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(out_trade_no, entry);
    }
}

impl OrderKeys {
    /// The order with this `out_trade_no`, if it is held.
    pub(crate) fn get(&self, out_trade_no: &str) -> Option<OrderKey> {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let entry = match maps.young.get(out_trade_no) {
            Some(e) => *e,
            None => {
                let (key, e) = maps.old.remove_entry(out_trade_no)?;
                maps.insert(key, e);
                e
            }
        };
        Some(OrderKey {
            id: entry.id,
            out_trade_no: out_trade_no.to_owned(),
            sign_type: entry.sign_type,
            total_fee: entry.total_fee,
        })
    }

    /// Remembers a committed order.
    pub(crate) fn insert(&self, key: &OrderKey) {
        let entry = Entry {
            id: key.id,
            sign_type: key.sign_type,
            total_fee: key.total_fee,
        };
        self.maps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.out_trade_no.clone(), entry);
    }

    /// How many entries are held (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        let maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        maps.young.len() + maps.old.len()
    }
}

/// SQLite: the read behind a miss, on the calling thread through SQLite's C API
/// (sqlite_raw.rs), instead of a round trip to a reader-pool connection's worker thread.
/// One indexed lookup, done in microseconds, so it runs inline; connections are opened on
/// demand and a few idle ones kept (a read holds one only for its own duration, so there
/// are never more than threads reading at once).
#[derive(Debug)]
pub(crate) struct KeyReaders {
    path: PathBuf,
    idle: Mutex<Vec<KeyReader>>,
}

struct KeyReader {
    handle: Handle,
    select: StatementId,
}

impl fmt::Debug for KeyReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyReader").finish_non_exhaustive()
    }
}

/// Idle read connections kept.
const IDLE_READERS: usize = 4;

impl KeyReaders {
    pub(crate) fn new(path: PathBuf) -> KeyReaders {
        KeyReaders {
            path,
            idle: Mutex::default(),
        }
    }

    /// `(id, sign_type, total_fee)` of the order with this `out_trade_no`, if any. An error
    /// (the file unreadable, SQLITE_BUSY during WAL recovery) leaves the caller to read
    /// through the pool instead.
    pub(crate) fn read(&self, out_trade_no: &str) -> Result<Option<(i64, String, i64)>, CoreError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let reader = match idle {
            Some(reader) => reader,
            None => {
                let mut handle = Handle::open(&self.path, "pragma query_only = 1")?;
                let select = handle.prepare(
                    "select id, sign_type, total_fee from orders where out_trade_no = ?1",
                )?;
                KeyReader { handle, select }
            }
        };
        let row = reader
            .handle
            .step(reader.select, &[Value::Text(out_trade_no)], |row| {
                row.map(|r| -> Result<_, CoreError> {
                    Ok((r.int(0), r.text(1)?.to_owned(), r.int(2)))
                })
                .transpose()
            })??;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(reader);
        }
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: i64) -> OrderKey {
        OrderKey {
            id: i,
            out_trade_no: format!("o{i}"),
            sign_type: SignType::Md5,
            total_fee: i * 10,
        }
    }

    #[test]
    fn holds_at_most_two_generations_and_keeps_what_is_used() {
        let keys = OrderKeys::default();
        keys.insert(&key(0));
        for i in 1..=(2 * GENERATION as i64) {
            keys.insert(&key(i));
            if i % 1000 == 0 {
                // Order 0 is used now and then: it survives every turnover.
                assert_eq!(keys.get("o0"), Some(key(0)));
            }
        }
        assert!(keys.len() <= 2 * GENERATION, "{}", keys.len());
        assert_eq!(keys.get("o0"), Some(key(0)));
        assert_eq!(keys.get("o1"), None, "the oldest unused entries went");
        let last = 2 * GENERATION as i64;
        assert_eq!(keys.get(&format!("o{last}")), Some(key(last)));
    }
}
