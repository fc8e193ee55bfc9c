//! The outbound call log (docs/design.md "api_calls"): every call to WeChat Pay, as the wxpay
//! client reports it through [`wxpay::CallObserver`].
//!
//! The observer is called synchronously inside the client, so [`ApiCallRecorder`] only
//! queues the record; one background task writes the queue to `api_calls` (several rows per
//! transaction when calls arrive together). A failed call is also logged at `warn` (endpoint,
//! ids and error, never bodies). If the database refuses a row it is logged and dropped: the
//! call itself has already happened and its caller has the result.

use std::sync::Arc;

use sqlx::FromRow;
use tokio::sync::{mpsc, oneshot};
use wxpay::{CallObserver, CallRecord};

use crate::{now_ms, CoreError, Db};

enum Msg {
    Record(Box<CallRecord>, i64),
    Flush(oneshot::Sender<()>),
}

/// Writes every [`CallRecord`] to `api_calls`. Cheap to clone; hand it to
/// [`wxpay::Client::with_observer`].
#[derive(Clone)]
pub struct ApiCallRecorder {
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for ApiCallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCallRecorder").finish_non_exhaustive()
    }
}

impl ApiCallRecorder {
    /// Starts the writer task on the current Tokio runtime. It ends when every clone of the
    /// recorder is dropped, after writing what was queued.
    pub fn start(db: Db) -> Arc<ApiCallRecorder> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(db, rx));
        Arc::new(ApiCallRecorder { tx })
    }

    /// Waits until every call reported so far is in the database (tests, shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl CallObserver for ApiCallRecorder {
    fn on_call(&self, record: &CallRecord) {
        if let Some(error) = &record.error {
            tracing::warn!(
                endpoint = %record.endpoint,
                attempt = record.attempt,
                out_trade_no = record.out_trade_no.as_deref().unwrap_or("-"),
                out_refund_no = record.out_refund_no.as_deref().unwrap_or("-"),
                http_status = record.http_status,
                latency_ms = record.latency.as_millis() as u64,
                %error,
                "WeChat Pay call failed"
            );
        } else {
            tracing::info!(
                endpoint = %record.endpoint,
                out_trade_no = record.out_trade_no.as_deref().unwrap_or("-"),
                result_code = record.result_code.as_deref().unwrap_or("-"),
                err_code = record.err_code.as_deref().unwrap_or("-"),
                latency_ms = record.latency.as_millis() as u64,
                "WeChat Pay call"
            );
        }
        let _ = self
            .tx
            .send(Msg::Record(Box::new(record.clone()), now_ms()));
    }
}

async fn write_loop(db: Db, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut batch: Vec<(Box<CallRecord>, i64)> = Vec::new();
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) {
            match msg {
                Msg::Record(r, at) => batch.push((r, at)),
                Msg::Flush(done) => waiting.push(done),
            }
            if batch.len() >= 64 {
                break;
            }
        }
        if !batch.is_empty() {
            if let Err(e) = insert(&db, &batch).await {
                tracing::error!(error = %e, rows = batch.len(), "recording WeChat Pay calls failed");
            }
            batch.clear();
        }
        if rx.is_empty() {
            for done in waiting.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

async fn insert(db: &Db, batch: &[(Box<CallRecord>, i64)]) -> Result<(), CoreError> {
    let mut tx = db.begin_write().await?;
    for (r, at) in batch {
        sqlx::query(
            r#"insert into api_calls (endpoint, out_trade_no, out_refund_no, transaction_id,
                   http_status, return_code, result_code, err_code, latency_ms, request_body,
                   response_body, error, url, attempt, created_at, updated_at)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)"#,
        )
        .bind(&r.endpoint)
        .bind(r.out_trade_no.as_deref())
        .bind(r.out_refund_no.as_deref())
        .bind(r.transaction_id.as_deref())
        .bind(r.http_status.map(i64::from))
        .bind(r.return_code.as_deref())
        .bind(r.result_code.as_deref())
        .bind(r.err_code.as_deref())
        .bind(crate::time::duration_ms(r.latency))
        .bind(r.request_body.replace('\0', "\u{FFFD}"))
        .bind(r.response_body.replace('\0', "\u{FFFD}"))
        .bind(r.error.as_deref())
        .bind(&r.url)
        .bind(i64::from(r.attempt))
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A stored outbound call.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ApiCall {
    /// Row id.
    pub id: i64,
    /// Endpoint path, e.g. `/pay/orderquery`.
    pub endpoint: String,
    /// The order it concerned.
    pub out_trade_no: Option<String>,
    /// The refund it concerned.
    pub out_refund_no: Option<String>,
    /// WeChat's transaction id.
    pub transaction_id: Option<String>,
    /// HTTP status, if a response arrived.
    pub http_status: Option<i64>,
    /// `return_code`.
    pub return_code: Option<String>,
    /// `result_code`.
    pub result_code: Option<String>,
    /// `err_code`.
    pub err_code: Option<String>,
    /// Round trip in milliseconds.
    pub latency_ms: i64,
    /// The request body (with `sign`, never the key).
    pub request_body: Option<String>,
    /// The response body.
    pub response_body: Option<String>,
    /// The transport or protocol error, if the call failed.
    pub error: Option<String>,
    /// The URL called (secrets redacted); `None` for calls recorded before it was kept.
    pub url: Option<String>,
    /// 1 at the configured base, 2 at the backup host after the first attempt failed
    /// (wxpay's failover), 0 for the refund-channel probe.
    pub attempt: i64,
    /// When it was made (UTC ms).
    pub created_at: i64,
}

impl ApiCall {
    /// Whether the backup host took this call (wxpay's failover: the second attempt).
    pub fn at_backup_host(&self) -> bool {
        self.attempt >= 2
    }

    /// The host called (`api2.mch.weixin.qq.com`, `127.0.0.1:8481`), from the URL.
    pub fn host(&self) -> Option<String> {
        wxpay::url_host(self.url.as_deref()?)
    }
}

const COLUMNS: &str = "id, endpoint, out_trade_no, out_refund_no, transaction_id, http_status, \
    return_code, result_code, err_code, latency_ms, request_body, response_body, error, url, \
    attempt, created_at";

/// The most recent calls, newest first, optionally only those about `out_trade_no`.
pub async fn recent(
    db: &Db,
    out_trade_no: Option<&str>,
    limit: i64,
) -> Result<Vec<ApiCall>, CoreError> {
    let rows = match out_trade_no {
        Some(no) => {
            sqlx::query_as::<_, ApiCall>(&format!(
                "select {COLUMNS} from api_calls where out_trade_no = $1 order by id desc limit $2"
            ))
            .bind(no)
            .bind(limit)
            .fetch_all(db.reader())
            .await?
        }
        None => {
            sqlx::query_as::<_, ApiCall>(&format!(
                "select {COLUMNS} from api_calls order by id desc limit $1"
            ))
            .bind(limit)
            .fetch_all(db.reader())
            .await?
        }
    };
    Ok(rows)
}

/// How an outbound call ended, for the API call log's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It worked (no error).
    Ok,
    /// WeChat Pay answered with an error: `return_code=FAIL`, `result_code=FAIL`, or an
    /// `errcode` from jscode2session.
    Business,
    /// No usable answer: connection, timeout, TLS, HTTP status or an unparsable body.
    Transport,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Business, Outcome::Transport];

    /// The name in URLs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Business => "business",
            Outcome::Transport => "transport",
        }
    }

    /// The outcome named `name`.
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// The outcome of a stored call.
    pub fn of(call: &ApiCall) -> Outcome {
        match (&call.error, &call.return_code, &call.err_code) {
            (None, _, _) => Outcome::Ok,
            (Some(_), None, None) => Outcome::Transport,
            (Some(_), _, _) => Outcome::Business,
        }
    }

    /// The same rule as SQL.
    fn condition(self) -> &'static str {
        match self {
            Outcome::Ok => "error is null",
            Outcome::Business => {
                "error is not null and (return_code is not null or err_code is not null)"
            }
            Outcome::Transport => "error is not null and return_code is null and err_code is null",
        }
    }
}

/// What the API call log filters on. `Default` is everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Only this endpoint (`/pay/orderquery`, …).
    pub endpoint: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Made at or after (UTC ms).
    pub from: Option<i64>,
    /// Made before (UTC ms).
    pub to: Option<i64>,
}

/// The endpoints paydesk calls, for the filter's choices.
pub const ENDPOINTS: [&str; 8] = [
    wxpay::api::path::UNIFIED_ORDER,
    wxpay::api::path::ORDER_QUERY,
    wxpay::api::path::CLOSE_ORDER,
    wxpay::api::path::REFUND,
    wxpay::api::path::REFUND_QUERY,
    wxpay::api::path::DOWNLOAD_BILL,
    wxpay::api::path::JSCODE2SESSION,
    wxpay::sandbox::SIGN_KEY_ENDPOINT,
];

/// One page of calls, newest first, and where the next starts (`None`: the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPage {
    /// The calls (bodies left empty: they are read by [`get`]).
    pub calls: Vec<ApiCall>,
    /// The cursor for the next page.
    pub next: Option<crate::sql::Cursor>,
}

/// The largest page [`list`] returns.
pub const MAX_PAGE: i64 = 200;

/// The calls matching `filter`, newest first (`created_at desc, id desc`), after `after`,
/// at most `limit` (clamped to 1..=[`MAX_PAGE`]). The bodies are not read.
pub async fn list(
    db: &Db,
    filter: &CallFilter,
    after: Option<&crate::sql::Cursor>,
    limit: i64,
) -> Result<CallPage, CoreError> {
    use crate::sql::{bind_all, finish_page, push_after, Arg, Conditions, Cursor};

    let limit = limit.clamp(1, MAX_PAGE);
    let mut c = Conditions::default();
    if let Some(endpoint) = &filter.endpoint {
        let p = c.bind(Arg::Text(endpoint.clone()));
        c.push(format!("endpoint = {p}"));
    }
    if let Some(outcome) = filter.outcome {
        c.push(format!("({})", outcome.condition()));
    }
    if let Some(from) = filter.from {
        let p = c.bind(Arg::Int(from));
        c.push(format!("created_at >= {p}"));
    }
    if let Some(to) = filter.to {
        let p = c.bind(Arg::Int(to));
        c.push(format!("created_at < {p}"));
    }
    if let Some(cursor) = after {
        push_after(&mut c, "created_at", cursor);
    }
    let take = c.bind(Arg::Int(limit + 1));
    let sql = format!(
        "select id, endpoint, out_trade_no, out_refund_no, transaction_id, http_status, \
         return_code, result_code, err_code, latency_ms, cast(null as text) as request_body, \
         cast(null as text) as response_body, error, url, attempt, created_at from api_calls {} \
         order by created_at desc, id desc limit {take}",
        c.where_clause()
    );
    let mut calls = bind_all!(sqlx::query_as::<_, ApiCall>(&sql), &c.args)
        .fetch_all(db.reader())
        .await?;
    let next = finish_page(&mut calls, limit, |c| Cursor {
        created_at: c.created_at,
        id: c.id,
    });
    Ok(CallPage { calls, next })
}

/// The call `id` with its bodies, or `None`.
pub async fn get(db: &Db, id: i64) -> Result<Option<ApiCall>, CoreError> {
    Ok(
        sqlx::query_as::<_, ApiCall>(&format!("select {COLUMNS} from api_calls where id = $1"))
            .bind(id)
            .fetch_optional(db.reader())
            .await?,
    )
}
