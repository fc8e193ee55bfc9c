//! Server functions, one file per domain (style.md §12). Each is a public endpoint: it
//! checks the session and role on the server first, then makes one call into
//! `paydesk_core` (style.md §13). Endpoints have stable names under `/api/`.

pub mod account;
pub mod auth;
pub mod products;
pub mod users;

/// Server-side helpers for server functions: context, session, caller, role checks.
#[cfg(feature = "ssr")]
pub mod ssr {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use leptos::prelude::*;
    use paydesk_core::users::{self, User};
    use paydesk_core::{CoreError, Db, Role};
    use tower_sessions::Session;

    use crate::error::AppError;

    /// The session key holding the signed-in user's id.
    pub const USER_ID_KEY: &str = "paydesk.user_id";

    /// The database. The server puts it on every request as an axum `Extension`, so it is
    /// found through the request parts — the same path as the session — in server functions
    /// called over HTTP and in resources resolved during server-side rendering alike. (A
    /// reactive-context lookup alone was observed to miss intermittently while a page was
    /// being rendered, which then broke hydration.)
    pub async fn db() -> Result<Db, AppError> {
        if let Ok(axum::Extension(db)) = leptos_axum::extract::<axum::Extension<Db>>().await {
            return Ok(db);
        }
        use_context::<Db>().ok_or_else(|| {
            tracing::error!("server function called without a Db on the request or in context");
            AppError::Internal
        })
    }

    /// The request's session.
    pub async fn session() -> Result<Session, AppError> {
        leptos_axum::extract::<Session>().await.map_err(|e| {
            tracing::error!(error = %e, "no session layer in front of a server function");
            AppError::Internal
        })
    }

    /// The peer address, for the audit log.
    pub async fn client_ip() -> Option<String> {
        leptos_axum::extract::<ConnectInfo<SocketAddr>>()
            .await
            .ok()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
    }

    /// Maps a session-store failure to an opaque internal error, logged once here.
    pub fn session_error(e: tower_sessions::session::Error) -> AppError {
        tracing::error!(error = %e, "session store failure");
        AppError::Internal
    }

    /// The signed-in, still active user, if any. A disabled or deleted account's session
    /// is emptied on its next request.
    pub async fn current_user() -> Result<Option<User>, AppError> {
        let session = session().await?;
        let Some(id) = session
            .get::<i64>(USER_ID_KEY)
            .await
            .map_err(session_error)?
        else {
            return Ok(None);
        };
        let db = db().await?;
        match users::get(&db, id).await {
            Ok(user) if user.is_active() => Ok(Some(user)),
            Ok(_) | Err(CoreError::NotFound) => {
                session.flush().await.map_err(session_error)?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a server function body and, when it fails, answers with the error's HTTP
    /// status (401, 403, 422, …) instead of a blanket 500. A plain form post from a page
    /// without JavaScript keeps Leptos' redirect back to the form.
    pub async fn respond<T>(
        body: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let result = body.await;
        if let Err(err) = &result {
            let plain_form = use_context::<http::request::Parts>()
                .and_then(|p| {
                    p.headers
                        .get(http::header::ACCEPT)?
                        .to_str()
                        .ok()
                        .map(|a| a.contains("text/html"))
                })
                .unwrap_or(false);
            if !plain_form {
                if let (Some(res), Ok(code)) = (
                    use_context::<leptos_axum::ResponseOptions>(),
                    http::StatusCode::from_u16(err.status()),
                ) {
                    res.set_status(code);
                }
            }
        }
        result
    }

    /// The signed-in user if their role includes `min`; otherwise 401 or 403.
    pub async fn require_role(min: Role) -> Result<User, AppError> {
        match current_user().await? {
            None => Err(AppError::Unauthorized),
            Some(user) if user.role.includes(min) => Ok(user),
            Some(user) => {
                tracing::warn!(user = %user.username, role = %user.role, required = %min, "server function refused: role too low");
                Err(AppError::Forbidden { reason: None })
            }
        }
    }
}
