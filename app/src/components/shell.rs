//! The signed-in frame: navigation filtered by role, the user, the language switch and
//! sign-out. Signed-out visitors are sent to the sign-in page with `next=` set.

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect, A};
use leptos_router::hooks::use_location;
use paydesk_types::Role;

use crate::components::live::{Live, Toasts};
use crate::dto::Me;
use crate::error::ErrorBanner;
use crate::i18n::{role_name, use_lang, Lang, Msg};
use crate::providers::auth::use_auth;

/// One navigation entry and the role it needs.
struct NavItem {
    href: &'static str,
    label: Msg,
    min: Role,
}

const NAV: &[NavItem] = &[
    NavItem {
        href: "/",
        label: Msg::NavHome,
        min: Role::Staff,
    },
    NavItem {
        href: "/orders",
        label: Msg::NavOrders,
        min: Role::Staff,
    },
    NavItem {
        href: "/notifications",
        label: Msg::NavNotifications,
        min: Role::Staff,
    },
    NavItem {
        href: "/failures",
        label: Msg::NavFailures,
        min: Role::Support,
    },
    NavItem {
        href: "/lookup",
        label: Msg::NavLookup,
        min: Role::Support,
    },
    NavItem {
        href: "/api-calls",
        label: Msg::NavApiCalls,
        min: Role::Support,
    },
    NavItem {
        href: "/exceptions",
        label: Msg::NavExceptions,
        min: Role::Support,
    },
    NavItem {
        href: "/refunds",
        label: Msg::NavRefunds,
        min: Role::Support,
    },
    NavItem {
        href: "/reconciliation",
        label: Msg::NavReconciliation,
        min: Role::Manager,
    },
    NavItem {
        href: "/products",
        label: Msg::NavProducts,
        min: Role::Admin,
    },
    NavItem {
        href: "/users",
        label: Msg::NavUsers,
        min: Role::Admin,
    },
    NavItem {
        href: "/audit",
        label: Msg::NavAudit,
        min: Role::Admin,
    },
    NavItem {
        href: "/settings",
        label: Msg::NavSettings,
        min: Role::Admin,
    },
    NavItem {
        href: "/account",
        label: Msg::NavAccount,
        min: Role::Staff,
    },
];

/// The signed-in frame around every dashboard page.
#[component]
pub fn AppShell() -> impl IntoView {
    let auth = use_auth();
    let location = use_location();
    view! {
        <Transition fallback=move || view! { <p class="page-loading">{Msg::Loading.text(use_lang())}</p> }>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(me)) => view! { <Frame me/> }.into_any(),
                    Ok(None) => {
                        let here = path_and_query(&location.pathname.get_untracked(), &location.search.get_untracked());
                        let target = format!("/login?next={}", urlencode(&here));
                        view! { <Redirect path=target/> }.into_any()
                    }
                    Err(error) => view! { <main class="page"><ErrorBanner error/></main> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Frame(me: Me) -> impl IntoView {
    let lang = use_lang();
    let live = Live::provide();
    let auth = use_auth();
    let location = use_location();
    let role = me.role;
    let links = NAV
        .iter()
        .filter(|item| role.includes(item.min))
        .map(|item| {
            view! {
                <li><A href=item.href exact=item.href == "/" attr:class="nav__link">{item.label.text(lang)}</A></li>
            }
        })
        .collect_view();
    let switch_to = match lang {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    let switch_href = move || {
        let here = path_and_query(&location.pathname.get(), &location.search.get());
        format!("/lang/{}?next={}", switch_to.0, urlencode(&here))
    };
    view! {
        <div class="layout">
            <nav class="nav" aria-label="main">
                <div class="nav__brand">"paydesk"</div>
                <ul class="nav__list">{links}</ul>
            </nav>
            <div class="layout__main">
                <header class="topbar">
                    <span class="topbar__user">
                        {Msg::SignedInAs.text(lang)} ": " <strong class="topbar__username">{me.username.clone()}</strong>
                        " " <span class=format!("badge badge--{}", role.as_str())>{role_name(role, lang)}</span>
                    </span>
                    {role.includes(Role::Support).then(|| view! { <ExceptionsCount/> })}
                    {me.sandbox.then(|| view! {
                        <span class="badge badge--sandbox" data-testid="sandbox-badge" title=Msg::SandboxBadgeTitle.text(lang)>
                            {Msg::SandboxBadge.text(lang)}
                        </span>
                    })}
                    <span class="topbar__live" class:topbar__live--on=move || live.connected.get() data-testid="live-status"
                        title=move || if live.connected.get() { Msg::LiveOn.text(lang) } else { Msg::LiveOff.text(lang) }>
                        {move || if live.connected.get() { Msg::LiveOn.text(lang) } else { Msg::LiveOff.text(lang) }}
                    </span>
                    <a class="topbar__lang" href=switch_href rel="external" data-testid="lang-switch">{switch_to.1}</a>
                    <ActionForm action=auth.logout attr:class="topbar__logout">
                        <button type="submit" class="button button--quiet">{Msg::SignOut.text(lang)}</button>
                    </ActionForm>
                </header>
                {me.disk_low_free_bytes.map(|free| view! {
                    <p class="banner banner--error" role="alert" data-testid="disk-low-banner">
                        {Msg::DiskLowPrefix.text(lang)}{mib(free)}{Msg::DiskLowSuffix.text(lang)}
                    </p>
                })}
                <main class="page">
                    <Outlet/>
                </main>
            </div>
            <Toasts/>
        </div>
    }
}

/// The top bar's count of open exceptions (support and up), refreshed when the inbox
/// changes (live), linking to the inbox.
#[component]
fn ExceptionsCount() -> impl IntoView {
    let lang = use_lang();
    let live = crate::components::live::use_live();
    let count = Resource::new(
        move || live.exceptions.get(),
        |_| crate::server::exceptions::count_exceptions(),
    );
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let n = count.await.unwrap_or(0);
                let any = n > 0;
                view! {
                    <a href="/exceptions" class="topbar__exceptions" class:topbar__exceptions--open=any
                        data-testid="exceptions-count" data-open=n.to_string()>
                        {Msg::NavExceptions.text(lang)} " " <strong>{n}</strong>
                    </a>
                }
            })}
        </Transition>
    }
}

/// Bytes as whole MiB (`512 MiB`).
fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// `/path?query` from the router's location (whose `search` has no `?`).
pub fn path_and_query(path: &str, search: &str) -> String {
    if search.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", search.trim_start_matches('?'))
    }
}

/// Percent-encodes a path for a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
