//! The complete axum router: operations endpoints, preferences, the mini-program API,
//! server functions, dashboard pages and static assets, with their layers; WeChat Pay's
//! callbacks beside them without those layers.

use std::sync::OnceLock;

use app::{shell, App};
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware;
use axum::Router;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use paydesk_core::sessions::DbSessionStore;
use tower_http::compression::CompressionLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::metrics;
use crate::middleware::same_origin::{self, SameOrigin};
use crate::middleware::{client_ip, security_headers};
use crate::routes;
use crate::state::AppState;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "paydesk_session";

/// The dashboard's routes, worked out once per process.
///
/// `generate_route_list` renders the whole app once with resource loading suppressed, and
/// that switch is process-wide (`leptos_server`'s `SuppressResourceLoad`): a page render
/// anywhere in the process whose first resource poll falls inside that window waits
/// forever (leptos-rs/leptos#4773). A server builds its router once, before it listens,
/// so there it cannot happen; but tests build many apps in one process while others are
/// rendering pages, and one page render in a few hundred never finished. The routes
/// depend only on the `App` component, so the first list serves every later router, and
/// no route list is generated once any app could be serving.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The complete router: operations endpoints, preferences, server functions, dashboard
/// pages and static assets, with sessions, metrics and request tracing around them.
pub fn router(state: AppState) -> Router {
    let routes = route_list();
    let session_layer = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.settings.cookie_secure)
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            state.settings.session_idle_minutes,
        )));

    let options = state.leptos_options.clone();

    let dashboard = Router::new()
        .merge(routes::ops::router())
        .merge(routes::prefs::router())
        .merge(routes::mp::router(&state.settings.mp_limits))
        .merge(routes::events::router())
        .merge(routes::orders::router())
        .merge(routes::reconciliation::router())
        // Registers every server function under /api/… as well as the pages.
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(session_layer)
        // Pages, server functions' JSON and the CSV export, compressed as the browser
        // accepts (the live event stream and images never are; `/pkg` is precompressed).
        .layer(CompressionLayer::new())
        // Server functions find what they need on the request (see `app::server::ssr`).
        .layer(axum::Extension(state.server_context()))
        .layer(middleware::from_fn_with_state(
            SameOrigin::new(state.settings.public_url.as_deref()),
            same_origin::refuse_cross_site,
        ))
        // Who the client is, behind a trusted reverse proxy too (audit, throttling,
        // spbill_create_ip).
        .layer(middleware::from_fn_with_state(
            state.trusted_proxies.clone(),
            client_ip::resolve,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("-");
                // The path only, never the query string: it may carry ids or tokens.
                tracing::info_span!("http", method = %req.method(), route, path = req.uri().path())
            }),
        )
        // Outermost, so the layers' own answers (a refused cross-site request) carry them
        // too: what every answer asks of the browser (no framing, no sniffing, no referrer
        // to other sites, nothing kept on disk).
        .layer(middleware::from_fn(security_headers::add));

    // WeChat Pay's callbacks are authenticated by their signature, not by a session: they
    // skip the dashboard's layers above (session, request extensions, the cross-site check,
    // the `http` span — the receiver opens its own span with the peer) and their handlers
    // get only the intake, not a clone of the whole state. Each of those was paid by every
    // callback (callgrind, docs/benchmarks.md).
    // The dashboard's static files skip those layers too (they need no session).
    let pkg_dir = std::path::Path::new(state.leptos_options.site_root.as_ref())
        .join(state.leptos_options.site_pkg_dir.as_ref());
    Router::new()
        .merge(routes::wxpay::router(
            state.intake.clone(),
            state.trusted_proxies.clone(),
        ))
        .merge(routes::assets::router(pkg_dir))
        .merge(dashboard)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}
