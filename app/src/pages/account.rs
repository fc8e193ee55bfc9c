//! My account: who I am, change my password, my recent sign-ins.

use leptos::prelude::*;
use leptos_meta::Title;
use paydesk_types::format_shanghai;

use crate::dto::Activity;
use crate::error::ErrorBanner;
use crate::i18n::{role_name, use_lang, Lang, Msg};
use crate::providers::auth::use_auth;
use crate::server::account::{my_activity, ChangePassword};

/// `/account`.
#[component]
pub fn AccountPage() -> impl IntoView {
    let lang = use_lang();
    let auth = use_auth();
    let change = ServerAction::<ChangePassword>::new();
    let activity = Resource::new(move || change.version().get(), |_| my_activity());
    let me = move || auth.user.get().and_then(|r| r.ok()).flatten();
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let (Some(Ok(())), Some(form)) = (change.value().get(), form.get()) {
            form.reset();
        }
    });

    view! {
        <Title text=format!("{} · paydesk", Msg::AccountTitle.text(lang))/>
        <h1 class="page__title">{Msg::AccountTitle.text(lang)}</h1>
        {move || me().map(|me| view! {
            <dl class="facts">
                <dt>{Msg::Username.text(lang)}</dt><dd data-testid="my-username">{me.username}</dd>
                <dt>{Msg::Role.text(lang)}</dt><dd>{role_name(me.role, lang)}</dd>
                <dt>{Msg::LastLogin.text(lang)}</dt>
                <dd>{me.last_login_at.map(format_shanghai).unwrap_or_else(|| Msg::Never.text(lang).to_owned())}</dd>
            </dl>
        })}
        <section class="card">
            <h2 class="card__title">{Msg::ChangePassword.text(lang)}</h2>
            {move || change.value().get().map(|r| match r {
                Ok(()) => view! { <p class="banner banner--ok" role="status">{Msg::PasswordChanged.text(lang)}</p> }.into_any(),
                Err(error) => view! { <ErrorBanner error/> }.into_any(),
            })}
            <ActionForm action=change node_ref=form attr:class="form" attr:data-testid="change-password-form">
                // Lets password managers tie the new password to this account.
                <input type="text" autocomplete="username" hidden
                    value=move || me().map(|m| m.username).unwrap_or_default()/>
                <label class="form__field">
                    <span>{Msg::CurrentPassword.text(lang)}</span>
                    <input name="current" type="password" required autocomplete="current-password"/>
                </label>
                <label class="form__field">
                    <span>{Msg::NewPassword.text(lang)}</span>
                    <input name="new" type="password" required minlength="10" autocomplete="new-password"/>
                </label>
                <label class="form__field">
                    <span>{Msg::ConfirmPassword.text(lang)}</span>
                    <input name="confirm" type="password" required minlength="10" autocomplete="new-password"/>
                </label>
                <button type="submit" class="button button--primary">{Msg::ChangePassword.text(lang)}</button>
            </ActionForm>
        </section>
        <section class="card">
            <h2 class="card__title">{Msg::RecentActivity.text(lang)}</h2>
            <Transition fallback=move || view! { <p>{Msg::Loading.text(lang)}</p> }>
                {move || Suspend::new(async move {
                    match activity.await {
                        Ok(items) => view! { <ActivityTable items/> }.into_any(),
                        Err(error) => view! { <ErrorBanner error/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

fn event_name(action: &str, lang: Lang) -> &'static str {
    match action {
        "login.success" => Msg::EvLoginSuccess,
        "login.failure" => Msg::EvLoginFailure,
        "login.throttled" => Msg::EvLoginThrottled,
        "logout" => Msg::EvLogout,
        "account.password_change" => Msg::EvPasswordChange,
        _ => Msg::EvOther,
    }
    .text(lang)
}

#[component]
fn ActivityTable(items: Vec<Activity>) -> impl IntoView {
    let lang = use_lang();
    let rows = items
        .into_iter()
        .map(|a| {
            let failed = a.action == "login.failure" || a.action == "login.throttled";
            view! {
                <tr class="table__row" class:table__row--warn=failed>
                    <td class="table__time">{format_shanghai(a.at)}</td>
                    <td>{event_name(&a.action, lang)}</td>
                    <td><code>{a.ip.unwrap_or_else(|| "-".into())}</code></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table">
            <thead><tr><th>{Msg::Time.text(lang)}</th><th>{Msg::Event.text(lang)}</th><th>{Msg::Address.text(lang)}</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
}
