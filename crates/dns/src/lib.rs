//! DNS for Tern: lookups through the configured resolvers (`[dns]
//! nameservers`, or the system's) with the three outcomes mail routing
//! needs kept apart: the name does not exist (permanent), the name has no
//! records of that type, and "try again later" (SERVFAIL, timeouts: never
//! a reason to bounce). `mx` plans delivery by RFC 5321 §5.1 and RFC 7505.
//!
//! `mta_sts` reads and writes MTA-STS policies and fetches them (RFC 8461).
//!
//! `dnssec`: with `[dns] dnssec` on, a second, validating path (RFC 4035
//! §4) answers the lookups DANE rests on (MX, addresses, TLSA) with how far
//! they can be trusted: secure, insecure, or bogus, which is never used.
//!
//! Implementation notes
//! - Every query is for a fully qualified name: no search domains.
//! - Answers are bounded ([`MAX_MX`], [`MAX_ADDRESSES`]), hardening.md C-OB9.

pub mod dnssec;
pub mod https;
pub mod mta_sts;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

/// The most MX hosts tried for one domain.
pub const MAX_MX: usize = 20;
/// The most addresses tried for one host.
pub const MAX_ADDRESSES: usize = 10;
/// The most addresses of one family read for one name (a bound on what a
/// hostile zone can make us hold).
pub const MAX_FAMILY_ADDRESSES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist.
    #[error("{0}: no such domain")]
    NoSuchDomain(String),
    /// The name exists but has no record of the type asked.
    #[error("{0}: no records")]
    NoRecords(String),
    /// SERVFAIL, timeout, network trouble: try again later.
    #[error("{0}: temporary DNS failure ({1})")]
    Temporary(String, String),
    /// DNSSEC validation failed (RFC 4033 §5): an attack or a broken zone;
    /// nothing may be decided on it, so it is temporary too.
    #[error("{0}: DNSSEC validation failed ({1})")]
    Bogus(String, String),
    /// The resolver's configuration is wrong (a trust anchor that is not one).
    #[error("{0}")]
    Config(String),
}

impl DnsError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, DnsError::Temporary(..) | DnsError::Bogus(..))
    }
}

/// How long one attempt waits for an answer. A lost UDP packet (resolvers
/// under load drop some) costs this much, not the whole lookup: rspamd waits
/// 1 s per attempt, glibc 5 s; mail checks sit in the SMTP reply path.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Attempts per lookup before "temporary failure".
pub const ATTEMPTS: usize = 3;
/// The least time a negative answer is cached.
pub const NEGATIVE_MIN_TTL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    /// Resolvers to ask (UDP, then TCP); empty: the system's (/etc/resolv.conf).
    pub nameservers: Vec<SocketAddr>,
    /// Per-attempt timeout; default [`ATTEMPT_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// DNSSEC validation for the lookups DANE needs (`[dns] dnssec`).
    pub dnssec: bool,
    /// The trust anchor: DNSKEY or DS records in zone-file form (a DS names
    /// the key by its digest: RFC 4034 §5); None: the IANA root keys
    /// shipped in hickory (KSK-2017 and KSK-2024).
    pub trust_anchor: Option<String>,
}

/// Where mail for a domain goes (RFC 5321 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxPlan {
    /// MX hosts in the order to try: by preference, equal preferences shuffled.
    /// A domain without MX records is its own implicit MX.
    Hosts(Vec<String>),
    /// RFC 7505: the domain accepts no mail.
    NullMx,
}

#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    /// The validating path (DNSSEC on): DO bit set, every answer checked.
    validating: Option<std::sync::Arc<dnssec::Validating>>,
    /// Whether the servers give signed answers (see [`Resolver::dnssec_ready`]).
    probe: std::sync::Arc<std::sync::Mutex<Option<(bool, std::time::Instant)>>>,
    /// The configured servers (empty: the system's), for [`Resolver::ptr`].
    nameservers: Vec<SocketAddr>,
    timeout: Duration,
}

/// The fully qualified name to ask for. An ASCII name goes on the wire
/// label by label as written: SPF macros (RFC 7208 §7) build names with
/// characters a host name never has (`%`, spaces, `:`), and those must be
/// asked for as they are, not refused or escaped. Other names go through
/// IDNA. None: not a name that can exist (an empty or over-long label).
fn wire_name(name: &str) -> Option<hickory_resolver::proto::rr::Name> {
    use hickory_resolver::proto::rr::{Name, domain::Label};
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() && !name.is_empty() {
        return Some(Name::root());
    }
    let mut fq = if trimmed.is_ascii() {
        let labels: Option<Vec<Label>> = trimmed
            .split('.')
            .map(|l| Label::from_raw_bytes(l.as_bytes()).ok())
            .collect();
        Name::from_labels(labels?).ok()?
    } else {
        Name::from_utf8(trimmed).ok()?
    };
    fq.set_fqdn(true);
    Some(fq)
}

/// A resolver builder for the configured servers and our options.
fn builder(
    config: &DnsConfig,
    timeout: Duration,
) -> Result<hickory_resolver::ResolverBuilder<TokioRuntimeProvider>, DnsError> {
    let err = |e: NetError| DnsError::Temporary("resolver".into(), e.to_string());
    let mut builder = if config.nameservers.is_empty() {
        TokioResolver::builder_tokio().map_err(err)?
    } else {
        let servers = config
            .nameservers
            .iter()
            .map(|s| {
                let connection = |protocol| {
                    let mut c = ConnectionConfig::new(protocol);
                    c.port = s.port();
                    c
                };
                NameServerConfig::new(
                    s.ip(),
                    true,
                    vec![
                        connection(ProtocolConfig::Udp),
                        connection(ProtocolConfig::Tcp),
                    ],
                )
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], servers),
            TokioRuntimeProvider::default(),
        )
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.ndots = 0;
    opts.timeout = timeout;
    opts.attempts = ATTEMPTS;
    // A "no such name" without an SOA (some forwarders send them so)
    // would not be cached at all, and every message asks again for the
    // same SPF and DMARC names; a second keeps that to one query a second
    // (RFC 2308 §5 advises against caching them long).
    opts.negative_min_ttl = Some(NEGATIVE_MIN_TTL);
    Ok(builder)
}

impl Resolver {
    pub fn new(config: &DnsConfig) -> Result<Resolver, DnsError> {
        let err = |e: NetError| DnsError::Temporary("resolver".into(), e.to_string());
        let timeout = config.timeout.unwrap_or(ATTEMPT_TIMEOUT);
        let validating = match config.dnssec {
            true => Some(std::sync::Arc::new(dnssec::Validating::new(
                config, timeout,
            )?)),
            false => None,
        };
        Ok(Resolver {
            inner: builder(config, timeout)?.build().map_err(err)?,
            validating,
            probe: Default::default(),
            nameservers: config.nameservers.clone(),
            timeout: timeout * ATTEMPTS as u32,
        })
    }

    /// The underlying hickory resolver (for mail-auth's SPF, DKIM and iprev
    /// lookups, so that every lookup goes to the same configured servers).
    pub fn hickory(&self) -> TokioResolver {
        self.inner.clone()
    }

    async fn lookup(&self, name: &str, kind: RecordType) -> Result<Vec<RData>, DnsError> {
        let started = std::time::Instant::now();
        let result = self.lookup_uncounted(name, kind).await;
        let kind = kind.to_string();
        metrics::histogram!("tern_dns_lookup_seconds", "type" => kind.clone())
            .record(started.elapsed().as_secs_f64());
        if let Err(DnsError::Temporary(..)) = result {
            metrics::counter!("tern_dns_failures_total", "type" => kind).increment(1);
        }
        result
    }

    async fn lookup_uncounted(&self, name: &str, kind: RecordType) -> Result<Vec<RData>, DnsError> {
        let query = wire_name(name).ok_or_else(|| DnsError::NoSuchDomain(name.into()))?;
        match self.inner.lookup(query, kind).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter(|r| r.record_type() == kind)
                .map(|r| r.data.clone())
                .collect()),
            Err(e) => Err(lookup_error(name, e)),
        }
    }

    /// MX records: (preference, exchange without the final dot).
    pub async fn mx(&self, domain: &str) -> Result<Vec<(u16, String)>, DnsError> {
        let records = self.lookup(domain, RecordType::MX).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::MX(mx) => Some((mx.preference, name_text(&mx.exchange).to_lowercase())),
                _ => None,
            })
            .collect())
    }

    /// SRV records (RFC 2782): (priority, weight, port, target without the
    /// final dot; "" for the root, "not offered").
    pub async fn srv(&self, name: &str) -> Result<Vec<(u16, u16, u16, String)>, DnsError> {
        let records = self.lookup(name, RecordType::SRV).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::SRV(srv) => Some((
                    srv.priority,
                    srv.weight,
                    srv.port,
                    name_text(&srv.target).to_lowercase(),
                )),
                _ => None,
            })
            .collect())
    }

    /// TLSA records (RFC 6698 §2): (usage, selector, matching type, data).
    /// Whether the answer was DNSSEC-validated is not said here (DANE
    /// needs it: RFC 7672 §2.2).
    pub async fn tlsa(&self, name: &str) -> Result<Vec<(u8, u8, u8, Vec<u8>)>, DnsError> {
        let records = self.lookup(name, RecordType::TLSA).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::TLSA(t) => Some((
                    t.cert_usage.into(),
                    t.selector.into(),
                    t.matching.into(),
                    t.cert_data,
                )),
                _ => None,
            })
            .collect())
    }

    /// OPENPGPKEY records (RFC 7929 §2): each a transferable public key.
    pub async fn openpgpkey(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        let records = self.lookup(name, RecordType::OPENPGPKEY).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::OPENPGPKEY(k) => Some(k.public_key),
                _ => None,
            })
            .collect())
    }

    /// SMIMEA records (RFC 8162 §2, TLSA's format): (usage, selector,
    /// matching type, data).
    pub async fn smimea(&self, name: &str) -> Result<Vec<(u8, u8, u8, Vec<u8>)>, DnsError> {
        let records = self.lookup(name, RecordType::SMIMEA).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::SMIMEA(s) => Some((
                    s.0.cert_usage.into(),
                    s.0.selector.into(),
                    s.0.matching.into(),
                    s.0.cert_data,
                )),
                _ => None,
            })
            .collect())
    }

    /// A and AAAA records of a host (IPv6 first when it has both, as RFC 6724 would order them).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let (v6, v4) = tokio::join!(
            self.lookup(host, RecordType::AAAA),
            self.lookup(host, RecordType::A)
        );
        let mut out = Vec::new();
        let mut first_error = None;
        for result in [v6, v4] {
            match result {
                Ok(records) => out.extend(records.into_iter().filter_map(|r| match r {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(e) => {
                    if first_error.is_none() || e.is_temporary() {
                        first_error = Some(e);
                    }
                }
            }
        }
        out.truncate(MAX_ADDRESSES);
        match (out.is_empty(), first_error) {
            (false, _) => Ok(out),
            (true, Some(e)) => Err(e),
            (true, None) => Err(DnsError::NoRecords(host.into())),
        }
    }

    /// The PTR names of an address (RFC 1035 §3.5), without the final dot.
    ///
    /// With `[dns] nameservers` configured they are asked directly: hickory
    /// answers `localhost` by itself for 127.0.0.0/8 (RFC 6761 §6.3), which
    /// would hide a test network's reverse zone on loopback addresses. With the
    /// system's resolver, hickory's rules stand.
    pub async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        let name = hickory_resolver::proto::rr::Name::from(ip);
        let Some(server) = self.nameservers.first() else {
            let records = self.lookup(&name.to_ascii(), RecordType::PTR).await?;
            return Ok(ptr_names(&records));
        };
        let key = name.to_ascii();
        let query = || async {
            use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query};
            let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
            m.metadata.recursion_desired = true;
            m.add_query(Query::query(name.clone(), RecordType::PTR));
            let bytes = m.to_vec().map_err(|e| e.to_string())?;
            let local: SocketAddr = if server.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = tokio::net::UdpSocket::bind(local)
                .await
                .map_err(|e| e.to_string())?;
            socket
                .send_to(&bytes, server)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, from) = socket
                    .recv_from(&mut buf)
                    .await
                    .map_err(|e| e.to_string())?;
                let Ok(reply) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if from == *server && reply.metadata.id == m.metadata.id {
                    return Ok::<Message, String>(reply);
                }
            }
        };
        let reply = match tokio::time::timeout(self.timeout, query()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(DnsError::Temporary(key, e)),
            Err(_) => return Err(DnsError::Temporary(key, "timeout".into())),
        };
        match reply.metadata.response_code {
            ResponseCode::NoError => {
                let records: Vec<RData> = reply.answers.into_iter().map(|r| r.data).collect();
                let names = ptr_names(&records);
                if names.is_empty() {
                    Err(DnsError::NoRecords(key))
                } else {
                    Ok(names)
                }
            }
            ResponseCode::NXDomain => Err(DnsError::NoSuchDomain(key)),
            other => Err(DnsError::Temporary(key, other.to_string())),
        }
    }

    /// TXT records, each as its strings concatenated (RFC 7208 §3.3).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let records = self.txt_bytes(name).await?;
        Ok(records
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect())
    }

    /// TXT records as bytes, each with its strings concatenated: for
    /// readers that must see bytes that are not UTF-8 (SPF, RFC 7208 §3.1).
    pub async fn txt_bytes(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        let records = self.lookup(name, RecordType::TXT).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::TXT(t) => Some(t.txt_data.concat()),
                _ => None,
            })
            .collect())
    }

    /// The A records (`v6` false) or AAAA records (`v6` true) of a name, at
    /// most [`MAX_FAMILY_ADDRESSES`]. SPF asks one family at a time (RFC 7208
    /// §5.3), and every address counts there, not just the first few.
    pub async fn addresses_of_family(&self, host: &str, v6: bool) -> Result<Vec<IpAddr>, DnsError> {
        let kind = if v6 { RecordType::AAAA } else { RecordType::A };
        let records = self.lookup(host, kind).await?;
        let ips: Vec<IpAddr> = records
            .into_iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .take(MAX_FAMILY_ADDRESSES)
            .collect();
        if ips.is_empty() {
            return Err(DnsError::NoRecords(host.into()));
        }
        Ok(ips)
    }

    /// RFC 5321 §5.1 and RFC 7505: the hosts to try for a domain.
    pub async fn mx_plan(&self, domain: &str) -> Result<MxPlan, DnsError> {
        plan_for(domain, self.mx(domain).await)
    }
}

/// The plan from an MX answer: no MX records make the domain its own
/// implicit MX (RFC 5321 §5.1), if it has addresses.
pub(crate) fn plan_for(
    domain: &str,
    answer: Result<Vec<(u16, String)>, DnsError>,
) -> Result<MxPlan, DnsError> {
    match answer {
        Ok(records) if records.is_empty() => Ok(MxPlan::Hosts(vec![domain.to_string()])),
        Ok(records) => Ok(plan(records)),
        Err(DnsError::NoRecords(_)) => Ok(MxPlan::Hosts(vec![domain.to_string()])),
        Err(e) => Err(e),
    }
}

/// What a failed lookup means for mail: no such name, no records of the
/// type, or try again later.
fn lookup_error(name: &str, e: NetError) -> DnsError {
    match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            DnsError::NoSuchDomain(name.into())
        }
        NetError::Dns(HickoryDnsError::NoRecordsFound(_)) => DnsError::NoRecords(name.into()),
        e => DnsError::Temporary(name.into(), e.to_string()),
    }
}

/// A name from an answer as text, labels joined by dots without escapes and
/// without the final dot (the inverse of [`wire_name`]): "" for the root.
fn name_text(name: &hickory_resolver::proto::rr::Name) -> String {
    name.iter()
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(".")
}

fn ptr_names(records: &[RData]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r {
            RData::PTR(p) => Some(name_text(&p.0).to_ascii_lowercase()),
            _ => None,
        })
        .take(MAX_ADDRESSES)
        .collect()
}

/// Order MX records: a single "." is a null MX; otherwise by preference, equal
/// preferences shuffled (RFC 5321 §5.1), bounded.
pub fn plan(mut records: Vec<(u16, String)>) -> MxPlan {
    if records.iter().any(|(_, host)| host.is_empty()) {
        // RFC 7505 §3: a null MX is the only MX; any "." MX means no mail.
        return MxPlan::NullMx;
    }
    records.sort_by_key(|r| r.0);
    let mut ordered = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let j = records[i..]
            .iter()
            .position(|r| r.0 != records[i].0)
            .map(|p| i + p)
            .unwrap_or(records.len());
        let mut group: Vec<String> = records[i..j].iter().map(|r| r.1.clone()).collect();
        shuffle(&mut group);
        ordered.extend(group);
        i = j;
    }
    ordered.dedup();
    ordered.truncate(MAX_MX);
    MxPlan::Hosts(ordered)
}

fn shuffle(v: &mut [String]) {
    for i in (1..v.len()).rev() {
        let j = rand::random_range(0..=i);
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planning() {
        assert_eq!(plan(vec![(0, String::new())]), MxPlan::NullMx);
        let MxPlan::Hosts(h) = plan(vec![
            (20, "b".into()),
            (10, "a1".into()),
            (10, "a2".into()),
            (30, "c".into()),
        ]) else {
            panic!()
        };
        assert_eq!(h.len(), 4);
        assert!(h[..2].contains(&"a1".to_string()) && h[..2].contains(&"a2".to_string()));
        assert_eq!(&h[2..], ["b", "c"]);
        let many: Vec<(u16, String)> = (0..50).map(|i| (i, format!("h{i}"))).collect();
        assert!(matches!(plan(many), MxPlan::Hosts(h) if h.len() == MAX_MX));
    }
}
