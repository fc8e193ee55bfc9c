//! The callback flood (issue 15): anyone can POST to the callback URLs as fast as the
//! network allows, so what a refused callback costs is bounded here, while verified
//! notifications never pass through this module (their path is `check` → group commit).
//!
//! A callback that nothing verified (malformed, forbidden XML, bad signature, a refund's
//! `req_info` that does not decrypt, an unsigned refund envelope for another merchant) is
//! - stored cut to a prefix ([`FloodPolicy::refused_body_bytes`], 8 KiB) with its full
//!   length, while its sender is within its allowance
//!   ([`FloodPolicy::refused_per_minute`] stored a minute);
//! - beyond that, counted: one row per sender, cause and minute in
//!   `refused_callback_counts`, the increments gathered in memory and added by one upsert
//!   a second ([`Refusals::flush`], run by the server's backlog job), so a flood costs no
//!   database write per request.
//!
//! All senders together store at most [`ALL_SENDERS_FACTOR`] times that a minute, and one
//! instance tallies at most [`MAX_SENDERS_PER_MINUTE`] senders by name a minute (the rest as
//! [`OTHER_SENDERS`]): an attacker with many addresses is bounded like one with a single
//! address, in rows and in bytes.
//!
//! The allowance holds across instances: before storing one, an instance claims it in the
//! database (`refused_callback_counts.stored`, in the transaction that stores the row). The
//! in-process fast path only remembers, for the current minute, the senders the database
//! already said no for, so a flooding sender costs one lookup in memory per request after
//! its allowance is used. On PostgreSQL two claims of one sender for two causes at the same
//! instant can both pass (each reads the other's row before it commits): the allowance is
//! exceeded by at most the number of such concurrent transactions (one per instance: an
//! instance stores one refused callback at a time). SQLite has one writer.
//!
//! **Beyond the allowance, what names us is still stored.** When a merchant's key is wrong
//! every real callback fails verification, and those rows are what a person needs to see
//! and recover from, whoever floods meanwhile. So a payment notification that parses and
//! names one of our orders, and a refund envelope with our appid and mch_id, are stored
//! even from a sender over its allowance — within their own bounds, since both can be
//! forged by anyone who knows an order number or our (public) appid:
//! - an order: at most [`PER_ORDER_PER_DAY`] refused rows naming it in 24 hours. WeChat Pay
//!   sends one notification at most 16 times in 24 h (docs/wechatpay-v2.md §8.8's retry schedule), so twice
//!   that keeps every real delivery and its duplicates; a forger naming every order we have
//!   adds at most that many 8 KiB prefixes per real order a day, not per request.
//! - refund envelopes for our merchant: at most [`FloodPolicy::refused_per_minute`] such
//!   refused rows a minute from all senders together (real refund notifications come a few
//!   a minute at most; `req_info` carries nothing readable without the key).
//!
//! Both bounds are counts over `notifications` indexes that exist anyway
//! (`out_trade_no`, and `kind, verdict, received_at`), and only run for a sender already
//! over its allowance.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use sqlx::{Any, Transaction};

use super::{NotificationRow, Refusal, Verdict};
use crate::{now_ms, CoreError, Db};

/// What a refused callback may cost. `PAYDESK_CALLBACKS__…` in the server's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodPolicy {
    /// Refused callbacks stored per sender per minute, across all instances; beyond it
    /// they are counted.
    pub refused_per_minute: u32,
    /// How much of a refused body is stored (bytes).
    pub refused_body_bytes: usize,
    /// How many bytes of rows the in-memory backlog keeps while the database refuses
    /// writes (backlog.rs).
    pub backlog_bytes: usize,
    /// How long the answer to a refusal that was only counted is held back (ms; 0 answers
    /// at once): see [`Refusals::hold`].
    pub hold_ms: u64,
}

/// [`FloodPolicy::refused_per_minute`] by default.
pub const DEFAULT_REFUSED_PER_MINUTE: u32 = 60;
/// [`FloodPolicy::refused_body_bytes`] by default: 8 KiB, eight times the largest real
/// notification.
pub const DEFAULT_REFUSED_BODY_BYTES: usize = 8 * 1024;
/// [`FloodPolicy::backlog_bytes`] by default: 64 MiB.
pub const DEFAULT_BACKLOG_BYTES: usize = 64 * 1024 * 1024;
/// [`FloodPolicy::hold_ms`] by default: one second, far below WeChat Pay's wait for an
/// answer, far above what answering costs.
pub const DEFAULT_HOLD_MS: u64 = 1000;

/// How long a refused callback waits for its turn to be stored ([`Refusals::store_within`]):
/// beyond it the database is too slow for the queue, and waiting longer would only keep
/// connections and bodies.
const STORING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Answers held back at once ([`Refusals::hold`]); beyond it they go out at once, so a
/// flood on very many connections costs a bounded number of timers, not memory.
pub const MAX_HELD: usize = 4096;

impl Default for FloodPolicy {
    fn default() -> Self {
        FloodPolicy {
            refused_per_minute: DEFAULT_REFUSED_PER_MINUTE,
            refused_body_bytes: DEFAULT_REFUSED_BODY_BYTES,
            backlog_bytes: DEFAULT_BACKLOG_BYTES,
            hold_ms: DEFAULT_HOLD_MS,
        }
    }
}

/// Refused callbacks stored per minute from all senders together, as a multiple of
/// [`FloodPolicy::refused_per_minute`]: an attacker holding many addresses (an IPv6 /48 is
/// 65,536 senders of /64) gets each one's allowance, so without this the disk would fill
/// with 8 KiB prefixes as fast as they send. With the defaults, 240 a minute: at most
/// about 2 MB a minute of prefixes, whatever the number of senders.
pub const ALL_SENDERS_FACTOR: i64 = 4;

/// Distinct senders tallied per minute by one instance; the rest of that minute's senders
/// are counted together as [`OTHER_SENDERS`], so `refused_callback_counts` grows by a
/// bounded number of rows a minute however many addresses a flood comes from.
pub const MAX_SENDERS_PER_MINUTE: usize = 1024;

/// Refused rows naming one order stored in 24 hours beyond the senders' allowances (see the
/// module doc for why 32).
pub const PER_ORDER_PER_DAY: i64 = 32;

/// What an unverified callback claims to be about, in the clear (module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) enum Named {
    /// Nothing of ours.
    #[default]
    Nothing,
    /// A payment notification naming this order of ours (`out_trade_no`).
    Order(String),
    /// A refund envelope with our appid and mch_id.
    Merchant,
}

/// The start of the minute `at` (UTC ms) falls in.
pub(crate) fn minute_of(at: i64) -> i64 {
    at - at.rem_euclid(60_000)
}

/// The sender a limit applies to, from the stored peer (`address:port`, or an address
/// forwarded by a trusted proxy): the address without the port, and for IPv6 its /64 (one
/// host usually holds a whole /64, so its addresses are one sender).
pub fn sender_of(peer: Option<&str>) -> String {
    let Some(peer) = peer else {
        return "-".to_owned();
    };
    let ip = peer
        .parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| peer.parse::<IpAddr>());
    match ip.map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
        Err(_) => peer.to_owned(),
    }
}

/// How many senders (and orders) the fast path remembers in one minute; beyond it the
/// database decides for the others (still bounded, only slower).
const MAX_REMEMBERED: usize = 65_536;
/// How many (sender, cause, minute) tallies wait for the next flush; beyond it new senders
/// are tallied as [`OTHER_SENDERS`].
const MAX_TALLIES: usize = 65_536;
/// The sender of tallies beyond [`MAX_TALLIES`].
pub const OTHER_SENDERS: &str = "(other senders)";
/// Tallies per upsert statement (7 bound values each).
const FLUSH_CHUNK: usize = 200;

#[derive(Debug, Clone, Copy)]
struct Tally {
    count: i64,
    first: i64,
    last: i64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.count += other.count;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

#[derive(Default)]
struct State {
    /// The minute `over` and `used` are about.
    minute: i64,
    /// Senders the database said are over their allowance in `minute`.
    over: HashSet<String>,
    /// Whether the database said every sender together is over [`ALL_SENDERS_FACTOR`]'s
    /// cap in `minute`.
    all_over: bool,
    /// Senders tallied in `minute` (at most [`MAX_SENDERS_PER_MINUTE`]).
    tallied: HashSet<String>,
    /// What [`Named`] allowances the database said are used up (checked in `minute`).
    used: HashSet<Named>,
    /// Refusals counted and not yet added to the database.
    tallies: HashMap<(String, Verdict, i64), Tally>,
}

impl State {
    fn at(&mut self, minute: i64) -> &mut State {
        if minute > self.minute {
            self.minute = minute;
            self.over.clear();
            self.used.clear();
            self.all_over = false;
            self.tallied.clear();
        }
        self
    }
}

/// The per-sender allowance and the counts of one intake (module doc).
pub(crate) struct Refusals {
    policy: FloodPolicy,
    state: Mutex<State>,
    /// One refused callback is stored at a time: the writer (SQLite has one; PostgreSQL
    /// serialises the claims on a sender's rows anyway) is shared with the verified
    /// notifications, and a flood on many connections would otherwise queue dozens of
    /// refused transactions, each with its own flush to disk, ahead of a real payment.
    /// The junk waits here, on its own connections; a verified notification never does.
    storing: tokio::sync::Semaphore,
    /// The answers being held back ([`Refusals::hold`]), at most [`MAX_HELD`].
    held: tokio::sync::Semaphore,
}

/// What became of a refused callback.
pub(crate) enum Fate {
    /// Stored: this `notifications` row.
    Stored(i64),
    /// Counted, not stored.
    Counted,
}

impl Refusals {
    pub(crate) fn new(policy: FloodPolicy) -> Refusals {
        Refusals {
            policy,
            state: Mutex::default(),
            storing: tokio::sync::Semaphore::new(1),
            held: tokio::sync::Semaphore::new(MAX_HELD),
        }
    }

    pub(crate) fn policy(&self) -> &FloodPolicy {
        &self.policy
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fast path: whether the database already said no this minute for this sender and
    /// what the callback names.
    pub(crate) fn known_over(&self, sender: &str, at: i64, named: &Named) -> bool {
        let mut state = self.state();
        let state = state.at(minute_of(at));
        (state.all_over || state.over.contains(sender))
            && (*named == Named::Nothing || state.used.contains(named))
    }

    fn remember_over(&self, sender: &str, at: i64, named: &Named, all: bool) {
        let mut state = self.state();
        let state = state.at(minute_of(at));
        state.all_over |= all;
        if !all && state.over.len() < MAX_REMEMBERED {
            state.over.insert(sender.to_owned());
        }
        if *named != Named::Nothing && state.used.len() < MAX_REMEMBERED {
            state.used.insert(named.clone());
        }
    }

    /// Counts one refusal not stored (added to the database by the next [`Refusals::flush`]).
    pub(crate) fn count(&self, sender: &str, cause: Verdict, at: i64) {
        let tally = Tally {
            count: 1,
            first: at,
            last: at,
        };
        let mut state = self.state();
        let minute = minute_of(at);
        let state = state.at(minute);
        let new_sender = !state.tallied.contains(sender);
        let sender = if new_sender && state.tallied.len() >= MAX_SENDERS_PER_MINUTE {
            OTHER_SENDERS
        } else {
            if new_sender {
                state.tallied.insert(sender.to_owned());
            }
            sender
        };
        let key = (sender.to_owned(), cause, minute);
        let key = if state.tallies.len() >= MAX_TALLIES && !state.tallies.contains_key(&key) {
            (OTHER_SENDERS.to_owned(), cause, minute_of(at))
        } else {
            key
        };
        state
            .tallies
            .entry(key)
            .and_modify(|t| t.add(tally))
            .or_insert(tally);
    }

    /// Holds back the answer to a refusal that was only counted, for
    /// [`FloodPolicy::hold_ms`]: its sender is over its allowance and it names nothing of
    /// ours, so it is junk or a resend that cannot succeed, and the answer (`FAIL`) is the
    /// same a second later. A flood that waits for each answer on its connections (as HTTP
    /// clients do) then sends a request per connection per hold instead of as fast as the
    /// server answers, so the junk stops taking the cores that verified notifications need;
    /// a verified notification is never held. The caller drops the body first: a held
    /// answer costs a timer, and at most [`MAX_HELD`] are held at once.
    pub(crate) async fn hold(&self) {
        if self.policy.hold_ms == 0 {
            return;
        }
        let Ok(_slot) = self.held.try_acquire() else {
            return;
        };
        tokio::time::sleep(std::time::Duration::from_millis(self.policy.hold_ms)).await;
    }

    /// Whether counts wait for [`Refusals::flush`].
    pub(crate) fn has_tallies(&self) -> bool {
        !self.state().tallies.is_empty()
    }

    /// Adds the counts gathered since the last flush to `refused_callback_counts` (every
    /// instance adds to the same rows). What the database refuses is kept for the next
    /// flush. Returns how many (sender, cause, minute) rows were added to.
    pub(crate) async fn flush(&self, db: &Db) -> Result<usize, CoreError> {
        let tallies: Vec<_> = std::mem::take(&mut self.state().tallies)
            .into_iter()
            .collect();
        let mut done = 0;
        for (k, chunk) in tallies.chunks(FLUSH_CHUNK).enumerate() {
            if let Err(e) = upsert_counts(db, chunk).await {
                let mut state = self.state();
                for (key, tally) in &tallies[k * FLUSH_CHUNK..] {
                    state
                        .tallies
                        .entry(key.clone())
                        .and_modify(|t| t.add(*tally))
                        .or_insert(*tally);
                }
                return Err(e);
            }
            done += chunk.len();
        }
        Ok(done)
    }

    /// Stores a refused callback if its sender's allowance (or what it names) allows, in one
    /// transaction with the claim; otherwise says to count it.
    pub(super) async fn store_within(
        &self,
        db: &Db,
        sender: &str,
        refusal: &Refusal<'_>,
        row: &NotificationRow<'_>,
    ) -> Result<Fate, CoreError> {
        let (cause, at, named) = (
            refusal.decision.verdict,
            refusal.received_at,
            &refusal.findings.named,
        );
        let _turn = match tokio::time::timeout(STORING_WAIT, self.storing.acquire()).await {
            Ok(turn) => turn.map_err(|e| CoreError::Internal(e.into()))?,
            // The database is slow and refusals queue up: what names nothing of ours is
            // counted; what names us is kept in memory (the backlog) and written later.
            Err(_) if *named == Named::Nothing => return Ok(Fate::Counted),
            Err(_) => return Err(CoreError::Busy),
        };
        // Another one may have used the allowance while this one waited.
        if self.known_over(sender, at, named) {
            return Ok(Fate::Counted);
        }
        let mut tx = db.begin_write().await?;
        let minute = minute_of(at);
        let used: i64 = sqlx::query_scalar(
            r#"select cast(coalesce(sum(stored), 0) as bigint) from refused_callback_counts
               where sender = $1 and minute = $2"#,
        )
        .bind(sender)
        .bind(minute)
        .fetch_one(&mut *tx)
        .await?;
        let limit = i64::from(self.policy.refused_per_minute);
        let mut all_over = false;
        let mut store = used < limit;
        if store {
            let all: i64 = sqlx::query_scalar(
                r#"select cast(coalesce(sum(stored), 0) as bigint) from refused_callback_counts
                   where minute = $1"#,
            )
            .bind(minute)
            .fetch_one(&mut *tx)
            .await?;
            all_over = all >= limit.saturating_mul(ALL_SENDERS_FACTOR);
            store = !all_over;
        }
        let store = store || named_allowance(&mut tx, named, at, limit).await?;
        if !store {
            tx.rollback().await?;
            self.remember_over(sender, at, named, all_over);
            return Ok(Fate::Counted);
        }
        let now = now_ms();
        sqlx::query(
            r#"insert into refused_callback_counts
                   (sender, cause, minute, count, stored, first_seen, last_seen, created_at,
                    updated_at)
               values ($1, $2, $3, 0, 1, $4, $4, $5, $5)
               on conflict (sender, cause, minute) do update
                   set stored = refused_callback_counts.stored + 1,
                       last_seen = excluded.last_seen, updated_at = excluded.updated_at"#,
        )
        .bind(sender)
        .bind(cause.as_str())
        .bind(minute)
        .bind(at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id = refusal.insert(&mut *tx, row).await?;
        tx.commit().await?;
        if used + 1 >= limit && *named == Named::Nothing {
            // That was the last of its allowance: the next one need not ask.
            self.remember_over(sender, at, named, false);
        }
        Ok(Fate::Stored(id))
    }
}

/// Whether a refused callback naming us may be stored beyond its sender's allowance
/// (module doc).
async fn named_allowance(
    tx: &mut Transaction<'static, Any>,
    named: &Named,
    at: i64,
    per_minute: i64,
) -> Result<bool, CoreError> {
    let used: i64 = match named {
        Named::Nothing => return Ok(false),
        Named::Order(out_trade_no) => {
            let stored: i64 = sqlx::query_scalar(
                r#"select count(*) from notifications
                   where out_trade_no = $1 and reply = 'FAIL' and received_at >= $2"#,
            )
            .bind(out_trade_no)
            .bind(at - 24 * 3_600_000)
            .fetch_one(&mut **tx)
            .await?;
            return Ok(stored < PER_ORDER_PER_DAY);
        }
        Named::Merchant => {
            sqlx::query_scalar(
                r#"select count(*) from notifications
                   where kind = 'refund' and verdict = $1 and received_at >= $2"#,
            )
            .bind(Verdict::DecryptFailed.as_str())
            .bind(minute_of(at))
            .fetch_one(&mut **tx)
            .await?
        }
    };
    Ok(used < per_minute)
}

/// One upsert adding these tallies (distinct keys) to their rows.
async fn upsert_counts(
    db: &Db,
    tallies: &[((String, Verdict, i64), Tally)],
) -> Result<(), CoreError> {
    use std::fmt::Write as _;
    let mut sql = String::from(
        "insert into refused_callback_counts (sender, cause, minute, count, stored, \
         first_seen, last_seen, created_at, updated_at) values ",
    );
    for k in 0..tallies.len() {
        let p = 2 + 6 * k;
        let _ = write!(
            sql,
            "{}(${p}, ${}, ${}, ${}, 0, ${}, ${}, $1, $1)",
            if k == 0 { "" } else { ", " },
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5
        );
    }
    sql.push_str(
        " on conflict (sender, cause, minute) do update \
         set count = refused_callback_counts.count + excluded.count, \
         first_seen = case when excluded.first_seen < refused_callback_counts.first_seen \
             then excluded.first_seen else refused_callback_counts.first_seen end, \
         last_seen = case when excluded.last_seen > refused_callback_counts.last_seen \
             then excluded.last_seen else refused_callback_counts.last_seen end, \
         updated_at = excluded.updated_at",
    );
    let mut query = sqlx::query(&sql).bind(now_ms());
    for ((sender, cause, minute), tally) in tallies {
        query = query
            .bind(sender.as_str())
            .bind(cause.as_str())
            .bind(*minute)
            .bind(tally.count)
            .bind(tally.first)
            .bind(tally.last);
    }
    query.execute(db.writer()).await?;
    Ok(())
}

/// Refusals counted (not stored) from one sender for one cause in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedRefusals {
    /// The sender (an address, an IPv6 /64, or [`OTHER_SENDERS`]).
    pub sender: String,
    /// The verdict.
    pub cause: Verdict,
    /// How many were counted and not stored.
    pub count: i64,
    /// The first refusal of this sender and cause in the window (UTC ms).
    pub first_seen: i64,
    /// The last.
    pub last_seen: i64,
}

/// The refusals counted and not stored in the minutes from `since` (UTC ms) on, per sender
/// and cause, the largest counts first (at most `limit` rows).
pub async fn counted_since(
    db: &Db,
    since: i64,
    limit: i64,
) -> Result<Vec<CountedRefusals>, CoreError> {
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        r#"select sender, cause, cast(sum(count) as bigint) as n, min(first_seen),
                  max(last_seen)
           from refused_callback_counts
           where minute >= $1 and count > 0
           group by sender, cause
           order by n desc, sender, cause
           limit $2"#,
    )
    .bind(minute_of(since))
    .bind(limit)
    .fetch_all(db.reader())
    .await?;
    rows.into_iter()
        .map(|(sender, cause, count, first_seen, last_seen)| {
            Ok(CountedRefusals {
                sender,
                cause: cause.parse()?,
                count,
                first_seen,
                last_seen,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_is_the_address_without_its_port_and_an_ipv6_host_its_64() {
        assert_eq!(sender_of(Some("203.0.113.7:50123")), "203.0.113.7");
        assert_eq!(sender_of(Some("203.0.113.7")), "203.0.113.7");
        assert_eq!(
            sender_of(Some("[2001:db8:1:2:aaaa::1]:443")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(sender_of(Some("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64");
        assert_eq!(sender_of(Some("[::ffff:10.0.0.1]:80")), "10.0.0.1");
        assert_eq!(sender_of(None), "-");
    }

    #[tokio::test(start_paused = true)]
    async fn a_counted_refusal_is_answered_after_the_hold_and_beyond_max_held_at_once() {
        let r = Refusals::new(FloodPolicy::default());
        let started = tokio::time::Instant::now();
        r.hold().await;
        assert_eq!(started.elapsed().as_millis(), u128::from(DEFAULT_HOLD_MS));

        let _all = r.held.try_acquire_many(MAX_HELD as u32).unwrap();
        let started = tokio::time::Instant::now();
        r.hold().await;
        assert_eq!(started.elapsed().as_millis(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_of_zero_answers_at_once() {
        let r = Refusals::new(FloodPolicy {
            hold_ms: 0,
            ..FloodPolicy::default()
        });
        let started = tokio::time::Instant::now();
        r.hold().await;
        assert_eq!(started.elapsed().as_millis(), 0);
    }

    #[test]
    fn counts_merge_per_sender_cause_and_minute() {
        let r = Refusals::new(FloodPolicy::default());
        r.count("a", Verdict::Malformed, 60_000);
        r.count("a", Verdict::Malformed, 119_999);
        r.count("a", Verdict::Malformed, 120_000);
        r.count("a", Verdict::BadSignature, 60_001);
        let state = r.state();
        let t = state
            .tallies
            .get(&("a".to_owned(), Verdict::Malformed, 60_000))
            .unwrap();
        assert_eq!((t.count, t.first, t.last), (2, 60_000, 119_999));
        assert_eq!(state.tallies.len(), 3);
    }
}
