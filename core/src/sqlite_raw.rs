//! SQLite's C API for the two hot paths of payment notifications (the group commit's
//! transaction, notify/group_commit/sqlite.rs, and the order-key read on a cache miss,
//! order_keys.rs): plain function calls on the calling thread, with statements prepared
//! once. `libsqlite3-sys` is the same library and version sqlx-sqlite links, so these
//! connections share SQLite's per-process file locks with the pools' connections.
//!
//! Why: sqlx-sqlite runs every connection on a worker thread of its own, and each statement
//! is a message to that thread and an answer back — two thread wake-ups, which on a busy
//! 2-core machine cost more than the statement (docs/benchmarks.md, round 3).
//!
//! The one place in the workspace that allows unsafe code (Cargo.toml denies it), apart
//! from a test's mincore call in wal.rs. What
//! keeps it sound: a [`Handle`] is used by one owner at a time (it is `Send`, not `Sync`);
//! its statements live inside it and are named by index, so a statement can neither outlive
//! its connection nor be run on another one; text is bound without copying only for the
//! duration of one [`Handle::step`], which resets the statement and clears its bindings
//! before returning (so no read transaction stays open either).

#![allow(
    unsafe_code,
    reason = "SQLite's C API: every block below states why it is sound"
)]

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;

use crate::CoreError;

/// An open SQLite connection and the statements prepared on it; all closed when dropped.
pub(crate) struct Handle {
    db: NonNull<ffi::sqlite3>,
    statements: Vec<NonNull<ffi::sqlite3_stmt>>,
}

// SAFETY: the connection is opened with SQLITE_OPEN_NOMUTEX ("multi-thread" mode), in which
// SQLite allows using it from any thread as long as no two threads use it at once. `Handle`
// is not `Sync` and every call goes through `&self`/`&mut self` of its one owner, so it may
// move between threads but is never used by two at once.
unsafe impl Send for Handle {}

/// A statement prepared on a [`Handle`] (its index there).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatementId(usize);

/// A value to bind.
pub(crate) enum Value<'a> {
    Int(i64),
    Text(&'a str),
    Null,
}

impl<'a> Value<'a> {
    pub(crate) fn opt_text(v: Option<&'a str>) -> Value<'a> {
        v.map_or(Value::Null, Value::Text)
    }

    pub(crate) fn opt_int(v: Option<i64>) -> Value<'a> {
        v.map_or(Value::Null, Value::Int)
    }
}

/// What stepping a statement once gave.
pub(crate) enum Stepped<T> {
    /// A row (read by the caller's closure) or the end (`None`).
    Done(T),
    /// SQLITE_BUSY: another connection holds the lock.
    Busy,
}

/// The current row of a statement (only inside [`Handle::step`]'s closure).
pub(crate) struct Row<'s> {
    stmt: *mut ffi::sqlite3_stmt,
    _statement: std::marker::PhantomData<&'s ()>,
}

impl Row<'_> {
    pub(crate) fn int(&self, col: c_int) -> i64 {
        // SAFETY: the statement has a current row (Handle::step builds a Row only after
        // SQLITE_ROW and drops it before the reset); a column out of range reads as 0.
        unsafe { ffi::sqlite3_column_int64(self.stmt, col) }
    }

    pub(crate) fn opt_text(&self, col: c_int) -> Result<Option<&str>, CoreError> {
        // SAFETY: as in `int`. The text stays valid until the next step or reset of the
        // statement, which cannot happen while this Row (and so the &str) is borrowed.
        // Text first, then its length, as SQLite documents.
        unsafe {
            if ffi::sqlite3_column_type(self.stmt, col) == ffi::SQLITE_NULL {
                return Ok(None);
            }
            let text = ffi::sqlite3_column_text(self.stmt, col);
            let len = ffi::sqlite3_column_bytes(self.stmt, col);
            if text.is_null() {
                return Err(error("reading a column", ffi::SQLITE_NOMEM, None));
            }
            let bytes = std::slice::from_raw_parts(text, usize::try_from(len).unwrap_or(0));
            std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|e| CoreError::Internal(anyhow::anyhow!("SQLite text column: {e}")))
        }
    }

    pub(crate) fn text(&self, col: c_int) -> Result<&str, CoreError> {
        self.opt_text(col)?.ok_or_else(|| {
            CoreError::Internal(anyhow::anyhow!("SQLite: column {col} is unexpectedly null"))
        })
    }
}

/// Bytes of a statement journal SQLite keeps in memory, in one piece, before it moves the
/// journal to a temporary file ([`configure_once`]).
const STATEMENT_JOURNAL_SPILL: usize = 1 << 20;

/// SQLite's process-wide settings, made once, before the process's first SQLite connection
/// ([`crate::Db`] calls this before it opens its pools).
///
/// Memory statistics off (`SQLITE_CONFIG_MEMSTATUS`). With them on, SQLite's default,
/// every allocation SQLite makes takes a process-wide mutex to count it for
/// `sqlite3_memory_used`, which paydesk never reads: `pthread_mutex_lock` and `unlock` were
/// about 5 % of the notification committer's samples (perf, docs/benchmarks.md).
///
/// Statement journals kept in memory up to [`STATEMENT_JOURNAL_SPILL`] in one allocation
/// (`SQLITE_CONFIG_STMTJRNL_SPILL`, SQLite's default 64 KiB). A statement that fires
/// triggers keeps the original of every page it changes, so that it can be undone alone: a
/// payment's update, with the totals' and the alert's triggers, journals about a dozen
/// pages (~48 KiB), more when a B-tree page splits. Past the threshold SQLite moved the
/// journal to a temporary file for the rest of the transaction; kept in memory instead with
/// `temp_store = memory`, it grew in 1 KiB pieces, each its own `malloc` and `free`: ~48 of
/// each per payment on the committer, ~17 % of its instructions (callgrind,
/// docs/benchmarks.md, issue 18). With a threshold of 1 MiB a statement's journal is one
/// allocation, given back when the statement ends; only the connection holding the write
/// lock writes one, so this is about 1 MiB per database at a time. (glibc serves it from
/// the heap once it has raised its mmap threshold after the first free, its default
/// behaviour; a fixed `MALLOC_MMAP_THRESHOLD_` below 1 MiB would make each one an mmap.)
pub(crate) fn configure_once() {
    static CONFIGURED: std::sync::Once = std::sync::Once::new();
    CONFIGURED.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int. sqlite3_config must run before
        // SQLite is initialised and while no other thread uses it: this runs before the
        // process's first connection, and concurrent first callers wait on the `Once`. If
        // SQLite was initialised already (something opened a database another way first),
        // the call is refused with SQLITE_MISUSE and changes nothing.
        let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
        if rc != ffi::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialised before its settings; memory statistics stay on"
            );
        }
        // SAFETY: SQLITE_CONFIG_STMTJRNL_SPILL takes one int; the same conditions as above.
        let rc = unsafe {
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_STMTJRNL_SPILL,
                STATEMENT_JOURNAL_SPILL as c_int,
            )
        };
        if rc != ffi::SQLITE_OK {
            // Not fatal, but the notification committer is slower for it (its statement
            // journals go to a temporary file past 64 KiB): say so where an operator looks.
            tracing::warn!(
                rc,
                "SQLite was initialised before its settings; statement journals spill to a \
                 file past 64 KiB"
            );
        }
    });
}

impl Handle {
    /// Opens an existing database file (read-write, no mutex: see `Send` above) and runs
    /// `setup` (pragmas).
    pub(crate) fn open(path: &Path, setup: &str) -> Result<Handle, CoreError> {
        let name = path
            .to_str()
            .and_then(|p| CString::new(p).ok())
            .ok_or_else(|| {
                CoreError::Internal(anyhow::anyhow!("SQLite path {path:?} is not plain UTF-8"))
            })?;
        let mut db = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated and outlives the call; `db` receives the handle
        // (null only when SQLite could not allocate one).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                name.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                ptr::null(),
            )
        };
        let Some(db) = NonNull::new(db) else {
            return Err(error("opening the database", ffi::SQLITE_NOMEM, None));
        };
        // Closed on drop from here, also when opening failed (the handle holds the error).
        let handle = Handle {
            db,
            statements: Vec::new(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(handle.error("opening the database", rc));
        }
        let setup = CString::new(setup).map_err(|e| CoreError::Internal(e.into()))?;
        // SAFETY: a valid handle and a NUL-terminated script; no callback.
        let rc = unsafe {
            ffi::sqlite3_exec(
                handle.db.as_ptr(),
                setup.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(handle.error("setting up the connection", rc));
        }
        Ok(handle)
    }

    /// Prepares `sql` once, for the life of the connection. SQLite re-prepares it by itself
    /// after a schema change (v3 interface).
    pub(crate) fn prepare(&mut self, sql: &str) -> Result<StatementId, CoreError> {
        let len = c_int::try_from(sql.len()).map_err(|e| CoreError::Internal(e.into()))?;
        let mut stmt = ptr::null_mut();
        // SAFETY: a valid handle; `sql` is read for exactly `len` bytes during the call.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if rc == ffi::SQLITE_OK => {
                self.statements.push(stmt);
                Ok(StatementId(self.statements.len() - 1))
            }
            _ => Err(self.error("preparing a statement", rc)),
        }
    }

    /// Binds `params`, steps the statement once and hands the row it produced (`None` at
    /// the end, and for statements without rows) to `read`; then resets the statement and
    /// clears its bindings, so nothing bound outlives the call and no read stays open.
    pub(crate) fn step<T>(
        &self,
        id: StatementId,
        params: &[Value<'_>],
        read: impl FnOnce(Option<Row<'_>>) -> T,
    ) -> Result<T, CoreError> {
        match self.try_step(id, params, read)? {
            Stepped::Done(t) => Ok(t),
            Stepped::Busy => Err(self.error("running a statement", ffi::SQLITE_BUSY)),
        }
    }

    /// [`Handle::step`], telling SQLITE_BUSY apart from other errors.
    pub(crate) fn try_step<T>(
        &self,
        id: StatementId,
        params: &[Value<'_>],
        read: impl FnOnce(Option<Row<'_>>) -> T,
    ) -> Result<Stepped<T>, CoreError> {
        let s = self
            .statements
            .get(id.0)
            .ok_or_else(|| CoreError::Internal(anyhow::anyhow!("no SQLite statement {}", id.0)))?
            .as_ptr();
        let result = self.bind(s, params).and_then(|()| {
            // SAFETY: a statement of this handle with every parameter bound to a value that
            // lives until the reset below.
            let rc = unsafe { ffi::sqlite3_step(s) };
            match rc {
                ffi::SQLITE_ROW => Ok(Stepped::Done(read(Some(Row {
                    stmt: s,
                    _statement: std::marker::PhantomData,
                })))),
                ffi::SQLITE_DONE => Ok(Stepped::Done(read(None))),
                rc if rc & 0xff == ffi::SQLITE_BUSY => Ok(Stepped::Busy),
                rc => Err(self.error("running a statement", rc)),
            }
        });
        // SAFETY: a statement of this handle; afterwards it holds no pointer into `params`.
        unsafe {
            ffi::sqlite3_reset(s);
            ffi::sqlite3_clear_bindings(s);
        }
        result
    }

    fn bind(&self, s: *mut ffi::sqlite3_stmt, params: &[Value<'_>]) -> Result<(), CoreError> {
        for (i, value) in params.iter().enumerate() {
            let i = c_int::try_from(i + 1).map_err(|e| CoreError::Internal(e.into()))?;
            // SAFETY: a statement of this handle. Text is bound with SQLITE_STATIC (no copy):
            // `try_step` resets the statement and clears the bindings before returning, while
            // the borrowed text is still alive.
            let rc = unsafe {
                match *value {
                    Value::Int(v) => ffi::sqlite3_bind_int64(s, i, v),
                    Value::Null => ffi::sqlite3_bind_null(s, i),
                    Value::Text(t) => ffi::sqlite3_bind_text64(
                        s,
                        i,
                        t.as_ptr().cast::<c_char>(),
                        t.len() as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.error("binding a value", rc));
            }
        }
        Ok(())
    }

    /// Rows changed by the last insert, update or delete.
    pub(crate) fn changes(&self) -> i64 {
        // SAFETY: a valid handle.
        unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) }
    }

    /// The rowid of the last insert.
    pub(crate) fn last_insert_rowid(&self) -> i64 {
        // SAFETY: a valid handle.
        unsafe { ffi::sqlite3_last_insert_rowid(self.db.as_ptr()) }
    }

    /// Whether no transaction is open.
    /// Pages this connection wrote to the database or its write-ahead log (in WAL mode:
    /// log frames) and pages it had to read from the file (not in its own cache) since the
    /// last call: SQLite's `SQLITE_DBSTATUS_CACHE_WRITE` and `_CACHE_MISS`, reset on read.
    pub(crate) fn take_page_counters(&self) -> (u64, u64) {
        let take = |op: c_int| {
            let (mut current, mut highwater) = (0 as c_int, 0 as c_int);
            // SAFETY: a valid handle and two valid out-pointers; the call only reads and
            // resets the connection's counters.
            let rc = unsafe {
                ffi::sqlite3_db_status(self.db.as_ptr(), op, &mut current, &mut highwater, 1)
            };
            if rc == ffi::SQLITE_OK {
                u64::try_from(current).unwrap_or(0)
            } else {
                0
            }
        };
        (
            take(ffi::SQLITE_DBSTATUS_CACHE_WRITE),
            take(ffi::SQLITE_DBSTATUS_CACHE_MISS),
        )
    }

    pub(crate) fn autocommit(&self) -> bool {
        // SAFETY: a valid handle.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) != 0 }
    }

    fn error(&self, doing: &str, rc: c_int) -> CoreError {
        // SAFETY: a valid handle; the message is copied before any other call on it.
        let message = unsafe {
            let m = ffi::sqlite3_errmsg(self.db.as_ptr());
            (!m.is_null()).then(|| CStr::from_ptr(m).to_string_lossy().into_owned())
        };
        error(doing, rc, message)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: each statement was prepared on this handle and is finalized only here,
        // once; then the handle, opened by sqlite3_open_v2, is closed only here, once, with
        // no statement left.
        unsafe {
            for stmt in self.statements.drain(..) {
                ffi::sqlite3_finalize(stmt.as_ptr());
            }
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

fn error(doing: &str, rc: c_int, message: Option<String>) -> CoreError {
    // SAFETY: sqlite3_errstr returns a static string for any code.
    let name = unsafe { CStr::from_ptr(ffi::sqlite3_errstr(rc)) }.to_string_lossy();
    CoreError::Internal(anyhow::anyhow!(
        "SQLite error {rc} ({name}) {doing}: {}",
        message.as_deref().unwrap_or("-")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        std::fs::File::create(&path).unwrap();
        (dir, path)
    }

    #[test]
    fn binds_steps_and_reads_back() {
        let (_dir, path) = temp_db();
        let mut h = Handle::open(&path, "create table t (id integer primary key, s text)").unwrap();
        let insert = h.prepare("insert into t (s) values (?1)").unwrap();
        let select = h.prepare("select id, s from t where id = ?1").unwrap();
        // Text bound without copying, from a String that is dropped right after the call.
        for s in [Some("first"), None] {
            let owned = s.map(str::to_owned);
            h.step(insert, &[Value::opt_text(owned.as_deref())], |_| ())
                .unwrap();
        }
        assert_eq!(h.changes(), 1);
        assert_eq!(h.last_insert_rowid(), 2);
        let read = |id| {
            h.step(select, &[Value::Int(id)], |row| {
                row.map(|r| (r.int(0), r.opt_text(1).unwrap().map(str::to_owned)))
            })
            .unwrap()
        };
        assert_eq!(read(1), Some((1, Some("first".to_owned()))));
        assert_eq!(read(2), Some((2, None)));
        assert_eq!(read(3), None);
        assert!(h.autocommit());
    }

    #[test]
    fn errors_carry_sqlite_messages_and_a_second_connection_sees_busy() {
        let (_dir, path) = temp_db();
        let mut a = Handle::open(&path, "pragma journal_mode = wal; create table t (x)").unwrap();
        let mut b = Handle::open(&path, "pragma busy_timeout = 0").unwrap();
        let bad = a.prepare("select nope from t").map(|_| ()).unwrap_err();
        assert!(format!("{bad:?}").contains("no such column"), "{bad:?}");
        let begin_a = a.prepare("begin immediate").unwrap();
        let begin_b = b.prepare("begin immediate").unwrap();
        assert!(matches!(
            a.try_step(begin_a, &[], |_| ()).unwrap(),
            Stepped::Done(())
        ));
        assert!(!a.autocommit());
        assert!(matches!(
            b.try_step(begin_b, &[], |_| ()).unwrap(),
            Stepped::Busy
        ));
        // A statement id from another handle is refused, not run there.
        assert!(a.step(StatementId(99), &[], |_| ()).is_err());
    }
}
