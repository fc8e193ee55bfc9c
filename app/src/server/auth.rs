//! Sign-in, sign-out and "who am I".

use leptos::prelude::*;

use crate::dto::Me;
use crate::error::AppError;

/// Signs in with a username and password, then redirects to `next` (a path on this site).
#[server(endpoint = "auth/login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    super::ssr::respond(async move {
        use paydesk_core::auth::{self, LoginError};
        use secrecy::SecretString;

        use super::ssr;

        let db = ssr::db().await?;
        let session = ssr::session().await?;
        let ip = ssr::client_ip().await;
        match auth::authenticate(&db, &username, SecretString::from(password), ip).await {
            Ok(user) => {
                // A new session id at every sign-in defeats session fixation (docs/style.md §14).
                ssr::sign_in(&session, user.id).await?;
                let next = paydesk_types::safe_next(next.as_deref().unwrap_or("/"));
                let next = if next.starts_with("/login") {
                    "/".to_owned()
                } else {
                    next
                };
                leptos_axum::redirect(&next);
                Ok(())
            }
            Err(LoginError::InvalidCredentials) => Err(AppError::InvalidCredentials),
            Err(LoginError::Throttled { minutes }) => Err(AppError::Throttled { minutes }),
            Err(LoginError::Core(e)) => Err(e.into()),
        }
    })
    .await
}

/// Signs out: the session is deleted, then the browser goes to the sign-in page.
#[server(endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    super::ssr::respond(async move {
        use super::ssr;

        let session = ssr::session().await?;
        if let Some(user) = ssr::current_user().await? {
            let ip = ssr::client_ip().await;
            paydesk_core::auth::record_logout(&ssr::db().await?, &user, ip).await?;
        }
        session.flush().await.map_err(ssr::session_error)?;
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}

/// The signed-in user, or `None`.
#[server(endpoint = "auth/me")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    super::ssr::respond(async move {
        use super::ssr;

        let Some(u) = ssr::current_user().await? else {
            return Ok(None);
        };
        let sandbox = ssr::settings_summary().await?.is_sandbox();
        Ok(Some(Me {
            id: u.id,
            username: u.username.to_string(),
            role: u.role,
            last_login_at: u.last_login_at,
            sandbox,
            disk_low_free_bytes: ssr::disk_low_free_bytes().await,
        }))
    })
    .await
}
