//! paydesk's dashboard: Leptos pages, components and server functions.
//!
//! Built twice from the same source: with feature `ssr` into the server (rendering pages
//! and running server functions) and with feature `hydrate` into WebAssembly through the
//! thin `frontend` crate (docs/build.md). Layout follows docs/style.md §12.

pub mod components;
pub mod dto;
pub mod error;
pub mod i18n;
pub mod pages;
pub mod providers;
pub mod server;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, Lazy, SsrMode};

use crate::components::shell::AppShell;
use crate::i18n::{Lang, Msg};
use crate::pages::account::AccountPage;
use crate::pages::audit::AuditPage;
use crate::pages::exceptions::ExceptionsPage;
use crate::pages::home::HomePage;
use crate::pages::login::LoginPage;
use crate::pages::logs::api_calls::{ApiCallDetailPage, ApiCallsPage};
use crate::pages::logs::failures::FailuresPage;
use crate::pages::logs::lookup::LookupPage;
use crate::pages::logs::notifications::{NotificationDetailPage, NotificationsPage};
use crate::pages::not_found::NotFoundPage;
use crate::pages::order_detail::OrderDetailPage;
use crate::pages::orders::OrdersPage;
use crate::pages::products::ProductsPage;
use crate::pages::reconciliation::ReconciliationPage;
use crate::pages::refunds::RefundsPage;
use crate::pages::settings::SettingsPage;
use crate::pages::users::UsersPage;
use crate::providers::auth::AuthContext;

/// A page whose code the browser loads only when it is visited: `#[lazy_route]` makes the
/// page's view a split point, and `scripts/build.sh` cuts the wasm there into one chunk per
/// page (plus chunks of code several pages share), so the first load carries the router
/// and the page it opens, not the whole dashboard (docs/build.md "Split wasm"). The
/// signed-in shell (navigation, live stream, toasts) stays in the main module: as a lazy
/// route of its own it took the sign-in page from 315 to 294 KB but every signed-in first
/// visit from 366 to 506 KB, its code cut into some 200 more small chunks
/// (docs/benchmarks.md "Dashboard first load, split by page").
///
/// The sign-in page is not lazy: it is everyone's first page, and as a lazy route it came
/// as 30 small chunks of code it shares with other pages (each with its response headers
/// and a poorer compression); in the main module it costs 6.6 KB there and took the first
/// load from 309 to 281 KB, and a signed-in first visit from 382–408 to 369–396 KB.
///
/// `data()` starts nothing: every page loads its own data in its view, and with
/// `SsrMode::Async` the first visit's data comes inside the HTML anyway.
macro_rules! lazy_pages {
    ($($route:ident => $page:ident),+ $(,)?) => {$(
        #[doc = concat!("The lazily loaded route of [`", stringify!($page), "`].")]
        struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(this: Self) -> AnyView {
                let _ = this;
                view! { <$page/> }.into_any()
            }
        }
    )+};
}

lazy_pages! {
    HomeRoute => HomePage,
    AuditRoute => AuditPage,
    SettingsRoute => SettingsPage,
    OrdersRoute => OrdersPage,
    OrderDetailRoute => OrderDetailPage,
    UsersRoute => UsersPage,
    ProductsRoute => ProductsPage,
    RefundsRoute => RefundsPage,
    ReconciliationRoute => ReconciliationPage,
    ExceptionsRoute => ExceptionsPage,
    AccountRoute => AccountPage,
    NotificationsRoute => NotificationsPage,
    NotificationDetailRoute => NotificationDetailPage,
    FailuresRoute => FailuresPage,
    LookupRoute => LookupPage,
    ApiCallsRoute => ApiCallsPage,
    ApiCallDetailRoute => ApiCallDetailPage,
}

/// What every dashboard answer allows, pages or not (the server's security headers send
/// it on every answer that sets no policy of its own): never framed (clickjacking an
/// approval), no `<base>`, no plugins, forms only to the dashboard.
pub const BASE_POLICY: &str =
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'";

/// A page's `Content-Security-Policy`: [`BASE_POLICY`], and scripts only from the dashboard
/// itself or inline with this response's nonce (Leptos puts it on every inline script it
/// writes: hydration, resources), WebAssembly compiled from what was fetched, and nothing
/// else fetched, shown or styled from anywhere but the dashboard. An injected `<script>`
/// has no nonce and does not run.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; {BASE_POLICY}"
    )
}

/// Sets [`page_policy`] on the response of the page being rendered, with the nonce Leptos
/// made for it.
#[cfg(feature = "ssr")]
fn set_page_policy() {
    let nonce = leptos::nonce::use_nonce();
    let response = use_context::<leptos_axum::ResponseOptions>();
    let (Some(nonce), Some(response)) = (nonce, response) else {
        // leptos_axum provides both for every page it renders; without them the page
        // keeps only the server's base policy, which must not go unnoticed.
        tracing::error!("no nonce for the page's security policy; scripts are not restricted");
        return;
    };
    match http::HeaderValue::from_str(&page_policy(&nonce)) {
        Ok(value) => response.insert_header(http::header::CONTENT_SECURITY_POLICY, value),
        Err(e) => tracing::error!(error = %e, "the page's security policy is not a header value"),
    }
}

/// The HTML document around the app (server side only).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let lang = Lang::detect();
    #[cfg(feature = "ssr")]
    set_page_policy();
    view! {
        <!DOCTYPE html>
        <html lang=lang.html_code()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="data:,"/>
                <HashedStylesheet options=options.clone()/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The dashboard.
///
/// Every route renders with `SsrMode::Async`: the server resolves the page's data before
/// answering, so a signed-out visitor gets a real HTTP redirect and forms work before the
/// WebAssembly has loaded (docs/build.md "No-JS forms").
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let lang = Lang::detect();
    provide_context(lang);
    AuthContext::provide();

    view! {
        <Title text=Msg::AppName.text(lang)/>
        <Router>
            <Routes fallback=NotFoundPage>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=AppShell ssr=SsrMode::Async>
                    <Route path=path!("") view={Lazy::<HomeRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("audit") view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("settings") view={Lazy::<SettingsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("orders") view={Lazy::<OrdersRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("orders/:out_trade_no") view={Lazy::<OrderDetailRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("users") view={Lazy::<UsersRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("products") view={Lazy::<ProductsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("refunds") view={Lazy::<RefundsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("reconciliation") view={Lazy::<ReconciliationRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("exceptions") view={Lazy::<ExceptionsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("account") view={Lazy::<AccountRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("notifications") view={Lazy::<NotificationsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("notifications/:id") view={Lazy::<NotificationDetailRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("failures") view={Lazy::<FailuresRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("lookup") view={Lazy::<LookupRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("api-calls") view={Lazy::<ApiCallsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("api-calls/:id") view={Lazy::<ApiCallDetailRoute>::new()} ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The browser entry point, called by the `frontend` crate's wasm `hydrate()`.
///
/// Leptos' `hydrate_lazy` does the same but for the `data-hydrated` marker, which must wait
/// until the page's chunk has loaded and the page is hydrated.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        // A page's wasm chunk that did not load (the network failed, or a deploy removed
        // this build's files) ends the app here: load the page afresh, once (the mark is
        // cleared when a page has hydrated, so a failing reload does not loop).
        if info.to_string().contains("load callback should succeed") {
            reload_once();
        }
    }));
    // Asynchronous, because the page's route may first have to load its wasm chunk (the
    // server's HTML already asked for it with a preload link). Already started is fine.
    _ = any_spawner::Executor::init_wasm_bindgen();
    leptos::task::spawn_local(async {
        leptos::mount::hydrate_from_async(document().body().expect("a <body>"), App)
            .await
            .forget();
        if let Ok(Some(storage)) = window().session_storage() {
            let _ = storage.remove_item(RELOAD_MARK);
        }
        // A marker for the browser tests (and for anyone debugging): the wasm has taken over.
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });
}

/// The session-storage key that says this tab already reloaded after a chunk failed.
#[cfg(feature = "hydrate")]
const RELOAD_MARK: &str = "paydesk-reloaded-after-chunk-failure";

#[cfg(feature = "hydrate")]
fn reload_once() {
    let Ok(Some(storage)) = window().session_storage() else {
        return;
    };
    if matches!(storage.get_item(RELOAD_MARK), Ok(None))
        && storage.set_item(RELOAD_MARK, "1").is_ok()
    {
        let _ = window().location().reload();
    }
}
