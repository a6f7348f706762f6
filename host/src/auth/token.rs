//! API token material: generation and hashing. Only the hash is ever stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// Every token starts with this, so leaked tokens are easy to spot by secret scanners.
pub(super) const TOKEN_PREFIX: &str = "weft_";

/// A new random token (256 bits) as shown once to its owner.
pub(super) fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token. A fast hash suffices: tokens carry 256 bits of entropy.
pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The leading characters kept in clear, to tell tokens apart in listings.
pub(super) fn display_prefix(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX.len() + 6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hash_stably() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        // Stable: the stored form of a given token is its SHA-256, in hex, now and later
        // (`printf weft_example-token | sha256sum`).
        assert_eq!(
            hash("weft_example-token"),
            "0dde3063175124bde8424a299d0ac61319d7a12986b3061d4273cd5fd9705707"
        );
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[TOKEN_PREFIX.len()..]));
        assert_eq!(display_prefix(&a), a[..11]);
    }
}
