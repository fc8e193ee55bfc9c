//! The dashboard's static files under `/pkg` (the wasm front end, its JavaScript glue, the
//! stylesheet), served the way a first visit should cost little and a second nothing:
//!
//! - **Precompressed.** `scripts/build.sh --release` writes `.br` and `.gz` beside each
//!   file; the one the browser accepts is sent as is (no compression work per request).
//!   Without them (a debug build) the plain file is sent.
//! - **Cached for good when the name says what is inside.** A release build names its
//!   files after their content (`paydesk.<hash>.wasm`, read from `hash.txt` beside the
//!   binary: [`hash_file_beside_binary`]), so such a file never changes and is cached for a
//!   year, `immutable`. Any other file (a debug build's `paydesk.wasm`) must be revalidated
//!   on every use (`no-cache`, answered 304 when unchanged). A content-named file goes
//!   without `Last-Modified` and `Accept-Ranges`: nobody asks again, or for a part.
//!
//! These requests skip the dashboard's layers (session, tracing span): they need none.

use std::path::PathBuf;

use axum::extract::Request;
use axum::http::header::{self, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::services::ServeDir;

/// `Cache-Control` of a file named after its content.
const FOREVER: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of any other file: use it only after asking whether it changed.
const REVALIDATE: &str = "no-cache";

/// The `/pkg` router over `pkg_dir` (`site_root/pkg`).
pub fn router<S: Clone + Send + Sync + 'static>(pkg_dir: PathBuf) -> Router<S> {
    let files = ServeDir::new(pkg_dir)
        .precompressed_br()
        .precompressed_gzip();
    Router::new()
        .nest_service("/pkg", files)
        .layer(middleware::from_fn(cache_control))
}

async fn cache_control(req: Request, next: Next) -> Response {
    let forever = is_content_named(req.uri().path());
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == axum::http::StatusCode::NOT_MODIFIED {
        let value = if forever { FOREVER } else { REVALIDATE };
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        if forever {
            // Never revalidated and never fetched in parts: `Last-Modified` and
            // `Accept-Ranges` would only cost every one of a page's files their bytes.
            headers.remove(header::LAST_MODIFIED);
            headers.remove(header::ACCEPT_RANGES);
        }
    }
    res
}

/// Whether the file's name carries its content's hash: `name.<16+ hex digits>.ext`.
fn is_content_named(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    let mut parts = file.split('.');
    let (Some(_name), Some(hash), Some(_ext)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    hash.len() >= 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where Leptos reads the content hashes of the release build's files (`hash.txt` beside
/// the running binary, as `scripts/build.sh --release` writes it), if they were written.
pub fn hash_file_beside_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let file = exe.parent().map(|dir| dir.join(HASH_FILE))?;
    file.is_file().then_some(file)
}

/// The name of the hash file (Leptos' default).
pub const HASH_FILE: &str = "hash.txt";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_carrying_a_hash_are_cached_for_good() {
        assert!(is_content_named("/pkg/paydesk.0123456789abcdef.wasm"));
        assert!(is_content_named("/pkg/paydesk.0123456789ABCDEF0123.css"));
        assert!(!is_content_named("/pkg/paydesk.wasm"));
        assert!(!is_content_named("/pkg/paydesk.css"));
        assert!(!is_content_named("/pkg/paydesk.0123abcd.js"));
        assert!(!is_content_named("/pkg/paydesk.not-a-hash-at-all.js"));
    }

    #[test]
    fn the_split_builds_chunks_loader_and_manifest_are_cached_by_their_names() {
        let hash = "09629f48ba2de31a7e025b";
        for name in [
            format!("/pkg/chunk_148.{hash}.wasm"),
            format!("/pkg/split___home_route_view_12564559774285843776.{hash}.wasm"),
            format!("/pkg/__wasm_split.{hash}.js"),
            format!("/pkg/__wasm_split_manifest.{hash}.json"),
        ] {
            assert!(is_content_named(&name), "{name}");
        }
        // The debug build's plain names, the loader's placeholder included.
        assert!(!is_content_named("/pkg/chunk_148.wasm"));
        assert!(!is_content_named(
            "/pkg/__wasm_split.______________________.js"
        ));
        assert!(!is_content_named("/pkg/__wasm_split_manifest.json"));
    }
}
