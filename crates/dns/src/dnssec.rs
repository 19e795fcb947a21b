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
//! The trust anchor is `[dns] trust_anchor` (DNSKEY or DS records in
//! zone-file form, the root's or any zone's), or the IANA root keys in
//! hickory. A DS anchor's key is looked up, and checked against the
//! digest, when the validating resolver is first needed.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, DS};
use hickory_resolver::proto::dnssec::{Algorithm, DigestType, Proof, TrustAnchors};
use hickory_resolver::proto::rr::Name;
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

impl Tlsa {
    /// Whether a certificate (DER) matches (RFC 6698 §2.1.2, §2.1.3; an
    /// SMIMEA record the same way, RFC 8162 §2): selector 0 the whole
    /// certificate, 1 its SubjectPublicKeyInfo (`spki`, which the caller
    /// reads); matching type 0 exact, 1 SHA-256, 2 SHA-512.
    pub fn matches(&self, cert: &[u8], spki: Option<&[u8]>) -> bool {
        use sha2::Digest;
        let selected = match (self.selector, spki) {
            (0, _) => cert,
            (1, Some(spki)) => spki,
            _ => return false,
        };
        match self.matching {
            0 => selected == self.data.as_slice(),
            1 => sha2::Sha256::digest(selected).as_slice() == self.data.as_slice(),
            2 => sha2::Sha512::digest(selected).as_slice() == self.data.as_slice(),
            _ => false,
        }
    }

    /// A TLSA or SMIMEA record's fields.
    fn of(record: RData) -> Option<Tlsa> {
        let t = match record {
            RData::TLSA(t) => t,
            RData::SMIMEA(s) => s.0,
            _ => return None,
        };
        Some(Tlsa {
            usage: t.cert_usage.into(),
            selector: t.selector.into(),
            matching: t.matching.into(),
            data: t.cert_data,
        })
    }
}

/// The validating resolver, built on first use: a DS trust anchor needs
/// the DNSKEY it names looked up first (RFC 4035 §4.4).
pub(crate) struct Validating {
    config: crate::DnsConfig,
    timeout: std::time::Duration,
    keys: TrustAnchors,
    /// DS anchors: (owner, record), matched against the owner's DNSKEYs.
    ds: Vec<(Name, DS)>,
    built: tokio::sync::Mutex<Option<TokioResolver>>,
}

impl Validating {
    /// The trust anchor is read now (a bad one stops the start).
    pub(crate) fn new(
        config: &crate::DnsConfig,
        timeout: std::time::Duration,
    ) -> Result<Validating, DnsError> {
        let (keys, ds) = trust_anchors(config.trust_anchor.as_deref())?;
        Ok(Validating {
            config: config.clone(),
            timeout,
            keys,
            ds,
            built: tokio::sync::Mutex::new(None),
        })
    }

    /// The resolver, building it the first time (`plain` finds the DNSKEYs
    /// that DS anchors name; until one matches, there is none).
    async fn resolver(&self, plain: &TokioResolver) -> Result<TokioResolver, DnsError> {
        let mut built = self.built.lock().await;
        if let Some(r) = built.as_ref() {
            return Ok(r.clone());
        }
        let mut keys = self.keys.clone();
        for (owner, ds) in &self.ds {
            let found = plain
                .lookup(owner.clone(), RecordType::DNSKEY)
                .await
                .map_err(|e| DnsError::Temporary(owner.to_string(), e.to_string()))?;
            let mut matched = false;
            for record in found.answers() {
                if let RData::DNSSEC(DNSSECRData::DNSKEY(key)) = &record.data
                    && ds.covers(owner, key).unwrap_or(false)
                {
                    keys.insert_with_name(key.public_key(), owner.into());
                    matched = true;
                }
            }
            if !matched {
                return Err(DnsError::Temporary(
                    "trust anchor".into(),
                    format!("no DNSKEY of {owner} matches its DS record"),
                ));
            }
        }
        let resolver = crate::builder(&self.config, self.timeout)?
            .with_trust_anchor(Arc::new(keys))
            .build()
            .map_err(|e| DnsError::Temporary("resolver".into(), e.to_string()))?;
        *built = Some(resolver.clone());
        Ok(resolver)
    }
}

/// The trust anchors of `[dns] trust_anchor`'s text (DNSKEY and DS
/// records in zone-file form), or the IANA root keys.
fn trust_anchors(text: Option<&str>) -> Result<(TrustAnchors, Vec<(Name, DS)>), DnsError> {
    let bad = |why: String| DnsError::Config(format!("[dns] trust_anchor: {why}"));
    let Some(text) = text else {
        return Ok((TrustAnchors::default(), Vec::new()));
    };
    let mut ds = Vec::new();
    let mut dnskeys = String::new();
    for line in text.lines() {
        let content = line.split(';').next().unwrap_or_default();
        let words: Vec<&str> = content.split_whitespace().collect();
        match words.iter().position(|w| w.eq_ignore_ascii_case("DS")) {
            Some(i) => ds
                .push(ds_record(&words, i).ok_or_else(|| bad(format!("not a DS record: {line}")))?),
            None if words.iter().any(|w| w.eq_ignore_ascii_case("DNSKEY")) => {
                dnskeys.push_str(line);
                dnskeys.push('\n');
            }
            None if words.is_empty() => {}
            None => return Err(bad(format!("neither DNSKEY nor DS: {line}"))),
        }
    }
    let keys: TrustAnchors = match dnskeys.is_empty() {
        true => TrustAnchors::empty(),
        false => dnskeys
            .parse()
            .map_err(|e| bad(format!("DNSKEY records: {e}")))?,
    };
    if dnskeys.is_empty() && ds.is_empty() {
        return Err(bad("no DNSKEY or DS record in it".into()));
    }
    Ok((keys, ds))
}

/// `owner [ttl] [class] DS key-tag algorithm digest-type digest` (RFC 4034
/// §5.3; the digest may be split by spaces).
fn ds_record(words: &[&str], at: usize) -> Option<(Name, DS)> {
    let owner = Name::from_ascii(words.first()?).ok()?;
    let tag: u16 = words.get(at + 1)?.parse().ok()?;
    let algorithm: u8 = words.get(at + 2)?.parse().ok()?;
    let digest_type: u8 = words.get(at + 3)?.parse().ok()?;
    let hex: String = words.get(at + 4..)?.concat();
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let digest: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Some((
        owner,
        DS::new(
            tag,
            Algorithm::from_u8(algorithm),
            DigestType::from(digest_type),
            digest?,
        ),
    ))
}

impl Resolver {
    /// Whether the validating path is on (`[dns] dnssec`).
    fn validates(&self) -> bool {
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
        let Some(validating) = &self.validating else {
            return Err(DnsError::Temporary(
                name.into(),
                "DNSSEC validation is off".into(),
            ));
        };
        let resolver = validating.resolver(&self.inner).await?;
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
            Err(e) => Err(crate::lookup_error(name, e)),
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
            value: v.value.into_iter().filter_map(Tlsa::of).collect(),
            secure: v.secure,
        })
    }

    /// A sender's published key records (OPENPGPKEY, RFC 7929 §2; SMIMEA,
    /// RFC 8162 §2), validated when DNSSEC is on and works
    /// ([`Resolver::dnssec_ready`]); without it they come back, never
    /// secure (the caller says how far it trusts them).
    async fn key_records(
        &self,
        name: &str,
        kind: RecordType,
    ) -> Result<Validated<Vec<RData>>, DnsError> {
        if self.dnssec_ready().await {
            return self.lookup_validated(name, kind).await;
        }
        Ok(Validated {
            value: self.lookup(name, kind).await?,
            secure: false,
        })
    }

    /// OPENPGPKEY records (RFC 7929 §2): each a transferable public key;
    /// secure when DNSSEC proved them.
    pub async fn openpgpkey_validated(
        &self,
        name: &str,
    ) -> Result<Validated<Vec<Vec<u8>>>, DnsError> {
        let v = self.key_records(name, RecordType::OPENPGPKEY).await?;
        Ok(Validated {
            value: v
                .value
                .into_iter()
                .filter_map(|r| match r {
                    RData::OPENPGPKEY(k) => Some(k.public_key),
                    _ => None,
                })
                .collect(),
            secure: v.secure,
        })
    }

    /// SMIMEA records (RFC 8162 §2); secure when DNSSEC proved them.
    pub async fn smimea_validated(&self, name: &str) -> Result<Validated<Vec<Tlsa>>, DnsError> {
        let v = self.key_records(name, RecordType::SMIMEA).await?;
        Ok(Validated {
            value: v.value.into_iter().filter_map(Tlsa::of).collect(),
            secure: v.secure,
        })
    }
}
