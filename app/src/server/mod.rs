//! Server functions, one file per domain (docs/style.md §12). Each is a public endpoint: it
//! checks the session and role on the server first, then makes one call into
//! `paydesk_core` (docs/style.md §13). Endpoints have stable names under `/api/`.

pub mod account;
pub mod admin;
pub mod auth;
pub mod exceptions;
pub mod home;
pub mod logs;
pub mod orders;
pub mod products;
pub mod reconcile;
pub mod refunds;
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
    /// The session key holding when the user signed in (UTC ms): a session from before the
    /// user's password was last set is over (a stolen session dies with the password).
    pub const SIGNED_IN_AT_KEY: &str = "paydesk.signed_in_at";
    /// The session key holding the session's absolute end (UTC ms), fixed at sign-in: past
    /// it the session is over however active it has been.
    pub const ENDS_AT_KEY: &str = "paydesk.ends_at";
    /// The session key holding when the session's idle expiry was last pushed forward (UTC
    /// ms).
    pub const SEEN_AT_KEY: &str = "paydesk.seen_at";
    /// How often activity pushes a session's idle expiry forward: each push is a write of
    /// the session row, so at most one a minute per session, not one per request.
    pub const TOUCH_EVERY_MS: i64 = 60_000;

    /// How long a dashboard session may live, active or not (in the [`ServerContext`]). The idle timeout is the session layer's own expiry,
    /// which activity extends (see [`session_user`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SessionLifetime {
        /// A session ends this long after sign-in (`PAYDESK_SESSION_MAX_HOURS`); stored with
        /// the session at sign-in as [`ENDS_AT_KEY`].
        pub max: std::time::Duration,
    }

    /// What a server function needs from its request, captured when it starts.
    ///
    /// Server functions reach the request through the reactive owner's context, and a
    /// resource's future can outlive its owner during server-side rendering: with nested
    /// routes in `SsrMode::Async` (leptos_router ≥ 0.8.10, leptos-rs/leptos#4642) a page's
    /// owner is sometimes replaced while the first resource's future is still awaiting the
    /// database, and every context lookup after that await fails. That future's (failed)
    /// result was still serialised for hydration, so the browser hydrated an error the
    /// server had not rendered. [`respond`] therefore captures the request parts (which
    /// carry the session and the database) and the response options on the function's
    /// first poll, while the owner is certainly alive, and keeps them in a task-local for
    /// the whole body.
    #[derive(Clone)]
    struct RequestContext {
        parts: Option<http::request::Parts>,
        response: Option<leptos_axum::ResponseOptions>,
    }

    tokio::task_local! {
        static REQUEST: RequestContext;
    }

    fn captured() -> RequestContext {
        REQUEST
            .try_with(Clone::clone)
            .unwrap_or_else(|_| RequestContext {
                parts: use_context::<http::request::Parts>(),
                response: use_context::<leptos_axum::ResponseOptions>(),
            })
    }

    /// Extracts `T` from the request's parts (like `leptos_axum::extract`, but from the
    /// captured request).
    async fn extract<T>() -> Option<T>
    where
        T: axum::extract::FromRequestParts<()>,
    {
        let mut parts = captured().parts?;
        T::from_request_parts(&mut parts, &()).await.ok()
    }

    /// What server functions need from the server, built once at start and put on every
    /// dashboard request as one axum `Extension` (the server's `AppState::server_context`).
    #[derive(Clone)]
    pub struct ServerContext {
        /// The database.
        pub db: Db,
        /// The event bus (changes are published after their commit).
        pub events: paydesk_core::events::EventBus,
        /// The WeChat Pay client.
        pub wxpay: std::sync::Arc<wxpay::Client>,
        /// What the Settings page shows of this server's configuration, secrets already
        /// masked.
        pub summary: std::sync::Arc<crate::dto::SettingsSummary>,
        /// Free space on the SQLite database's disk, as last checked by the server's job.
        pub disk: std::sync::Arc<paydesk_core::disk::DiskMonitor>,
        /// The pre-flight checks (the Settings page's panel), built by the server from its
        /// settings: the same checks `paydesk doctor` runs, one run at a time.
        pub doctor: std::sync::Arc<paydesk_core::doctor::Doctor>,
        /// How long a dashboard session may live.
        pub session_lifetime: SessionLifetime,
        /// Our appid: a bill's rows of other appids are not ours (reconciliation).
        pub appid: String,
        /// The refund job's policy, for a refund reconciliation brings up to date.
        pub refund_policy: paydesk_core::refunds::RefundPolicy,
    }

    /// The request's [`ServerContext`]; a request without one is a wiring bug, logged here.
    pub async fn context() -> Result<ServerContext, AppError> {
        match extract::<axum::Extension<ServerContext>>().await {
            Some(axum::Extension(context)) => Ok(context),
            None => {
                tracing::error!("server function called without the server context on the request");
                Err(AppError::Internal)
            }
        }
    }

    /// The database.
    pub async fn db() -> Result<Db, AppError> {
        Ok(context().await?.db)
    }

    /// Bytes free on the database's disk when below the threshold (`paydesk_core::disk`, as
    /// last checked by the server's job); `None` when there is room, unknown, or PostgreSQL.
    pub async fn disk_low_free_bytes() -> Option<u64> {
        match context().await.ok()?.disk.status() {
            status @ paydesk_core::disk::DiskStatus::Checked { free_bytes, .. }
                if status.is_low() =>
            {
                Some(free_bytes)
            }
            _ => None,
        }
    }

    /// What the Settings page shows of this server's configuration, secrets already masked.
    pub async fn settings_summary() -> Result<std::sync::Arc<crate::dto::SettingsSummary>, AppError>
    {
        Ok(context().await?.summary)
    }

    /// The request's session.
    pub async fn session() -> Result<Session, AppError> {
        extract::<Session>().await.ok_or_else(|| {
            tracing::error!("no session layer in front of a server function");
            AppError::Internal
        })
    }

    /// The client's address as the server worked it out (the TCP peer, or behind a trusted
    /// reverse proxy the address it forwarded): a request extension.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ClientIp(pub std::net::IpAddr);

    /// The client's address, for the audit log and sign-in throttling.
    pub async fn client_ip() -> Option<String> {
        match extract::<axum::Extension<ClientIp>>().await {
            Some(axum::Extension(ClientIp(ip))) => Some(ip.to_string()),
            None => extract::<ConnectInfo<SocketAddr>>()
                .await
                .map(|ConnectInfo(addr)| addr.ip().to_string()),
        }
    }

    /// Maps a session-store failure to an opaque internal error, logged once here.
    pub fn session_error(e: tower_sessions::session::Error) -> AppError {
        tracing::error!(error = %e, "session store failure");
        AppError::Internal
    }

    /// The signed-in, still active user, if any. A disabled or deleted account's session,
    /// one signed in before the password was last set, and one past its absolute end
    /// ([`ENDS_AT_KEY`]) is emptied on its next request. A request on a live session is
    /// activity: at most every [`TOUCH_EVERY_MS`] it marks the session changed, so the
    /// session layer saves it with a fresh idle expiry (tower-sessions saves a session only
    /// when it changed, so without this the idle timeout ran from sign-in).
    pub async fn current_user() -> Result<Option<User>, AppError> {
        session_user(&session().await?, &db().await?).await
    }

    /// [`current_user`] for a plain axum route, which has the session and the database at
    /// hand.
    pub async fn session_user(session: &Session, db: &Db) -> Result<Option<User>, AppError> {
        let Some(id) = session
            .get::<i64>(USER_ID_KEY)
            .await
            .map_err(session_error)?
        else {
            return Ok(None);
        };
        // Sessions from before this key existed count as signed in at 0: they end once.
        let signed_in_at = session
            .get::<i64>(SIGNED_IN_AT_KEY)
            .await
            .map_err(session_error)?
            .unwrap_or(0);
        // Sessions from before the absolute end existed have none: they end once.
        let ends_at = session
            .get::<i64>(ENDS_AT_KEY)
            .await
            .map_err(session_error)?
            .unwrap_or(0);
        let now = paydesk_core::now_ms();
        if now >= ends_at {
            session.flush().await.map_err(session_error)?;
            return Ok(None);
        }
        match users::get(db, id).await {
            Ok(user) if user.is_active() && user.password_changed_at <= signed_in_at => {
                let seen_at = session
                    .get::<i64>(SEEN_AT_KEY)
                    .await
                    .map_err(session_error)?
                    .unwrap_or(0);
                if now - seen_at >= TOUCH_EVERY_MS {
                    session
                        .insert(SEEN_AT_KEY, now)
                        .await
                        .map_err(session_error)?;
                }
                Ok(Some(user))
            }
            Ok(_) | Err(CoreError::NotFound) => {
                session.flush().await.map_err(session_error)?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `session` the signed-in session of `user_id` from now on, under a new id (a
    /// new id at every sign-in, and after a password change, defeats session fixation),
    /// ending at the latest [`SessionLifetime::max`] from now.
    pub async fn sign_in(session: &Session, user_id: i64) -> Result<(), AppError> {
        let lifetime = context().await?.session_lifetime;
        let now = paydesk_core::now_ms();
        let max_ms = paydesk_types::duration_ms(lifetime.max);
        session.cycle_id().await.map_err(session_error)?;
        for (key, value) in [
            (USER_ID_KEY, user_id),
            (SIGNED_IN_AT_KEY, now),
            (SEEN_AT_KEY, now),
            (ENDS_AT_KEY, now.saturating_add(max_ms)),
        ] {
            session.insert(key, value).await.map_err(session_error)?;
        }
        Ok(())
    }

    /// Runs a server function body with its request captured (see [`RequestContext`]) and,
    /// when it fails, answers with the error's HTTP status (401, 403, 422, …) instead of a
    /// blanket 500. A plain form post from a page without JavaScript keeps Leptos' redirect
    /// back to the form.
    pub async fn respond<T>(
        body: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let request = captured();
        let result = REQUEST.scope(request.clone(), body).await;
        if let Err(err) = &result {
            let plain_form = request
                .parts
                .as_ref()
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
                    request.response.as_ref(),
                    http::StatusCode::from_u16(err.status()),
                ) {
                    res.set_status(code);
                }
            }
        }
        result
    }

    /// A server function's caller, past its role check: who they are, and what the server
    /// offers them.
    #[derive(Clone)]
    pub struct Caller {
        /// The signed-in user.
        pub user: User,
        /// The database, the event bus, the WeChat Pay client, ….
        pub server: ServerContext,
    }

    impl Caller {
        /// The caller as an audited change names them, with their address.
        pub async fn actor(&self) -> paydesk_core::audit::Actor {
            self.user.actor(client_ip().await)
        }
    }

    /// Runs a server function body (see [`respond`]) for a caller whose role includes `min`:
    /// the role is checked first (401 or 403, see [`require_role`]), then `body` gets the
    /// [`Caller`].
    pub async fn as_role<T, Fut>(min: Role, body: impl FnOnce(Caller) -> Fut) -> Result<T, AppError>
    where
        Fut: std::future::Future<Output = Result<T, AppError>>,
    {
        respond(async move {
            let user = require_role(min).await?;
            body(Caller {
                user,
                server: context().await?,
            })
            .await
        })
        .await
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
