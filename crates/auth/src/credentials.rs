//! What the store keeps of a password: an Argon2id hash (for PLAIN, LOGIN,
//! IMAP LOGIN, POP3 PASS) and the SCRAM-SHA-256 keys (RFC 5802 §3, RFC 7677).
//! The password itself is never stored or logged.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use store::Credentials;

/// RFC 7677 §4: the iteration count SHOULD be at least 4096.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// SCRAM-SHA-256 server-side keys (RFC 5802 §3: StoredKey, ServerKey, salt, i).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramKeys {
    /// Derive the keys from a password (RFC 5802 §3).
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramKeys {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        ScramKeys {
            salt: salt.to_vec(),
            iterations,
            stored_key,
            server_key,
        }
    }

    /// `i:salt:storedkey:serverkey`, base64 fields: how the store keeps them.
    pub fn encode(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }

    pub fn decode(s: &str) -> Option<ScramKeys> {
        let mut parts = s.split(':');
        let iterations = parts.next()?.parse().ok()?;
        let salt = B64.decode(parts.next()?).ok()?;
        let stored_key = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        let server_key = B64.decode(parts.next()?).ok()?.try_into().ok()?;
        Some(ScramKeys {
            salt,
            iterations,
            stored_key,
            server_key,
        })
    }
}

/// HMAC-SHA-256.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Argon2id with 7 MiB of memory and 5 passes: one of OWASP's equivalent settings
/// (Password Storage Cheat Sheet), chosen over 19 MiB x 2 because every login
/// thread keeps that memory.
pub const ARGON2_M_COST: u32 = 7 * 1024;
pub const ARGON2_T_COST: u32 = 5;

fn argon2() -> Argon2<'static> {
    match argon2::Params::new(ARGON2_M_COST, ARGON2_T_COST, 1, None) {
        Ok(p) => Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p),
        Err(_) => Argon2::default(),
    }
}

/// RFC 4013 SASLprep of a password or user name, as RFC 5802 §2.2 (SCRAM)
/// and RFC 4616 §2 (PLAIN) ask: non-ASCII spaces become spaces, soft
/// hyphens and the like vanish, NFKC normalization; prohibited characters
/// (controls, private use, unassigned code points) are an error.
pub fn prepare(text: &str) -> Result<String, String> {
    stringprep::saslprep(text)
        .map(|p| p.into_owned())
        .map_err(|e| format!("not allowed by SASLprep (RFC 4013): {e}"))
}

/// Hash a new password into the credentials the store keeps. Slow by design
/// (Argon2id). The password is SASLprepped first, so that every client
/// logs in with what the user typed, however their keyboard encoded it;
/// callers check [`prepare`] first to refuse passwords it cannot take.
pub fn derive(password: &str) -> Credentials {
    let prepared = prepare(password).unwrap_or_else(|_| password.to_string());
    let password = prepared.as_str();
    let mut salt = [0u8; 16];
    rand::fill(&mut salt[..]);
    let password_hash = argon2()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // Argon2 only fails for out-of-range parameters; ours are fixed and valid.
        .unwrap_or_default();
    let mut scram_salt = [0u8; 16];
    rand::fill(&mut scram_salt[..]);
    Credentials {
        password_hash,
        scram_sha256: ScramKeys::derive(password, &scram_salt, SCRAM_ITERATIONS).encode(),
    }
}

/// Check a password against a stored Argon2 PHC string (its own parameters apply;
/// constant-time compare inside). The server verifies on `hasher` threads instead.
pub fn verify(password: &str, password_hash: &str) -> bool {
    match PasswordHash::new(password_hash) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_and_verify() {
        let c = derive("correct horse");
        assert!(c.password_hash.starts_with("$argon2id$"));
        assert!(
            !c.password_hash.contains("correct horse") && !c.scram_sha256.contains("correct horse")
        );
        assert!(verify("correct horse", &c.password_hash));
        assert!(!verify("correct horsE", &c.password_hash));
        assert!(!verify("x", "not a hash"));
        let keys = ScramKeys::decode(&c.scram_sha256).unwrap();
        assert_eq!(keys.iterations, SCRAM_ITERATIONS);
        assert_eq!(ScramKeys::decode(&keys.encode()).unwrap(), keys);
    }

    /// RFC 4013 §3's examples.
    #[test]
    fn saslprep() {
        assert_eq!(prepare("I\u{AD}X").unwrap(), "IX");
        assert_eq!(prepare("user").unwrap(), "user");
        assert_eq!(prepare("USER").unwrap(), "USER");
        assert_eq!(prepare("\u{AA}").unwrap(), "a");
        assert_eq!(prepare("\u{2168}").unwrap(), "IX");
        assert!(prepare("\u{7}").is_err());
        assert!(prepare("\u{627}1").is_err());
        // A non-ASCII space is a space: the same password either way.
        let c = derive("correct\u{A0}horse");
        assert!(verify("correct horse", &c.password_hash));
    }
}
