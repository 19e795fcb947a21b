//! SPF (RFC 7208): whether the client may send mail for the domain of the
//! envelope sender (or of the HELO name for the null sender).
//!
//! Tern's own evaluator: `record` parses a whole record (any syntax error
//! is a `permerror`), `macros` expands RFC 7208 §7 macros, `check` runs
//! `check_host()` with the processing limits of §4.6.4 (10 DNS-querying
//! terms, 2 void lookups, 10 MX or PTR names) and the explanation of §6.2.
//! It passes the whole RFC 7208 test suite of openspf.org, run through the
//! SMTP session (`crates/smtp/tests/spf_suite.rs`).
//!
//! Decisions where the RFC leaves room:
//! - an IPv4-mapped IPv6 client (`::ffff:1.2.3.4`) is the IPv4 client it
//!   maps (what the test suite expects of `ip4`, `a` and `mx`);
//! - a name built by macros that cannot be a domain name (an empty label, a
//!   label over 63 octets, a single label) matches nothing rather than
//!   failing the evaluation (§4.8 leaves it open; the suite accepts both);
//! - `%{p}` does not count towards the DNS limits (§7.3 asks not to use it).

mod check;
mod macros;
mod record;

use std::future::Future;
use std::net::IpAddr;

pub use check::{MAX_DNS_TERMS, MAX_NAMES, MAX_VOID_LOOKUPS, in_network, valid_name};
use dns::DnsError;
pub use record::is_spf_record;
/// A record's syntax alone (RFC 7208 §4.6, §12), for tools and fuzzing.
pub use record::parse as parse_record;

/// The results of RFC 7208 §2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

impl SpfResult {
    /// The word of RFC 7208 §2.6 (and of RFC 8601 `spf=`).
    pub fn as_str(self) -> &'static str {
        match self {
            SpfResult::None => "none",
            SpfResult::Neutral => "neutral",
            SpfResult::Pass => "pass",
            SpfResult::Fail => "fail",
            SpfResult::SoftFail => "softfail",
            SpfResult::TempError => "temperror",
            SpfResult::PermError => "permerror",
        }
    }
}

/// Which identity was checked (RFC 7208 §2.3, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    MailFrom,
    /// The null reverse-path: the HELO name stands for it.
    Helo,
}

/// The outcome of one SPF check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfOutcome {
    pub result: SpfResult,
    pub identity: Identity,
    /// The domain whose policy was asked (of the sender, or the HELO name).
    pub domain: String,
    /// The domain's own explanation of a `fail` (RFC 7208 §6.2), expanded.
    pub explanation: Option<String>,
    /// Why: the mechanism that matched, or what went wrong.
    pub reason: String,
}

/// What is known of the SMTP session when SPF is checked.
#[derive(Debug, Clone, Copy)]
pub struct SpfRequest<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The reverse-path without brackets, "" for `<>`.
    pub mail_from: &'a str,
    /// Our host name (`%{r}`).
    pub receiver: &'a str,
    /// Seconds since the epoch (`%{t}`).
    pub now: i64,
}

/// The DNS queries SPF makes, so that the evaluator can run against any
/// resolver (the real one, or a table in unit tests).
pub trait SpfDns: Sync {
    /// TXT records, each record's strings concatenated, as bytes.
    fn txt(&self, name: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, DnsError>> + Send;
    /// AAAA records when `v6`, A records otherwise.
    fn addresses(
        &self,
        name: &str,
        v6: bool,
    ) -> impl Future<Output = Result<Vec<IpAddr>, DnsError>> + Send;
    /// MX exchanges ("" for the root).
    fn mx(&self, name: &str) -> impl Future<Output = Result<Vec<String>, DnsError>> + Send;
    /// PTR names of an address.
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = Result<Vec<String>, DnsError>> + Send;
}

impl SpfDns for dns::Resolver {
    async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        self.txt_bytes(name).await
    }
    async fn addresses(&self, name: &str, v6: bool) -> Result<Vec<IpAddr>, DnsError> {
        self.addresses_of_family(name, v6).await
    }
    async fn mx(&self, name: &str) -> Result<Vec<String>, DnsError> {
        Ok(dns::Resolver::mx(self, name)
            .await?
            .into_iter()
            .map(|(_, host)| host)
            .collect())
    }
    async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        dns::Resolver::ptr(self, ip).await
    }
}

/// RFC 7208 §2.3, §2.4, §4: check the MAIL FROM identity, or the HELO
/// identity for the null reverse-path.
pub async fn check<D: SpfDns>(dns: &D, request: &SpfRequest<'_>) -> SpfOutcome {
    // An IPv4-mapped IPv6 address is the IPv4 client it maps.
    let ip = match request.ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(request.ip),
        v4 => v4,
    };
    let (identity, sender) = if request.mail_from.is_empty() {
        (Identity::Helo, format!("postmaster@{}", request.helo))
    } else {
        (Identity::MailFrom, request.mail_from.to_string())
    };
    // §4.3: a sender without a local part is postmaster at its domain.
    let (local, domain) = match sender.rsplit_once('@') {
        Some(("", d)) => ("postmaster", d),
        Some((l, d)) => (l, d),
        None => ("postmaster", sender.as_str()),
    };
    let sender = format!("{local}@{domain}");
    let mut evaluation = check::Evaluation {
        dns,
        ip,
        sender: &sender,
        local,
        sender_domain: domain,
        helo: request.helo,
        receiver: request.receiver,
        now: request.now,
        dns_terms: 0,
        voids: 0,
    };
    let outcome = evaluation.check_host(domain).await;
    SpfOutcome {
        result: outcome.result,
        identity,
        domain: domain.to_string(),
        explanation: outcome.explanation,
        reason: outcome.reason,
    }
}
