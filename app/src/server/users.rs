//! The Users page: admins list, add, disable and re-enable accounts, change roles and reset
//! passwords.

use leptos::prelude::*;

use crate::dto::{GeneratedPassword, UserSummary};
use crate::error::AppError;

#[cfg(feature = "ssr")]
fn summary(u: paydesk_core::users::User) -> UserSummary {
    UserSummary {
        id: u.id,
        username: u.username.to_string(),
        role: u.role,
        active: u.is_active(),
        last_login_at: u.last_login_at,
        created_at: u.created_at,
    }
}

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<paydesk_types::Role, AppError> {
    role.parse().map_err(|_: paydesk_types::ParseRoleError| {
        AppError::invalid_because("role", paydesk_types::InvalidReason::UnknownRole)
    })
}

/// Every account (admin only).
#[server(endpoint = "users/list")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        let users = paydesk_core::users::list(&admin.server.db).await?;
        Ok(users.into_iter().map(summary).collect())
    })
    .await
}

/// Adds an account with an initial password (admin only).
#[server(endpoint = "users/add")]
pub async fn add_user(
    username: String,
    password: String,
    role: String,
) -> Result<UserSummary, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        use paydesk_types::Username;
        use secrecy::SecretString;

        let username = Username::parse(&username)
            .map_err(|e| AppError::invalid_because("username", e.into()))?;
        let role = parse_role(&role)?;
        let actor = admin.actor().await;
        let user = paydesk_core::users::create(
            &admin.server.db,
            &actor,
            &username,
            SecretString::from(password),
            role,
        )
        .await?;
        Ok(summary(user))
    })
    .await
}

/// Changes an account's role (admin only; not one's own, not the last admin).
#[server(endpoint = "users/set_role")]
pub async fn set_user_role(id: i64, role: String) -> Result<UserSummary, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        let role = parse_role(&role)?;
        let actor = admin.actor().await;
        Ok(summary(
            paydesk_core::users::set_role(&admin.server.db, &actor, id, role).await?,
        ))
    })
    .await
}

/// Disables (`active = false`) or re-enables an account (admin only).
#[server(endpoint = "users/set_active")]
pub async fn set_user_active(id: i64, active: bool) -> Result<UserSummary, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        let actor = admin.actor().await;
        Ok(summary(
            paydesk_core::users::set_disabled(&admin.server.db, &actor, id, !active).await?,
        ))
    })
    .await
}

/// Gives an account a new random password, returned once (admin only).
#[server(endpoint = "users/reset_password")]
pub async fn reset_user_password(id: i64) -> Result<GeneratedPassword, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        use secrecy::SecretString;

        let db = &admin.server.db;
        let target = paydesk_core::users::get(db, id).await?;
        let password = paydesk_core::password::generate(16);
        let actor = admin.actor().await;
        paydesk_core::users::reset_password(db, &actor, id, SecretString::from(password.clone()))
            .await?;
        Ok(GeneratedPassword {
            username: target.username.to_string(),
            password,
        })
    })
    .await
}
