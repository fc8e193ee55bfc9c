//! Argon2id password hashing, always off the async threads (style.md §14).

use std::sync::OnceLock;

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};

use crate::CoreError;

/// Shortest password we accept.
pub const MIN_LEN: usize = 10;
/// Longest password we accept (argon2 is fine with more; this bounds the work per request).
pub const MAX_LEN: usize = 128;

/// Argon2id with explicit parameters (OWASP's 19 MiB, 2 passes, 1 lane), so a change of the
/// crate's defaults never silently changes our hashes.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the password policy; the message can be shown to the person choosing it.
pub fn check_policy(password: &str) -> Result<(), CoreError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(CoreError::invalid(
            "password",
            format!("at least {MIN_LEN} characters"),
        ));
    }
    if len > MAX_LEN {
        return Err(CoreError::invalid(
            "password",
            format!("at most {MAX_LEN} characters"),
        ));
    }
    Ok(())
}

/// Hashes a password with a fresh salt, on the blocking thread pool.
pub async fn hash(password: SecretString) -> Result<String, CoreError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .context("password hashing task")?
    .map_err(CoreError::from)
}

/// Verifies a password against a stored hash, on the blocking thread pool. `None` verifies
/// against a dummy hash so that an unknown user costs the same time as a wrong password.
pub async fn verify(password: SecretString, stored: Option<String>) -> Result<bool, CoreError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        let ok = hasher()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok();
        Ok::<bool, anyhow::Error>(known && ok)
    })
    .await
    .context("password verification task")?
    .map_err(CoreError::from)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let random = generate(24);
        hasher()
            .hash_password(random.as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// A random password of `len` letters and digits (for the first admin and CLI resets).
pub fn generate(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verifies_only_the_right_password() {
        let h = hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify(SecretString::from("correct horse battery"), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!verify(SecretString::from("wrong horse battery"), Some(h))
            .await
            .unwrap());
        assert!(!verify(SecretString::from("anything at all"), None)
            .await
            .unwrap());
    }

    #[test]
    fn policy_names_the_field_and_limit() {
        assert!(check_policy("short")
            .unwrap_err()
            .to_string()
            .contains("password"));
        assert!(check_policy("long enough pw").is_ok());
        assert!(check_policy(&"x".repeat(129)).is_err());
    }
}
