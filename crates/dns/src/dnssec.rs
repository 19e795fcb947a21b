//! The validating path (RFC 4033 §3, RFC 4035 §4): lookups whose answers
//! say whether a chain of signatures from the trust anchor proves them.
//!
//! Each answer is secure (proved), insecure (the zone is provably unsigned)
//! or bogus (it should be signed and is not, or a signature fails: RFC 4033
//! §5). Bogus is an error ([`DnsError::Bogus`]): DANE defers rather than use
//! it or fall back to weaker rules (RFC 7672 §2.1.1). A name that does not
//! exist or has no records is an error as on the plain path; for DANE the
//! absence of TLSA records means "no DANE" whether proved or not.
//!
//! The trust anchor is `[dns] trust_anchor` (DNSKEY records in zone-file
//! form, the root's or any zone's), or the IANA root keys in hickory.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::{DnsError, MAX_ADDRESSES, MxPlan, Resolver, name_text, wire_name};

/// An answer and whether DNSSEC proved it (RFC 4035 §4.3 "secure").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated<T> {
    pub value: T,
    pub secure: bool,
}

/// A TLSA record (RFC 6698 §2.1): usage, selector, matching type, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// The trust anchors from `[dns] trust_anchor`'s text, or the IANA root's.
pub(crate) fn trust_anchors(text: Option<&str>) -> Result<Arc<TrustAnchors>, DnsError> {
    let Some(text) = text else {
        return Ok(Arc::new(TrustAnchors::default()));
    };
    let anchors: TrustAnchors = text.parse().map_err(|e| {
        DnsError::Temporary(
            "trust anchor".into(),
            format!("not DNSKEY records in zone-file form: {e}"),
        )
    })?;
    if anchors.is_empty() && !text.lines().any(|l| l.contains("DNSKEY")) {
        return Err(DnsError::Temporary(
            "trust anchor".into(),
            "no DNSKEY record in it".into(),
        ));
    }
    Ok(Arc::new(anchors))
}

impl Resolver {
    /// Whether the validating path is on (`[dns] dnssec`).
    pub fn validates(&self) -> bool {
        self.validating.is_some()
    }

    /// Whether validated answers can be had: the path is on and the root's
    /// DNSKEY has come back secure. A resolver that strips DNSSEC records
    /// (or a wrong trust anchor) would make every answer bogus and every
    /// delivery wait; instead DANE is off, said in the log, and asked again
    /// every ten minutes. Once secure, it stays on for the life of the
    /// process: a later forged answer cannot turn DANE off (RFC 7672 §8.1
    /// expects the resolver path itself to be trusted).
    pub async fn dnssec_ready(&self) -> bool {
        const AGAIN: std::time::Duration = std::time::Duration::from_secs(600);
        if !self.validates() {
            return false;
        }
        if let Some((ready, at)) = *self.probe.lock().unwrap_or_else(|p| p.into_inner())
            && (ready || at.elapsed() < AGAIN)
        {
            return ready;
        }
        let ready = match self.lookup_validated(".", RecordType::DNSKEY).await {
            Ok(v) => v.secure,
            Err(_) => false,
        };
        if !ready {
            tracing::warn!(
                "DNSSEC: no validated answer for the root's DNSKEY (the resolver strips \
                 DNSSEC records, or [dns] trust_anchor is not its root's key): DANE is off"
            );
        }
        *self.probe.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((ready, std::time::Instant::now()));
        ready
    }

    /// One validated lookup: the records of `kind` and whether every one
    /// of them (and every CNAME on the way) is secure.
    async fn lookup_validated(
        &self,
        name: &str,
        kind: RecordType,
    ) -> Result<Validated<Vec<RData>>, DnsError> {
        let Some(resolver) = &self.validating else {
            return Err(DnsError::Temporary(
                name.into(),
                "DNSSEC validation is off".into(),
            ));
        };
        let query = wire_name(name).ok_or_else(|| DnsError::NoSuchDomain(name.into()))?;
        let started = std::time::Instant::now();
        let result = resolver.lookup(query, kind).await;
        metrics::histogram!("tern_dns_lookup_seconds", "type" => format!("{kind}+dnssec"))
            .record(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(lookup) => {
                let records: Vec<_> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == kind || r.record_type() == RecordType::CNAME)
                    .collect();
                if records.iter().any(|r| r.proof == Proof::Bogus) {
                    Err(DnsError::Bogus(
                        name.into(),
                        "a signature does not verify".into(),
                    ))
                } else {
                    let secure = !records.is_empty() && records.iter().all(|r| r.proof.is_secure());
                    Ok(Validated {
                        value: records
                            .iter()
                            .filter(|r| r.record_type() == kind)
                            .map(|r| r.data.clone())
                            .collect(),
                        secure,
                    })
                }
            }
            Err(NetError::Dns(HickoryDnsError::Nsec { proof, .. })) if proof.is_insecure() => {
                Err(DnsError::NoRecords(name.into()))
            }
            Err(NetError::Dns(HickoryDnsError::Nsec { proof, .. })) => Err(DnsError::Bogus(
                name.into(),
                format!("the denial of existence is {proof}"),
            )),
            Err(NetError::Dns(HickoryDnsError::DnssecBogus)) => Err(DnsError::Bogus(
                name.into(),
                "no chain of valid signatures".into(),
            )),
            Err(NetError::Dns(HickoryDnsError::NoRecordsFound(nr)))
                if nr.response_code == ResponseCode::NXDomain =>
            {
                Err(DnsError::NoSuchDomain(name.into()))
            }
            Err(NetError::Dns(HickoryDnsError::NoRecordsFound(_))) => {
                Err(DnsError::NoRecords(name.into()))
            }
            Err(e) => Err(DnsError::Temporary(name.into(), e.to_string())),
        };
        if let Err(e @ DnsError::Bogus(..)) = &outcome {
            metrics::counter!("tern_dns_bogus_total", "type" => kind.to_string()).increment(1);
            tracing::warn!(%name, %kind, error = %e, "DNSSEC: bogus answer");
        }
        outcome
    }

    /// MX records, validated (RFC 7672 §2.2.1).
    pub async fn secure_mx(&self, domain: &str) -> Result<Validated<Vec<(u16, String)>>, DnsError> {
        let v = self.lookup_validated(domain, RecordType::MX).await?;
        Ok(Validated {
            value: v
                .value
                .into_iter()
                .filter_map(|r| match r {
                    RData::MX(mx) => Some((mx.preference, name_text(&mx.exchange).to_lowercase())),
                    _ => None,
                })
                .collect(),
            secure: v.secure,
        })
    }

    /// The MX plan (RFC 5321 §5.1) from validated MX records: a bogus MX
    /// RRset is an error, never a plan (RFC 7672 §2.2.1).
    pub async fn secure_mx_plan(&self, domain: &str) -> Result<Validated<MxPlan>, DnsError> {
        let answer = self.secure_mx(domain).await;
        let secure = matches!(&answer, Ok(v) if v.secure);
        let plan = crate::plan_for(domain, answer.map(|v| v.value))?;
        Ok(Validated {
            value: plan,
            secure,
        })
    }

    /// A and AAAA records, validated (RFC 7672 §2.2.2): secure only when
    /// every family that answered is; a bogus family makes the whole bogus.
    pub async fn secure_addresses(&self, host: &str) -> Result<Validated<Vec<IpAddr>>, DnsError> {
        let (v6, v4) = tokio::join!(
            self.lookup_validated(host, RecordType::AAAA),
            self.lookup_validated(host, RecordType::A)
        );
        let mut ips = Vec::new();
        let mut secure = true;
        let mut first_error = None;
        for result in [v6, v4] {
            match result {
                Ok(v) => {
                    secure &= v.secure;
                    ips.extend(v.value.into_iter().filter_map(|r| match r {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    }));
                }
                Err(e @ DnsError::Bogus(..)) => return Err(e),
                Err(e) => {
                    if first_error.is_none() || e.is_temporary() {
                        first_error = Some(e);
                    }
                }
            }
        }
        ips.truncate(MAX_ADDRESSES);
        match (ips.is_empty(), first_error) {
            (false, _) => Ok(Validated { value: ips, secure }),
            (true, Some(e)) => Err(e),
            (true, None) => Err(DnsError::NoRecords(host.into())),
        }
    }

    /// TLSA records, validated (RFC 6698 §2, RFC 7672 §2.2.3).
    pub async fn secure_tlsa(&self, name: &str) -> Result<Validated<Vec<Tlsa>>, DnsError> {
        let v = self.lookup_validated(name, RecordType::TLSA).await?;
        Ok(Validated {
            value: v
                .value
                .into_iter()
                .filter_map(|r| match r {
                    RData::TLSA(t) => Some(Tlsa {
                        usage: t.cert_usage.into(),
                        selector: t.selector.into(),
                        matching: t.matching.into(),
                        data: t.cert_data,
                    }),
                    _ => None,
                })
                .collect(),
            secure: v.secure,
        })
    }
}
