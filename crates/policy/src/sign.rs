//! DKIM signing of what our users send (RFC 6376 §5): one signature per
//! active key of the From: domain (RSA and Ed25519), relaxed/relaxed, From
//! over-signed so that a second From: cannot be added (RFC 6376 §8.15).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};
use store::{DkimKey, Store};

use crate::keys::ED25519;

/// The headers signed; `From` twice: the second instance signs its absence.
pub const SIGNED_HEADERS: [&str; 13] = [
    "From",
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "Reply-To",
];

enum Prepared {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

impl Prepared {
    fn new(key: &DkimKey) -> Result<Prepared, mail_auth::Error> {
        let k = &key.key;
        if k.algorithm == ED25519 {
            let signer = DkimSigner::from_key(Ed25519Key::from_pkcs8_der(&k.private_key)?)
                .domain(&key.domain)
                .selector(&k.selector)
                .headers(SIGNED_HEADERS);
            return Ok(Prepared::Ed25519(signer));
        }
        let der = PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(k.private_key.clone()));
        let signer = DkimSigner::from_key(RsaKey::<Sha256>::from_key_der(der)?)
            .domain(&key.domain)
            .selector(&k.selector)
            .headers(SIGNED_HEADERS);
        Ok(Prepared::Rsa(signer))
    }

    fn sign(&self, message: &[u8]) -> Result<String, mail_auth::Error> {
        Ok(match self {
            Prepared::Rsa(s) => s.sign(message)?.to_header(),
            Prepared::Ed25519(s) => s.sign(message)?.to_header(),
        })
    }
}

/// Signs with the keys in the store; parsed keys are kept (by domain and selector).
pub struct Signer {
    store: Arc<dyn Store>,
    prepared: Mutex<HashMap<(String, String), Arc<Prepared>>>,
}

impl Signer {
    pub fn new(store: Arc<dyn Store>) -> Signer {
        Signer {
            store,
            prepared: Mutex::default(),
        }
    }

    /// The DKIM-Signature fields to put on top of `message`, signed for
    /// `domain` or the nearest parent domain of ours that has keys (mail
    /// from `MAILER-DAEMON@mx.a.test` is signed by a.test: relaxed DMARC
    /// alignment). Empty when no key applies.
    pub async fn sign(&self, domain: &str, message: &[u8], now: i64) -> String {
        let keys = match self.keys_for(domain).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(%domain, error = %e, "DKIM: cannot read the keys; not signing");
                return String::new();
            }
        };
        let active = active_keys(&keys, now);
        if active.is_empty() {
            return String::new();
        }
        // mail-auth 0.13 hashes whitespace-only lines at the end of the body
        // under relaxed canonicalization; RFC 6376 §3.4.4 ignores them. The same
        // message without them has the right body hash (dependencies.md).
        let canonical = without_trailing_blank_lines(message);
        let mut out = String::new();
        for key in active {
            match self.prepared(key).and_then(|p| p.sign(&canonical)) {
                Ok(header) => out.push_str(&header),
                Err(e) => {
                    tracing::warn!(%domain, selector = %key.key.selector, error = %e, "DKIM: cannot sign")
                }
            }
        }
        out
    }

    /// The message with our DKIM signatures made again: after a change of
    /// its content (the 7-bit conversion of RFC 6152 §3, which RFC 6376
    /// §5.3 says breaks body hashes). Signatures by others stay as they are.
    pub async fn resign(&self, message: &[u8], now: i64) -> Vec<u8> {
        let Some(domain) = crate::verify::from_domains(message)
            .ok()
            .and_then(|d| d.into_iter().next())
        else {
            return message.to_vec();
        };
        let keys = self.keys_for(&domain).await.unwrap_or_default();
        let ours = |f: &message::header::Field<'_>| {
            if !f.name.eq_ignore_ascii_case("DKIM-Signature") {
                return false;
            }
            let value = f.unfolded();
            let (d, s) = (tag(&value, "d"), tag(&value, "s"));
            keys.iter().any(|k| {
                d.as_deref()
                    .is_some_and(|d| d.eq_ignore_ascii_case(&k.domain))
                    && s.as_deref() == Some(k.key.selector.as_str())
            })
        };
        let stripped = message::header::without_fields(message, ours);
        if stripped.len() == message.len() {
            return message.to_vec();
        }
        let mut out = self.sign(&domain, &stripped, now).await.into_bytes();
        out.extend_from_slice(&stripped);
        out
    }

    async fn keys_for(&self, domain: &str) -> Result<Vec<DkimKey>, store::StoreError> {
        let mut name = domain.trim_end_matches('.').to_ascii_lowercase();
        loop {
            let keys = self.store.dkim_keys(&name).await?;
            if !keys.is_empty() {
                return Ok(keys);
            }
            match name.split_once('.') {
                Some((_, parent)) if parent.contains('.') => name = parent.to_string(),
                _ => return Ok(Vec::new()),
            }
        }
    }

    fn prepared(&self, key: &DkimKey) -> Result<Arc<Prepared>, mail_auth::Error> {
        let id = (key.domain.clone(), key.key.selector.clone());
        let mut cache = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(&id) {
            return Ok(p.clone());
        }
        let p = Arc::new(Prepared::new(key)?);
        cache.insert(id, p.clone());
        Ok(p)
    }
}

/// The value of tag `name` in a `tag=value; ...` list (RFC 6376 §3.2).
fn tag(list: &str, name: &str) -> Option<String> {
    list.split(';').find_map(|t| {
        let (n, v) = t.split_once('=')?;
        (n.trim() == name).then(|| v.split_whitespace().collect())
    })
}

/// What a forwarding domain seals with (RFC 8617 §5): its active RSA key
/// (Ed25519 ARC is not deployed widely enough).
pub struct ArcKey {
    pub domain: String,
    pub selector: String,
    pub key: RsaKey<Sha256>,
}

impl Signer {
    pub async fn arc_key(&self, domain: &str, now: i64) -> Option<ArcKey> {
        let keys = self.keys_for(domain).await.ok()?;
        let rsa = active_keys(&keys, now)
            .into_iter()
            .find(|k| k.key.algorithm == crate::keys::RSA)?;
        let der = PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(rsa.key.private_key.clone()));
        let key = RsaKey::<Sha256>::from_key_der(der).ok()?;
        Some(ArcKey {
            domain: rsa.domain.clone(),
            selector: rsa.key.selector.clone(),
            key,
        })
    }
}

/// Per algorithm, the newest key that is active at `now`.
pub fn active_keys(keys: &[DkimKey], now: i64) -> Vec<&DkimKey> {
    let mut out: Vec<&DkimKey> = Vec::new();
    // `keys` come newest first.
    for k in keys.iter().filter(|k| k.key.active_from <= now) {
        if !out.iter().any(|o| o.key.algorithm == k.key.algorithm) {
            out.push(k);
        }
    }
    out
}

/// The message with whitespace-only lines at the end of its body removed (a
/// relaxed body hash does not see them: RFC 6376 §3.4.4). Unchanged when there
/// are none, so simple canonicalization is never affected in practice.
pub fn without_trailing_blank_lines(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let body_start = message::header::header_end(message);
    let mut end = message.len();
    let mut saw_whitespace = false;
    // Remove blank lines (empty or whitespace only) from the end.
    while let Some(without_crlf) = message[body_start..end].strip_suffix(b"\r\n") {
        let line_start = without_crlf
            .windows(2)
            .rposition(|w| w == b"\r\n")
            .map_or(0, |i| i + 2);
        let line = &without_crlf[line_start..];
        if !line.iter().all(|b| *b == b' ' || *b == b'\t') {
            break;
        }
        saw_whitespace |= !line.is_empty();
        end = body_start + line_start;
    }
    if saw_whitespace {
        std::borrow::Cow::Owned(message[..end].to_vec())
    } else {
        std::borrow::Cow::Borrowed(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_whitespace_lines() {
        let m = b"Subject: x\r\n\r\nbody\r\n  \r\n\t\r\n";
        assert_eq!(
            &*without_trailing_blank_lines(m),
            b"Subject: x\r\n\r\nbody\r\n"
        );
        let m = b"Subject: x\r\n\r\nbody\r\n\r\n";
        assert_eq!(
            &*without_trailing_blank_lines(m),
            &m[..],
            "empty lines: nothing to do"
        );
        let m = b"Subject: x\r\n\r\nbody \r\n";
        assert_eq!(&*without_trailing_blank_lines(m), &m[..]);
        let m = b"Subject: x\r\n\r\n \r\n";
        assert_eq!(&*without_trailing_blank_lines(m), b"Subject: x\r\n\r\n");
        let m = b"Subject: x\r\n\r\nbody\r\n \r\n\r\n";
        assert_eq!(
            &*without_trailing_blank_lines(m),
            b"Subject: x\r\n\r\nbody\r\n"
        );
    }
}
