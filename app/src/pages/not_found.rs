//! The 404 page.

use leptos::prelude::*;

use crate::i18n::{use_lang, Msg};

/// Shown for any path that is not a page; answers HTTP 404.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    let lang = use_lang();
    view! {
        <main class="page page--center">
            <h1>"404"</h1>
            <p>{Msg::NotFound.text(lang)}</p>
            <a href="/">"paydesk"</a>
        </main>
    }
}
