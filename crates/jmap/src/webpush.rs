//! Web Push message encryption (RFC 8291, with RFC 8188's aes128gcm
//! content coding): what a push subscription with `keys` is sent, so
//! only the device that holds the private key reads it (RFC 8620 §7.2:
//! "the server MUST encrypt").
//!
//! One record: the header (salt, record size, this message's own
//! ephemeral public key as the key id), then the push message with the
//! last-record delimiter, sealed with AES-128-GCM under a key and nonce
//! derived by HKDF-SHA256 from the ECDH (P-256) secret and the device's
//! authentication secret.

use base64::Engine;
use ring::{aead, agreement, hkdf, rand};

/// The record size written in the header (RFC 8291 §4: one record).
const RECORD_SIZE: u32 = 4096;
/// The longest message that fits the one record: the record less the
/// delimiter and the tag (RFC 8188 §2).
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - 1 - 16;

/// An HKDF output length (what `ring` asks for).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], out: &mut [u8]) -> Result<(), String> {
    prk.expand(&[info], Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| "HKDF failed".to_string())
}

fn base64url(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| "a key is not base64url".to_string())
}

/// Check a subscription's keys (RFC 8620 §7.2: `p256dh` an uncompressed
/// P-256 point, `auth` 16 octets), before anything is sent to them.
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), String> {
    let public = base64url(p256dh)?;
    if public.len() != 65 || public[0] != 4 {
        return Err("p256dh is not an uncompressed P-256 point".into());
    }
    if base64url(auth)?.len() != 16 {
        return Err("auth is not 16 octets".into());
    }
    Ok(())
}

/// The aes128gcm body of `plaintext` for the device's keys.
pub fn encrypt(p256dh: &str, auth: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    check_keys(p256dh, auth)?;
    if plaintext.len() > MAX_PLAINTEXT {
        return Err("the push message is too long for one record".into());
    }
    let ua_public = base64url(p256dh)?;
    let auth_secret = base64url(auth)?;
    let rng = rand::SystemRandom::new();
    let private = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(|_| "no key pair".to_string())?;
    let as_public = private
        .compute_public_key()
        .map_err(|_| "no public key".to_string())?;
    let as_public = as_public.as_ref().to_vec();
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &ua_public);
    let ecdh_secret = agreement::agree_ephemeral(private, &peer, |s| s.to_vec())
        .map_err(|_| "the device's key is not on the curve".to_string())?;
    // RFC 8291 §3.3: the input keying material from the ECDH secret,
    // keyed by the authentication secret, bound to both public keys.
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, &auth_secret).extract(&ecdh_secret);
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&ua_public);
    key_info.extend_from_slice(&as_public);
    let mut ikm = [0u8; 32];
    expand(&prk_key, &key_info, &mut ikm)?;
    // RFC 8188 §2.2, §2.3: the content encryption key and nonce.
    let mut salt = [0u8; 16];
    rand::SecureRandom::fill(&rng, &mut salt).map_err(|_| "no random salt".to_string())?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
    let mut cek = [0u8; 16];
    expand(&prk, b"Content-Encoding: aes128gcm\0", &mut cek)?;
    let mut nonce = [0u8; 12];
    expand(&prk, b"Content-Encoding: nonce\0", &mut nonce)?;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| "bad key".to_string())?,
    );
    let mut record = plaintext.to_vec();
    record.push(2); // the last record's delimiter (RFC 8188 §2)
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::empty(),
        &mut record,
    )
    .map_err(|_| "sealing failed".to_string())?;
    let mut out = Vec::with_capacity(16 + 4 + 1 + as_public.len() + record.len());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    out.push(as_public.len() as u8);
    out.extend_from_slice(&as_public);
    out.extend_from_slice(&record);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device's key pair and secret, as a browser makes them.
    fn device() -> (agreement::EphemeralPrivateKey, String, String) {
        let rng = rand::SystemRandom::new();
        let private =
            agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
        let public = private.compute_public_key().unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        (private, b64.encode(public.as_ref()), b64.encode([7u8; 16]))
    }

    #[test]
    fn the_header_of_one_record() {
        let (_, p256dh, auth) = device();
        let body = encrypt(&p256dh, &auth, b"{\"@type\":\"StateChange\"}").unwrap();
        assert_eq!(&body[16..20], &4096u32.to_be_bytes());
        assert_eq!(body[20], 65);
        assert_eq!(body[21], 4, "the key id is an uncompressed point");
        assert_eq!(body.len(), 16 + 4 + 1 + 65 + 23 + 1 + 16);
    }

    #[test]
    fn bad_keys_are_refused() {
        let (_, p256dh, auth) = device();
        assert!(check_keys(&p256dh, &auth).is_ok());
        assert!(check_keys("AAAA", &auth).is_err());
        assert!(check_keys(&p256dh, "c2hvcnQ").is_err());
        assert!(check_keys("!!", &auth).is_err());
        assert!(encrypt(&p256dh, &auth, &vec![b'x'; MAX_PLAINTEXT + 1]).is_err());
    }
}
