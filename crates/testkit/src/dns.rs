//! An authoritative DNS server for tests (design.md principle 5): answers from a
//! table the test fills, over UDP and TCP on an ephemeral loopback port. A name
//! with no records at all is NXDOMAIN; a name marked with `servfail` answers
//! SERVFAIL (for every type, or only for the types it has no records of); a
//! CNAME is followed (at most 8 steps) as a recursive server would.
//!
//! Names are taken label by label as written, so that tests can serve the
//! odd names SPF macros build (`%`, spaces, `:`).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::domain::Label;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// Answers live one second in resolver caches, so a test that changes a
/// record sees the change after a short wait.
pub const TTL: u32 = 1;

#[derive(Default)]
struct Zone {
    records: HashMap<String, Vec<RData>>,
    servfail: HashSet<String>,
    /// Names that answer SERVFAIL for the types they have no records of.
    servfail_unanswered: HashSet<String>,
    /// Signed answers for questions with the DO bit, once `dnssec` is on.
    dnssec: Option<crate::dnssec::Dnssec>,
}

#[derive(Clone)]
pub struct TestDns {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
}

/// The table key of a name: its labels, lowercased, as hickory prints them.
fn key(name: &str) -> String {
    self::name(name).to_lowercase().to_ascii()
}

/// A name from text, label by label (no escapes, no IDNA).
fn name(s: &str) -> Name {
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    if trimmed.is_empty() {
        return Name::root();
    }
    let labels = trimmed.split('.').map(|l| {
        Label::from_raw_bytes(l.as_bytes()).unwrap_or_else(|e| panic!("bad name {s}: {e}"))
    });
    let mut n = Name::from_labels(labels).unwrap_or_else(|e| panic!("bad name {s}: {e}"));
    n.set_fqdn(true);
    n
}

impl TestDns {
    /// Start serving on 127.0.0.1 (UDP and TCP on the same port).
    pub async fn start() -> TestDns {
        // UDP and TCP on the same port: retry when another socket holds the
        // TCP side of the port UDP got (tests run in parallel).
        let mut attempt = 0;
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    let _ = e;
                }
                Err(e) => panic!("test DNS: no port for both UDP and TCP: {e}"),
            }
        };
        TestDns::serve(udp, tcp)
    }

    /// Start serving on `addr` (port 53 for resolvers that know no other:
    /// root only).
    pub async fn start_at(addr: SocketAddr) -> std::io::Result<TestDns> {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(addr).await?;
        Ok(TestDns::serve(udp, tcp))
    }

    fn serve(udp: UdpSocket, tcp: TcpListener) -> TestDns {
        let addr = udp.local_addr().unwrap_or_else(|e| panic!("test DNS: {e}"));
        let dns = TestDns {
            addr,
            zone: Arc::default(),
        };
        let zone = dns.zone.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                if let Some(reply) = answer(&zone, &buf[..n]) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        });
        let zone = dns.zone.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = tcp.accept().await {
                let zone = zone.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if s.read_exact(&mut q).await.is_err() {
                            return;
                        }
                        let Some(reply) = answer(&zone, &q) else {
                            return;
                        };
                        let len = (reply.len() as u16).to_be_bytes();
                        if s.write_all(&len).await.is_err() || s.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        dns
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Add any record.
    pub fn record(&self, owner: &str, data: RData) -> &Self {
        self.add(owner, data);
        self
    }

    fn add(&self, owner: &str, data: RData) {
        self.zone
            .lock()
            .unwrap()
            .records
            .entry(key(owner))
            .or_default()
            .push(data);
    }

    pub fn a(&self, owner: &str, ip: Ipv4Addr) -> &Self {
        self.add(owner, RData::A(A(ip)));
        self
    }

    pub fn aaaa(&self, owner: &str, ip: Ipv6Addr) -> &Self {
        self.add(owner, RData::AAAA(AAAA(ip)));
        self
    }

    /// `exchange` "." makes a null MX (RFC 7505).
    pub fn mx(&self, owner: &str, preference: u16, exchange: &str) -> &Self {
        let exchange = if exchange == "." {
            Name::root()
        } else {
            name(exchange)
        };
        self.add(owner, RData::MX(MX::new(preference, exchange)));
        self
    }

    /// An SRV record (RFC 2782).
    pub fn srv(&self, owner: &str, port: u16, target: &str) -> &Self {
        self.add(owner, RData::SRV(SRV::new(0, 1, port, name(target))));
        self
    }

    /// A TLSA record (RFC 6698): usage, selector, matching type, data.
    pub fn tlsa(&self, owner: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> &Self {
        use hickory_proto::rr::rdata::TLSA;
        let tlsa = TLSA::new(
            usage.into(),
            selector.into(),
            matching.into(),
            data.to_vec(),
        );
        self.add(owner, RData::TLSA(tlsa));
        self
    }

    /// An SMIMEA record (RFC 8162): TLSA's fields for a user's certificate.
    pub fn smimea(&self, owner: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> &Self {
        use hickory_proto::rr::rdata::SMIMEA;
        let smimea = SMIMEA::new(
            usage.into(),
            selector.into(),
            matching.into(),
            data.to_vec(),
        );
        self.add(owner, RData::SMIMEA(smimea));
        self
    }

    /// An OPENPGPKEY record (RFC 7929): a transferable public key, binary.
    pub fn openpgpkey(&self, owner: &str, key: &[u8]) -> &Self {
        use hickory_proto::rr::rdata::OPENPGPKEY;
        self.add(owner, RData::OPENPGPKEY(OPENPGPKEY::new(key.to_vec())));
        self
    }

    /// The reverse record of an IPv4 address (`d.c.b.a.in-addr.arpa PTR name`).
    pub fn ptr(&self, ip: Ipv4Addr, name_: &str) -> &Self {
        let [a, b, c, d] = ip.octets();
        self.add(
            &format!("{d}.{c}.{b}.{a}.in-addr.arpa"),
            RData::PTR(PTR(name(name_))),
        );
        self
    }

    /// A TXT record made of these strings (each at most 255 octets), which
    /// need not be UTF-8.
    pub fn txt_strings(&self, owner: &str, strings: &[&[u8]]) -> &Self {
        let parts: Vec<Box<[u8]>> = strings.iter().map(|s| Box::from(*s)).collect();
        self.add(
            owner,
            RData::TXT(TXT::from_bytes(parts.iter().map(|b| &b[..]).collect())),
        );
        self
    }

    pub fn cname(&self, owner: &str, target: &str) -> &Self {
        self.add(owner, RData::CNAME(CNAME(name(target))));
        self
    }

    /// The PTR record of any reverse name (`owner` as written).
    pub fn ptr_at(&self, owner: &str, target: &str) -> &Self {
        self.add(owner, RData::PTR(PTR(name(target))));
        self
    }

    pub fn txt(&self, owner: &str, text: &str) -> &Self {
        // Long texts are split in 255-octet strings, as zone files do.
        let parts: Vec<String> = text
            .as_bytes()
            .chunks(255)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        self.add(owner, RData::TXT(TXT::new(parts)));
        self
    }

    /// Answer SERVFAIL for every question about this name.
    pub fn servfail(&self, owner: &str) -> &Self {
        self.zone.lock().unwrap().servfail.insert(key(owner));
        self
    }

    /// Answer SERVFAIL for questions about this name of types it has no
    /// records of (a server that times out on them).
    pub fn servfail_unanswered(&self, owner: &str) -> &Self {
        self.zone
            .lock()
            .unwrap()
            .servfail_unanswered
            .insert(key(owner));
        self
    }

    /// Stop answering SERVFAIL for a name (its records answer again).
    pub fn answer_again(&self, owner: &str) -> &Self {
        self.zone.lock().unwrap().servfail.remove(&key(owner));
        self
    }

    /// Sign the root zone (and so every name not in a zone declared
    /// unsigned): DNSSEC answers for questions with the DO bit from now on.
    /// Returns the trust anchor for `[dns] trust_anchor` (a DNSKEY line).
    pub fn dnssec(&self) -> String {
        let mut z = self.zone.lock().unwrap();
        z.dnssec
            .get_or_insert_with(crate::dnssec::Dnssec::new)
            .trust_anchor()
    }

    /// The root's key as a DS line (what IANA publishes), for
    /// `[dns] trust_anchor`; `dnssec()` must have been called.
    pub fn ds_anchor(&self) -> String {
        let z = self.zone.lock().unwrap();
        z.dnssec.as_ref().expect("call dnssec() first").ds_anchor()
    }

    /// A zone delegated from the (signed) root, with its own key and a DS
    /// in the root (a secure delegation, RFC 4035 §5.2).
    pub fn signed_zone(&self, apex: &str) -> &Self {
        self.delegate(apex, true)
    }

    /// A zone delegated from the root without DS: its names are insecure
    /// (RFC 4035 §5.2, the NSEC of the delegation proves no DS).
    pub fn unsigned_zone(&self, apex: &str) -> &Self {
        self.delegate(apex, false)
    }

    fn delegate(&self, apex: &str, signed: bool) -> &Self {
        let mut z = self.zone.lock().unwrap();
        let dnssec = z.dnssec.as_mut().expect("call dnssec() first");
        dnssec.delegate(name(apex), signed);
        drop(z);
        self
    }

    /// Sign the records of this name with a signature that does not verify
    /// (bogus, RFC 4033 §5: a forger's answer).
    pub fn bogus(&self, owner: &str) -> &Self {
        let mut z = self.zone.lock().unwrap();
        let dnssec = z.dnssec.as_mut().expect("call dnssec() first");
        dnssec.mark_bogus(name(owner));
        drop(z);
        self
    }

    /// Forget every record of a name.
    pub fn remove(&self, owner: &str) -> &Self {
        let mut z = self.zone.lock().unwrap();
        z.records.remove(&key(owner));
        z.servfail.remove(&key(owner));
        z.servfail_unanswered.remove(&key(owner));
        self
    }
}

fn answer(zone: &Mutex<Zone>, query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.authoritative = true;
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    let question = q.queries.first()?.clone();
    let kind = question.query_type();
    r.add_query(question.clone());
    let z = zone.lock().ok()?;
    // DNSKEYs are asked for without DO too (a DS trust anchor's key).
    let dnssec_ok =
        q.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok) || kind == RecordType::DNSKEY;
    if let (true, Some(dnssec)) = (dnssec_ok, &z.dnssec)
        && !z
            .servfail
            .contains(&question.name().to_lowercase().to_ascii())
    {
        let records = z
            .records
            .iter()
            .map(|(k, v)| (name(k), v.clone()))
            .collect();
        if dnssec.answer(&records, &mut r, question.name(), kind) {
            let mut edns = hickory_proto::op::Edns::new();
            edns.set_dnssec_ok(true).set_max_payload(4096);
            r.edns = Some(edns);
            return r.to_vec().ok();
        }
    }
    let mut owner = question.name().clone();
    // Follow CNAMEs as a recursive server does, at most 8 steps.
    for _ in 0..8 {
        let k = owner.to_lowercase().to_ascii();
        if z.servfail.contains(&k) {
            r.metadata.response_code = ResponseCode::ServFail;
            return r.to_vec().ok();
        }
        let empty = Vec::new();
        let list = match z.records.get(&k) {
            Some(list) => list,
            None if z.servfail_unanswered.contains(&k) => &empty,
            None => {
                r.metadata.response_code = ResponseCode::NXDomain;
                break;
            }
        };
        let matching: Vec<&RData> = list
            .iter()
            .filter(|d| d.record_type() == kind || kind == RecordType::ANY)
            .collect();
        let cname = list.iter().find_map(|d| match d {
            RData::CNAME(c) if kind != RecordType::CNAME => Some(c.0.clone()),
            _ => None,
        });
        if matching.is_empty() && cname.is_none() && z.servfail_unanswered.contains(&k) {
            r.metadata.response_code = ResponseCode::ServFail;
            return r.to_vec().ok();
        }
        for d in matching {
            r.add_answer(Record::from_rdata(owner.clone(), TTL, d.clone()));
        }
        match cname {
            Some(target) => {
                r.add_answer(Record::from_rdata(
                    owner.clone(),
                    TTL,
                    RData::CNAME(CNAME(target.clone())),
                ));
                owner = target;
            }
            None => break,
        }
    }
    r.to_vec().ok()
}
