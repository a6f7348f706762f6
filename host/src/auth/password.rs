//! Password hashing: argon2id with its recommended parameters (19 MiB, 2 passes), a random
//! salt per hash, PHC strings stored. Hashing costs tens of milliseconds on purpose, so it runs
//! on the blocking pool.
//!
//! Not for: API tokens (random 256-bit secrets need only a fast hash, `token`).

use crate::error::{Error, Result};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use rand::RngCore as _;
use std::sync::OnceLock;

/// Shortest password accepted.
pub(super) const MIN_LEN: usize = 8;
/// Longest password accepted: hashing cost grows with length.
pub(super) const MAX_LEN: usize = 1024;

/// Refuses a password outside the length bounds.
pub(super) fn check_policy(field: &str, password: &str) -> Result<()> {
    let chars = password.chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&chars) {
        Ok(())
    } else {
        Err(Error::invalid_field(
            field,
            format!("must be {MIN_LEN} to {MAX_LEN} characters"),
        ))
    }
}

/// The PHC string of `password` with a fresh salt.
pub(super) async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| Error::internal(format!("password hashing stopped: {e}")))?
}

fn hash_now(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::internal(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches `stored`. Without a stored hash (no such user, or no password
/// set) a dummy hash is checked, so the answer takes as long either way and timing does not
/// tell which names exist.
pub(super) async fn verify(password: String, stored: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let (stored, real) = match &stored {
            Some(hash) => (hash.as_str(), true),
            None => (dummy_hash(), false),
        };
        let parsed = PasswordHash::new(stored)
            .map_err(|e| Error::internal(format!("a stored password hash is invalid: {e}")))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(real && matches)
    })
    .await
    .map_err(|e| Error::internal(format!("password check stopped: {e}")))?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now("not anyone's password").expect("hash a constant"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert_ne!(
            stored,
            hash("correct horse".into()).await.unwrap(),
            "salted"
        );
        assert!(
            verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse".into(), Some(stored)).await.unwrap());
        assert!(!verify("not anyone's password".into(), None).await.unwrap());
    }

    #[test]
    fn the_policy_bounds_the_length() {
        assert!(check_policy("password", "short").is_err());
        assert!(check_policy("password", "long enough").is_ok());
        assert!(check_policy("password", &"x".repeat(MAX_LEN + 1)).is_err());
    }
}
