//! `GET /orders/export.csv?<the orders page's filter>`: the filtered orders as CSV, for
//! managers and up (issue #6 "Orders": streamed, audit-logged). A plain GET route rather
//! than a server function so the browser downloads it from a link. The session's user and
//! role are checked here on the server: signed out → 401, a lower role → 403. The export is
//! audited (`order.export`, with the filter) before the first byte, then streamed from
//! `paydesk_core::orders::export::export_csv` through a small pipe, so memory stays flat at a
//! million rows; if the export fails midway the response is cut off (the client sees an
//! incomplete download, never a short file that looks whole).

use std::io;

use app::server::ssr::ClientIp;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use futures::StreamExt as _;
use paydesk_core::orders::export;
use paydesk_core::orders::filter::FilterQuery;
use paydesk_core::{CoreError, Db, Role};
use tokio::io::AsyncReadExt as _;
use tower_sessions::Session;

use crate::state::AppState;

/// Bytes buffered between the export and the client.
const PIPE_BYTES: usize = 64 * 1024;

/// The export route.
pub fn router() -> Router<AppState> {
    Router::new().route("/orders/export.csv", get(export_orders_csv))
}

async fn export_orders_csv(
    State(db): State<Db>,
    session: Session,
    Extension(ClientIp(client_ip)): Extension<ClientIp>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let user = match super::user_with_role(&session, &db, Role::Manager, "exporting orders").await {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let query = FilterQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let filter = match query.parse() {
        Ok(filter) => filter,
        Err(CoreError::Invalid { field, message, .. }) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{field}: {message}\n"),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "parsing the export filter failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let actor = user.actor(Some(client_ip.to_string()));
    if let Err(e) = export::record_export(&db, &actor, &filter).await {
        tracing::error!(error = %e, "recording the order export failed; nothing exported");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }

    let (mut writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<bool>();
    tokio::spawn(async move {
        let result = export::export_csv(&db, &filter, &mut writer).await;
        match &result {
            Ok(rows) => tracing::info!(rows, "orders exported"),
            Err(e) => tracing::error!(error = %e, "the order export failed midway"),
        }
        let _ = done_tx.send(result.is_ok());
    });
    // Fused: a body wrapper (the compression layer) may poll once more after the end, which
    // a bare `unfold` answers with a panic.
    let body = futures::stream::unfold((reader, Some(done_rx)), |(mut reader, done)| async move {
        let mut buf = vec![0u8; 16 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => match done?.await {
                Ok(true) => None,
                _ => Some((Err(io::Error::other("the export failed")), (reader, None))),
            },
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (reader, done)))
            }
            Err(e) => Some((Err(e), (reader, None))),
        }
    })
    .fuse();
    let filename = format!(
        "orders-{}.csv",
        wxpay::wxtime::format_compact(time::OffsetDateTime::now_utc())
    );
    let mut res = Body::from_stream(body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    res
}
