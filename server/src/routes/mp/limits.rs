//! Throttles on the mini-program API (issue 15, "Throttles that hold"), with
//! [`tower_governor`] (GCRA rate limiters from the `governor` crate, one state per key):
//!
//! - **per client address**, around every `/api/mp` call: generous, because shoppers share
//!   carrier NAT addresses and a busy lunch hour must not get 429s. The address is the one
//!   the trusted-proxy rule gave the request ([`ClientIp`], `crate::client_ip`), never the
//!   TCP peer of a reverse proxy; an IPv6 client counts by its /64, the prefix one
//!   subscriber holds;
//! - **per bearer token**, around the calls that need one: a single shopper's app (keyed by
//!   the token's SHA-256; without a token, by address);
//! - **logins per address**, around `POST /api/mp/login`: each costs a jscode2session call.
//!
//! Beyond a limit the answer is 429 `{code: RATE_LIMITED, message}` with `Retry-After`.
//! Limits live in this instance's memory; their keys are dropped a minute after their last
//! request, so memory follows the callers of the last minute. The orderquery interval of
//! the status call is kept in the database instead (`orders::claim_status_query`).

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use app::server::ssr::ClientIp;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response};
use axum::response::IntoResponse as _;
use governor::middleware::NoOpMiddleware;
use sha2::{Digest as _, Sha256};
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

use super::error::MpError;
use crate::config::MpLimitSettings;

/// How often idle keys are dropped from the limiters.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// A limiter's layer for the mini-program API.
pub type Layer<K> = GovernorLayer<K, NoOpMiddleware, Body>;

/// The three limiters, built from the settings.
pub struct Limits {
    /// Around every call: per client address.
    pub per_address: Layer<ClientAddress>,
    /// Around the calls that take a token: per token.
    pub per_token: Layer<TokenOrAddress>,
    /// Around the login: per client address.
    pub login: Layer<ClientAddress>,
}

impl Limits {
    /// Builds the limiters and, inside a Tokio runtime, the task that drops idle keys (it
    /// ends when the limiters do).
    pub fn new(settings: &MpLimitSettings) -> Limits {
        let per_address = config(
            ClientAddress,
            settings.per_address_per_minute,
            settings.per_address_burst,
        );
        let per_token = config(
            TokenOrAddress,
            settings.per_token_per_minute,
            settings.per_token_burst,
        );
        let login = config(
            ClientAddress,
            settings.login_per_address_per_minute,
            settings.login_burst,
        );
        sweep(
            Arc::downgrade(&per_address),
            Arc::downgrade(&per_token),
            Arc::downgrade(&login),
        );
        Limits {
            per_address: layer(per_address),
            per_token: layer(per_token),
            login: layer(login),
        }
    }
}

type Config<K> = GovernorConfig<K, NoOpMiddleware>;

/// `per_minute` requests a minute, refilled evenly, `burst` at once (both validated ≥ 1 by
/// `Settings::validate`).
fn config<K: KeyExtractor>(key: K, per_minute: u32, burst: u32) -> Arc<Config<K>> {
    let period = Duration::from_secs(60) / per_minute.max(1);
    Arc::new(
        GovernorConfigBuilder::default()
            .key_extractor(key)
            .period(period.max(Duration::from_nanos(1)))
            .burst_size(burst.max(1))
            .finish()
            .expect("period and burst are positive"),
    )
}

fn layer<K: KeyExtractor>(config: Arc<Config<K>>) -> Layer<K> {
    GovernorLayer::new(config).error_handler(refusal)
}

/// The API's own `{code, message}` for a refused call.
fn refusal(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let mut response = MpError::rate_limited().into_response();
            // `wait_time` is cut to whole seconds: one more, so a client that waits as told
            // is never early.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait_time + 1));
            response
        }
        other => {
            tracing::error!(error = %other, "no rate-limit key for a mini-program request");
            MpError::internal().into_response()
        }
    }
}

/// Drops keys idle for a while from each limiter once a minute, and ends with them.
fn sweep(
    per_address: Weak<Config<ClientAddress>>,
    per_token: Weak<Config<TokenOrAddress>>,
    login: Weak<Config<ClientAddress>>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.tick().await;
        loop {
            every.tick().await;
            let (Some(a), Some(t), Some(l)) =
                (per_address.upgrade(), per_token.upgrade(), login.upgrade())
            else {
                return;
            };
            a.limiter().retain_recent();
            a.limiter().shrink_to_fit();
            l.limiter().retain_recent();
            l.limiter().shrink_to_fit();
            t.limiter().retain_recent();
            t.limiter().shrink_to_fit();
        }
    });
}

/// The request's client address after the trusted-proxy rule, an IPv6 one cut to its /64.
fn client_address<T>(req: &Request<T>) -> Option<IpAddr> {
    let ClientIp(ip) = req.extensions().get::<ClientIp>()?;
    Some(match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        v4 => v4,
    })
}

/// Keys a request by its client address (after the trusted-proxy rule).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress;

impl KeyExtractor for ClientAddress {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        client_address(req).ok_or(GovernorError::UnableToExtractKey)
    }
}

/// Keys a request by its bearer token's SHA-256, or by its client address without one.
#[derive(Debug, Clone, Copy)]
pub struct TokenOrAddress;

/// What [`TokenOrAddress`] keys by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKey {
    /// The bearer token's SHA-256 (the token itself is not kept).
    Token([u8; 32]),
    /// No token: the client address.
    Address(IpAddr),
}

impl KeyExtractor for TokenOrAddress {
    type Key = TokenKey;

    fn extract<T>(&self, req: &Request<T>) -> Result<TokenKey, GovernorError> {
        match super::bearer_token(req.headers()) {
            Some(token) => Ok(TokenKey::Token(Sha256::digest(token.as_bytes()).into())),
            None => client_address(req)
                .map(TokenKey::Address)
                .ok_or(GovernorError::UnableToExtractKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ip: &str, token: Option<&str>) -> Request<()> {
        let mut req = Request::builder().uri("/api/mp/orders");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let mut req = req.body(()).unwrap();
        req.extensions_mut().insert(ClientIp(ip.parse().unwrap()));
        req
    }

    #[test]
    fn tokens_key_by_their_hash_and_fall_back_to_the_address() {
        let a = TokenOrAddress
            .extract(&request("203.0.113.5", Some("a")))
            .unwrap();
        let a_elsewhere = TokenOrAddress
            .extract(&request("198.51.100.1", Some("a")))
            .unwrap();
        let b = TokenOrAddress
            .extract(&request("203.0.113.5", Some("b")))
            .unwrap();
        let none = TokenOrAddress
            .extract(&request("203.0.113.5", None))
            .unwrap();
        assert_eq!(a, a_elsewhere);
        assert_ne!(a, b);
        assert_eq!(none, TokenKey::Address("203.0.113.5".parse().unwrap()));
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_prefix() {
        let one = ClientAddress
            .extract(&request("2001:db8:1:2::1", None))
            .unwrap();
        let same_prefix = ClientAddress
            .extract(&request("2001:db8:1:2:ffff::9", None))
            .unwrap();
        let other = ClientAddress
            .extract(&request("2001:db8:1:3::1", None))
            .unwrap();
        let mapped = ClientAddress
            .extract(&request("::ffff:10.0.0.1", None))
            .unwrap();
        assert_eq!(one, same_prefix);
        assert_ne!(one, other);
        assert_eq!(mapped, "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_request_without_a_client_address_has_no_key() {
        let req = Request::builder().body(()).unwrap();
        assert!(ClientAddress.extract(&req).is_err());
    }
}
