//! Keyset pages: a "back" link and a "next" link under a list, the same on every page.
//! Lists newest first (the logs, the audit log) go back to the newest page and on to older
//! ones ([`Pager`]); the orders list keeps the cursors before it in its URL, so it goes back
//! one page ([`PageLinks`] with [`PagerMsg::Previous`]).

use leptos::prelude::*;

use crate::components::filtered_list::href_with;
use crate::i18n::use_lang;

crate::messages! {
/// The pager's words.
pub enum PagerMsg {
    Newest => "← 回到最新", "← Newest";
    Older => "更早 →", "Older →";
    Previous => "← 上一页", "← Previous";
    Next => "下一页 →", "Next →";
}
}

/// The two links, each shown when it has somewhere to go.
#[component]
pub fn PageLinks(
    /// Where "back" goes (none on the first page).
    back: Option<String>,
    /// Its words.
    back_label: PagerMsg,
    /// Where "next" goes (none on the last page).
    next: Option<String>,
    /// Its words.
    next_label: PagerMsg,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <nav class="pager" aria-label="pages">
            {back.map(|href| view! { <a class="button button--small" href=href data-testid="prev-page">{back_label.text(lang)}</a> })}
            {next.map(|href| view! { <a class="button button--small" href=href data-testid="next-page">{next_label.text(lang)}</a> })}
        </nav>
    }
}

/// "← Newest" and "Older →" under a list newest first.
#[component]
pub fn Pager(
    /// The list's path.
    path: &'static str,
    /// The filters in effect (without `after`).
    params: Vec<(&'static str, String)>,
    /// Whether this is a later page.
    paged: bool,
    /// The next page's `after`.
    next: Option<String>,
) -> impl IntoView {
    let back = paged.then(|| href_with(path, &params));
    let next = next.map(|n| {
        let mut p = params;
        p.push(("after", n));
        href_with(path, &p)
    });
    view! { <PageLinks back back_label=PagerMsg::Newest next next_label=PagerMsg::Older/> }
}
