//! `/lang/{zh|en}?next=/path`: sets the dashboard language cookie and goes back. A plain
//! link, so it works with or without JavaScript.

use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::AppState;

/// `/lang/{code}`.
pub fn router() -> Router<AppState> {
    Router::new().route("/lang/{code}", get(set_language))
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

async fn set_language(Path(code): Path<String>, Query(q): Query<Next>) -> Response {
    let lang = app::i18n::Lang::from_code(&code);
    let next = paydesk_types::safe_next(q.next.as_deref().unwrap_or("/"));
    let cookie = format!(
        "{}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly",
        app::i18n::LANG_COOKIE,
        lang.code()
    );
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let (Ok(cookie), Ok(location)) =
        (HeaderValue::from_str(&cookie), HeaderValue::from_str(&next))
    {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
        res.headers_mut().insert(header::LOCATION, location);
    }
    res
}
