//! What the dashboard's forms share: a labelled field, the line that says how the last
//! submission went, and clearing a form once its action succeeded. The forms themselves stay
//! `ActionForm`s on their pages (they work before hydration, docs/style.md §13).

use leptos::html;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

use crate::error::{AppError, ErrorBanner};

/// A form field with its label above it (`form__field`); the input is the child.
#[component]
pub fn Field(
    /// The label.
    label: &'static str,
    /// The input, select, ….
    children: Children,
) -> impl IntoView {
    view! {
        <label class="form__field">
            <span>{label}</span>
            {children()}
        </label>
    }
}

/// A success line (`banner--ok`, announced to screen readers).
#[component]
pub fn OkBanner(
    /// `data-testid`, if the page's tests look for it.
    #[prop(optional)]
    testid: Option<&'static str>,
    /// What went well.
    children: Children,
) -> impl IntoView {
    view! { <p class="banner banner--ok" role="status" data-testid=testid>{children()}</p> }
}

/// How an action's last submission went, once it has answered: `ok` shows a success (most
/// often an [`OkBanner`]), a failure shows its error's banner.
pub fn result_line<T>(
    result: Option<Result<T, AppError>>,
    ok: impl FnOnce(T) -> AnyView,
) -> Option<AnyView> {
    result.map(|r| match r {
        Ok(value) => ok(value),
        Err(error) => view! { <ErrorBanner error/> }.into_any(),
    })
}

/// A form's `node_ref` that clears the form each time `action` succeeds (so a filed request
/// or a typed password does not linger, and the next one starts empty).
pub fn reset_on_success<S>(action: ServerAction<S>) -> NodeRef<html::Form>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    let form = NodeRef::<html::Form>::new();
    Effect::new(move |_| {
        let succeeded = action.value().with(|r| matches!(r, Some(Ok(_))));
        if let (true, Some(form)) = (succeeded, form.get()) {
            form.reset();
        }
    });
    form
}
