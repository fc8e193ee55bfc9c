//! The cross-site check in front of the dashboard's server functions.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Where the dashboard's own requests come from: the configured public URL
/// (`PAYDESK_PUBLIC_URL`), or else whatever `Host` each request names.
#[derive(Debug, Clone)]
pub struct SameOrigin(Option<Arc<reqwest::Url>>);

impl SameOrigin {
    /// From `PAYDESK_PUBLIC_URL` (checked by `Settings::validate`; an unparsable value here
    /// falls back to `Host`, never to accepting everything).
    pub fn new(public_url: Option<&str>) -> Self {
        SameOrigin(
            public_url
                .and_then(|u| reqwest::Url::parse(u.trim()).ok())
                .map(Arc::new),
        )
    }
}

/// CSRF defence in depth for the dashboard's server functions (everything under `/api/`
/// except the mini-program API, which authenticates with a bearer token, not a cookie), on
/// top of `SameSite=Strict` cookies: a mutation whose `Sec-Fetch-Site` says another site
/// sent it, or whose `Origin` is not the dashboard's, is refused before it reaches the
/// function.
pub async fn refuse_cross_site(
    State(own): State<SameOrigin>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let cookie_authenticated = path.starts_with("/api/") && !path.starts_with("/api/mp/");
    let method = req.method();
    if cookie_authenticated
        && method != Method::GET
        && method != Method::HEAD
        && is_cross_site(req.headers(), &own)
    {
        tracing::warn!("cross-site request to a server function refused");
        return (StatusCode::FORBIDDEN, "cross-site request refused\n").into_response();
    }
    next.run(req).await
}

/// With a public URL configured, `Origin` must be its origin (scheme, host and port; the
/// `Host` header is not consulted, so a proxy may rewrite it). Without one, the origin's
/// host must equal `Host`. A request without `Origin` is judged by `Sec-Fetch-Site` alone.
fn is_cross_site(headers: &HeaderMap, own: &SameOrigin) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    match &own.0 {
        Some(public) => !reqwest::Url::parse(origin).is_ok_and(|o| o.origin() == public.origin()),
        None => {
            let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
                return false;
            };
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            origin == "null" || origin_host != host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cross_site_mutations_are_recognised() {
        let by_host = SameOrigin::new(None);
        let is_cross_site = |h: &HeaderMap| is_cross_site(h, &by_host);
        assert!(!is_cross_site(&headers(&[("host", "127.0.0.1:3000")])));
        assert!(!is_cross_site(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "null")
        ])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn with_a_public_url_only_its_origin_passes_whatever_the_host() {
        let own = SameOrigin::new(Some("https://pay.example.com"));
        let check = |origin: &str, host: &str| {
            is_cross_site(&headers(&[("host", host), ("origin", origin)]), &own)
        };
        // A proxy rewrote Host to the upstream address: still our origin.
        assert!(!check("https://pay.example.com", "127.0.0.1:3000"));
        assert!(!check("https://PAY.example.com:443", "127.0.0.1:3000"));
        // Equal to Host, but not the public URL: refused.
        assert!(check("http://127.0.0.1:3000", "127.0.0.1:3000"));
        assert!(check("http://pay.example.com", "pay.example.com"));
        assert!(check(
            "https://pay.example.com:8443",
            "pay.example.com:8443"
        ));
        assert!(check("null", "pay.example.com"));
    }
}
