//! What TLS a delivery requires, per destination domain: chosen in one
//! place (`Runner::route`) before any connection, applied to every
//! connection to that domain, and written into every attempt it makes
//! (`tern queue show`, the delivery history, the metrics).
//!
//! Opportunistic TLS (RFC 7435) unless the domain publishes an MTA-STS
//! policy (RFC 8461); an MX host with DNSSEC-validated TLSA records gets
//! DANE (RFC 7672), which wins over MTA-STS for that host (RFC 8461 §2).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dns::Resolver;
use dns::dnssec::Tlsa;
use dns::mta_sts::{Mode, Policy};

/// What a message itself asks of TLS (RFC 8689).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTls {
    /// Nothing: the destination's policy decides.
    Default,
    /// REQUIRETLS (§4.2.1): only TLS that the destination's DNSSEC (DANE)
    /// or MTA-STS policy (enforce mode) authenticates, to a server that
    /// offers REQUIRETLS; otherwise the message is returned (5.7.30).
    Required,
    /// `TLS-Required: No` (§3, §4.2.2): the destination's DANE and MTA-STS
    /// policies are not applied; TLS stays opportunistic.
    PolicyIgnored,
}

impl MessageTls {
    /// From the envelope's REQUIRETLS and the header section. REQUIRETLS
    /// wins over the header field (§3).
    pub fn of(require_tls: bool, header: &[u8]) -> MessageTls {
        let no = message::header::fields_named(header, "TLS-Required")
            .iter()
            .any(|f| {
                String::from_utf8_lossy(f.value)
                    .trim()
                    .eq_ignore_ascii_case("No")
            });
        match (require_tls, no) {
            (true, _) => MessageTls::Required,
            (false, true) => MessageTls::PolicyIgnored,
            (false, false) => MessageTls::Default,
        }
    }
}

/// The TLS a destination gets.
#[derive(Debug, Clone)]
pub enum TlsPolicy {
    /// RFC 7435: STARTTLS when offered, any certificate; plaintext after a
    /// failed handshake (the alternative to encryption is none at all).
    Opportunistic,
    /// RFC 8461 §5: only MX hosts the policy names, STARTTLS required, and
    /// a certificate valid for the MX host's name under the WebPKI roots.
    /// In testing mode (`enforce` false) a failure is noted and the
    /// delivery goes on as opportunistic.
    MtaSts { policy: Arc<Policy>, enforce: bool },
    /// RFC 7672 §2.2: an MX host whose address and TLSA records are secure:
    /// STARTTLS required, the certificate matched against the records; a
    /// failure defers (never plaintext).
    Dane {
        host: String,
        records: Vec<Tlsa>,
        config: Arc<rustls::ClientConfig>,
    },
}

impl TlsPolicy {
    /// For the attempt record and the `tls` label of the metrics.
    pub fn label(&self) -> &'static str {
        match self {
            TlsPolicy::Opportunistic => "opportunistic",
            TlsPolicy::MtaSts { enforce: true, .. } => "mta-sts",
            TlsPolicy::MtaSts { enforce: false, .. } => "mta-sts-testing",
            TlsPolicy::Dane { .. } => "dane",
        }
    }

    /// RFC 8461 §4.1: may this MX host be used? (Testing mode uses any.)
    pub fn allows_mx(&self, host: &str) -> bool {
        match self {
            TlsPolicy::MtaSts {
                policy,
                enforce: true,
            } => policy.matches(host),
            _ => true,
        }
    }

    /// Whether connections try verified TLS first.
    pub fn verifies(&self) -> bool {
        matches!(self, TlsPolicy::MtaSts { .. } | TlsPolicy::Dane { .. })
    }

    /// Whether a verified-TLS failure stops the connection (enforce), or
    /// only gets noted before an opportunistic retry (testing).
    pub fn enforced(&self) -> bool {
        matches!(
            self,
            TlsPolicy::MtaSts { enforce: true, .. } | TlsPolicy::Dane { .. }
        )
    }

    /// Whether this TLS is authenticated as REQUIRETLS needs (RFC 8689
    /// §4.2.1): DANE, or MTA-STS in enforce mode.
    pub fn satisfies_require_tls(&self) -> bool {
        matches!(
            self,
            TlsPolicy::Dane { .. } | TlsPolicy::MtaSts { enforce: true, .. }
        )
    }

    /// The TLS client that checks the certificate for this policy: DANE's
    /// own, or the WebPKI one (`webpki`) for MTA-STS; None: opportunistic.
    pub fn verifying_client<'a>(
        &'a self,
        webpki: Option<&'a Arc<rustls::ClientConfig>>,
    ) -> Option<&'a Arc<rustls::ClientConfig>> {
        match self {
            TlsPolicy::Dane { config, .. } => Some(config),
            TlsPolicy::MtaSts { .. } => webpki,
            TlsPolicy::Opportunistic => None,
        }
    }

    /// DANE for one MX host from its validated TLSA records (RFC 7672 §2.2).
    pub fn dane(host: &str, records: Vec<Tlsa>) -> Result<TlsPolicy, String> {
        Ok(TlsPolicy::Dane {
            host: host.to_string(),
            config: crate::dane::client(records.clone(), host)?,
            records,
        })
    }
}

/// A cached policy of one domain (RFC 8461 §5.1).
#[derive(Clone)]
struct Cached {
    id: String,
    policy: Arc<Policy>,
    until: Instant,
}

/// Finds, fetches and caches other domains' MTA-STS policies.
pub struct MtaSts {
    resolver: Resolver,
    /// A client that verifies certificates (WebPKI): for the policy fetch
    /// and for the MX hosts of domains with a policy.
    pub verifying: Arc<rustls::ClientConfig>,
    port: u16,
    cache: Mutex<HashMap<String, Cached>>,
}

impl MtaSts {
    pub fn new(resolver: Resolver, verifying: Arc<rustls::ClientConfig>, port: u16) -> MtaSts {
        MtaSts {
            resolver,
            verifying,
            port,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The TLS policy of `domain` (RFC 8461 §5.1): the `_mta-sts` record's
    /// id decides whether the cached policy still stands or a new one is
    /// fetched; without a record, or when DNS or the fetch fails, a cached
    /// policy that has not expired still applies; otherwise opportunistic.
    pub async fn policy_for(&self, domain: &str) -> TlsPolicy {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let cached = self.cached(&domain);
        let id = match self.resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => dns::mta_sts::record_id(&records).ok(),
            Err(_) => None,
        };
        let policy = match (id, cached) {
            (Some(id), Some(c)) if c.id == id => Some(c.policy),
            (Some(id), cached) => match dns::mta_sts::fetch(
                &self.resolver,
                &domain,
                self.verifying.clone(),
                self.port,
            )
            .await
            {
                Ok(p) => {
                    let p = Arc::new(p);
                    self.keep(&domain, id, p.clone());
                    Some(p)
                }
                Err(e) => {
                    tracing::info!(%domain, error = %e, "MTA-STS: no policy fetched");
                    cached.map(|c| c.policy)
                }
            },
            (None, cached) => cached.map(|c| c.policy),
        };
        match policy {
            Some(p) if p.mode == Mode::Enforce => TlsPolicy::MtaSts {
                policy: p,
                enforce: true,
            },
            Some(p) if p.mode == Mode::Testing => TlsPolicy::MtaSts {
                policy: p,
                enforce: false,
            },
            _ => TlsPolicy::Opportunistic,
        }
    }

    fn cached(&self, domain: &str) -> Option<Cached> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(domain)
            .filter(|c| c.until > Instant::now())
            .cloned()
    }

    fn keep(&self, domain: &str, id: String, policy: Arc<Policy>) {
        let until = Instant::now() + Duration::from_secs(policy.max_age);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of distinct domains does not grow it forever.
        if cache.len() >= 10_000 {
            let now = Instant::now();
            cache.retain(|_, c| c.until > now);
        }
        cache.insert(domain.to_string(), Cached { id, policy, until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_policy_allows() {
        let policy = Arc::new(Policy {
            mode: Mode::Enforce,
            mx: vec!["*.b.test".into()],
            max_age: 60,
        });
        let enforce = TlsPolicy::MtaSts {
            policy: policy.clone(),
            enforce: true,
        };
        let testing = TlsPolicy::MtaSts {
            policy,
            enforce: false,
        };
        assert!(enforce.allows_mx("mx1.b.test") && !enforce.allows_mx("mx.c.test"));
        assert!(testing.allows_mx("mx.c.test"));
        assert!(TlsPolicy::Opportunistic.allows_mx("anything"));
        assert!(enforce.enforced() && !testing.enforced() && testing.verifies());
        assert!(!TlsPolicy::Opportunistic.verifies());
        assert_eq!(
            [
                enforce.label(),
                testing.label(),
                TlsPolicy::Opportunistic.label()
            ],
            ["mta-sts", "mta-sts-testing", "opportunistic"]
        );
    }
}
