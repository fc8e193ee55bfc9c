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
    super::ssr::as_role(paydesk_types::Role::Staff, |me| async move {
        use secrecy::SecretString;

        if new != confirm {
            return Err(AppError::invalid_because(
                "confirm",
                paydesk_types::InvalidReason::PasswordsDiffer,
            ));
        }
        let ip = super::ssr::client_ip().await;
        paydesk_core::users::change_own_password(
            &me.server.db,
            &me.user,
            ip,
            SecretString::from(current),
            SecretString::from(new),
        )
        .await?;
        super::ssr::sign_in(&super::ssr::session().await?, me.user.id).await
    })
    .await
}

/// The signed-in user's recent sign-ins, failures and password changes, newest first.
#[server(endpoint = "account/activity")]
pub async fn my_activity() -> Result<Vec<Activity>, AppError> {
    super::ssr::as_role(paydesk_types::Role::Staff, |me| async move {
        use paydesk_core::audit::{self, action};

        let entries = audit::list(&me.server.db, Some(me.user.id), None, 50).await?;
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
    super::ssr::as_role(paydesk_types::Role::Staff, |me| async move {
        let list = paydesk_core::own_openids::list(&me.server.db, me.user.id).await?;
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
    super::ssr::as_role(paydesk_types::Role::Staff, |me| async move {
        let ip = super::ssr::client_ip().await;
        let added = paydesk_core::own_openids::add(&me.server.db, &me.user, ip, &openid).await?;
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
    super::ssr::as_role(paydesk_types::Role::Staff, |me| async move {
        let ip = super::ssr::client_ip().await;
        paydesk_core::own_openids::remove(&me.server.db, &me.user, ip, &openid).await?;
        Ok(())
    })
    .await
}
