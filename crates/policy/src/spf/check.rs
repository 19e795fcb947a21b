//! `check_host()` (RFC 7208 §4): record lookup and selection, evaluation
//! of mechanisms and modifiers with the processing limits of §4.6.4, and
//! the explanation of a `fail` (§6.2).

use std::net::IpAddr;

use dns::DnsError;

use super::macros::{Context, MacroString, Values};
use super::record::{self, Mechanism, Qualifier, Record};
use super::{SpfDns, SpfResult};

/// RFC 7208 §4.6.4: terms that cause DNS queries, per evaluation.
pub const MAX_DNS_TERMS: usize = 10;
/// RFC 7208 §4.6.4: lookups that found nothing, per evaluation.
pub const MAX_VOID_LOOKUPS: usize = 2;
/// RFC 7208 §4.6.4: MX names of one `mx` mechanism (more is a permerror),
/// and PTR names of `ptr` and `%{p}` (more are ignored).
pub const MAX_NAMES: usize = 10;
/// RFC 1035 §2.3.4 in text form without the final dot (RFC 7208 §7.3).
const MAX_NAME: usize = 253;

/// One evaluation's outcome before it is dressed for the caller.
pub(super) struct Evaluated {
    pub result: SpfResult,
    pub explanation: Option<String>,
    pub reason: String,
}

impl Evaluated {
    fn new(result: SpfResult, reason: impl Into<String>) -> Evaluated {
        Evaluated {
            result,
            explanation: None,
            reason: reason.into(),
        }
    }
}

/// An error that ends the evaluation (RFC 7208 §2.6.6, §2.6.7).
enum Abort {
    Temp(String),
    Perm(String),
}

/// The state of one evaluation: what macros expand to and the counters
/// that the limits of RFC 7208 §4.6.4 apply to, shared with every
/// `include` and `redirect` it follows.
pub(super) struct Evaluation<'a, D: SpfDns> {
    pub dns: &'a D,
    pub ip: IpAddr,
    pub sender: &'a str,
    pub local: &'a str,
    pub sender_domain: &'a str,
    pub helo: &'a str,
    pub receiver: &'a str,
    pub now: i64,
    pub dns_terms: usize,
    pub voids: usize,
}

impl<D: SpfDns> Evaluation<'_, D> {
    /// RFC 7208 §4: check_host(ip, domain, sender).
    pub async fn check_host(&mut self, domain: &str) -> Evaluated {
        // §4.3: a malformed or single-label domain gives "none".
        if !valid_name(domain) {
            return Evaluated::new(SpfResult::None, format!("{domain:?} is not a domain name"));
        }
        let record = match self.record(domain).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Evaluated::new(SpfResult::None, format!("{domain} has no SPF record"));
            }
            Err(Abort::Temp(why)) => return Evaluated::new(SpfResult::TempError, why),
            Err(Abort::Perm(why)) => return Evaluated::new(SpfResult::PermError, why),
        };
        match self.evaluate(domain, &record).await {
            Ok(e) => e,
            Err(Abort::Temp(why)) => Evaluated::new(SpfResult::TempError, why),
            Err(Abort::Perm(why)) => Evaluated::new(SpfResult::PermError, why),
        }
    }

    /// RFC 7208 §4.4, §4.5: the one SPF record of a domain.
    async fn record(&self, domain: &str) -> Result<Option<Record>, Abort> {
        let txts = match self.dns.txt(domain).await {
            Ok(t) => t,
            Err(DnsError::Temporary(..)) => {
                return Err(Abort::Temp(format!("DNS failure for {domain}")));
            }
            Err(_) => return Ok(None),
        };
        let mut spf = txts.iter().filter(|t| record::is_spf_record(t));
        let Some(first) = spf.next() else {
            return Ok(None);
        };
        if spf.next().is_some() {
            return Err(Abort::Perm(format!("{domain} has several SPF records")));
        }
        record::parse(first)
            .map(Some)
            .map_err(|e| Abort::Perm(format!("SPF record of {domain}: {e}")))
    }

    /// RFC 7208 §4.6: the directives left to right, then `redirect` (§6.1).
    async fn evaluate(&mut self, domain: &str, record: &Record) -> Result<Evaluated, Abort> {
        for directive in &record.directives {
            if directive.mechanism.queries_dns() {
                self.count_dns_term()?;
            }
            if !self.matches(domain, &directive.mechanism).await? {
                continue;
            }
            let result = match directive.qualifier {
                Qualifier::Pass => SpfResult::Pass,
                Qualifier::Fail => SpfResult::Fail,
                Qualifier::SoftFail => SpfResult::SoftFail,
                Qualifier::Neutral => SpfResult::Neutral,
            };
            let mut outcome = Evaluated::new(
                result,
                format!("{domain}: mechanism {} matched", directive.text),
            );
            if result == SpfResult::Fail
                && let Some(exp) = &record.exp
            {
                outcome.explanation = self.explanation(domain, exp).await;
            }
            return Ok(outcome);
        }
        let Some(redirect) = &record.redirect else {
            return Ok(Evaluated::new(
                SpfResult::Neutral,
                format!("{domain}: no mechanism matched"),
            ));
        };
        self.count_dns_term()?;
        let target = self.expand_name(redirect, domain).await;
        let outcome = match target {
            Some(target) => Box::pin(self.check_host(&target)).await,
            None => Evaluated::new(SpfResult::None, "redirect to a malformed name"),
        };
        // §6.1: a redirect to a domain without a record is a permerror.
        if outcome.result == SpfResult::None {
            return Err(Abort::Perm(format!(
                "{domain}: redirect: {}",
                outcome.reason
            )));
        }
        Ok(outcome)
    }

    fn count_dns_term(&mut self) -> Result<(), Abort> {
        self.dns_terms += 1;
        if self.dns_terms > MAX_DNS_TERMS {
            return Err(Abort::Perm(format!(
                "more than {MAX_DNS_TERMS} DNS-querying terms"
            )));
        }
        Ok(())
    }

    /// A lookup of a mechanism came back empty (RFC 7208 §4.6.4).
    fn count_void(&mut self) -> Result<(), Abort> {
        self.voids += 1;
        if self.voids > MAX_VOID_LOOKUPS {
            return Err(Abort::Perm(format!(
                "more than {MAX_VOID_LOOKUPS} lookups found nothing"
            )));
        }
        Ok(())
    }

    /// Turn the answer of a mechanism's own lookup into its records: empty
    /// answers count as void, temporary failures end the evaluation (§5).
    fn answer<T>(&mut self, r: Result<Vec<T>, DnsError>) -> Result<Vec<T>, Abort> {
        match r {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) | Err(DnsError::NoRecords(_)) | Err(DnsError::NoSuchDomain(_)) => {
                self.count_void()?;
                Ok(Vec::new())
            }
            Err(e @ (DnsError::Temporary(..) | DnsError::Bogus(..) | DnsError::Config(..))) => {
                Err(Abort::Temp(e.to_string()))
            }
        }
    }

    async fn matches(&mut self, domain: &str, mechanism: &Mechanism) -> Result<bool, Abort> {
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => Ok(in_network(self.ip, IpAddr::V4(*net), *len)),
            Mechanism::Ip6(net, len) => Ok(in_network(self.ip, IpAddr::V6(*net), *len)),
            Mechanism::Include(spec) => self.include(domain, spec).await,
            Mechanism::A(spec, cidr) => {
                let Some(target) = self.target(spec.as_ref(), domain).await else {
                    return Ok(false);
                };
                let ips = self.dns.addresses(&target, self.ip.is_ipv6()).await;
                let ips = self.answer(ips)?;
                Ok(ips.iter().any(|a| self.in_dual(*a, cidr.v4, cidr.v6)))
            }
            Mechanism::Mx(spec, cidr) => {
                let Some(target) = self.target(spec.as_ref(), domain).await else {
                    return Ok(false);
                };
                let hosts = self.dns.mx(&target).await;
                let hosts: Vec<String> = self
                    .answer(hosts)?
                    .into_iter()
                    .filter(|h| !h.is_empty())
                    .collect();
                if hosts.len() > MAX_NAMES {
                    return Err(Abort::Perm(format!(
                        "{target} has more than {MAX_NAMES} MX"
                    )));
                }
                for host in hosts {
                    match self.dns.addresses(&host, self.ip.is_ipv6()).await {
                        Ok(ips) if ips.iter().any(|a| self.in_dual(*a, cidr.v4, cidr.v6)) => {
                            return Ok(true);
                        }
                        Err(e @ DnsError::Temporary(..)) => return Err(Abort::Temp(e.to_string())),
                        _ => {}
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let Some(target) = self.target(spec.as_ref(), domain).await else {
                    return Ok(false);
                };
                let target = target.to_ascii_lowercase();
                let names = self.validated_names().await?;
                Ok(names
                    .iter()
                    .any(|n| *n == target || n.ends_with(&format!(".{target}"))))
            }
            Mechanism::Exists(spec) => {
                let Some(target) = self.expand_name(spec, domain).await else {
                    return Ok(false);
                };
                // §5.7: always an A query, whatever the client's family.
                let ips = self.dns.addresses(&target, false).await;
                Ok(!self.answer(ips)?.is_empty())
            }
        }
    }

    /// §5.2: the included domain's result decides whether `include` matches.
    async fn include(&mut self, domain: &str, spec: &MacroString) -> Result<bool, Abort> {
        let Some(target) = self.expand_name(spec, domain).await else {
            return Err(Abort::Perm(format!(
                "{domain}: include of a malformed name"
            )));
        };
        let inner = Box::pin(self.check_host(&target)).await;
        match inner.result {
            SpfResult::Pass => Ok(true),
            SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => Ok(false),
            SpfResult::TempError => Err(Abort::Temp(inner.reason)),
            SpfResult::PermError | SpfResult::None => {
                Err(Abort::Perm(format!("include:{target}: {}", inner.reason)))
            }
        }
    }

    /// The target name of a/mx/ptr: the expanded domain-spec, or the
    /// current domain. None: the expansion is not a usable name, which
    /// matches nothing.
    async fn target(&self, spec: Option<&MacroString>, domain: &str) -> Option<String> {
        match spec {
            Some(spec) => self.expand_name(spec, domain).await,
            None => Some(domain.to_string()),
        }
    }

    /// Expand a domain-spec into a name to look up: truncated on the left
    /// to 253 octets (§7.3), and only if every label is 1 to 63 octets and
    /// there are at least two of them (§4.3, §4.8).
    async fn expand_name(&self, spec: &MacroString, domain: &str) -> Option<String> {
        let p = match spec.needs_ptr() {
            true => self.validated_name(domain).await,
            false => None,
        };
        let expanded = spec.expand(&self.values(domain), p.as_deref());
        let mut name = expanded.strip_suffix('.').unwrap_or(&expanded);
        while name.len() > MAX_NAME {
            name = name.split_once('.').map(|(_, rest)| rest)?;
        }
        valid_name(name).then(|| name.to_string())
    }

    fn values<'v>(&'v self, domain: &'v str) -> Values<'v> {
        Values {
            sender: self.sender,
            local: self.local,
            sender_domain: self.sender_domain,
            domain,
            ip: self.ip,
            helo: self.helo,
            receiver: self.receiver,
            now: self.now,
        }
    }

    /// §5.5: the client's PTR names (the first ten) whose addresses include
    /// the client, lowercased. DNS failures only mean fewer names.
    async fn validated_names(&mut self) -> Result<Vec<String>, Abort> {
        let names = match self.dns.ptr(self.ip).await {
            Ok(n) => n,
            Err(DnsError::Temporary(..)) => return Ok(Vec::new()),
            Err(_) => {
                self.count_void()?;
                return Ok(Vec::new());
            }
        };
        let mut valid = Vec::new();
        for name in names.into_iter().take(MAX_NAMES) {
            if let Ok(ips) = self.dns.addresses(&name, self.ip.is_ipv6()).await
                && ips.contains(&self.ip)
            {
                valid.push(name.to_ascii_lowercase());
            }
        }
        Ok(valid)
    }

    /// §7.3 `%{p}`: a validated name of the client, preferring the domain
    /// itself or one of its subdomains.
    async fn validated_name(&self, domain: &str) -> Option<String> {
        let names = self.dns.ptr(self.ip).await.ok()?;
        let domain = domain.to_ascii_lowercase();
        let mut first = None;
        for name in names.into_iter().take(MAX_NAMES) {
            let Ok(ips) = self.dns.addresses(&name, self.ip.is_ipv6()).await else {
                continue;
            };
            if !ips.contains(&self.ip) {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if lower == domain || lower.ends_with(&format!(".{domain}")) {
                return Some(name);
            }
            first.get_or_insert(name);
        }
        first
    }

    /// §6.2: the explanation of a fail, from the one TXT record at the
    /// expanded `exp=` name. Any problem means the default explanation.
    async fn explanation(&self, domain: &str, exp: &MacroString) -> Option<String> {
        let name = self.expand_name(exp, domain).await?;
        let txts = self.dns.txt(&name).await.ok()?;
        let [txt] = txts.as_slice() else {
            return None;
        };
        let text = std::str::from_utf8(txt)
            .ok()
            .filter(|t| t.bytes().all(|b| (0x20..0x7f).contains(&b)))?;
        let macros = MacroString::parse(text, Context::Explanation).ok()?;
        let p = match macros.needs_ptr() {
            true => self.validated_name(domain).await,
            false => None,
        };
        Some(macros.expand(&self.values(domain), p.as_deref()))
    }

    fn in_dual(&self, addr: IpAddr, v4: u8, v6: u8) -> bool {
        let len = if addr.is_ipv4() { v4 } else { v6 };
        in_network(self.ip, addr, len)
    }
}

/// Whether `ip` is inside `net/len`; addresses of different families never
/// match (RFC 7208 §5.6).
pub fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// A name that can be looked up (RFC 7208 §4.3): at least two labels, each
/// of 1 to 63 octets, at most 253 octets in all, not an address literal.
pub fn valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    !name.is_empty()
        && name.len() <= MAX_NAME
        && labels.len() >= 2
        && labels.iter().all(|l| (1..=63).contains(&l.len()))
        && !name.starts_with('[')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_network(ip("1.2.3.4"), ip("1.2.3.0"), 24));
        assert!(in_network(ip("1.2.3.4"), ip("9.9.9.9"), 0));
        assert!(!in_network(ip("1.2.3.4"), ip("1.2.3.5"), 32));
        assert!(in_network(
            ip("cafe:babe:8000::"),
            ip("cafe:babe:8000::"),
            33
        ));
        assert!(!in_network(ip("1.2.3.4"), ip("::"), 0));
    }

    #[test]
    fn names() {
        assert!(valid_name("a.test"));
        assert!(valid_name("a.test."));
        assert!(!valid_name("localhost"));
        assert!(!valid_name("a..test"));
        assert!(!valid_name(&format!("{}.test", "a".repeat(64))));
        assert!(!valid_name("[1.2.3.4]"));
    }
}
