//! PGP/MIME signed messages (RFC 3156 §5) checked at delivery: the first
//! part of a `multipart/signed; protocol="application/pgp-signature"`
//! message, headers and all, exactly as it was sent (RFC 1847 §2.1: the
//! CRLF before the boundary is the boundary's), checked against the
//! detached signature of the second part with the sender's published key
//! (RFC 9580 §5.2.4, by rPGP). The result goes into an
//! Authentication-Results field (RFC 8601) with the method `x-pgp`.

use message::spool::{Spool, SpoolWriter, Spooled};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};

/// The signed part and its signature.
#[derive(Debug, Clone)]
pub struct Signed {
    pub data: SignedOctets,
    pub signature: Vec<u8>,
}

/// The octets a signature covers (hardening.md C-FT9: a large signed
/// part is read from the message's spool as it is hashed, never held).
#[derive(Debug, Clone)]
pub enum SignedOctets {
    /// The first part of a multipart/signed message (RFC 1847 §2.1).
    Part {
        message: Spooled,
        range: std::ops::Range<u64>,
    },
    /// The content an opaque S/MIME signature carries (RFC 8551 §3.5.2).
    Held(Vec<u8>),
}

impl SignedOctets {
    /// A reader of the octets, from the first.
    pub fn reader(&self) -> Box<dyn std::io::Read + '_> {
        match self {
            SignedOctets::Part { message, range } => Box::new(message.reader_of(range.clone())),
            SignedOctets::Held(data) => Box::new(&data[..]),
        }
    }
}

/// The largest signature part read (a detached OpenPGP signature or a CMS
/// SignedData with its certificates is a few KiB).
pub const MAX_SIGNATURE: usize = 1024 * 1024;

/// The two parts of a `multipart/signed` message whose protocol is one of
/// `protocols` (RFC 1847 §2.1): the first, headers and all, as signed
/// octets; the second decoded, at most [`MAX_SIGNATURE`] octets. The
/// message is read once for its outline, the signature part again.
pub(crate) fn multipart_signed(
    message: &Spooled,
    outline: &message::outline::Outline,
    protocols: &[&str],
) -> Option<Signed> {
    use message::mime::Source;
    let root = &outline.root;
    let ct = &root.content_type;
    let ours = ct
        .param("protocol")
        .is_some_and(|p| protocols.iter().any(|w| p.eq_ignore_ascii_case(w)));
    if ct.kind != "multipart" || ct.subtype != "signed" || !ours || root.children.len() != 2 {
        return None;
    }
    let (first, second) = (&root.children[0], &root.children[1]);
    if second.body.len() > MAX_SIGNATURE {
        return None;
    }
    let encoding = outline.field(second, "Content-Transfer-Encoding");
    let encoded = message
        .read_range(second.body.start as u64..second.body.end as u64)
        .ok()?;
    let signature = message::mime::decode_body(encoding.as_deref(), &encoded)?;
    Some(Signed {
        data: SignedOctets::Part {
            message: message.clone(),
            range: first.header.start as u64..first.body.end as u64,
        },
        signature,
    })
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Made with a key that vouches for the sender: which, and why it is
    /// trusted.
    Pass(String),
    /// The signature does not match, or cannot be read: why.
    Fail(String),
    /// Signed, but not vouched for: why (no key published for the sender,
    /// a key from unsigned DNS, too large).
    Unchecked(String),
}

/// The signed part and its signature, if `message` is a PGP/MIME signed
/// message.
pub fn signed(message: &Spooled) -> Option<Signed> {
    let outline = message::outline::of_spooled(message).ok()?;
    multipart_signed(message, &outline, &["application/pgp-signature"])
}

/// How a signature stands against one key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyCheck {
    /// Made with this key (or a subkey of it).
    Verified,
    /// Says it was made with this key, but does not match the message.
    Changed,
    /// Made with another key.
    OtherKey,
    /// The key or the signature cannot be read: why.
    Unreadable(String),
}

/// Check `signed` against a transferable public key: the primary key or
/// one of its subkeys, the one the signature names as its issuer (RFC 9580
/// §5.2.3.12, §5.2.3.35; any of them when it names none).
fn check_with(signed: &Signed, key: &[u8]) -> KeyCheck {
    use pgp::types::KeyDetails;
    let Ok(key) = SignedPublicKey::from_bytes(key) else {
        return KeyCheck::Unreadable("the sender's key cannot be read".into());
    };
    let signature = match DetachedSignature::from_armor_single(&signed.signature[..]) {
        Ok((s, _)) => s,
        Err(_) => match DetachedSignature::from_bytes(&signed.signature[..]) {
            Ok(s) => s,
            Err(_) => return KeyCheck::Unreadable("the signature cannot be read".into()),
        },
    };
    let ids = signature.signature.issuer_key_id();
    let fingerprints = signature.signature.issuer_fingerprint();
    let named = |id: pgp::types::KeyId, fingerprint: pgp::types::Fingerprint| {
        (ids.is_empty() && fingerprints.is_empty())
            || ids.contains(&&id)
            || fingerprints.contains(&&fingerprint)
    };
    let primary = named(key.legacy_key_id(), key.fingerprint());
    let subkeys: Vec<_> = key
        .public_subkeys
        .iter()
        .filter(|s| named(s.legacy_key_id(), s.fingerprint()))
        .collect();
    if !primary && subkeys.is_empty() {
        return KeyCheck::OtherKey;
    }
    let signature = &signature.signature;
    let verified = (primary && signature.verify(&key, signed.data.reader()).is_ok())
        || subkeys
            .iter()
            .any(|sub| signature.verify(*sub, signed.data.reader()).is_ok());
    match verified {
        true => KeyCheck::Verified,
        false => KeyCheck::Changed,
    }
}

/// The verdict on a PGP/MIME signed message from `from` with the keys
/// found for it (published here, or by the sender's domain): pass when one
/// that vouches for `from` made it; fail when the key it names does not
/// match the message; neutral when none of them made it, or only one that
/// does not vouch (unsigned DNS).
pub fn judge(signed: &Signed, from: &str, keys: &[crate::sender_keys::FoundKey]) -> Outcome {
    use crate::sender_keys::Source;
    let mut outcome = Outcome::Unchecked(match keys.is_empty() {
        true => "signed; no key published for the sender".into(),
        false => "signed with a key the sender does not publish".into(),
    });
    for key in keys {
        // A key from elsewhere must name the address (a key published
        // here was checked for it then).
        let info = crate::openpgp::read_public_key(&key.data);
        let named = key.source == Source::Here || info.as_ref().is_ok_and(|k| k.names(from));
        if !named {
            continue;
        }
        let fp = info.map(|k| k.fingerprint).unwrap_or_default();
        match check_with(signed, &key.data) {
            KeyCheck::Verified if key.source == Source::Here => {
                return Outcome::Pass(format!("signed with key {fp}"));
            }
            KeyCheck::Verified if key.source.vouches() => {
                return Outcome::Pass(format!(
                    "signed with key {fp} {}",
                    key.source.describe("OPENPGPKEY")
                ));
            }
            KeyCheck::Verified => {
                outcome = Outcome::Unchecked(format!(
                    "valid signature with key {fp} {}",
                    key.source.describe("OPENPGPKEY")
                ));
            }
            KeyCheck::Changed => {
                outcome = Outcome::Fail("the signature does not match the message".into());
            }
            KeyCheck::Unreadable(why) => {
                if matches!(outcome, Outcome::Unchecked(_)) {
                    outcome = Outcome::Fail(why);
                }
            }
            KeyCheck::OtherKey => {}
        }
    }
    outcome
}

/// Which kind of signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// RFC 3156 §5.
    OpenPgp,
    /// RFC 8551 §3.5.3.
    Smime,
}

impl SignatureKind {
    /// The kind a `Content-Type` value announces, if signed.
    pub fn of(content_type: &str) -> Option<SignatureKind> {
        let v = content_type.to_ascii_lowercase();
        if v.contains("pkcs7-mime") && v.contains("signed-data") {
            return Some(SignatureKind::Smime);
        }
        if !v.contains("multipart/signed") {
            return None;
        }
        if v.contains("application/pgp-signature") {
            Some(SignatureKind::OpenPgp)
        } else if v.contains("pkcs7-signature") {
            Some(SignatureKind::Smime)
        } else {
            None
        }
    }

    /// The Authentication-Results method: `smime` is RFC 7281's; OpenPGP
    /// has none registered, hence the experimental `x-pgp`.
    pub fn method(self) -> &'static str {
        match self {
            SignatureKind::OpenPgp => "x-pgp",
            SignatureKind::Smime => "smime",
        }
    }
}

/// The Authentication-Results field (RFC 8601 §2.2) of a check of mail
/// from `from`: the address a value (quoted unless a plain token), the
/// reason a comment, so nothing in either reads as a clause of its own.
pub fn result_field(
    authserv_id: &str,
    kind: SignatureKind,
    from: &str,
    outcome: &Outcome,
) -> String {
    let (result, comment) = match outcome {
        Outcome::Pass(how) => ("pass", how.clone()),
        Outcome::Fail(why) => ("fail", why.clone()),
        Outcome::Unchecked(why) => ("neutral", why.clone()),
    };
    let method = kind.method();
    // The address quoted when it is not a plain token, the comment without
    // control characters or parentheses of its own (C-FZ13).
    let (from, comment) = (
        crate::results::pvalue(from),
        crate::results::comment_text(&comment),
    );
    format!(
        "Authentication-Results: {authserv_id}; {method}={result} header.from={from} ({comment})\r\n"
    )
}

/// The header fields a mail client needs to list and thread a message,
/// left readable outside an encrypted one (a trade-off the user makes by
/// turning encryption at rest on: docs/operations.md).
const KEPT_CLEAR: [&str; 9] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Reply-To",
];

/// The fields of `message`'s header that stay readable outside its
/// encrypted form ([`KEPT_CLEAR`]), as they came.
pub fn kept_clear(message: &[u8]) -> Vec<u8> {
    let header = &message[..message::header::header_end(message)];
    let mut out = Vec::new();
    for f in message::header::fields(header) {
        if KEPT_CLEAR.iter().any(|k| f.name.eq_ignore_ascii_case(k)) {
            out.extend_from_slice(f.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(f.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Whether a message is already encrypted end to end (RFC 3156 §4
/// multipart/encrypted, or S/MIME enveloped-data: RFC 8551 §3.3).
pub fn is_encrypted(header: &[u8]) -> bool {
    message::header::fields_named(header, "Content-Type")
        .first()
        .is_some_and(|f| {
            let v = f.unfolded().to_ascii_lowercase();
            v.contains("multipart/encrypted")
                || (v.contains("application/pkcs7-mime") && !v.contains("signed-data"))
        })
}

/// The key's subkeys that may encrypt (or the primary key's own
/// algorithm when it can and it has no such subkey).
fn encryption_keys(key: &SignedPublicKey) -> Vec<&pgp::composed::SignedPublicSubKey> {
    use pgp::types::KeyDetails;
    key.public_subkeys
        .iter()
        .filter(|s| s.key.algorithm().can_encrypt())
        .collect()
}

/// Whether a published key can be encrypted to.
pub fn can_encrypt(published: &[u8]) -> bool {
    SignedPublicKey::from_bytes(published).is_ok_and(|k| !encryption_keys(&k).is_empty())
}

/// `message` as a PGP/MIME encrypted message (RFC 3156 §4) to the
/// published key: the whole message (header and body) is the encrypted
/// part (AES-256, SEIPD, RFC 9580 §5.13), a few header fields stay
/// readable outside ([`KEPT_CLEAR`]). Streamed: the message is read a
/// piece at a time and the armored ciphertext written into `spool` as it
/// is made (hardening.md C-FT9), so its size is not bounded by memory.
pub fn encrypt(message: &Spooled, published: &[u8], spool: &Spool) -> Result<Spooled, String> {
    use pgp::composed::MessageBuilder;
    use pgp::crypto::sym::SymmetricKeyAlgorithm;
    let key = SignedPublicKey::from_bytes(published).map_err(|e| format!("the key: {e}"))?;
    let targets = encryption_keys(&key);
    if targets.is_empty() {
        return Err("the key has no encryption subkey".into());
    }
    let mut rng = rand08::thread_rng();
    let mut builder = MessageBuilder::from_reader("", message.reader())
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    for target in targets {
        builder
            .encrypt_to_key(&mut rng, &target)
            .map_err(|e| format!("encrypting: {e}"))?;
    }
    let boundary = format!("tern-encrypted-{:016x}", rand08::random::<u64>());
    let mut out = spool.writer();
    let failed = |e: std::io::Error| format!("spooling: {e}");
    out.write(&kept_clear(message.header())).map_err(failed)?;
    out.write(
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n boundary=\"{boundary}\"\r\n\r\n\
             This message was encrypted by the mail server to its recipient's OpenPGP key.\r\n\
             --{boundary}\r\nContent-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n\
             --{boundary}\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\nContent-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"
        )
        .as_bytes(),
    )
    .map_err(failed)?;
    let mut armored = CrlfWriter {
        out: &mut out,
        crlf: message::crlf::Crlf::default(),
    };
    builder
        .to_armored_writer(&mut rng, Default::default(), &mut armored)
        .map_err(|e| format!("encrypting: {e}"))?;
    out.write(format!("\r\n--{boundary}--\r\n").as_bytes())
        .map_err(failed)?;
    out.finish().map_err(failed)
}

/// Writes into a spool with line ends made CRLF.
struct CrlfWriter<'a> {
    out: &'a mut SpoolWriter,
    crlf: message::crlf::Crlf,
}

impl std::io::Write for CrlfWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(&self.crlf.convert(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_kinds_and_fields() {
        let pgp = "multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"";
        assert_eq!(SignatureKind::of(pgp), Some(SignatureKind::OpenPgp));
        let smime = "Multipart/Signed; protocol=\"application/x-pkcs7-signature\"";
        assert_eq!(SignatureKind::of(smime), Some(SignatureKind::Smime));
        assert_eq!(SignatureKind::of("multipart/mixed"), None);
        assert_eq!(
            SignatureKind::of("multipart/signed; protocol=\"x/y\""),
            None
        );
        let field = result_field(
            "mx.a.test",
            SignatureKind::Smime,
            "a@a.test",
            &Outcome::Fail("why".into()),
        );
        assert_eq!(
            field,
            "Authentication-Results: mx.a.test; smime=fail header.from=a@a.test (why)\r\n"
        );
        // C-FZ13: a From address is the sender's to write; a quoted local
        // part may hold `;` and `=`, and went into our field as it was, a
        // second `smime=pass` clause for a strict reader; a comment may
        // hold a parenthesis. The value is quoted, the comment balanced.
        let forged = result_field(
            "mx.a.test",
            SignatureKind::Smime,
            "a; smime=pass header.from=ceo@a.test; x@evil.test",
            &Outcome::Fail("bad) smime=pass (x\r\ny".into()),
        );
        assert_eq!(
            forged,
            "Authentication-Results: mx.a.test; smime=fail header.from=\"a; smime=pass header.from=ceo@a.test; x@evil.test\" (bad] smime=pass [xy)\r\n"
        );
        let plain = Spooled::from_vec(b"Content-Type: text/plain\r\n\r\nhi\r\n".to_vec());
        assert!(signed(&plain).is_none());
    }
}
