//! The sign-in page. The form is an `<ActionForm>`, so it works before hydration too.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::form::Field;
use crate::error::ErrorBanner;
use crate::i18n::{use_lang, Lang, Msg};

use crate::providers::auth::use_auth;

/// `/login?next=/somewhere`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let lang = use_lang();
    let auth = use_auth();
    let query = use_query_map();
    let next = move || {
        query
            .with(|q| q.get("next"))
            .unwrap_or_else(|| "/".to_owned())
    };
    let error = move || auth.login.value().get().and_then(Result::err);
    let other = match lang {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    view! {
        <Title text=format!("{} · paydesk", Msg::SignIn.text(lang))/>
        <main class="login">
            <div class="login__card">
                <h1 class="login__title">{Msg::SignInTitle.text(lang)}</h1>
                <p class="login__hint">{Msg::SignInHint.text(lang)}</p>
                {move || error().map(|error| view! { <ErrorBanner error/> })}
                <ActionForm action=auth.login attr:class="form" attr:data-testid="login-form">
                    <input type="hidden" name="next" value=next/>
                    <Field label=Msg::Username.text(lang)>
                        <input name="username" autocomplete="username" required autofocus/>
                    </Field>
                    <Field label=Msg::Password.text(lang)>
                        <input name="password" type="password" autocomplete="current-password" required/>
                    </Field>
                    <button type="submit" class="button button--primary">{Msg::SignIn.text(lang)}</button>
                </ActionForm>
                <p class="login__lang"><a href=format!("/lang/{}?next=/login", other.0) rel="external" data-testid="lang-switch">{other.1}</a></p>
            </div>
        </main>
    }
}
