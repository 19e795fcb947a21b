//! What a key a user publishes is: an OpenPGP public key
//! ([`crate::openpgp`]) or an S/MIME certificate ([`crate::smime`]), and
//! only if it names the user's address, so nobody publishes a key under
//! someone else's name. Private keys are refused with a word of why.

use store::{KeyKind, PublicKey};

/// The key in `data` (armored or binary OpenPGP, PEM or DER X.509), for
/// `address`, published at `now`; or one clear line of what is wrong.
pub fn understand(address: &str, data: &[u8], now: i64) -> Result<PublicKey, String> {
    match crate::openpgp::read_public_key(data) {
        Ok(k) if k.names(address) => {
            return Ok(PublicKey {
                kind: KeyKind::OpenPgp,
                data: k.binary,
                fingerprint: k.fingerprint,
                created: now,
            });
        }
        Ok(k) => {
            return Err(format!(
                "the OpenPGP key {} has no user ID for {address} (it has: {})",
                k.fingerprint,
                k.user_ids.join(", ")
            ));
        }
        Err(e) if e.contains("private key") => return Err(e),
        Err(_) => {}
    }
    match crate::smime::read_certificate(data) {
        Ok(c) if c.addresses.iter().any(|a| a.eq_ignore_ascii_case(address)) => Ok(PublicKey {
            kind: KeyKind::Smime,
            data: c.der,
            fingerprint: c.fingerprint,
            created: now,
        }),
        Ok(c) if c.addresses.is_empty() => {
            Err(format!("the certificate is for no address, not {address}"))
        }
        Ok(c) => Err(format!(
            "the certificate is for {}, not {address}",
            c.addresses.join(", ")
        )),
        Err(e) if e.contains("private key") => Err(e),
        Err(_) => Err("neither an OpenPGP public key nor an X.509 certificate".into()),
    }
}
