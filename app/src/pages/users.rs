//! Users (admin): list, add, change role, disable / enable, reset password.
//!
//! The page does not hide itself from lower roles: it asks the server, and shows the
//! server's refusal. That is what the permission really is.

use leptos::prelude::*;
use paydesk_types::{format_shanghai, Role};

use crate::components::form::{reset_on_success, result_line, Field, OkBanner};
use crate::components::page::{Loaded, PageHeader};
use crate::components::status::{Badge, Tone};
use crate::components::table::{Column, Table};
use crate::dto::UserSummary;
use crate::error::AppError;
use crate::i18n::{role_name, use_lang, Lang, Msg};
use crate::providers::auth::use_auth;
use crate::server::users::{list_users, AddUser, ResetUserPassword, SetUserActive, SetUserRole};

/// `/users`.
#[component]
pub fn UsersPage() -> impl IntoView {
    let lang = use_lang();
    let add = ServerAction::<AddUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let set_active = ServerAction::<SetUserActive>::new();
    let reset = ServerAction::<ResetUserPassword>::new();
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                set_role.version().get(),
                set_active.version().get(),
            )
        },
        |_| list_users(),
    );
    let me_id = move || {
        use_auth()
            .user
            .get()
            .and_then(|r| r.ok())
            .flatten()
            .map(|m| m.id)
    };

    view! {
        <PageHeader title=Msg::UsersTitle.text(lang) intro=Msg::UsersIntro.text(lang)/>
        <Loaded
            resource=users
            render=move |list| view! {
                <ActionResults add set_role set_active reset/>
                <UserTable list me_id=me_id() set_role set_active reset/>
                <AddUserForm add/>
            }
        />
    }
}

#[component]
fn ActionResults(
    add: ServerAction<AddUser>,
    set_role: ServerAction<SetUserRole>,
    set_active: ServerAction<SetUserActive>,
    reset: ServerAction<ResetUserPassword>,
) -> impl IntoView {
    let lang = use_lang();
    let saved = move |r: Option<Result<UserSummary, AppError>>| {
        result_line(r, |_| {
            view! { <OkBanner>{Msg::Saved.text(lang)}</OkBanner> }.into_any()
        })
    };
    view! {
        {move || result_line(add.value().get(), |u| {
            view! { <OkBanner>{Msg::UserAdded.text(lang)} {u.username}</OkBanner> }.into_any()
        })}
        {move || saved(set_role.value().get())}
        {move || saved(set_active.value().get())}
        {move || result_line(reset.value().get(), |g| view! {
            <OkBanner testid="generated-password">
                {Msg::NewPasswordFor.text(lang)} <strong>{g.username}</strong> " " <code>{g.password}</code>
            </OkBanner>
        }.into_any())}
    }
}

fn role_options(lang: Lang, selected: Role) -> impl IntoView {
    Role::ALL
        .iter()
        .map(|r| view! { <option value=r.as_str() selected=*r == selected>{role_name(*r, lang)}</option> })
        .collect_view()
}

#[component]
fn UserTable(
    list: Vec<UserSummary>,
    me_id: Option<i64>,
    set_role: ServerAction<SetUserRole>,
    set_active: ServerAction<SetUserActive>,
    reset: ServerAction<ResetUserPassword>,
) -> impl IntoView {
    let lang = use_lang();
    let rows = list
        .into_iter()
        .map(|u| {
            let is_me = me_id == Some(u.id);
            let status = if u.active { Msg::Active } else { Msg::Disabled };
            let last = u.last_login_at.map(format_shanghai).unwrap_or_else(|| Msg::Never.text(lang).to_owned());
            let toggle_label = if u.active { Msg::Disable } else { Msg::Enable };
            view! {
                <tr class="table__row" class:table__row--disabled=!u.active data-username=u.username.clone()>
                    <td><strong>{u.username.clone()}</strong>{is_me.then(|| Msg::You.text(lang))}</td>
                    <td>
                        <ActionForm action=set_role attr:class="inline-form">
                            <input type="hidden" name="id" value=u.id/>
                            <select name="role" aria-label=Msg::Role.text(lang) disabled=is_me>{role_options(lang, u.role)}</select>
                            <button type="submit" class="button button--small" disabled=is_me>{Msg::ChangeRole.text(lang)}</button>
                        </ActionForm>
                    </td>
                    <td><Badge tone=if u.active { Tone::Ok } else { Tone::Off }>{status.text(lang)}</Badge></td>
                    <td class="table__time">{last}</td>
                    <td class="table__time">{format_shanghai(u.created_at)}</td>
                    <td class="table__actions">
                        <ActionForm action=set_active attr:class="inline-form">
                            <input type="hidden" name="id" value=u.id/>
                            <input type="hidden" name="active" value=(!u.active).to_string()/>
                            <button type="submit" class="button button--small" disabled=is_me>{toggle_label.text(lang)}</button>
                        </ActionForm>
                        <ActionForm action=reset attr:class="inline-form">
                            <input type="hidden" name="id" value=u.id/>
                            <button type="submit" class="button button--small button--quiet">{Msg::ResetPassword.text(lang)}</button>
                        </ActionForm>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let columns = [
        Msg::Username,
        Msg::Role,
        Msg::Status,
        Msg::LastLogin,
        Msg::Created,
        Msg::Actions,
    ]
    .map(|m| Column::new(m.text(lang)));
    view! {
        <Table columns testid="users-table">{rows}</Table>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
}

#[component]
fn AddUserForm(add: ServerAction<AddUser>) -> impl IntoView {
    let lang = use_lang();
    // Clear the form once the user exists, so the password does not linger on screen.
    let form = reset_on_success(add);
    view! {
        <section class="card">
            <h2 class="card__title">{Msg::AddUser.text(lang)}</h2>
            <ActionForm action=add node_ref=form attr:class="form form--row" attr:data-testid="add-user-form">
                <Field label=Msg::Username.text(lang)>
                    <input name="username" required minlength="2" maxlength="32" autocomplete="off"/>
                </Field>
                <Field label=Msg::Role.text(lang)>
                    <select name="role">{role_options(lang, Role::Staff)}</select>
                </Field>
                <Field label=Msg::InitialPassword.text(lang)>
                    <input name="password" type="password" required minlength="10" autocomplete="new-password"/>
                </Field>
                <button type="submit" class="button button--primary">{Msg::AddUser.text(lang)}</button>
            </ActionForm>
        </section>
    }
}
