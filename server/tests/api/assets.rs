//! The dashboard's static files and pages as a browser receives them: precompressed copies
//! sent as they are, content-named files cached for good and others revalidated, pages
//! compressed, the live event stream never.

use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, IF_MODIFIED_SINCE};
use serde_json::json;

use crate::helpers::{html_headers, spawn_apps_with};

const HASHED: &str = "paydesk.0123456789abcdef0123.css";

/// A site folder as `scripts/build.sh --release` leaves it: a plain stylesheet, a
/// content-named copy, and that copy's precompressed forms (marked so we see which one came).
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("paydesk.css"), "body { color: black }").unwrap();
    std::fs::write(pkg.join(HASHED), "body { color: black }").unwrap();
    std::fs::write(pkg.join(format!("{HASHED}.br")), "brotli bytes").unwrap();
    std::fs::write(pkg.join(format!("{HASHED}.gz")), "gzip bytes").unwrap();
    dir
}

#[tokio::test]
async fn static_files_are_sent_precompressed_and_cached_by_their_names() {
    let site = site();
    for app in spawn_apps_with(json!({ "site_root": site.path() })).await {
        let l = app.db.label;
        let client = app.client();
        let get = |path: &str, encoding: Option<&str>| {
            let mut req = client.get(app.url(path));
            if let Some(e) = encoding {
                req = req.header(ACCEPT_ENCODING, e);
            }
            req.send()
        };
        let header = |res: &reqwest::Response, name| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };

        // A content-named file: the precompressed copy the browser takes, cached a year.
        for (accept, encoding, body) in [
            ("br, gzip", Some("br"), "brotli bytes"),
            ("gzip", Some("gzip"), "gzip bytes"),
            ("identity", None, "body { color: black }"),
        ] {
            let res = get(&format!("/pkg/{HASHED}"), Some(accept)).await.unwrap();
            assert_eq!(res.status(), 200, "{l}");
            assert_eq!(header(&res, CONTENT_ENCODING).as_deref(), encoding, "{l}");
            assert_eq!(
                header(&res, CACHE_CONTROL).as_deref(),
                Some("public, max-age=31536000, immutable"),
                "{l}"
            );
            // Never revalidated, never fetched in parts: no bytes spent saying how.
            assert_eq!(header(&res, reqwest::header::LAST_MODIFIED), None, "{l}");
            assert_eq!(header(&res, reqwest::header::ACCEPT_RANGES), None, "{l}");
            assert_eq!(res.text().await.unwrap(), body, "{l}");
        }

        // A plain name may change under it: revalidated, 304 when unchanged.
        let plain = get("/pkg/paydesk.css", Some("br, gzip")).await.unwrap();
        assert_eq!(plain.status(), 200, "{l}");
        assert_eq!(
            header(&plain, CACHE_CONTROL).as_deref(),
            Some("no-cache"),
            "{l}"
        );
        let modified = header(&plain, reqwest::header::LAST_MODIFIED).unwrap();
        let again = client
            .get(app.url("/pkg/paydesk.css"))
            .header(IF_MODIFIED_SINCE, modified)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{l}");

        // Nothing there: a plain 404, nothing to cache.
        let missing = get("/pkg/paydesk.0123456789abcdef0123.js", None)
            .await
            .unwrap();
        assert_eq!(missing.status(), 404, "{l}");
        assert_eq!(header(&missing, CACHE_CONTROL), None, "{l}");

        // Pages are compressed as the browser accepts…
        let page = client
            .get(app.url("/login"))
            .headers(html_headers())
            .header(ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{l}");
        assert_eq!(
            header(&page, CONTENT_ENCODING).as_deref(),
            Some("gzip"),
            "{l}"
        );

        // …the CSV export too, streamed to its end (its stream is polled once more after
        // the end by the compressor)…
        let admin = app.signed_in("admin", crate::helpers::ADMIN_PASSWORD).await;
        let csv = admin
            .get(app.url("/orders/export.csv"))
            .header(ACCEPT_ENCODING, "br")
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), 200, "{l}");
        assert_eq!(header(&csv, CONTENT_ENCODING).as_deref(), Some("br"), "{l}");
        let bytes = csv.bytes().await.expect("the whole compressed export");
        assert!(!bytes.is_empty(), "{l}");

        // …the live event stream never (a compressor would hold its events back).
        let events = admin
            .get(app.url("/api/events"))
            .header(ACCEPT_ENCODING, "gzip, br")
            .send()
            .await
            .unwrap();
        assert_eq!(events.status(), 200, "{l}");
        assert_eq!(header(&events, CONTENT_ENCODING), None, "{l}");
    }
}
