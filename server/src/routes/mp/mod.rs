//! The mini-program JSON API under `/api/mp` (issue "pay end to end"; docs/design.md "Pay"),
//! documented as OpenAPI 3.1 at `/api/mp/openapi.json`.
//!
//! Shoppers authenticate with our own opaque bearer token from `POST /api/mp/login`; the
//! dashboard's cookies mean nothing here (and the dashboard's CSRF guard leaves `/api/mp/`
//! alone for the same reason). Every error is `{code, message}` JSON ([`error::MpError`]).

use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use paydesk_core::customers::{self, Customer};
use paydesk_core::{products, Db};
use serde::{Deserialize, Serialize};

use crate::config::MpLimitSettings;
use crate::state::AppState;

pub mod error;
pub mod limits;
mod orders;
mod refunds;

use error::MpError;

/// The OpenAPI document (kept beside the code; a test checks every route is in it).
pub const OPENAPI: &str = include_str!("openapi.json");

/// The `/api/mp` routes, throttled ([`limits`]): every call per client address, the calls
/// with a token per token, the login per address again.
pub fn router(settings: &MpLimitSettings) -> Router<AppState> {
    let limits = limits::Limits::new(settings);
    let shopper = Router::new()
        .route("/api/mp/logout", post(logout))
        .route("/api/mp/orders", post(orders::create).get(orders::list))
        .route("/api/mp/orders/{out_trade_no}", get(orders::show))
        .route("/api/mp/orders/{out_trade_no}/cancel", post(orders::cancel))
        .route(
            "/api/mp/orders/{out_trade_no}/refund-requests",
            post(refunds::create),
        )
        .layer(limits.per_token);
    let login = Router::new()
        .route("/api/mp/login", post(login))
        .layer(limits.login);
    Router::new()
        .route("/api/mp/openapi.json", get(openapi))
        .route("/api/mp/products", get(list_products))
        .route("/api/mp/{*rest}", axum::routing::any(no_such_endpoint))
        .merge(shopper)
        .merge(login)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(limits.per_address)
}

async fn method_not_allowed() -> MpError {
    MpError::method_not_allowed()
}

async fn no_such_endpoint() -> MpError {
    MpError::no_such_endpoint()
}

async fn openapi() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
}

/// A JSON body whose rejections are `{code, message}` too.
pub struct MpJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for MpJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = MpError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, MpError> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(MpJson(v))
    }
}

/// The shopper behind the request's bearer token.
pub struct Shopper {
    /// The customer row.
    pub customer: Customer,
    /// The token itself (for logout).
    token: String,
}

impl<S> FromRequestParts<S> for Shopper
where
    S: Send + Sync,
    Db: FromRef<S>,
{
    type Rejection = MpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, MpError> {
        let token = bearer_token(&parts.headers).ok_or_else(MpError::unauthenticated)?;
        let db = Db::from_ref(state);
        match customers::authenticate(&db, token).await? {
            Some(customer) => Ok(Shopper {
                customer,
                token: token.to_owned(),
            }),
            None => Err(MpError::unauthenticated()),
        }
    }
}

/// The bearer token of `Authorization: Bearer …`, if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

#[derive(Deserialize)]
struct LoginRequest {
    code: String,
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    /// UTC milliseconds.
    expires_at: i64,
}

/// `POST /api/mp/login {code}`: jscode2session, then our own token. session_key stays here.
async fn login(
    State(state): State<AppState>,
    MpJson(req): MpJson<LoginRequest>,
) -> Result<Json<LoginResponse>, MpError> {
    let code = req.code.trim();
    if code.is_empty() || code.len() > 128 {
        return Err(MpError::invalid("code: the wx.login code is required"));
    }
    let session = match state.wxpay.jscode2session(code).await {
        Ok(s) => s,
        Err(e) => {
            // Business refusals (invalid or used code) are the shopper's; transport errors
            // ours. Either way the detail goes to the log, not the answer.
            tracing::warn!(error = %e, "jscode2session refused the login");
            return Err(if matches!(e, wxpay::Error::Transport { .. }) {
                MpError::payment_unavailable()
            } else {
                MpError::login_failed()
            });
        }
    };
    let new = customers::login(
        &state.db,
        &session.openid,
        session.unionid.as_deref(),
        session.session_key.expose(),
    )
    .await?;
    tracing::info!(customer.id = new.customer.id, "mini-program login");
    Ok(Json(LoginResponse {
        token: new.token,
        expires_at: new.expires_at,
    }))
}

/// `POST /api/mp/logout`: ends this token.
async fn logout(State(db): State<Db>, shopper: Shopper) -> Result<axum::http::StatusCode, MpError> {
    customers::logout(&db, &shopper.token).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct ProductsResponse {
    products: Vec<ProductOut>,
}

#[derive(Serialize)]
struct ProductOut {
    id: i64,
    name: String,
    price_fen: i64,
}

/// `GET /api/mp/products`: the active catalogue (public: no token needed).
async fn list_products(State(db): State<Db>) -> Result<Json<ProductsResponse>, MpError> {
    let products = products::list_active(&db)
        .await?
        .into_iter()
        .map(|p| ProductOut {
            id: p.id,
            name: p.name,
            price_fen: p.price_fen,
        })
        .collect();
    Ok(Json(ProductsResponse { products }))
}
