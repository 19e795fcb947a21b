//! The keys a sender's own domain publishes, looked up when a signed
//! message arrives from an address that has no account here:
//!
//! - OpenPGP keys from the sender's Web Key Directory
//!   (draft-koch-openpgp-webkey-service §3.1: the advanced method at
//!   `openpgpkey.DOMAIN` first, the direct method at `DOMAIN` when the
//!   advanced host does not answer), over HTTPS with a certificate checked
//!   against the trust roots (`[outbound] ca_file`, or the system's), then
//!   from OPENPGPKEY records (RFC 7929 §3);
//! - S/MIME certificates from SMIMEA records (RFC 8162 §3).
//!
//! How far each key is trusted is its [`Source`]: a key the Web Key
//! Directory serves or a DNSSEC-signed record vouches for the address; a
//! record from DNS without DNSSEC does not (RFC 7929 §7, RFC 8162 §9).
//! Answers, found or not, are remembered for [`REMEMBER`] (a mailing
//! list's signed posts ask once), for at most [`MAX_REMEMBERED`]
//! addresses; each lookup is bounded by [`LOOKUP_TIMEOUT`] and the keys by
//! [`MAX_KEY`] octets (hardening.md C-K4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dns::dnssec::{Tlsa, Validated};

/// How long an answer is remembered.
pub const REMEMBER: Duration = Duration::from_secs(3600);
/// The most addresses remembered (then all is forgotten at once).
pub const MAX_REMEMBERED: usize = 10_000;
/// The longest a lookup of one address takes (WKD and DNS together).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key read from a Web Key Directory.
pub const MAX_KEY: usize = 256 * 1024;

/// Where a key was found, which says how far it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Published by the account here (`tern key put`, the webmail).
    Here,
    /// Served by the sender's Web Key Directory over checked HTTPS.
    Wkd,
    /// An OPENPGPKEY or SMIMEA record; `secure` when DNSSEC proved it.
    Dns { secure: bool },
}

impl Source {
    /// Whether a key from here vouches for the address (a record from
    /// unsigned DNS can be forged on the way: it does not).
    pub fn vouches(self) -> bool {
        !matches!(self, Source::Dns { secure: false })
    }

    /// Where the key came from, for the Authentication-Results comment
    /// (`record`: OPENPGPKEY or SMIMEA).
    pub fn describe(self, record: &str) -> String {
        match self {
            Source::Here => "published here".into(),
            Source::Wkd => "from the sender's Web Key Directory".into(),
            Source::Dns { secure: true } => format!("from a DNSSEC-signed {record} record"),
            Source::Dns { secure: false } => {
                format!("from an {record} record without DNSSEC, which does not vouch for it")
            }
        }
    }
}

/// A key (transferable OpenPGP public key, or DER certificate) and where
/// it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundKey {
    pub data: Vec<u8>,
    pub source: Source,
}

/// Looks up and remembers other domains' published keys.
pub struct SenderKeys {
    resolver: dns::Resolver,
    /// Checks the Web Key Directories' certificates (None: no trust
    /// roots, no WKD).
    tls: Option<Arc<rustls::ClientConfig>>,
    /// 443; another port only in tests.
    https_port: u16,
    openpgp: Remembered<Vec<FoundKey>>,
    smimea: Remembered<Option<Validated<Vec<Tlsa>>>>,
}

type Remembered<T> = Mutex<HashMap<String, (Instant, T)>>;

impl SenderKeys {
    pub fn new(
        resolver: dns::Resolver,
        tls: Option<Arc<rustls::ClientConfig>>,
        https_port: u16,
    ) -> Self {
        SenderKeys {
            resolver,
            tls,
            https_port,
            openpgp: Mutex::default(),
            smimea: Mutex::default(),
        }
    }

    /// The OpenPGP keys `address`'s domain publishes for it: its Web Key
    /// Directory's, else its OPENPGPKEY records'.
    pub async fn openpgp(&self, address: &str) -> Vec<FoundKey> {
        let address = address.to_ascii_lowercase();
        if let Some(found) = recall(&self.openpgp, &address) {
            return found;
        }
        let found = tokio::time::timeout(LOOKUP_TIMEOUT, self.find_openpgp(&address))
            .await
            .unwrap_or_default();
        remember(&self.openpgp, address, found.clone());
        found
    }

    /// The SMIMEA records for `address` (None: none, or no answer).
    pub async fn smimea(&self, address: &str) -> Option<Validated<Vec<Tlsa>>> {
        let address = address.to_ascii_lowercase();
        if let Some(found) = recall(&self.smimea, &address) {
            return found;
        }
        let (local, domain) = address.rsplit_once('@')?;
        let owner = crate::smime::smimea_owner(local, domain);
        let found = match tokio::time::timeout(
            LOOKUP_TIMEOUT,
            self.resolver.smimea_validated(&owner),
        )
        .await
        {
            Ok(Ok(v)) if !v.value.is_empty() => Some(v),
            Ok(Err(e)) if e.is_temporary() => return None,
            _ => None,
        };
        remember(&self.smimea, address, found.clone());
        found
    }

    async fn find_openpgp(&self, address: &str) -> Vec<FoundKey> {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Vec::new();
        };
        if let Some(key) = self.wkd(local, domain).await {
            return vec![FoundKey {
                data: key,
                source: Source::Wkd,
            }];
        }
        let owner = crate::openpgp::openpgpkey_owner(local, domain);
        match self.resolver.openpgpkey_validated(&owner).await {
            Ok(v) => v
                .value
                .into_iter()
                .map(|data| FoundKey {
                    data,
                    source: Source::Dns { secure: v.secure },
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The key the Web Key Directory serves (§3.1): the advanced method,
    /// then the direct one when the advanced host has no address.
    async fn wkd(&self, local: &str, domain: &str) -> Option<Vec<u8>> {
        let tls = self.tls.as_ref()?;
        let hash = crate::openpgp::wkd_hash(local);
        let query = percent_encoded(local);
        let advanced = format!("openpgpkey.{domain}");
        let tries = [
            (
                advanced.as_str(),
                format!("/.well-known/openpgpkey/{domain}/hu/{hash}?l={query}"),
            ),
            (
                domain,
                format!("/.well-known/openpgpkey/hu/{hash}?l={query}"),
            ),
        ];
        for (host, path) in tries {
            let ask = dns::https::Ask {
                method: http::Method::GET,
                path: &path,
                body: None,
                headers: &[],
                max_answer: MAX_KEY,
            };
            match dns::https::request(&self.resolver, host, self.https_port, tls.clone(), &ask)
                .await
            {
                Ok(a) if a.status == http::StatusCode::OK && !a.body.is_empty() => {
                    return Some(a.body);
                }
                Ok(a) => {
                    tracing::debug!(%host, status = %a.status, "WKD: no key");
                    return None;
                }
                // §3.1: the direct method only when the advanced host is
                // not there at all.
                Err(e) if host == advanced => tracing::debug!(%host, error = %e, "WKD advanced"),
                Err(e) => {
                    tracing::debug!(%host, error = %e, "WKD direct");
                    return None;
                }
            }
        }
        None
    }
}

fn recall<T: Clone>(memory: &Remembered<T>, address: &str) -> Option<T> {
    let memory = memory.lock().unwrap_or_else(|p| p.into_inner());
    memory
        .get(address)
        .filter(|(at, _)| at.elapsed() < REMEMBER)
        .map(|(_, v)| v.clone())
}

fn remember<T>(memory: &Remembered<T>, address: String, value: T) {
    let mut memory = memory.lock().unwrap_or_else(|p| p.into_inner());
    if memory.len() >= MAX_REMEMBERED {
        memory.clear();
    }
    memory.insert(address, (Instant::now(), value));
}

/// The local part as a URL query value (RFC 3986 §2.1: all but the
/// unreserved characters percent-encoded).
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_part_is_percent_encoded_in_the_query() {
        assert_eq!(percent_encoded("Joe.Doe"), "Joe.Doe");
        assert_eq!(percent_encoded("a+b c"), "a%2Bb%20c");
    }

    #[test]
    fn only_unsigned_dns_does_not_vouch() {
        assert!(Source::Here.vouches());
        assert!(Source::Wkd.vouches());
        assert!(Source::Dns { secure: true }.vouches());
        assert!(!Source::Dns { secure: false }.vouches());
    }

    #[test]
    fn answers_are_remembered_and_bounded() {
        let memory: Remembered<u8> = Mutex::default();
        remember(&memory, "a@x".into(), 1);
        assert_eq!(recall(&memory, "a@x"), Some(1));
        assert_eq!(recall(&memory, "b@x"), None);
        for i in 0..MAX_REMEMBERED {
            remember(&memory, format!("{i}@x"), 2);
        }
        assert!(memory.lock().unwrap().len() <= MAX_REMEMBERED);
    }
}
