//! HTTP routes that are not dashboard pages. Each module exposes `router()`, merged in
//! [`crate::router::router`] (docs/style.md §9).

pub mod assets;
pub mod events;
pub mod mp;
pub mod ops;
pub mod orders;
pub mod prefs;
pub mod reconciliation;
pub mod wxpay;

/// The session's user when their role includes `min`; otherwise the answer to send: 401
/// signed out, 403 (saying `what` needs the role) for a lower role, 500 when the session
/// store fails. For plain GET routes (downloads) that a server function cannot serve.
pub(crate) async fn user_with_role(
    session: &tower_sessions::Session,
    db: &paydesk_core::Db,
    min: paydesk_core::Role,
    what: &str,
) -> Result<paydesk_core::users::User, axum::response::Response> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    let user = match app::server::ssr::session_user(session, db).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err((StatusCode::UNAUTHORIZED, "sign in first\n").into_response()),
        Err(_) => return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    };
    if !user.role.includes(min) {
        tracing::warn!(user = %user.username, role = %user.role, "{what} refused: role too low");
        return Err((
            StatusCode::FORBIDDEN,
            format!("{what} needs the {min} role\n"),
        )
            .into_response());
    }
    Ok(user)
}
