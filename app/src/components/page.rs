//! What every routed page opens with — the window title, the heading and the line under it —
//! and how it shows the data it waits for.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{AppError, ErrorBanner, Refused};
use crate::i18n::{use_lang, Msg};

/// The window title (`… · paydesk`), the page's heading and, if given, its intro line.
#[component]
pub fn PageHeader(
    /// The heading (and the window title).
    title: &'static str,
    /// The line under it.
    #[prop(optional)]
    intro: Option<&'static str>,
) -> impl IntoView {
    view! {
        <Title text=format!("{title} · paydesk")/>
        <h1 class="page__title">{title}</h1>
        {intro.map(|intro| view! { <p class="page__intro">{intro}</p> })}
    }
}

/// A resource's value shown by `render` once it has come ("Loading…" before, and the old
/// value kept on screen while it refetches). A failure shows as the page's refusal
/// ([`Refused`]), or as a plain error banner with `banner` (a card inside a page).
#[component]
pub fn Loaded<T, R, V>(
    /// What is waited for.
    resource: Resource<Result<T, AppError>>,
    /// Shows it.
    render: R,
    /// Whether a failure is a plain banner rather than the page's refusal.
    #[prop(optional)]
    banner: bool,
) -> impl IntoView
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    R: Fn(T) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let lang = use_lang();
    let shown = move || {
        let render = render.clone();
        Suspend::new(async move {
            match resource.await {
                Ok(value) => render(value).into_any(),
                Err(error) if banner => view! { <ErrorBanner error/> }.into_any(),
                Err(error) => view! { <Refused error/> }.into_any(),
            }
        })
    };
    view! { <Transition fallback=move || view! { <p>{Msg::Loading.text(lang)}</p> }>{shown}</Transition> }
}
