//! The filtered list the log pages share (notifications, API calls, audit): a title, a
//! plain GET form of filters — the page's own fields, then the date range — and the list
//! for the URL's query, newest first, with keyset pages. The filters are the URL, so a view
//! is a link and the form works before the WebAssembly has loaded.

use std::future::Future;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::components::form::Field;
use crate::components::live::use_live;
use crate::components::page::{Loaded, PageHeader};
use crate::components::shell::urlencode;
use crate::error::AppError;
use crate::i18n::use_lang;

crate::messages! {
/// The filter form's words.
pub enum FilterMsg {
    From => "开始日期", "From";
    To => "结束日期（含）", "To (inclusive)";
    Filter => "筛选", "Filter";
    Reset => "清除筛选", "Clear";
}
}

/// `page?k=v&…` with the empty values left out.
pub fn href_with(path: &str, params: &[(&str, String)]) -> String {
    let query = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// A query parameter of the current page (empty when absent).
pub fn query_param(name: &'static str) -> Memo<String> {
    let query = use_query_map();
    Memo::new(move |_| query.with(|q| q.get(name).unwrap_or_default()))
}

/// The date range of a filter form (Asia/Shanghai days, both included).
#[component]
pub fn DateRange(
    /// The `from` date in effect.
    #[prop(into)]
    from: Signal<String>,
    /// The `to` date in effect.
    #[prop(into)]
    to: Signal<String>,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <Field label=FilterMsg::From.text(lang)>
            <input type="date" name="from" value=move || from.get()/>
        </Field>
        <Field label=FilterMsg::To.text(lang)>
            <input type="date" name="to" value=move || to.get()/>
        </Field>
    }
}

/// A filter's drop-down: `all` first (the empty value: not filtered), then each of `options`
/// (value, words), the one in effect selected.
#[component]
pub fn ChoiceFilter(
    /// The label above it.
    label: &'static str,
    /// The query parameter.
    name: &'static str,
    /// Its value in effect.
    current: Memo<String>,
    /// The words for "not filtered".
    all: &'static str,
    /// The choices, by value.
    options: Vec<(&'static str, String)>,
) -> impl IntoView {
    let options = options
        .into_iter()
        .map(|(value, words)| {
            view! { <option value=value selected=move || current.get() == value>{words}</option> }
        })
        .collect_view();
    view! {
        <Field label>
            <select name=name>
                <option value="" selected=move || current.get().is_empty()>{all}</option>
                {options}
            </select>
        </Field>
    }
}

/// The date range, the submit button and a link that clears the filters.
#[component]
pub fn DateFilters(
    /// The `from` date in effect.
    #[prop(into)]
    from: Signal<String>,
    /// The `to` date in effect.
    #[prop(into)]
    to: Signal<String>,
    /// The unfiltered list's path.
    reset: &'static str,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <DateRange from to/>
        <button type="submit" class="button button--primary">{FilterMsg::Filter.text(lang)}</button>
        <a href=reset class="button button--quiet">{FilterMsg::Reset.text(lang)}</a>
    }
}

/// A filtered log page. `filters` names the page's own query parameters (its form fields,
/// given as `children`); `fetch` gets their values in that order, then `from`, `to` and
/// `after`; `render` gets a page of the list with the filters in effect (for the pager's
/// links, `after` left out) and whether this is a later page.
#[component]
pub fn FilteredList<T, Fut, F, R, const N: usize>(
    /// The page's path: the form's action, the reset link, the pager's links.
    path: &'static str,
    /// The heading (and the window title).
    title: &'static str,
    /// The line under it.
    intro: &'static str,
    /// The form's `data-testid`.
    form_testid: &'static str,
    /// The page's own filters, by query parameter.
    filters: [&'static str; N],
    /// Whether every live event refetches the list (a log of what is happening now).
    #[prop(optional)]
    live: bool,
    /// Fetches the list.
    fetch: F,
    /// Shows it.
    render: R,
    /// The form's fields for `filters`.
    children: Children,
) -> impl IntoView
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = Result<T, AppError>> + Send + 'static,
    F: Fn([String; N], String, String, String) -> Fut + Send + Sync + 'static,
    R: Fn(T, Vec<(&'static str, String)>, bool) -> AnyView + Clone + Send + Sync + 'static,
{
    let events = use_live();
    let own: [Memo<String>; N] = filters.map(query_param);
    let (from, to, after) = (query_param("from"), query_param("to"), query_param("after"));
    let page = Resource::new(
        move || {
            (
                own.map(|m| m.get()),
                from.get(),
                to.get(),
                after.get(),
                live.then(|| events.any.get()),
            )
        },
        move |(values, from, to, after, _)| fetch(values, from, to, after),
    );
    let shown = move |list: T| {
        let mut params: Vec<(&'static str, String)> = filters
            .iter()
            .zip(own)
            .map(|(name, m)| (*name, m.get_untracked()))
            .collect();
        params.push(("from", from.get_untracked()));
        params.push(("to", to.get_untracked()));
        render(list, params, !after.get_untracked().is_empty())
    };
    view! {
        <PageHeader title intro/>
        <form method="get" action=path class="form form--row filters" data-testid=form_testid>
            {children()}
            <DateFilters from to reset=path/>
        </form>
        <Loaded resource=page render=shown/>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_only_the_filters_set() {
        assert_eq!(
            href_with(
                "/notifications",
                &[
                    ("kind", "refund".into()),
                    ("verdict", String::new()),
                    ("from", "2026-11-20".into())
                ]
            ),
            "/notifications?kind=refund&from=2026-11-20"
        );
        assert_eq!(
            href_with("/lookup", &[("q", "12.34 昨天".into())]),
            "/lookup?q=12.34%20%E6%98%A8%E5%A4%A9"
        );
        assert_eq!(href_with("/failures", &[]), "/failures");
    }
}
