//! The browser-side protections every dashboard response asks for.
//!
//! - **No framing** (`X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`): another
//!   site could otherwise show the dashboard in an invisible frame over its own buttons
//!   and have a signed-in manager click "approve refund" (clickjacking). `SameSite=Strict`
//!   cookies do not stop that: the framed page is the dashboard's own.
//! - **The rest of the policy** ([`app::BASE_POLICY`]): no `<base>` (`base-uri 'none'`: an
//!   injected one would redirect every relative URL), no plugins (`object-src 'none'`),
//!   forms submit only to the dashboard (`form-action 'self'`). A page sets its own policy,
//!   that and more ([`app::page_policy`]: scripts only from the dashboard or with the
//!   page's nonce), which is kept.
//! - **No MIME sniffing** (`X-Content-Type-Options: nosniff`): a server function's JSON or
//!   the CSV export is never run as a script or shown as HTML.
//! - **No order numbers in other sites' logs** (`Referrer-Policy: same-origin`): the
//!   dashboard's URLs carry them.
//! - **Nothing kept on disk** (`Cache-Control: no-store`, unless the answer says otherwise):
//!   pages, server functions' JSON and the CSV export carry orders, openids and refunds; a
//!   shared counter computer must not keep them in its browser cache after the session
//!   ends. The `/pkg` files, the same for everyone, are cached for good (assets.rs).
//!
//! WeChat Pay's callbacks and the `/pkg` files are answered without these: no browser
//! shows the former, and the latter are scripts and styles of known types, served on every
//! page load where each header's bytes count (docs/benchmarks.md, first load).

use axum::extract::Request;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The headers and their values, set on every response that does not carry its own.
const HEADERS: [(HeaderName, &str); 5] = [
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CONTENT_SECURITY_POLICY, app::BASE_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::CACHE_CONTROL, "no-store"),
];

/// Adds [`HEADERS`] to the response (a handler's own value of one of them is kept).
pub async fn add(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    for (name, value) in HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}
