//! DKIM signing of what our users send (RFC 6376 §5): one signature per
//! active key of the From: domain (RSA and Ed25519), relaxed/relaxed, From
//! over-signed so that a second From: cannot be added (RFC 6376 §8.15).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, DkimSigningStream, Done};
use message::spool::Spooled;
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

    fn stream(&self) -> Stream<'_> {
        match self {
            Prepared::Rsa(s) => Stream::Rsa(s.sign_streaming()),
            Prepared::Ed25519(s) => Stream::Ed25519(s.sign_streaming()),
        }
    }
}

/// One signature being made as the message goes by.
enum Stream<'a> {
    Rsa(DkimSigningStream<'a, RsaKey<Sha256>>),
    Ed25519(DkimSigningStream<'a, Ed25519Key>),
}

impl Stream<'_> {
    fn write(&mut self, bytes: &[u8]) {
        match self {
            Stream::Rsa(s) => s.write(bytes),
            Stream::Ed25519(s) => s.write(bytes),
        }
    }

    fn finish(self) -> Result<String, mail_auth::Error> {
        Ok(match self {
            Stream::Rsa(s) => s.finish()?.to_header(),
            Stream::Ed25519(s) => s.finish()?.to_header(),
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
        let content = Spooled::from_vec(message.to_vec());
        self.sign_content(domain, &[], &content, now)
            .await
            .unwrap_or_default()
    }

    /// Like [`Signer::sign`], for `added` header lines on top of `content`,
    /// which is read once, a block at a time (hardening.md C-FT9): the
    /// body goes through our RFC 6376 §3.4.4 relaxed canonicalizer
    /// (`body_hash`) into mail-auth's streaming signer. Canonical text is
    /// its own canonical form, so the body hash is the RFC's even where
    /// mail-auth 0.13's own canonicalizer differs (it hashes whitespace-only
    /// lines at the end of the body). An error if the spool cannot be read.
    pub async fn sign_content(
        &self,
        domain: &str,
        added: &[u8],
        content: &Spooled,
        now: i64,
    ) -> std::io::Result<String> {
        let keys = match self.keys_for(domain).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(%domain, error = %e, "DKIM: cannot read the keys; not signing");
                return Ok(String::new());
            }
        };
        let mut prepared = Vec::new();
        for key in active_keys(&keys, now) {
            match self.prepared(key) {
                Ok(p) => prepared.push((key, p)),
                Err(e) => {
                    tracing::warn!(%domain, selector = %key.key.selector, error = %e, "DKIM: cannot use the key")
                }
            }
        }
        if prepared.is_empty() {
            return Ok(String::new());
        }
        let mut streams: Vec<Stream<'_>> = prepared.iter().map(|(_, p)| p.stream()).collect();
        let header = content.header();
        for s in &mut streams {
            s.write(added);
            s.write(header);
        }
        let mut canonical = crate::body_hash::Canonicalizer::new(true, 0);
        let mut to_all = |b: &[u8]| streams.iter_mut().for_each(|s| s.write(b));
        content
            .skip(header.len())
            .chunks(|chunk| canonical.feed(chunk, &mut to_all))?;
        canonical.finish(&mut to_all);
        let mut out = String::new();
        for ((key, _), stream) in prepared.iter().zip(streams) {
            match stream.finish() {
                Ok(header) => out.push_str(&header),
                Err(e) => {
                    tracing::warn!(%domain, selector = %key.key.selector, error = %e, "DKIM: cannot sign")
                }
            }
        }
        Ok(out)
    }

    /// The message with our DKIM signatures made again: after a change of
    /// its content (the 7-bit conversion of RFC 6152 §3, which RFC 6376
    /// §5.3 says breaks body hashes). Signatures by others stay as they are.
    /// The body stays in its spool (C-FT9); a spool that cannot take the
    /// new header leaves the message as it was, and the log says so.
    pub async fn resign(&self, message: &Spooled, now: i64) -> Spooled {
        let header = message.header();
        let Some(domain) = crate::verify::from_domains(header)
            .ok()
            .and_then(|d| d.into_iter().next())
        else {
            return message.clone();
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
        let stripped = message::header::without_fields(header, ours);
        if stripped.len() == header.len() {
            return message.clone();
        }
        let signed = async {
            let bare = message.skip(header.len()).with_prefix(&stripped)?;
            let signatures = self.sign_content(&domain, &[], &bare, now).await?;
            bare.with_prefix(signatures.as_bytes())
        };
        signed.await.unwrap_or_else(|e| {
            tracing::warn!(%domain, error = %e, "DKIM: cannot sign the converted message again; sent as it is");
            message.clone()
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use mail_auth::common::crypto::HashAlgorithm;
    use mail_auth::dkim::Canonicalization;

    /// C-FT9: a spooled message is signed a block at a time, with the
    /// RFC 6376 §3.4.4 relaxed body hash even where the body ends with
    /// whitespace-only lines (mail-auth alone hashes them), and the same
    /// body hash as the message signed in memory.
    #[tokio::test]
    async fn a_spooled_message_is_signed_with_the_rfc_body_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&store::Backend::Sqlite(dir.path().to_path_buf())).unwrap();
        store.add_domain("a.test").await.unwrap();
        for k in crate::keys::generate(0, 0, &[]).unwrap() {
            store.add_dkim_key("a.test", k).await.unwrap();
        }
        let signer = Signer::new(store);
        let mut whole = b"From: a@a.test\r\nSubject: big\r\n\r\n".to_vec();
        for i in 0..20_000 {
            whole.extend_from_slice(format!("line {i}  with \t spaces \r\n").as_bytes());
        }
        whole.extend_from_slice(b"\r\n  \r\n\t\r\n");
        let spool = message::spool::Spool::in_dir(&dir.path().join("spool")).unwrap();
        let mut w = spool.writer();
        w.write(&whole).unwrap();
        let spooled = w.finish().unwrap();
        assert!(spooled.is_spooled());
        let expected = crate::body_hash::body_hash(
            &spooled,
            Canonicalization::Relaxed,
            HashAlgorithm::Sha256,
            0,
        )
        .unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode(expected);
        let bh = |headers: &str| -> Vec<String> {
            headers
                .split("DKIM-Signature:")
                .skip(1)
                .map(|h| tag(h, "bh").unwrap())
                .collect()
        };
        let streamed = signer
            .sign_content("a.test", b"X-Added: 1\r\n", &spooled, 10)
            .await
            .unwrap();
        assert_eq!(
            bh(&streamed),
            [expected.clone(), expected.clone()],
            "{streamed}"
        );
        let in_memory = signer.sign("a.test", &whole, 10).await;
        assert_eq!(bh(&in_memory), [expected.clone(), expected]);
    }
}
