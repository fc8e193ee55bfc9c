//! My account: one's own password, sign-in history and openids.

use leptos::prelude::*;

use crate::dto::{Activity, MyOpenid};
use crate::error::AppError;

/// Changes the signed-in user's password; the current password is required. The user's
/// other sessions end; this one goes on under a new id.
#[server(endpoint = "account/change_password")]
pub async fn change_password(
    current: String,
    new: String,
    confirm: String,
) -> Result<(), AppError> {
    super::ssr::respond(async move {
        use paydesk_types::Role;
        use secrecy::SecretString;

        use super::ssr;

        let user = ssr::require_role(Role::Staff).await?;
        if new != confirm {
            return Err(AppError::invalid_because(
                "confirm",
                paydesk_types::InvalidReason::PasswordsDiffer,
            ));
        }
        let ip = ssr::client_ip().await;
        paydesk_core::users::change_own_password(
            &ssr::db().await?,
            &user,
            ip,
            SecretString::from(current),
            SecretString::from(new),
        )
        .await?;
        ssr::sign_in(&ssr::session().await?, user.id).await
    })
    .await
}

/// The signed-in user's recent sign-ins, failures and password changes, newest first.
#[server(endpoint = "account/activity")]
pub async fn my_activity() -> Result<Vec<Activity>, AppError> {
    super::ssr::respond(async move {
        use paydesk_core::audit::{self, action};
        use paydesk_types::Role;

        use super::ssr;

        let user = ssr::require_role(Role::Staff).await?;
        let entries = audit::list(&ssr::db().await?, Some(user.id), None, 50).await?;
        Ok(entries
            .into_iter()
            .filter(|e| {
                [
                    action::LOGIN_SUCCESS,
                    action::LOGIN_FAILURE,
                    action::LOGIN_THROTTLED,
                    action::LOGOUT,
                    action::ACCOUNT_PASSWORD_CHANGE,
                ]
                .contains(&e.action.as_str())
            })
            .take(20)
            .map(|e| Activity {
                at: e.created_at,
                action: e.action,
                ip: e.ip,
            })
            .collect())
    })
    .await
}

/// The signed-in user's own openids (everyone, for themself only).
#[server(endpoint = "account/openids")]
pub async fn my_openids() -> Result<Vec<MyOpenid>, AppError> {
    super::ssr::respond(async move {
        use paydesk_types::Role;

        use super::ssr;

        let user = ssr::require_role(Role::Staff).await?;
        let list = paydesk_core::own_openids::list(&ssr::db().await?, user.id).await?;
        Ok(list
            .into_iter()
            .map(|o| MyOpenid {
                openid: o.openid,
                created_at: o.created_at,
            })
            .collect())
    })
    .await
}

/// Records one of the signed-in user's own openids: refunds of orders it paid are then not
/// theirs to approve. Audited.
#[server(endpoint = "account/add_openid")]
pub async fn add_my_openid(openid: String) -> Result<MyOpenid, AppError> {
    super::ssr::respond(async move {
        use paydesk_types::Role;

        use super::ssr;

        let user = ssr::require_role(Role::Staff).await?;
        let ip = ssr::client_ip().await;
        let added = paydesk_core::own_openids::add(&ssr::db().await?, &user, ip, &openid).await?;
        Ok(MyOpenid {
            openid: added.openid,
            created_at: added.created_at,
        })
    })
    .await
}

/// Removes one of the signed-in user's own openids. Audited.
#[server(endpoint = "account/remove_openid")]
pub async fn remove_my_openid(openid: String) -> Result<(), AppError> {
    super::ssr::respond(async move {
        use paydesk_types::Role;

        use super::ssr;

        let user = ssr::require_role(Role::Staff).await?;
        let ip = ssr::client_ip().await;
        paydesk_core::own_openids::remove(&ssr::db().await?, &user, ip, &openid).await?;
        Ok(())
    })
    .await
}
