//! My account: who I am, change my password, my own openids, my recent sign-ins.

use leptos::prelude::*;
use paydesk_types::format_shanghai;

use crate::components::form::{reset_on_success, result_line, Field, OkBanner};
use crate::components::page::{Loaded, PageHeader};
use crate::components::table::{Column, Table};
use crate::dto::{Activity, MyOpenid};
use crate::error::ErrorBanner;
use crate::i18n::{role_name, use_lang, Lang, Msg};
use crate::providers::auth::use_auth;
use crate::server::account::{
    my_activity, my_openids, AddMyOpenid, ChangePassword, RemoveMyOpenid,
};

/// `/account`.
#[component]
pub fn AccountPage() -> impl IntoView {
    let lang = use_lang();
    let auth = use_auth();
    let change = ServerAction::<ChangePassword>::new();
    let activity = Resource::new(move || change.version().get(), |_| my_activity());
    let me = move || auth.user.get().and_then(|r| r.ok()).flatten();
    let form = reset_on_success(change);

    view! {
        <PageHeader title=Msg::AccountTitle.text(lang)/>
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
            {move || result_line(change.value().get(), |()| {
                view! { <OkBanner>{Msg::PasswordChanged.text(lang)}</OkBanner> }.into_any()
            })}
            <ActionForm action=change node_ref=form attr:class="form" attr:data-testid="change-password-form">
                // Lets password managers tie the new password to this account.
                <input type="text" autocomplete="username" hidden
                    value=move || me().map(|m| m.username).unwrap_or_default()/>
                <Field label=Msg::CurrentPassword.text(lang)>
                    <input name="current" type="password" required autocomplete="current-password"/>
                </Field>
                <Field label=Msg::NewPassword.text(lang)>
                    <input name="new" type="password" required minlength="10" autocomplete="new-password"/>
                </Field>
                <Field label=Msg::ConfirmPassword.text(lang)>
                    <input name="confirm" type="password" required minlength="10" autocomplete="new-password"/>
                </Field>
                <button type="submit" class="button button--primary">{Msg::ChangePassword.text(lang)}</button>
            </ActionForm>
        </section>
        <OpenidsCard/>
        <section class="card">
            <h2 class="card__title">{Msg::RecentActivity.text(lang)}</h2>
            <Loaded resource=activity render=|items| view! { <ActivityTable items/> } banner=true/>
        </section>
    }
}

/// The openids the signed-in user shops with: refunds of orders they paid are not theirs
/// to approve (the server refuses it; the Refunds page says so).
#[component]
fn OpenidsCard() -> impl IntoView {
    let lang = use_lang();
    let add = ServerAction::<AddMyOpenid>::new();
    let remove = ServerAction::<RemoveMyOpenid>::new();
    let openids = Resource::new(
        move || (add.version().get(), remove.version().get()),
        |_| my_openids(),
    );
    let form = reset_on_success(add);
    view! {
        <section class="card" data-testid="my-openids">
            <h2 class="card__title">{Msg::MyOpenids.text(lang)}</h2>
            <p class="page__note">{Msg::MyOpenidsIntro.text(lang)}</p>
            {move || add.value().get().and_then(Result::err).map(|error| view! { <ErrorBanner error/> })}
            {move || remove.value().get().and_then(Result::err).map(|error| view! { <ErrorBanner error/> })}
            <Loaded resource=openids render=move |items| view! { <OpenidList items remove/> } banner=true/>
            <ActionForm action=add node_ref=form attr:class="form form--inline" attr:data-testid="add-openid-form">
                <Field label="openid">
                    <input name="openid" required maxlength="128" autocomplete="off"/>
                </Field>
                <button type="submit" class="button">{Msg::AddOpenid.text(lang)}</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn OpenidList(items: Vec<MyOpenid>, remove: ServerAction<RemoveMyOpenid>) -> impl IntoView {
    let lang = use_lang();
    if items.is_empty() {
        return view! { <p class="empty">{Msg::NoOpenids.text(lang)}</p> }.into_any();
    }
    let rows = items
        .into_iter()
        .map(|o| {
            view! {
                <tr class="table__row">
                    <td class="mono">{o.openid.clone()}</td>
                    <td class="table__time">{format_shanghai(o.created_at)}</td>
                    <td class="table__actions">
                        <ActionForm action=remove attr:class="decide-form">
                            <input type="hidden" name="openid" value=o.openid/>
                            <button type="submit" class="button button--small">{Msg::RemoveOpenid.text(lang)}</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <Table columns={["openid", Msg::Time.text(lang), Msg::Actions.text(lang)].map(Column::new)}>
            {rows}
        </Table>
    }
    .into_any()
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
        <Table columns={[Msg::Time, Msg::Event, Msg::Address].map(|m| Column::new(m.text(lang)))}>{rows}</Table>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
}
