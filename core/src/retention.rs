//! Retention: what paydesk deletes as it ages, and what it keeps for good, one line per
//! table that only grows ([`rules`]). The rule for the future: a new table that only grows
//! gets a line here — a delete with its age, or `kept` with the reason — in the same
//! commit that creates it; `retention_lines_cover_every_table` (core/tests/retention.rs)
//! fails on a table without one.
//!
//! A run deletes in batches of [`BATCH`] rows, one statement each (`delete … where key in
//! (select key … limit n)`), looping until a batch comes back short: one prune never holds
//! the writer for long (on SQLite every other write queues behind it), and a year of
//! backlog is many small transactions, not one giant one. Every batch is an index range on
//! the age column (migration `…_retention`).
//!
//! The daily job runs on one instance among several: [`claim_day`] is one conditional
//! update of `job_leases`, taken only when the day has not been done and no other instance
//! holds an unexpired lease; a crashed run's lease runs out and another instance takes the
//! day over.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::audit::{self, Actor};
use crate::notify::log::failing_verdicts;
use crate::time::DAY_MS;
use crate::{now_ms, Backend, CoreError, Db};

/// Rows per delete (or update) statement.
pub const BATCH: i64 = 5_000;

/// The job's row in `job_leases`.
pub const JOB: &str = "retention";

/// How long a claimed day is kept from other instances: far longer than a run takes, so a
/// slow run is not done twice; a crashed one is taken over after this.
pub const LEASE_MS: i64 = 30 * 60_000;

/// How old (in days) each kind of row may get. Defaults: [`Policy::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Refused callbacks that matched none of our orders.
    pub refused_notifications_days: u32,
    /// Request and response bodies of outbound WeChat Pay calls.
    pub api_call_bodies_days: u32,
    /// Dashboard sessions and mini-program tokens, counted from their expiry.
    pub expired_sessions_days: u32,
    /// Merchant alert deliveries that ended (delivered or failed), from their last attempt.
    pub alert_deliveries_days: u32,
    /// WeChat Pay's daily bills (raw and their rows), from when they were fetched.
    pub reconciliation_bills_days: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            refused_notifications_days: 90,
            api_call_bodies_days: 30,
            expired_sessions_days: 1,
            alert_deliveries_days: 30,
            reconciliation_bills_days: 400,
        }
    }
}

/// Which of the [`Policy`] ages a line uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// [`Policy::refused_notifications_days`].
    RefusedNotifications,
    /// [`Policy::api_call_bodies_days`].
    ApiCallBodies,
    /// [`Policy::expired_sessions_days`].
    ExpiredSessions,
    /// [`Policy::alert_deliveries_days`].
    AlertDeliveries,
    /// [`Policy::reconciliation_bills_days`].
    ReconciliationBills,
}

impl Policy {
    /// The age of `age`, in days.
    pub fn days(&self, age: Age) -> u32 {
        match age {
            Age::RefusedNotifications => self.refused_notifications_days,
            Age::ApiCallBodies => self.api_call_bodies_days,
            Age::ExpiredSessions => self.expired_sessions_days,
            Age::AlertDeliveries => self.alert_deliveries_days,
            Age::ReconciliationBills => self.reconciliation_bills_days,
        }
    }
}

/// What happens to a table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Kept for good; the line's text says why.
    Kept,
    /// Rows whose `column` (UTC ms) is older than the age and that match `condition` are
    /// deleted.
    Delete {
        /// The primary key the batches select.
        key: &'static str,
        /// The time column the age is measured on.
        column: &'static str,
        /// Which rows may go besides their age (SQL, constants only), or `None`.
        condition: Option<String>,
        /// The age.
        age: Age,
        /// Text columns whose size a dry run reports.
        sized: &'static [&'static str],
    },
    /// The `cleared` columns of rows older than the age are set to null; the row stays.
    Clear {
        /// The primary key the batches select.
        key: &'static str,
        /// The time column the age is measured on.
        column: &'static str,
        /// The columns emptied (also the ones a dry run sizes).
        cleared: &'static [&'static str],
        /// The age.
        age: Age,
    },
}

/// One retention line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The line's name in reports (`table` or `table.part`).
    pub name: &'static str,
    /// The table.
    pub table: &'static str,
    /// What happens.
    pub action: Action,
    /// What goes, or why it is kept (Chinese, for the Settings page).
    pub zh: &'static str,
    /// The same in English.
    pub en: &'static str,
}

impl Rule {
    /// A table kept for good, and why.
    pub const fn kept(table: &'static str, zh: &'static str, en: &'static str) -> Rule {
        Rule {
            name: table,
            table,
            action: Action::Kept,
            zh,
            en,
        }
    }

    /// Rows of `table` deleted once `column` is older than `age` (`id` is the key).
    pub const fn delete(
        table: &'static str,
        column: &'static str,
        age: Age,
        zh: &'static str,
        en: &'static str,
    ) -> Rule {
        Rule {
            name: table,
            table,
            action: Action::Delete {
                key: "id",
                column,
                condition: None,
                age,
                sized: &[],
            },
            zh,
            en,
        }
    }

    /// The age in days under `policy` (`None` when kept).
    pub fn days(&self, policy: &Policy) -> Option<u32> {
        match &self.action {
            Action::Kept => None,
            Action::Delete { age, .. } | Action::Clear { age, .. } => Some(policy.days(*age)),
        }
    }
}

/// Every table, and what becomes of its rows: deleted or cleared after an age, or kept and
/// why. A table needs a line even when it does not grow with use (say so as its reason).
pub fn rules() -> Vec<Rule> {
    let refused = failing_verdicts()
        .map(|v| format!("'{}'", v.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        // Refused callbacks that matched none of our orders: forged, malformed, for another
        // merchant, unknown orders, bad signatures (a wrong key included). They are what
        // the failures page shows and what a person needs to find a misconfiguration, which
        // shows within days, not months. Those that matched one of our orders (order_id is
        // only set once the signature verified: amount mismatch, result_fail, a database
        // failure) are few and belong to that order's story, so they are kept with it.
        Rule {
            name: "notifications.refused",
            table: "notifications",
            action: Action::Delete {
                key: "id",
                column: "received_at",
                // `+order_id` and `coalesce(…)`: not index terms, so SQLite walks the
                // verdicts' age ranges (verdict, received_at) instead of every unmatched row
                // by order_id. A row with a transaction_id verified (a signed notification
                // for an order we do not have, another appid or mch_id): it may be the only
                // record of money received, so it is kept like the applied ones.
                condition: Some(format!(
                    "verdict in ({refused}) and +order_id is null \
                     and coalesce(transaction_id, '') = ''"
                )),
                age: Age::RefusedNotifications,
                sized: &["raw_body", "detail"],
            },
            zh: "被拒绝且未匹配到我方订单的回调（伪造、格式错误、签名错误、未知订单等）",
            en: "refused callbacks that matched none of our orders (forged, malformed, bad signature, unknown order, …)",
        },
        // What the flood limit counted instead of storing (per sender, cause and minute): a
        // few rows a minute under attack, read by the failures page's windows (30 days at
        // most), so they go with the refused callbacks they stand for. `minute` is the
        // batch key: one batch may take every sender of the minutes it selects.
        Rule {
            name: "refused_callback_counts",
            table: "refused_callback_counts",
            action: Action::Delete {
                key: "minute",
                column: "minute",
                condition: None,
                age: Age::RefusedNotifications,
                sized: &[],
            },
            zh: "超出每个发送方限额、只计数未保存的被拒回调（按分钟计数）",
            en: "refused callbacks over a sender's limit, counted per minute instead of stored",
        },
        Rule::kept(
            "notifications",
            "保留：已处理（applied / duplicate）的回调、已验签并匹配到订单的被拒回调，以及已验签且带微信支付单号的回调（我方没有的订单、其他 appid 或商户号）——它们是收款凭证",
            "kept: applied and duplicate callbacks, refused ones verified for one of our orders, and verified ones carrying a transaction_id (an order we do not have, another appid or mch_id) — they are evidence of payment",
        ),
        // The bodies are the bulk of each row (kilobytes of XML); the row itself (endpoint,
        // ids, codes, latency, error) stays, so the timeline and the API call log still
        // show every call, only "body removed" where the bodies were.
        Rule {
            name: "api_calls.bodies",
            table: "api_calls",
            action: Action::Clear {
                key: "id",
                column: "created_at",
                cleared: &["request_body", "response_body"],
                age: Age::ApiCallBodies,
            },
            zh: "接口调用的请求/响应报文（记录本身——接口、单号、结果码、耗时——保留）",
            en: "request and response bodies of WeChat Pay calls (the row — endpoint, ids, codes, latency — stays)",
        },
        Rule {
            name: "sessions",
            table: "sessions",
            action: Action::Delete {
                key: "id",
                column: "expiry_date",
                condition: None,
                age: Age::ExpiredSessions,
                sized: &[],
            },
            zh: "已过期的后台登录会话（按过期时间）",
            en: "expired dashboard sessions (from their expiry)",
        },
        Rule {
            name: "mp_sessions",
            table: "mp_sessions",
            action: Action::Delete {
                key: "token_hash",
                column: "expires_at",
                condition: None,
                age: Age::ExpiredSessions,
                sized: &[],
            },
            zh: "已过期的小程序登录令牌（按过期时间）",
            en: "expired mini-program tokens (from their expiry)",
        },
        Rule {
            name: "alert_deliveries",
            table: "alert_deliveries",
            action: Action::Delete {
                key: "id",
                column: "updated_at",
                condition: Some("status in ('delivered', 'failed')".into()),
                age: Age::AlertDeliveries,
                sized: &["payload", "last_error"],
            },
            zh: "已结束（已送达或最终失败）的商户告警投递（按最后一次尝试；待发送的不删）",
            en: "merchant alert deliveries that ended, delivered or failed (from the last attempt; pending ones stay)",
        },
        // A day's bill, as it came and as rows: what its differences were found in. WeChat
        // Pay serves a bill for about three months; ours stay longer, for a question about
        // last year's books, then go. The day's totals and its differences stay for good.
        Rule {
            name: "recon_bills",
            table: "recon_bills",
            action: Action::Delete {
                key: "day",
                column: "fetched_at",
                condition: None,
                age: Age::ReconciliationBills,
                sized: &[],
            },
            zh: "微信支付对账单原件（压缩，按下载时间）",
            en: "WeChat Pay's daily bills as they came (compressed, from when they were fetched)",
        },
        // `day` is the batch key: one batch takes every row of the days it selects.
        Rule {
            name: "recon_bill_rows",
            table: "recon_bill_rows",
            action: Action::Delete {
                key: "day",
                column: "fetched_at",
                condition: None,
                age: Age::ReconciliationBills,
                sized: &[],
            },
            zh: "对账单明细行（随对账单原件删除）",
            en: "the bills' rows (they go with the bills)",
        },
        Rule::kept(
            "exceptions",
            "保留：异常事项及其处理说明（每个原因一行，数量很少）",
            "kept: the exceptions inbox and how each item was handled (one row per cause, few)",
        ),
        Rule::kept(
            "recon_days",
            "保留：每天一行的对账结果与双方合计",
            "kept: one row per day, the reconciliation's outcome and both sides' totals",
        ),
        Rule::kept(
            "recon_differences",
            "保留：对账差异及其处理说明是账目的一部分",
            "kept: reconciliation differences and how each was resolved belong to the books",
        ),
        Rule::kept(
            "orders",
            "保留：订单是账目本身（连同 order_items）",
            "kept: orders are the books (with their order_items)",
        ),
        Rule::kept(
            "order_items",
            "保留：订单的商品明细，随订单保留",
            "kept: each order's lines, kept with the order",
        ),
        Rule::kept(
            "refunds",
            "保留：退款是账目本身",
            "kept: refunds are the books",
        ),
        Rule::kept(
            "audit_log",
            "保留：审计日志只追加，从不删除",
            "kept: the audit log is append-only and never pruned",
        ),
        Rule::kept(
            "users",
            "保留：员工账号（停用而不删除，审计日志引用它们）",
            "kept: staff accounts (disabled, never deleted: the audit log refers to them)",
        ),
        Rule::kept(
            "customers",
            "保留：每位顾客一行，订单引用其 openid",
            "kept: one row per shopper, whose orders name their openid",
        ),
        Rule::kept(
            "products",
            "保留：商品目录（下架而不删除，订单明细引用它们）",
            "kept: the catalogue (deactivated, never deleted: order lines refer to it)",
        ),
        Rule::kept(
            "order_totals_log",
            "保留：PostgreSQL 上的汇总日志每 2 秒由汇总任务清空",
            "kept: PostgreSQL's totals log is emptied every 2 s by the order-totals job",
        ),
        Rule::kept(
            "order_totals_by_day",
            "保留：每天每种状态一行的订单汇总",
            "kept: order totals, one row per day and status",
        ),
        Rule::kept(
            "order_totals_by_band",
            "保留：每个金额档（元）每种状态一行的订单汇总",
            "kept: order totals, one row per yuan band and status",
        ),
        Rule::kept(
            "order_totals_by_day_band",
            "保留：每天每个金额档（元）每种状态一行的订单汇总",
            "kept: order totals, one row per day, yuan band and status",
        ),
        Rule::kept(
            "order_totals_paid_by_day",
            "保留：每天一行的已付款汇总",
            "kept: paid totals, one row per day",
        ),
        // Sign-in and password-change attempts: the throttle counts a 15-minute window, and
        // every attempt that matters for the record is in the audit log already.
        Rule {
            name: "login_attempts",
            table: "login_attempts",
            action: Action::Delete {
                key: "id",
                column: "created_at",
                condition: None,
                age: Age::ExpiredSessions,
                sized: &[],
            },
            zh: "登录与改密尝试的计数记录（限流只看最近 15 分钟；审计日志另有记录）",
            en: "sign-in and password-change attempts (the throttle reads the last 15 minutes; the audit log keeps the record)",
        },
        Rule::kept(
            "user_openids",
            "保留：员工自己登记的 openid（本人删除；用于禁止审批自己付款订单的退款）",
            "kept: staff's own openids (removed by their owner; they stop anyone approving a refund of their own payment)",
        ),
        Rule::kept(
            "alert_settings",
            "保留：商户提醒的设置，一行",
            "kept: the merchant alert setting, one row",
        ),
        Rule::kept(
            "job_leases",
            "保留：每个定时任务一行",
            "kept: one row per scheduled job",
        ),
    ]
}

/// What one line did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCount {
    /// The line's [`Rule::name`].
    pub name: String,
    /// Rows deleted, or rows whose columns were cleared.
    pub rows: u64,
    /// Bytes of the sized text columns that went (dry runs only).
    #[serde(default)]
    pub bytes: Option<i64>,
}

/// What a run did, line by line (kept lines are not listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// When the run started (UTC ms); ages count back from here.
    pub at: i64,
    /// The lines that delete or clear.
    pub lines: Vec<LineCount>,
}

impl Report {
    /// Rows of the line `name` (0 when absent).
    pub fn rows(&self, name: &str) -> u64 {
        self.lines
            .iter()
            .find(|l| l.name == name)
            .map_or(0, |l| l.rows)
    }

    /// Every line's rows added up.
    pub fn total_rows(&self) -> u64 {
        self.lines.iter().map(|l| l.rows).sum()
    }

    /// `name rows, name rows, …`, for logs and the audit log.
    pub fn summary(&self) -> String {
        self.lines
            .iter()
            .map(|l| format!("{} {}", l.name, l.rows))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The rows a line touches: older than its age under `policy` at `now`, and matching its
/// condition. `None` for kept lines.
fn candidates(rule: &Rule, policy: &Policy, now: i64) -> Option<(String, i64)> {
    let cutoff = now - i64::from(rule.days(policy)?) * DAY_MS;
    let (column, condition) = match &rule.action {
        Action::Kept => return None,
        Action::Delete {
            column, condition, ..
        } => (*column, condition.clone()),
        Action::Clear {
            column, cleared, ..
        } => (
            *column,
            // Written exactly as the partial index's predicate, so both engines use it.
            Some(
                cleared
                    .iter()
                    .map(|c| format!("{c} is not null"))
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        ),
    };
    let filter = match condition {
        Some(c) => format!("{column} < $1 and ({c})"),
        None => format!("{column} < $1"),
    };
    Some((filter, cutoff))
}

/// One batch's statement for a line: `$1` is the cutoff, `$2` the batch size and, when
/// [`Batch::binds_now`], `$3` the time of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The statement.
    pub sql: String,
    /// Rows older than this (UTC ms) are taken.
    pub cutoff: i64,
    /// Whether the statement takes `$3` (an update sets `updated_at`).
    pub binds_now: bool,
}

impl Batch {
    /// The statement with its values bound.
    pub fn query(
        &self,
        size: i64,
        now: i64,
    ) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let q = sqlx::query(&self.sql).bind(self.cutoff).bind(size);
        if self.binds_now {
            q.bind(now)
        } else {
            q
        }
    }
}

/// The statement one batch of `rule` runs, or `None` for kept lines. Public for the index
/// test (EXPLAIN QUERY PLAN).
pub fn batch(rule: &Rule, policy: &Policy, now: i64) -> Option<Batch> {
    let (filter, cutoff) = candidates(rule, policy, now)?;
    let table = rule.table;
    let (sql, binds_now) = match &rule.action {
        Action::Kept => return None,
        Action::Delete { key, .. } => (
            format!(
                "delete from {table} where {key} in \
                 (select {key} from {table} where {filter} limit $2)"
            ),
            false,
        ),
        Action::Clear { key, cleared, .. } => (
            format!(
                "update {table} set {}, updated_at = $3 where {key} in \
                 (select {key} from {table} where {filter} limit $2)",
                cleared
                    .iter()
                    .map(|c| format!("{c} = null"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            true,
        ),
    };
    Some(Batch {
        sql,
        cutoff,
        binds_now,
    })
}

/// How large the line's sized columns are, as SQL (bytes, not characters, on both engines).
fn size_sql(rule: &Rule, backend: Backend) -> Option<String> {
    let sized: &[&str] = match &rule.action {
        Action::Kept => return None,
        Action::Delete { sized, .. } => sized,
        Action::Clear { cleared, .. } => cleared,
    };
    if sized.is_empty() {
        return None;
    }
    let one = |c: &str| match backend {
        Backend::Sqlite => format!("coalesce(length(cast({c} as blob)), 0)"),
        Backend::Postgres => format!("coalesce(octet_length({c}), 0)"),
    };
    Some(sized.iter().map(|c| one(c)).collect::<Vec<_>>().join(" + "))
}

/// What [`prune`] would do at `now`, changing nothing: rows per line, and the bytes of
/// their bodies where a line has any.
pub async fn preview(db: &Db, policy: &Policy, now: i64) -> Result<Report, CoreError> {
    let mut lines = Vec::new();
    for rule in rules() {
        let Some((filter, cutoff)) = candidates(&rule, policy, now) else {
            continue;
        };
        let size = size_sql(&rule, db.backend());
        // Cast: PostgreSQL's sum of bigints is numeric.
        let sql = format!(
            "select count(*), {} from {} where {filter}",
            size.as_deref()
                .map_or("cast(null as bigint)".to_owned(), |s| format!(
                    "cast(coalesce(sum({s}), 0) as bigint)"
                )),
            rule.table
        );
        let (rows, bytes): (i64, Option<i64>) = sqlx::query_as(&sql)
            .bind(cutoff)
            .fetch_one(db.reader())
            .await?;
        lines.push(LineCount {
            name: rule.name.into(),
            rows: u64::try_from(rows).unwrap_or(0),
            bytes,
        });
    }
    Ok(Report { at: now, lines })
}

/// Applies the policy at `now`: every line in batches of [`BATCH`].
pub async fn prune(db: &Db, policy: &Policy, now: i64) -> Result<Report, CoreError> {
    prune_in_batches(db, policy, now, BATCH).await
}

/// [`prune`] with another batch size (tests show the loop takes everything).
pub async fn prune_in_batches(
    db: &Db,
    policy: &Policy,
    now: i64,
    batch: i64,
) -> Result<Report, CoreError> {
    let batch = batch.max(1);
    let mut lines = Vec::new();
    for rule in rules() {
        let Some(statement) = self::batch(&rule, policy, now) else {
            continue;
        };
        let mut rows = 0u64;
        loop {
            let done = statement
                .query(batch, now)
                .execute(db.writer())
                .await?
                .rows_affected();
            rows += done;
            if done < u64::try_from(batch).unwrap_or(u64::MAX) {
                break;
            }
        }
        lines.push(LineCount {
            name: rule.name.into(),
            rows,
            bytes: None,
        });
    }
    Ok(Report { at: now, lines })
}

/// The Asia/Shanghai calendar day of `ms` (days since 1970-01-01 there) and the minute of
/// that day.
pub fn shanghai_day_and_minute(ms: i64) -> (i64, i64) {
    (crate::time::day_number(ms), crate::time::minute_of_day(ms))
}

/// Claims today's run for `holder` when it is due: it is `run_at_minute` (minutes after
/// midnight, Asia/Shanghai) or later, today has not been done, and no other instance holds
/// an unexpired lease. The lease lasts `lease_ms`. Returns the day claimed.
pub async fn claim_day(
    db: &Db,
    holder: &str,
    now: i64,
    run_at_minute: i64,
    lease_ms: i64,
) -> Result<Option<i64>, CoreError> {
    let (day, minute) = shanghai_day_and_minute(now);
    if minute < run_at_minute {
        return Ok(None);
    }
    let claimed = crate::leases::claim_day(db, JOB, holder, now, day, lease_ms).await?;
    Ok(claimed.then_some(day))
}

/// Records a finished run for the Settings page. `claimed`: the holder and day of a job
/// run, which marks the day done and gives up the lease; `None` for a run from the command
/// line, which leaves the schedule alone.
pub async fn record_run(
    db: &Db,
    report: &Report,
    claimed: Option<(&str, i64)>,
) -> Result<(), CoreError> {
    let now = now_ms();
    let json = serde_json::to_string(report).map_err(|e| CoreError::Internal(e.into()))?;
    let query = match claimed {
        Some((holder, day)) => sqlx::query(
            r#"update job_leases set last_report = $1, last_finished_at = $2, updated_at = $2,
                   last_run_day = $3, leased_until = 0
               where name = $4 and holder = $5"#,
        )
        .bind(json)
        .bind(now)
        .bind(day)
        .bind(JOB)
        .bind(holder),
        None => sqlx::query(
            r#"update job_leases set last_report = $1, last_finished_at = $2, updated_at = $2
               where name = $3"#,
        )
        .bind(json)
        .bind(now)
        .bind(JOB),
    };
    query.execute(db.writer()).await?;
    Ok(())
}

/// Prunes now and records the run: in the audit log (as `actor`, rows per line), in the
/// server log, and as the last run for the Settings page. `claimed`: see [`record_run`].
pub async fn run(
    db: &Db,
    policy: &Policy,
    actor: &Actor,
    claimed: Option<(&str, i64)>,
) -> Result<Report, CoreError> {
    let report = prune(db, policy, now_ms()).await?;
    let summary = report.summary();
    audit::record(
        db.writer(),
        audit::Entry {
            actor,
            action: audit::action::RETENTION_PRUNE,
            target: None,
            detail: Some(&summary),
        },
    )
    .await?;
    record_run(db, &report, claimed).await?;
    tracing::info!(rows = report.total_rows(), lines = %summary, "retention: old rows pruned");
    Ok(report)
}

/// The daily job's turn: when today's run is due and this instance (`holder`) claims it,
/// runs it as the system and marks the day done. `None` when there was nothing to do here.
pub async fn run_if_due(
    db: &Db,
    policy: &Policy,
    holder: &str,
    run_at_minute: i64,
) -> Result<Option<Report>, CoreError> {
    let Some(day) = claim_day(db, holder, now_ms(), run_at_minute, LEASE_MS).await? else {
        return Ok(None);
    };
    // On failure the lease stays: another try after it runs out, not every minute.
    run(db, policy, &Actor::system(), Some((holder, day)))
        .await
        .map(Some)
}

#[derive(FromRow)]
struct LastRun {
    last_finished_at: Option<i64>,
    last_report: Option<String>,
}

/// The last run: when it finished (UTC ms) and what it did.
pub async fn last_run(db: &Db) -> Result<Option<(i64, Report)>, CoreError> {
    let row = sqlx::query_as::<_, LastRun>(
        "select last_finished_at, last_report from job_leases where name = $1",
    )
    .bind(JOB)
    .fetch_optional(db.reader())
    .await?;
    Ok(match row {
        Some(LastRun {
            last_finished_at: Some(at),
            last_report: Some(json),
        }) => serde_json::from_str(&json).ok().map(|r| (at, r)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_days_start_at_midnight_utc_plus_eight() {
        // 2026-12-06 15:59:59.999 UTC is 23:59 in Shanghai; a millisecond later, the 7th.
        let before = 1_796_572_799_999;
        let (d1, m1) = shanghai_day_and_minute(before);
        let (d2, m2) = shanghai_day_and_minute(before + 1);
        assert_eq!((d2 - d1, m1, m2), (1, 23 * 60 + 59, 0));
    }

    #[test]
    fn every_line_has_a_unique_name_and_words_in_both_languages() {
        let rules = rules();
        let mut names: Vec<_> = rules.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rules.len());
        assert!(rules.iter().all(|r| !r.zh.is_empty() && !r.en.is_empty()));
    }

    #[test]
    fn refused_notifications_never_include_acknowledged_verdicts() {
        let rule = rules()
            .into_iter()
            .find(|r| r.name == "notifications.refused")
            .unwrap();
        let sql = batch(&rule, &Policy::default(), 0).unwrap().sql;
        assert!(
            !sql.contains("'applied'") && !sql.contains("'duplicate'"),
            "{sql}"
        );
        assert!(sql.contains("+order_id is null"), "{sql}");
    }
}
