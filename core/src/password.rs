//! Argon2id password hashing, always off the async threads (docs/style.md §14), and never more
//! of it at once than [`HashSlots`] allows.
//!
//! One argon2 run takes 19 MiB and tens of milliseconds of one core. Unbounded, a burst of
//! sign-in posts queues a hash per request on the blocking pool (512 threads by default):
//! gigabytes of memory and every core busy, the notification handler starved. Each hash
//! therefore takes a slot first; there are about twice as many slots as cores, and a caller
//! who cannot get one within [`HashSlots::WAIT`] is told [`CoreError::Busy`] ("busy, try
//! again") instead of waiting without end.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::InvalidReason;
use crate::CoreError;

/// The bound on concurrent password hashing: a semaphore whose permit travels into the
/// blocking task, so a slot stays taken until the hash has really finished (a caller that
/// gives up does not free it early). One per [`crate::Db`], shared by its clones.
#[derive(Debug)]
pub struct HashSlots {
    semaphore: Arc<Semaphore>,
    size: u32,
    wait: Duration,
}

impl HashSlots {
    /// How long a caller waits for a slot before it is told [`CoreError::Busy`].
    pub const WAIT: Duration = Duration::from_secs(2);

    /// Twice the cores this process may use: argon2 is CPU-bound, so more would only queue
    /// on the blocking pool holding 19 MiB each.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HashSlots::new(u32::try_from(cores * 2).unwrap_or(u32::MAX), Self::WAIT)
    }

    /// `size` slots (at least one); a caller waits at most `wait` for one.
    pub fn new(size: u32, wait: Duration) -> Self {
        let size = size.max(1);
        HashSlots {
            semaphore: Arc::new(Semaphore::new(size as usize)),
            size,
            wait,
        }
    }

    /// How many hashes may run at once.
    pub fn size(&self) -> u32 {
        self.size
    }

    async fn take(&self) -> Result<OwnedSemaphorePermit, CoreError> {
        match tokio::time::timeout(self.wait, self.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(CoreError::Internal(anyhow::anyhow!(
                "password hashing slots closed: {closed}"
            ))),
            Err(_) => {
                tracing::warn!(
                    slots = self.size,
                    "password hashing busy: every slot taken; caller told to try again"
                );
                Err(CoreError::Busy)
            }
        }
    }

    /// Takes every slot until the guard is dropped: tests use it to make the bound visible
    /// without timing anything.
    pub async fn hold_all(&self) -> OwnedSemaphorePermit {
        self.semaphore
            .clone()
            .acquire_many_owned(self.size)
            .await
            .expect("the hashing semaphore is never closed")
    }
}

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
        return Err(CoreError::invalid_because(
            "password",
            InvalidReason::PasswordTooShort { min: MIN_LEN },
        ));
    }
    if len > MAX_LEN {
        return Err(CoreError::invalid_because(
            "password",
            InvalidReason::PasswordTooLong { max: MAX_LEN },
        ));
    }
    Ok(())
}

/// Hashes a password with a fresh salt, on the blocking thread pool, in one of `slots`
/// ([`CoreError::Busy`] when none frees up in time).
pub async fn hash(slots: &HashSlots, password: SecretString) -> Result<String, CoreError> {
    let permit = slots.take().await?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
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

/// Verifies a password against a stored hash, on the blocking thread pool, in one of
/// `slots` ([`CoreError::Busy`] when none frees up in time). `None` verifies against a dummy
/// hash so that an unknown user costs the same time as a wrong password.
pub async fn verify(
    slots: &HashSlots,
    password: SecretString,
    stored: Option<String>,
) -> Result<bool, CoreError> {
    let permit = slots.take().await?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
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
        let slots = HashSlots::for_this_machine();
        let h = hash(&slots, SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(
            &slots,
            SecretString::from("correct horse battery"),
            Some(h.clone())
        )
        .await
        .unwrap());
        assert!(
            !verify(&slots, SecretString::from("wrong horse battery"), Some(h))
                .await
                .unwrap()
        );
        assert!(!verify(&slots, SecretString::from("anything at all"), None)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn with_every_slot_taken_a_hash_is_refused_as_busy() {
        let slots = HashSlots::new(1, Duration::from_millis(50));
        let held = slots.hold_all().await;
        let refused = hash(&slots, SecretString::from("correct horse battery")).await;
        assert!(matches!(refused, Err(CoreError::Busy)), "{refused:?}");
        drop(held);
        assert!(hash(&slots, SecretString::from("correct horse battery"))
            .await
            .is_ok());
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
