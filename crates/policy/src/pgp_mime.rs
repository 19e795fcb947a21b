//! PGP/MIME signed messages (RFC 3156 §5) checked at delivery: the first
//! part of a `multipart/signed; protocol="application/pgp-signature"`
//! message, headers and all, exactly as it was sent (RFC 1847 §2.1: the
//! CRLF before the boundary is the boundary's), checked against the
//! detached signature of the second part with the sender's published key
//! (RFC 9580 §5.2.4, by rPGP). The result goes into an
//! Authentication-Results field (RFC 8601) with the method `x-pgp`.

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};

/// The signed part and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub data: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Made with this key (its fingerprint).
    Pass(String),
    /// The signature does not match, or cannot be read: why.
    Fail(String),
    /// Signed, but not checked: why (no key published for the sender,
    /// too large).
    Unchecked(String),
}

/// The signed part and its signature, if `raw` is a PGP/MIME signed
/// message.
pub fn signed(raw: &[u8]) -> Option<Signed> {
    let root = message::mime::parse(raw);
    let ct = &root.content_type;
    let pgp = ct
        .param("protocol")
        .is_some_and(|p| p.eq_ignore_ascii_case("application/pgp-signature"));
    if ct.kind != "multipart" || ct.subtype != "signed" || !pgp || root.children.len() != 2 {
        return None;
    }
    let (first, second) = (&root.children[0], &root.children[1]);
    let encoding = second.field(raw, "Content-Transfer-Encoding");
    let signature = message::mime::decode_body(encoding.as_deref(), raw.get(second.body.clone())?)?;
    Some(Signed {
        data: raw.get(first.header.start..first.body.end)?.to_vec(),
        signature,
    })
}

/// Check `signed` with a published key: its primary key or one of its
/// subkeys.
pub fn verify(signed: &Signed, published: &store::PublicKey) -> Outcome {
    let Ok(key) = SignedPublicKey::from_bytes(&published.data[..]) else {
        return Outcome::Fail("the sender's published key cannot be read".into());
    };
    let signature = match DetachedSignature::from_armor_single(&signed.signature[..]) {
        Ok((s, _)) => s,
        Err(_) => match DetachedSignature::from_bytes(&signed.signature[..]) {
            Ok(s) => s,
            Err(_) => return Outcome::Fail("the signature cannot be read".into()),
        },
    };
    if signature.verify(&key, &signed.data).is_ok()
        || key
            .public_subkeys
            .iter()
            .any(|sub| signature.verify(sub, &signed.data).is_ok())
    {
        return Outcome::Pass(published.fingerprint.clone());
    }
    Outcome::Fail("the signature does not match the message".into())
}

/// The Authentication-Results field (RFC 8601 §2.2) of a check of mail
/// from `from`.
pub fn result_field(authserv_id: &str, from: &str, outcome: &Outcome) -> String {
    let (result, comment) = match outcome {
        Outcome::Pass(fingerprint) => ("pass", format!("signed with key {fingerprint}")),
        Outcome::Fail(why) => ("fail", why.clone()),
        Outcome::Unchecked(why) => ("neutral", why.clone()),
    };
    format!(
        "Authentication-Results: {authserv_id}; x-pgp={result} header.from={from} ({comment})\r\n"
    )
}
