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
    /// When it is fetched again in the background: half its max_age on.
    refresh_at: Instant,
}

/// The longest the refresh loop sleeps between looks at the cache.
const REFRESH_LOOK: Duration = Duration::from_secs(3600);

/// Finds, fetches and caches other domains' MTA-STS policies.
pub struct MtaSts {
    resolver: Resolver,
    /// A client that verifies certificates (WebPKI): for the policy fetch
    /// and for the MX hosts of domains with a policy.
    pub verifying: Arc<rustls::ClientConfig>,
    port: u16,
    cache: Mutex<HashMap<String, Cached>>,
    /// Wakes the refresh loop when a policy is cached.
    cached_one: tokio::sync::Notify,
}

impl MtaSts {
    pub fn new(resolver: Resolver, verifying: Arc<rustls::ClientConfig>, port: u16) -> MtaSts {
        MtaSts {
            resolver,
            verifying,
            port,
            cache: Mutex::new(HashMap::new()),
            cached_one: tokio::sync::Notify::new(),
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
        let now = Instant::now();
        let max_age = Duration::from_secs(policy.max_age);
        let (until, refresh_at) = (now + max_age, now + max_age / 2);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of distinct domains does not grow it forever.
        if cache.len() >= 10_000 {
            cache.retain(|_, c| c.until > now);
        }
        let cached = Cached {
            id,
            policy,
            until,
            refresh_at,
        };
        cache.insert(domain.to_string(), cached);
        drop(cache);
        self.cached_one.notify_one();
    }

    /// RFC 8461 §5.1 (and §10.2: an attacker who blocks the fetch when a
    /// policy expires must not win): every cached policy is fetched again
    /// once half its max_age has passed, so that one in use never lapses
    /// while its domain keeps publishing it. A failed fetch leaves the
    /// cached policy as it is, tried again at the next look.
    pub async fn refresh_loop(self: Arc<Self>) {
        loop {
            let now = Instant::now();
            let due: Vec<String> = {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache
                    .iter()
                    .filter(|(_, c)| c.refresh_at <= now && c.until > now)
                    .map(|(d, _)| d.clone())
                    .collect()
            };
            for domain in due {
                self.refresh(&domain).await;
            }
            let next = {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache
                    .values()
                    .filter(|c| c.until > Instant::now())
                    .map(|c| c.refresh_at.saturating_duration_since(Instant::now()))
                    .min()
                    .unwrap_or(REFRESH_LOOK)
            };
            let wait = next.clamp(Duration::from_secs(1), REFRESH_LOOK);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cached_one.notified() => {}
            }
        }
    }

    /// Fetch one domain's policy again; on failure, look again a tenth of
    /// its remaining life later.
    async fn refresh(&self, domain: &str) {
        let id = match self.resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => dns::mta_sts::record_id(&records).ok(),
            Err(_) => None,
        };
        let fetched = match id {
            Some(id) => {
                let tls = self.verifying.clone();
                dns::mta_sts::fetch(&self.resolver, domain, tls, self.port)
                    .await
                    .map(|p| (id, p))
            }
            None => Err("no _mta-sts record".into()),
        };
        match fetched {
            Ok((id, policy)) => {
                tracing::debug!(%domain, "MTA-STS: policy refreshed");
                self.keep(domain, id, Arc::new(policy));
            }
            Err(e) => {
                tracing::info!(%domain, error = %e, "MTA-STS: refresh failed; the cached policy stands");
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(c) = cache.get_mut(domain) {
                    let left = c.until.saturating_duration_since(Instant::now());
                    c.refresh_at = Instant::now() + (left / 10).max(Duration::from_secs(1));
                }
            }
        }
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
