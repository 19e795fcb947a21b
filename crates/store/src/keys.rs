//! The public keys users publish for others to encrypt to them and check
//! their signatures: an OpenPGP key (RFC 9580) and an S/MIME certificate
//! (RFC 8551), at most one of each per account. Tern serves them by WKD
//! and prints them as OPENPGPKEY (RFC 7929) and SMIMEA (RFC 8162)
//! records; it never holds a private key.

use crate::error::Result;
use crate::types::AccountId;

/// Which kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A transferable public key, binary (RFC 9580 §10.1).
    OpenPgp,
    /// An X.509 certificate, DER.
    Smime,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::OpenPgp => "openpgp",
            KeyKind::Smime => "smime",
        }
    }

    pub fn parse(s: &str) -> Option<KeyKind> {
        [KeyKind::OpenPgp, KeyKind::Smime]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kind: KeyKind,
    /// Binary: OpenPGP packets, or the certificate's DER.
    pub data: Vec<u8>,
    /// Hex: the OpenPGP fingerprint, or the certificate's SHA-256.
    pub fingerprint: String,
    pub created: i64,
}

#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    /// Publish `key` for the account, replacing its key of that kind.
    async fn put_public_key(&self, account: AccountId, key: PublicKey) -> Result<()>;
    /// The account's keys, OpenPGP first.
    async fn public_keys(&self, account: AccountId) -> Result<Vec<PublicKey>>;
    /// Withdraw one; whether it was there.
    async fn remove_public_key(&self, account: AccountId, kind: KeyKind) -> Result<bool>;
    /// Turn encryption at rest on or off for the account: its new mail
    /// is stored encrypted to its OpenPGP key.
    async fn set_encrypt_at_rest(&self, account: AccountId, on: bool) -> Result<()>;
    async fn encrypts_at_rest(&self, account: AccountId) -> Result<bool>;
    /// Every key of this kind published in a domain, with its account's
    /// address, by address.
    async fn domain_public_keys(
        &self,
        domain: &str,
        kind: KeyKind,
    ) -> Result<Vec<(String, PublicKey)>>;
}
