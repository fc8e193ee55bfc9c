//! The exceptions inbox (异常, support and up): what is open, what was closed lately, the
//! top bar's count, and closing an item with a note. Each is one call into
//! `paydesk_core::exceptions` (which audits the closing).

use leptos::prelude::*;

use crate::dto::ExceptionsView;
use crate::error::AppError;

#[cfg(feature = "ssr")]
fn row(e: paydesk_core::exceptions::Exception, now: i64) -> crate::dto::ExceptionRow {
    use paydesk_core::exceptions::Kind;
    let (zh, en) = e.kind.label();
    // A reconciliation item's detail ends with its day.
    let link = (e.kind == Kind::Reconciliation)
        .then(|| e.detail.as_deref()?.split_whitespace().last())
        .flatten()
        .map(|day| format!("/reconciliation?day={day}"));
    crate::dto::ExceptionRow {
        id: e.id,
        kind: e.kind.as_str().to_owned(),
        label: (zh.to_owned(), en.to_owned()),
        link,
        explain: (e.kind.zh().to_owned(), e.kind.en().to_owned()),
        out_trade_no: e.out_trade_no,
        out_refund_no: e.out_refund_no,
        amount_fen: e.amount_fen,
        other_fen: e.other_fen,
        detail: e.detail,
        state: e.state,
        raised_at: e.raised_at,
        age_ms: (now - e.raised_at).max(0),
        note: e.note,
        closed_by: e.closed_by,
        closed_at: e.closed_at,
    }
}

/// The open items, oldest first, and the latest 50 closed or cleared (support and up).
#[server(endpoint = "exceptions/list")]
pub async fn list_exceptions() -> Result<ExceptionsView, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |viewer| async move {
        use paydesk_core::exceptions;
        let db = &viewer.server.db;
        let (open, done) = tokio::try_join!(
            exceptions::list(db, false, 500),
            exceptions::list(db, true, 50)
        )?;
        let now = paydesk_core::now_ms();
        Ok(ExceptionsView {
            open: open.into_iter().map(|e| row(e, now)).collect(),
            done: done.into_iter().map(|e| row(e, now)).collect(),
        })
    })
    .await
}

/// How many items are open: the top bar's count (support and up).
#[server(endpoint = "exceptions/count")]
pub async fn count_exceptions() -> Result<i64, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |viewer| async move {
        Ok(paydesk_core::exceptions::open_count(&viewer.server.db).await?)
    })
    .await
}

/// Closes an open item with a note (support and up; audited). The dashboards hear the new
/// count. Returns the item's order number, or its kind.
#[server(endpoint = "exceptions/close")]
pub async fn close_exception(id: i64, note: String) -> Result<String, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |support| async move {
        use paydesk_core::exceptions;
        let actor = support.actor().await;
        let db = &support.server.db;
        let item = exceptions::close(db, id, &note, &actor).await?;
        let open = exceptions::open_count(db).await?;
        support
            .server
            .events
            .publish(paydesk_core::events::Event::ExceptionsChanged { open });
        Ok(item
            .out_trade_no
            .unwrap_or_else(|| item.kind.as_str().to_owned()))
    })
    .await
}
