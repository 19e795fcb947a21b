//! DNSSEC for the test DNS (RFC 4033, RFC 4034, RFC 4035): a signed root
//! whose key the test hands to Tern as `[dns] trust_anchor`, and zones
//! delegated from the root, signed or not, answered with the RRSIG,
//! DNSKEY, DS and NSEC records a validating resolver asks for.
//!
//! Only questions with the DO bit (RFC 3225) get these answers; the others
//! are answered as before. A name belongs to the longest declared zone it
//! is in, and to the root otherwise; DS questions about a zone's apex are
//! the root's to answer (RFC 4035 §3.1.4.1). Names marked bogus are signed
//! with a signature that does not verify, as a forger's would.
//!
//! Limits (enough for tests): one level of delegation below the root, no
//! CNAME following, NSEC (not NSEC3), one Ed25519 key per zone.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use hickory_proto::dnssec::crypto::Ed25519SigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, NSEC, RRSIG};
use hickory_proto::dnssec::{DigestType, DnssecSigner, SigningKey, Verifier};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};

use crate::dns::TTL;

/// One zone's key and signer.
struct ZoneKey {
    dnskey: DNSKEY,
    signer: DnssecSigner,
}

impl ZoneKey {
    fn generate(apex: &Name) -> ZoneKey {
        let pkcs8 = Ed25519SigningKey::generate_pkcs8().expect("ed25519 key");
        let key = Ed25519SigningKey::from_pkcs8(&pkcs8).expect("ed25519 key");
        let public = key.to_public_key().expect("public key");
        let dnskey = DNSKEY::from_key(&public);
        let signer = DnssecSigner::new(
            dnskey.clone(),
            Box::new(key),
            apex.clone(),
            Duration::from_secs(2 * 86_400),
        );
        ZoneKey { dnskey, signer }
    }
}

/// The signed world of one test DNS.
pub(crate) struct Dnssec {
    root: ZoneKey,
    /// Zones delegated from the root: apex → its key (None: unsigned).
    zones: BTreeMap<Name, Option<ZoneKey>>,
    /// Owner names whose signatures are made not to verify.
    bogus: HashSet<Name>,
}

impl Dnssec {
    pub(crate) fn new() -> Dnssec {
        Dnssec {
            root: ZoneKey::generate(&Name::root()),
            zones: BTreeMap::new(),
            bogus: HashSet::new(),
        }
    }

    /// The root's key as a zone-file DNSKEY line: the trust anchor.
    pub(crate) fn trust_anchor(&self) -> String {
        let record = Record::from_rdata(
            Name::root(),
            3600,
            RData::DNSSEC(DNSSECRData::DNSKEY(self.root.dnskey.clone())),
        );
        format!("{record}\n")
    }

    /// The root's key as a DS line (RFC 4034 §5.3, SHA-256): the form IANA
    /// publishes the root trust anchor in.
    pub(crate) fn ds_anchor(&self) -> String {
        let record = Record::from_rdata(
            Name::root(),
            3600,
            RData::DNSSEC(DNSSECRData::DS(ds_of(&Name::root(), &self.root.dnskey))),
        );
        format!("{record}\n")
    }

    pub(crate) fn delegate(&mut self, apex: Name, signed: bool) {
        let key = signed.then(|| ZoneKey::generate(&apex));
        self.zones.insert(apex, key);
    }

    pub(crate) fn mark_bogus(&mut self, owner: Name) {
        self.bogus.insert(owner);
    }

    /// The zone that answers `qname`/`kind`: its apex (root: `.`).
    fn zone_of(&self, qname: &Name, kind: RecordType) -> Name {
        let apex = self
            .zones
            .keys()
            .filter(|apex| apex.zone_of(qname))
            .max_by_key(|apex| apex.num_labels())
            .cloned();
        match apex {
            // RFC 4035 §3.1.4.1: the DS of a zone is in its parent.
            Some(apex) if !(kind == RecordType::DS && &apex == qname) => apex,
            _ => Name::root(),
        }
    }

    fn key_of(&self, apex: &Name) -> Option<&ZoneKey> {
        if apex.is_root() {
            Some(&self.root)
        } else {
            self.zones.get(apex).and_then(|k| k.as_ref())
        }
    }

    /// Fill `r` with the signed answer to `qname`/`kind`, or leave it and
    /// return false when the name is in an unsigned zone (answered plainly).
    pub(crate) fn answer(
        &self,
        records: &BTreeMap<Name, Vec<RData>>,
        r: &mut Message,
        qname: &Name,
        kind: RecordType,
    ) -> bool {
        let apex = self.zone_of(qname, kind);
        let Some(key) = self.key_of(&apex) else {
            // An unsigned zone still has its apex NS and SOA: a validator
            // looks for the zone cut to prove it insecure (RFC 4035 §5.2).
            let synthesized = match kind {
                RecordType::NS => ns(&apex),
                RecordType::SOA => soa(&apex),
                _ => return false,
            };
            if qname != &apex {
                return false;
            }
            r.add_answer(Record::from_rdata(apex, TTL, synthesized));
            return true;
        };
        let zone = self.contents(records, &apex);
        let sign =
            |owner: &Name, kind: RecordType, data: Vec<RData>| self.rrset(owner, kind, data, key);
        match zone.get(qname) {
            Some(types) if types.contains_key(&kind) => {
                r.add_answers(sign(qname, kind, types[&kind].clone()));
            }
            Some(_) => {
                // RFC 4035 §3.1.3.1: no data, proved by the name's NSEC.
                r.add_authorities(sign(&apex, RecordType::SOA, vec![soa(&apex)]));
                r.add_authorities(self.nsec(&zone, qname, key));
            }
            None => {
                // An empty non-terminal has names below it: no data, not
                // no such name (RFC 4035 §3.1.3.2 and RFC 8020).
                let ent = zone.keys().any(|n| n != qname && qname.zone_of(n));
                if !ent {
                    r.metadata.response_code = ResponseCode::NXDomain;
                }
                r.add_authorities(sign(&apex, RecordType::SOA, vec![soa(&apex)]));
                let covering = predecessor(&zone, qname);
                r.add_authorities(self.nsec(&zone, &covering, key));
                // RFC 4035 §3.1.3.2: and no wildcard could have answered.
                let wildcard = apex.prepend_label("*").expect("wildcard");
                let wild_cover = predecessor(&zone, &wildcard);
                if !ent && wild_cover != covering {
                    r.add_authorities(self.nsec(&zone, &wild_cover, key));
                }
            }
        }
        true
    }

    /// Every owner name of a zone with its RRsets (without NSEC and RRSIG).
    fn contents(
        &self,
        records: &BTreeMap<Name, Vec<RData>>,
        apex: &Name,
    ) -> BTreeMap<Name, BTreeMap<RecordType, Vec<RData>>> {
        let mut zone: BTreeMap<Name, BTreeMap<RecordType, Vec<RData>>> = BTreeMap::new();
        for (owner, data) in records {
            if !apex.zone_of(owner) || self.zone_of(owner, RecordType::A) != *apex {
                continue;
            }
            let types = zone.entry(owner.clone()).or_default();
            for d in data {
                types.entry(d.record_type()).or_default().push(d.clone());
            }
        }
        let key = self.key_of(apex).expect("a signed zone");
        let at_apex = zone.entry(apex.clone()).or_default();
        at_apex.insert(RecordType::SOA, vec![soa(apex)]);
        at_apex.insert(RecordType::NS, vec![ns(apex)]);
        at_apex.insert(
            RecordType::DNSKEY,
            vec![RData::DNSSEC(DNSSECRData::DNSKEY(key.dnskey.clone()))],
        );
        if apex.is_root() {
            // The delegations: NS, and DS for a signed child (RFC 4035 §2.4).
            for (child, child_key) in &self.zones {
                let types = zone.entry(child.clone()).or_default();
                types.clear();
                types.insert(RecordType::NS, vec![ns(child)]);
                if let Some(k) = child_key {
                    let ds = ds_of(child, &k.dnskey);
                    types.insert(RecordType::DS, vec![RData::DNSSEC(DNSSECRData::DS(ds))]);
                }
            }
        }
        zone
    }

    /// The NSEC of `owner` (RFC 4034 §4) with its signature.
    fn nsec(
        &self,
        zone: &BTreeMap<Name, BTreeMap<RecordType, Vec<RData>>>,
        owner: &Name,
        key: &ZoneKey,
    ) -> Vec<Record> {
        let next = zone
            .range((
                std::ops::Bound::Excluded(owner.clone()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .or_else(|| zone.iter().next())
            .map(|(n, _)| n.clone())
            .expect("a zone has its apex");
        let types: BTreeSet<RecordType> = zone[owner].keys().copied().collect();
        let nsec = NSEC::new_cover_self(next, types);
        self.rrset(
            owner,
            RecordType::NSEC,
            vec![RData::DNSSEC(DNSSECRData::NSEC(nsec))],
            key,
        )
    }

    /// The records of one RRset and its RRSIG (RFC 4034 §3).
    fn rrset(
        &self,
        owner: &Name,
        kind: RecordType,
        data: Vec<RData>,
        key: &ZoneKey,
    ) -> Vec<Record> {
        let mut set = RecordSet::with_ttl(owner.clone(), kind, TTL);
        for d in data {
            set.add_rdata(d);
        }
        let inception = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        let mut rrsig =
            RRSIG::from_rrset(&set, DNSClass::IN, inception, &key.signer).expect("signing");
        if self.bogus.contains(owner) {
            let mut sig = rrsig.sig().to_vec();
            sig[0] ^= 0xff;
            rrsig = RRSIG::from_sig(rrsig.input().clone(), sig);
        }
        let mut out: Vec<Record> = set.records_without_rrsigs().cloned().collect();
        out.push(Record::from_rdata(
            owner.clone(),
            TTL,
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
        ));
        out
    }
}

/// The name before `name` in the zone's canonical order (RFC 4034 §6.1):
/// the owner of the NSEC that covers it.
fn predecessor(zone: &BTreeMap<Name, BTreeMap<RecordType, Vec<RData>>>, name: &Name) -> Name {
    zone.range(..name.clone())
        .next_back()
        .or_else(|| zone.iter().next_back())
        .map(|(n, _)| n.clone())
        .expect("a zone has its apex")
}

/// The DS record of a zone's key (SHA-256).
fn ds_of(apex: &Name, key: &DNSKEY) -> DS {
    DS::new(
        key.calculate_key_tag().expect("key tag"),
        key.algorithm(),
        DigestType::SHA256,
        key.to_digest(apex, DigestType::SHA256)
            .expect("digest")
            .as_ref()
            .to_vec(),
    )
}

fn soa(apex: &Name) -> RData {
    let host = |label: &str| apex.prepend_label(label).expect("name");
    RData::SOA(SOA::new(
        host("ns"),
        host("hostmaster"),
        1,
        3600,
        600,
        86_400,
        TTL,
    ))
}

fn ns(apex: &Name) -> RData {
    RData::NS(NS(apex.prepend_label("ns").expect("name")))
}
