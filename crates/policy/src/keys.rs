//! DKIM keys: a domain gets two, RSA 2048 (RFC 6376, RFC 8301) and Ed25519
//! (RFC 8463), under selectors that carry their creation date (`t20261123r`,
//! `t20261123e`) so a rotation publishes new selectors beside the old ones.

use base64::Engine;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::dkim::generate::DkimKeyPair;
use store::{DkimKey, NewDkimKey};

pub const RSA: &str = "rsa-sha256";
pub const ED25519: &str = "ed25519-sha256";

#[derive(Debug, thiserror::Error)]
#[error("cannot create a DKIM key: {0}")]
pub struct KeyError(String);

/// A new RSA and Ed25519 key pair for a domain, signing from `active_from`.
/// `taken` are the selectors the domain already has (a second rotation on
/// the same day gets a letter more).
pub fn generate(now: i64, active_from: i64, taken: &[String]) -> Result<Vec<NewDkimKey>, KeyError> {
    let err = |e: mail_auth::Error| KeyError(e.to_string());
    let stem = selector_stem(now, taken);
    let rsa = DkimKeyPair::generate_rsa(2048).map_err(err)?;
    let ed = DkimKeyPair::generate_ed25519().map_err(err)?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(vec![
        NewDkimKey {
            selector: format!("{stem}r"),
            algorithm: RSA.into(),
            private_key: rsa.private_key().to_vec(),
            // What DNS publishes for RSA is the SubjectPublicKeyInfo (as
            // opendkim-genkey and the large providers do).
            public_key: b64(&rsa_spki(rsa.public_key())),
            active_from,
        },
        NewDkimKey {
            selector: format!("{stem}e"),
            algorithm: ED25519.into(),
            private_key: ed.private_key().to_vec(),
            // RFC 8463 §4.2: the raw 32-byte public key.
            public_key: b64(ed.public_key()),
            active_from,
        },
    ])
}

/// `t` + the date (YYYYMMDD), and a letter if that is taken already.
fn selector_stem(now: i64, taken: &[String]) -> String {
    let (y, m, d) = message::date::civil_from_days(now.div_euclid(86_400));
    let date = format!("t{y:04}{m:02}{d:02}");
    let free = |stem: &String| !taken.iter().any(|s| s.starts_with(stem.as_str()));
    std::iter::once(date.clone())
        .chain(('a'..='z').map(|c| format!("{date}{c}")))
        .find(free)
        .unwrap_or(date)
}

/// Wrap a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (RFC 5280 §4.1, RFC
/// 3279 §2.3.1: algorithm rsaEncryption with NULL parameters).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00]; // no unused bits
    bit_string.extend_from_slice(pkcs1);
    let mut inner = ALGORITHM.to_vec();
    inner.extend(der(0x03, &bit_string));
    der(0x30, &inner)
}

/// One DER element: tag, definite length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The DNS name and TXT text of a key (RFC 6376 §3.6.1).
pub fn dns_record(key: &DkimKey) -> (String, String) {
    let k = if key.key.algorithm == ED25519 {
        "ed25519"
    } else {
        "rsa"
    };
    (
        format!("{}._domainkey.{}", key.key.selector, key.domain),
        format!("v=DKIM1; k={k}; p={}", key.key.public_key),
    )
}

/// An Ed25519 key's public half from its PKCS#8 document (for checks).
pub fn ed25519_public(pkcs8: &[u8]) -> Option<Vec<u8>> {
    Ed25519Key::from_pkcs8_der(pkcs8)
        .ok()
        .map(|k| k.public_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_carry_the_date() {
        let now = 1_795_443_664; // 2026-11-23
        assert_eq!(selector_stem(now, &[]), "t20261123");
        let taken = vec!["t20261123r".to_string(), "t20261123e".to_string()];
        assert_eq!(selector_stem(now, &taken), "t20261123a");
    }

    #[test]
    fn generated_keys() {
        let keys = generate(1_795_443_664, 0, &[]).unwrap();
        assert_eq!(keys.len(), 2);
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        let spki = b64(&keys[0].public_key);
        // SEQUENCE, rsaEncryption OID, and a 2048-bit modulus inside.
        assert_eq!(&spki[..4], &[0x30, 0x82, 0x01, 0x22]);
        assert_eq!(spki.len(), 294);
        let ed = b64(&keys[1].public_key);
        assert_eq!(ed.len(), 32);
        assert_eq!(ed25519_public(&keys[1].private_key).unwrap(), ed);
        let record = dns_record(&DkimKey {
            domain: "a.test".into(),
            key: keys[1].clone(),
            created: 0,
        });
        assert_eq!(record.0, "t20261123e._domainkey.a.test");
        assert!(record.1.starts_with("v=DKIM1; k=ed25519; p="));
    }
}
