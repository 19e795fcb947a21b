//! Sender authentication (design.md `policy`).
pub mod aggregate;
pub mod body_hash;
pub mod dmarc;
pub mod feedback;
pub mod keys;
pub mod openpgp;
pub mod pgp_mime;
pub mod psl;
pub mod publish;
pub mod results;
pub mod sender_keys;
pub mod sign;
pub mod smime;
pub mod smime_encrypt;
pub mod smime_mime;
pub mod spf;
pub mod srs;
pub mod verify;

/// The published key mail is encrypted to at rest: the OpenPGP key when
/// it can encrypt (PGP/MIME, RFC 3156 §4), else the S/MIME certificate
/// when its key can (RFC 8551 §3.3).
pub fn at_rest_key(keys: &[store::PublicKey]) -> Option<&store::PublicKey> {
    let usable = |k: &&store::PublicKey| match k.kind {
        store::KeyKind::OpenPgp => pgp_mime::can_encrypt(&k.data),
        store::KeyKind::Smime => smime_encrypt::can_encrypt(&k.data),
    };
    let openpgp = keys
        .iter()
        .filter(|k| k.kind == store::KeyKind::OpenPgp)
        .find(usable);
    openpgp.or_else(|| keys.iter().find(usable))
}
