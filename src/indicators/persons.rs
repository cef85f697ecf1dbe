//! Persons counted without their personal codes: each is keyed by HMAC-SHA-256 of the code
//! under a secret shared by the institutions that pool their counts (the platform's), so two
//! institutions' keys for one person are equal and the union of their key sets counts each
//! person once, while neither learns the other's codes.

use aws_lc_rs::hmac;

/// The key of the person with national personal code `code` under `secret`, in lower-case
/// hex; a code is trimmed first, as it is written in different systems with stray spaces.
pub fn person_key(secret: &[u8], code: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hex::encode(hmac::sign(&key, code.trim().as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_4231_vector_and_trimming() {
        // RFC 4231 test case 2.
        assert_eq!(
            person_key(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            person_key(b"k", " 48507120013 "),
            person_key(b"k", "48507120013")
        );
        assert_ne!(
            person_key(b"k", "48507120013"),
            person_key(b"other", "48507120013")
        );
    }
}
