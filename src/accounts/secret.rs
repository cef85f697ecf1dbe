//! Passwords (Argon2id, PHC strings) and random secrets (API tokens, session cookies).
//!
//! Only hashes are stored: Argon2id for passwords, because they are guessable; SHA-256 for our
//! own 256-bit random secrets, because those are not, and a fast hash keeps every request cheap.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the system random source failed: {0}")]
    Random(String),
}

/// `bytes` random bytes from the operating system, as lower-case hex.
pub fn random_hex(bytes: usize) -> Result<String, SecretError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The anti-forgery token of a browser session: derived from the session's secret, which lives
/// only in an HttpOnly cookie, so another site can neither read the secret nor compute this.
/// Pages carry it in a meta tag and a hidden form field; state-changing requests send it back.
pub fn csrf_token(session_secret: &str) -> String {
    sha256_hex(&format!("telecardio csrf {session_secret}"))
}

/// An Argon2id hash in PHC string form (parameters and salt included).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt_bytes = {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| SecretError::Random(e.to_string()))?;
        b
    };
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| SecretError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches a stored PHC hash; a malformed or empty hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    if stored.is_empty() {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Compares two hex digests without an early exit.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("Žalias-kalnas-42").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("Žalias-kalnas-42", &hash));
        assert!(!verify_password("žalias-kalnas-42", &hash));
        assert!(!verify_password("anything", ""));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn secrets_are_random_and_compared_whole() {
        let a = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex(32).unwrap());
        assert!(same_digest(&sha256_hex(&a), &sha256_hex(&a)));
        assert!(!same_digest(&sha256_hex(&a), &sha256_hex("b")));
        assert!(!same_digest("ab", "abc"));
    }
}
