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
use leptos_router::{path, SsrMode};

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

/// The HTML document around the app (server side only).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let lang = Lang::detect();
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
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("audit") view=AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("settings") view=SettingsPage ssr=SsrMode::Async/>
                    <Route path=path!("orders") view=OrdersPage ssr=SsrMode::Async/>
                    <Route path=path!("orders/:out_trade_no") view=OrderDetailPage ssr=SsrMode::Async/>
                    <Route path=path!("users") view=UsersPage ssr=SsrMode::Async/>
                    <Route path=path!("products") view=ProductsPage ssr=SsrMode::Async/>
                    <Route path=path!("refunds") view=RefundsPage ssr=SsrMode::Async/>
                    <Route path=path!("reconciliation") view=ReconciliationPage ssr=SsrMode::Async/>
                    <Route path=path!("exceptions") view=ExceptionsPage ssr=SsrMode::Async/>
                    <Route path=path!("account") view=AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("notifications") view=NotificationsPage ssr=SsrMode::Async/>
                    <Route path=path!("notifications/:id") view=NotificationDetailPage ssr=SsrMode::Async/>
                    <Route path=path!("failures") view=FailuresPage ssr=SsrMode::Async/>
                    <Route path=path!("lookup") view=LookupPage ssr=SsrMode::Async/>
                    <Route path=path!("api-calls") view=ApiCallsPage ssr=SsrMode::Async/>
                    <Route path=path!("api-calls/:id") view=ApiCallDetailPage ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The browser entry point, called by the `frontend` crate's wasm `hydrate()`.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // A marker for the browser tests (and for anyone debugging): the wasm has taken over.
    if let Some(root) = document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
