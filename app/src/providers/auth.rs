//! `AuthContext`: the signed-in user and the sign-in / sign-out actions, provided once at
//! the top of the app (docs/style.md §13). Hiding a link here is a courtesy; every server
//! function checks the role again.

use leptos::prelude::*;

use crate::dto::Me;
use crate::error::AppError;
use crate::server::auth::{current_user, Login, Logout};

/// The signed-in user and the actions that change it.
#[derive(Clone, Copy)]
pub struct AuthContext {
    /// The signed-in user (`None` when signed out), refetched after sign-in or sign-out.
    pub user: Resource<Result<Option<Me>, AppError>>,
    /// The sign-in action.
    pub login: ServerAction<Login>,
    /// The sign-out action.
    pub logout: ServerAction<Logout>,
}

impl AuthContext {
    /// Creates the context and provides it.
    pub fn provide() -> AuthContext {
        let login = ServerAction::<Login>::new();
        let logout = ServerAction::<Logout>::new();
        let user = Resource::new(
            move || (login.version().get(), logout.version().get()),
            |_| current_user(),
        );
        let ctx = AuthContext {
            user,
            login,
            logout,
        };
        provide_context(ctx);
        ctx
    }
}

/// The app's [`AuthContext`].
pub fn use_auth() -> AuthContext {
    expect_context::<AuthContext>()
}
