//! Checks on mail arriving at the MX: iprev and SPF when the sender is known
//! (MAIL FROM), DKIM, ARC and DMARC once the message is here; one verdict
//! and one Authentication-Results field (RFC 8601).
//!
//! DNS failures are never a silent pass: they show as `temperror`, and when
//! they keep DMARC from deciding, the message is deferred (451 4.7.5).

use std::net::IpAddr;

use mail_auth::common::crypto::HashAlgorithm;
use mail_auth::dkim::{Canonicalization, DkimError};
use mail_auth::{ArcOutput, AuthenticatedMessage, DkimOutput, DkimResult, MessageAuthenticator};
use message::spool::Spooled;

use crate::aggregate::{Published, Recordable, Row};
use crate::dmarc::{self, DmarcResult, Evaluation, Identities, Policy, Record};
use crate::psl::PublicSuffixList;
use crate::results::{Clause, header};
use crate::sign::ArcKey;
use crate::spf::{self, SpfOutcome, SpfRequest, SpfResult};
use mail_auth::AuthenticationResults;
use mail_auth::arc::ArcSealer;
use mail_auth::common::headers::HeaderWriter;

/// hardening.md C-OB11: DKIM signatures checked per message.
pub const MAX_DKIM_SIGNATURES: usize = 5;

#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Our authserv-id: the host name.
    pub authserv_id: String,
    /// Refuse an SPF `fail` at MAIL FROM (550 5.7.23) and defer its
    /// `temperror` (451 4.7.24).
    pub spf_reject: bool,
    /// Act on DMARC `p=reject` / `p=quarantine`; false: only mark.
    pub dmarc_enforce: bool,
    /// ARC sealers whose chain may override a DMARC failure (RFC 8617 §7.2).
    pub trusted_arc_sealers: Vec<String>,
    /// Refuse a message without exactly one From: field holding an address
    /// with a domain (550 5.7.1 saying which); false: accept it unevaluated.
    pub require_from: bool,
}

/// Why sender authentication turns a message away. Typed, never a reply
/// code: the protocol that asked maps it to its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthProblem {
    /// SPF `fail` (RFC 7208 §8.4), with the domain's explanation if any.
    SpfFail {
        domain: String,
        ip: IpAddr,
        explanation: Option<String>,
    },
    /// SPF `temperror`: try again later.
    SpfTemporary { domain: String },
    /// The From: domain's DMARC policy is `reject` and the message failed.
    DmarcReject { domain: String },
    /// A DNS failure kept DMARC from deciding: try again later.
    DmarcTemporary { domain: String },
    /// No single From: address DMARC could evaluate (RFC 7489 §6.6.1).
    NoUsableFrom(String),
}

impl AuthProblem {
    /// Whether the sender should try again later (a DNS failure).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            AuthProblem::SpfTemporary { .. } | AuthProblem::DmarcTemporary { .. }
        )
    }
}

impl std::fmt::Display for AuthProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthProblem::SpfFail {
                explanation: Some(x),
                ..
            } => write!(f, "SPF: {}", x.chars().take(200).collect::<String>()),
            AuthProblem::SpfFail { domain, ip, .. } => {
                write!(f, "SPF: {domain} does not allow {ip} to send its mail")
            }
            AuthProblem::SpfTemporary { domain } => {
                write!(
                    f,
                    "SPF: temporary DNS failure for {domain}; try again later"
                )
            }
            AuthProblem::DmarcReject { domain } => {
                write!(f, "rejected by the DMARC policy of {domain}")
            }
            AuthProblem::DmarcTemporary { domain } => write!(
                f,
                "DMARC: temporary DNS failure checking {domain}; try again later"
            ),
            AuthProblem::NoUsableFrom(why) => f.write_str(why),
        }
    }
}

/// What to do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// DMARC quarantine: into the Junk folder.
    Junk,
    Refuse(AuthProblem),
}

/// What is known once the envelope sender is.
#[derive(Debug)]
pub struct SenderChecks {
    pub ip: IpAddr,
    pub helo: String,
    /// The reverse-path, empty for `<>`.
    pub mail_from: String,
    iprev: Iprev,
    spf: SpfOutcome,
}

/// RFC 8601 §3: forward-confirmed reverse DNS of the client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iprev {
    /// This PTR name resolves back to the address.
    Pass(String),
    Fail(String),
    TempError(String),
}

impl SenderChecks {
    pub fn spf(&self) -> &SpfOutcome {
        &self.spf
    }

    pub fn iprev(&self) -> &Iprev {
        &self.iprev
    }
}

/// The outcome for a whole message.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `Authentication-Results: ...\r\n`, to put on top of the message.
    pub header: String,
    pub action: Action,
    /// One evaluation per From: domain (for DMARC reports).
    pub dmarc: Vec<Evaluation>,
    /// The ARC set to put on top of a message we forward (empty otherwise).
    pub arc_set: String,
    /// The evaluations whose domains asked for aggregate reports (`rua=`).
    pub reports: Vec<Recordable>,
}

pub struct Verifier {
    ma: MessageAuthenticator,
    dns: dns::Resolver,
    psl: std::sync::Arc<PublicSuffixList>,
    cfg: VerifyConfig,
}

impl Verifier {
    pub fn new(
        dns: dns::Resolver,
        psl: std::sync::Arc<PublicSuffixList>,
        cfg: VerifyConfig,
    ) -> Verifier {
        Verifier {
            ma: MessageAuthenticator(dns.hickory()),
            dns,
            psl,
            cfg,
        }
    }

    pub fn psl(&self) -> &PublicSuffixList {
        &self.psl
    }

    /// iprev (RFC 8601 §3) and SPF (RFC 7208) for the MAIL FROM identity, or the
    /// HELO identity for the null reverse-path (RFC 7208 §2.4).
    pub async fn sender(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SenderChecks {
        let iprev = self.iprev(ip).await;
        let request = SpfRequest {
            ip,
            helo,
            mail_from,
            receiver: &self.cfg.authserv_id,
            now: message::date::unix_now(),
        };
        let spf = spf::check(&self.dns, &request).await;
        SenderChecks {
            ip,
            helo: helo.to_string(),
            mail_from: mail_from.to_string(),
            iprev,
            spf,
        }
    }

    /// PTR names (at most 10, as many as SPF allows for `ptr`), then their
    /// A/AAAA records must contain the address.
    async fn iprev(&self, ip: IpAddr) -> Iprev {
        let names = match self.dns.ptr(ip).await {
            Ok(n) => n,
            Err(e) if e.is_temporary() => return Iprev::TempError(e.to_string()),
            Err(_) => return Iprev::Fail("no PTR record".into()),
        };
        let mut temporary = None;
        for name in names.iter().take(10) {
            match self.dns.addresses(name).await {
                Ok(ips) if ips.contains(&ip) => return Iprev::Pass(name.clone()),
                Ok(_) => {}
                Err(e) if e.is_temporary() => temporary = Some(e.to_string()),
                Err(_) => {}
            }
        }
        match temporary {
            Some(e) => Iprev::TempError(e),
            None => Iprev::Fail(format!(
                "{} does not resolve back to {ip}",
                names.join(", ")
            )),
        }
    }

    /// The answer to MAIL FROM when the operator refuses SPF failures.
    pub fn spf_refusal(&self, s: &SenderChecks) -> Option<AuthProblem> {
        if !self.cfg.spf_reject {
            return None;
        }
        let domain = s.spf.domain.clone();
        match s.spf.result {
            SpfResult::Fail => Some(AuthProblem::SpfFail {
                domain,
                ip: s.ip,
                explanation: s.spf.explanation.clone(),
            }),
            SpfResult::TempError => Some(AuthProblem::SpfTemporary { domain }),
            _ => None,
        }
    }

    /// DKIM, ARC and DMARC on the whole message, and the verdict; with
    /// `seal`, also the ARC set of a forwarding hop (RFC 8617 §5.1). The
    /// body is only streamed through the body hashes: a message of any
    /// size costs its header section in memory.
    pub async fn message(
        &self,
        s: &SenderChecks,
        content: &Spooled,
        seal: Option<ArcKey>,
    ) -> Verdict {
        // RFC 7489 §6.6.1 leaves mail without one usable From: to the
        // receiver: refused by default (`[policy] require_from`), else
        // accepted with no DMARC evaluation and the reason in the header.
        let (from, from_problem) = match from_domains(content.header()) {
            Ok(f) => (f, None),
            Err(refusal) if self.cfg.require_from => {
                return Verdict {
                    header: String::new(),
                    action: Action::Refuse(refusal),
                    dmarc: Vec::new(),
                    arc_set: String::new(),
                    reports: Vec::new(),
                };
            }
            Err(refusal) => (Vec::new(), Some(refusal.to_string())),
        };
        let parsed = parse_streamed(content, seal.is_some());
        let (dkim, arc) = match &parsed {
            Some(msg) => {
                let dkim = self.dkim(msg).await;
                let arc = self.ma.verify_arc(msg).await;
                (dkim, Some(arc_summary(&arc)))
            }
            None => (Vec::new(), None),
        };
        let ids = Identities {
            spf_pass: (s.spf.result == SpfResult::Pass).then(|| s.spf.domain.to_ascii_lowercase()),
            spf_temperror: s.spf.result == SpfResult::TempError,
            dkim_pass: dkim
                .iter()
                .filter(|d| d.pass)
                .map(|d| d.domain.clone())
                .collect(),
            dkim_temperror: dkim.iter().any(|d| d.temperror),
        };
        let mut evaluations = Vec::new();
        for domain in &from {
            evaluations.push(self.dmarc(domain, &ids).await);
        }
        let (action, notes) = self.decide(&mut evaluations, arc.as_ref());
        let mut clauses = self.clauses(s, &dkim, arc.as_ref(), &evaluations, &notes);
        if let Some(problem) = from_problem {
            clauses.push(Clause::new("dmarc", "none").comment(problem));
        }
        let arc_set = match (seal, &parsed) {
            (Some(key), Some(msg)) if !matches!(action, Action::Refuse(_)) => {
                self.seal(s, msg, &from, &evaluations, key).await
            }
            _ => String::new(),
        };
        Verdict {
            header: header(&self.cfg.authserv_id, &clauses),
            action,
            reports: report_rows(s, &dkim, &evaluations),
            dmarc: evaluations,
            arc_set,
        }
    }

    /// The ARC set for the next hop: ARC-Authentication-Results with what we
    /// found (iprev, SPF, DKIM, the chain so far), ARC-Message-Signature and
    /// ARC-Seal, instance numbers continuing the chain. The body hash is the
    /// streamed relaxed one (`parse_streamed`).
    async fn seal(
        &self,
        s: &SenderChecks,
        msg: &AuthenticatedMessage<'_>,
        from: &[String],
        evaluations: &[Evaluation],
        key: ArcKey,
    ) -> String {
        let dkim = self.ma.verify_dkim(msg).await;
        let arc = self.ma.verify_arc(msg).await;
        if !arc.can_be_sealed() {
            tracing::info!("ARC: the chain so far failed; not sealing");
            return String::new();
        }
        let iprev = mail_auth::IprevOutput {
            result: match &s.iprev {
                Iprev::Pass(_) => mail_auth::IprevResult::Pass,
                Iprev::Fail(_) => mail_auth::IprevResult::Fail(mail_auth::Error::NotAligned),
                Iprev::TempError(e) => {
                    mail_auth::IprevResult::TempError(mail_auth::Error::Io(e.clone()))
                }
            },
            ptr: None,
        };
        let header_from = from.first().map(String::as_str).unwrap_or_default();
        let mut results = AuthenticationResults::new(&self.cfg.authserv_id)
            .with_iprev_result(&iprev, s.ip)
            .with_spf_mailfrom_result(&spf_output(&s.spf), s.ip, &s.mail_from, &s.helo)
            .with_dkim_results(&dkim, header_from)
            .with_arc_result(&arc, s.ip);
        // RFC 8617 §4.1.1: every result we verified, DMARC included: the
        // next hop decides a DMARC override from it.
        for e in evaluations {
            results = results.with_dmarc_result(&dmarc_output(e));
        }
        let sealer = ArcSealer::from_key(key.key)
            .domain(key.domain.clone())
            .selector(key.selector.clone())
            .headers(
                crate::sign::SIGNED_HEADERS
                    .iter()
                    .skip(1)
                    .copied()
                    .chain(["DKIM-Signature"]),
            );
        match sealer.seal(msg, &results, &arc) {
            Ok(set) => set.to_header(),
            Err(e) => {
                tracing::warn!(domain = %key.domain, error = %e, "ARC: cannot seal");
                String::new()
            }
        }
    }

    /// Every signature's result.
    async fn dkim(&self, msg: &AuthenticatedMessage<'_>) -> Vec<DkimCheck> {
        let plain = self.ma.verify_dkim(msg).await;
        let mut checks: Vec<DkimCheck> = plain.iter().map(DkimCheck::from_output).collect();
        for c in checks.iter_mut().filter(|c| c.pass) {
            if let Some(why) = self.key_refuses(&c.domain, &c.selector).await {
                c.pass = false;
                c.result = "permerror".into();
                c.reason = Some(why);
            }
        }
        checks
    }

    /// RFC 6376 §3.6.1 tags of the key record that mail-auth 0.13 does not
    /// apply: `h=` (hash algorithms allowed; Tern signs and accepts SHA-256
    /// only) and `s=` (service types: `*` or `email`).
    async fn key_refuses(&self, domain: &str, selector: &str) -> Option<String> {
        let txts = self
            .dns
            .txt(&format!("{selector}._domainkey.{domain}"))
            .await
            .ok()?;
        let record = txts.iter().find(|t| t.contains("p="))?;
        for tag in record.split(';') {
            let Some((name, value)) = tag.split_once('=') else {
                continue;
            };
            let values: Vec<String> = value
                .split(':')
                .map(|v| v.trim().to_ascii_lowercase())
                .collect();
            match name.trim() {
                "h" if !values.iter().any(|v| v == "sha256") => {
                    return Some(format!("the key allows h={} only", value.trim()));
                }
                "s" if !values.iter().any(|v| v == "*" || v == "email") => {
                    return Some(format!("the key is for service s={} only", value.trim()));
                }
                _ => {}
            }
        }
        None
    }

    /// RFC 7489 §6.6.3 policy discovery, then the evaluation.
    async fn dmarc(&self, domain: &str, ids: &Identities) -> Evaluation {
        let org = self.psl.organizational_domain(domain);
        let mut found = self.dmarc_record(domain).await;
        let mut at = domain.to_string();
        if matches!(found, Ok(None)) && org != domain {
            found = self.dmarc_record(&org).await;
            at = org;
        }
        match found {
            Ok(Some(record)) => {
                let sample = rand::random_range(0..100u8);
                dmarc::evaluate(&self.psl, domain, &record, &at, ids, sample)
            }
            Ok(None) => Evaluation::without_record(domain, DmarcResult::None),
            Err(()) => Evaluation::without_record(domain, DmarcResult::TempError),
        }
    }

    /// The one DMARC record at `_dmarc.domain`; Err on a temporary DNS failure.
    async fn dmarc_record(&self, domain: &str) -> Result<Option<Record>, ()> {
        match self.dns.txt(&format!("_dmarc.{domain}")).await {
            Ok(txts) => {
                let records: Vec<Record> = txts
                    .iter()
                    .filter(|t| t.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"))
                    .filter_map(|t| Record::parse(t))
                    .collect();
                // §6.6.3: several records mean none.
                Ok((records.len() == 1)
                    .then(|| records.into_iter().next())
                    .flatten())
            }
            Err(e) if e.is_temporary() => Err(()),
            Err(_) => Ok(None),
        }
    }

    /// The action over all From: domains, the most severe winning, and notes
    /// for the header (ARC overrides, marking only).
    fn decide(
        &self,
        evaluations: &mut [Evaluation],
        arc: Option<&ArcSummary>,
    ) -> (Action, Vec<String>) {
        let mut notes = Vec::new();
        let mut action = Action::Accept;
        for e in evaluations.iter_mut() {
            if e.result == DmarcResult::TempError {
                let problem = AuthProblem::DmarcTemporary {
                    domain: e.from_domain.clone(),
                };
                return (Action::Refuse(problem), notes);
            }
            if e.disposition == Policy::None {
                continue;
            }
            // RFC 8617 §7.2: a trusted forwarder's valid chain overrides.
            if let Some(sealer) = arc.filter(|a| a.pass).and_then(|a| a.sealer.as_deref())
                && self
                    .cfg
                    .trusted_arc_sealers
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(sealer))
            {
                notes.push(format!(
                    "overridden by the ARC chain of trusted forwarder {sealer}"
                ));
                e.disposition = Policy::None;
                e.reason = Some(("trusted_forwarder", format!("arc=pass, sealed by {sealer}")));
                continue;
            }
            if !self.cfg.dmarc_enforce {
                notes.push("not enforced here".to_string());
                e.disposition = Policy::None;
                e.reason = Some(("local_policy", "DMARC not enforced here".to_string()));
                continue;
            }
            match e.disposition {
                Policy::Reject => {
                    let problem = AuthProblem::DmarcReject {
                        domain: e.from_domain.clone(),
                    };
                    return (Action::Refuse(problem), notes);
                }
                Policy::Quarantine => action = Action::Junk,
                Policy::None => {}
            }
        }
        (action, notes)
    }

    fn clauses(
        &self,
        s: &SenderChecks,
        dkim: &[DkimCheck],
        arc: Option<&ArcSummary>,
        evaluations: &[Evaluation],
        notes: &[String],
    ) -> Vec<Clause> {
        let mut out = Vec::new();
        let ip = s.ip.to_string();
        let iprev = match &s.iprev {
            Iprev::Pass(name) => Clause::new("iprev", "pass").comment(name.clone()),
            Iprev::Fail(why) => Clause::new("iprev", "fail").comment(why.clone()),
            Iprev::TempError(why) => Clause::new("iprev", "temperror").comment(why.clone()),
        };
        out.push(iprev.property("policy.iprev", ip));
        // Why it did not pass: the domain's own explanation of a fail (RFC
        // 7208 §6.2), or what went wrong.
        let spf = Clause::new("spf", s.spf.result.as_str());
        let spf = match (&s.spf.explanation, s.spf.result) {
            (_, SpfResult::Pass) => spf,
            (Some(x), _) => spf.comment(x.clone()),
            (None, _) => spf.comment(s.spf.reason.clone()),
        };
        out.push(if s.mail_from.is_empty() {
            spf.property("smtp.helo", s.helo.clone())
        } else {
            spf.property("smtp.mailfrom", s.mail_from.clone())
        });
        if dkim.is_empty() {
            out.push(Clause::new("dkim", "none"));
        }
        for d in dkim {
            let mut c = Clause::new("dkim", d.result.clone());
            if let Some(r) = &d.reason {
                c = c.comment(r.clone());
            }
            if !d.domain.is_empty() {
                c = c
                    .property("header.d", d.domain.clone())
                    .property("header.s", d.selector.clone());
            }
            if !d.b.is_empty() {
                c = c.property("header.b", d.b.clone());
            }
            out.push(c);
        }
        match arc {
            Some(a) if a.sets > 0 => {
                let c = Clause::new("arc", if a.pass { "pass" } else { "fail" });
                let c = match &a.sealer {
                    Some(sealer) => {
                        c.comment(format!("chain of {}, sealed last by {sealer}", a.sets))
                    }
                    None => c,
                };
                out.push(c.property("smtp.remote-ip", s.ip.to_string()));
            }
            _ => out.push(Clause::new("arc", "none")),
        }
        for e in evaluations {
            let mut comment = e.policy.map(|p| format!("p={}", p.as_str().to_uppercase()));
            if e.result == DmarcResult::Fail && !notes.is_empty() {
                comment = Some(format!(
                    "{}; {}",
                    comment.unwrap_or_default(),
                    notes.join("; ")
                ));
            }
            let mut c = Clause::new("dmarc", e.result.as_str());
            if let Some(comment) = comment {
                c = c.comment(comment);
            }
            out.push(c.property("header.from", e.from_domain.clone()));
        }
        out
    }
}

/// The aggregate report row of each evaluation whose record has `rua=`
/// (RFC 7489 §7.2, Appendix C).
fn report_rows(
    s: &SenderChecks,
    dkim: &[DkimCheck],
    evaluations: &[Evaluation],
) -> Vec<Recordable> {
    let scope = if s.mail_from.is_empty() {
        "helo"
    } else {
        "mfrom"
    };
    let spf_result = (
        s.spf.domain.to_ascii_lowercase(),
        scope.to_string(),
        s.spf.result.as_str().to_string(),
    );
    let dkim_results: Vec<(String, String, String)> = dkim
        .iter()
        .map(|d| {
            (
                d.domain.to_ascii_lowercase(),
                d.selector.clone(),
                d.result.clone(),
            )
        })
        .collect();
    evaluations
        .iter()
        .filter_map(|e| {
            let (domain, record) = e.published.as_ref().filter(|(_, r)| !r.rua.is_empty())?;
            Some(Recordable {
                published: Published::new(domain, record),
                rua: record.rua.clone(),
                row: Row {
                    source_ip: s.ip,
                    disposition: e.disposition.as_str().to_string(),
                    dkim: e.dkim_aligned,
                    spf: e.spf_aligned,
                    reasons: e
                        .reason
                        .iter()
                        .map(|(kind, comment)| (kind.to_string(), comment.clone()))
                        .collect(),
                    header_from: e.from_domain.to_ascii_lowercase(),
                    envelope_from: spf_result.0.clone(),
                    dkim_results: dkim_results.clone(),
                    spf_result: spf_result.clone(),
                },
            })
        })
        .collect()
}

/// Our DMARC evaluation in mail-auth's form, for the ARC-Authentication-
/// Results it writes (`dmarc=` and `header.from`; mail-auth prints
/// `policy.dmarc` only from evaluations of its own, so that stays "none").
fn dmarc_output(e: &Evaluation) -> mail_auth::DmarcOutput {
    use mail_auth::DmarcResult as M;
    let aligned = |yes: bool| match e.result {
        DmarcResult::None => M::None,
        DmarcResult::TempError => {
            M::TempError(mail_auth::Error::Io("temporary DNS failure".into()))
        }
        _ if yes => M::Pass,
        _ => M::Fail(mail_auth::Error::NotAligned),
    };
    mail_auth::DmarcOutput::new(e.from_domain.clone())
        .with_spf_result(aligned(e.spf_aligned))
        .with_dkim_result(aligned(e.dkim_aligned))
}

/// Our SPF outcome in mail-auth's form, for the ARC-Authentication-Results
/// it writes.
fn spf_output(spf: &SpfOutcome) -> mail_auth::SpfOutput {
    use mail_auth::SpfResult as M;
    let result = match spf.result {
        SpfResult::Pass => M::Pass,
        SpfResult::Fail => M::Fail,
        SpfResult::SoftFail => M::SoftFail,
        SpfResult::Neutral => M::Neutral,
        SpfResult::TempError => M::TempError,
        SpfResult::PermError => M::PermError,
        SpfResult::None => M::None,
    };
    mail_auth::SpfOutput::new(spf.domain.clone()).with_result(result)
}

/// The message as mail-auth sees it: its header section parsed, the body
/// hashes its signatures ask for (and, for sealing, relaxed SHA-256)
/// computed by streaming the body from the spool (`body_hash`). Our
/// canonicalization follows RFC 6376 §3.4.4 where mail-auth 0.13's does
/// not (it counts trailing whitespace-only lines in relaxed mode).
fn parse_streamed(content: &Spooled, sealing: bool) -> Option<AuthenticatedMessage<'_>> {
    let mut msg = AuthenticatedMessage::parse(content.header())?;
    bound(&mut msg);
    let relaxed = (Canonicalization::Relaxed, HashAlgorithm::Sha256, 0);
    if sealing
        && !msg
            .body_hashes
            .iter()
            .any(|(c, h, l, _)| (*c, *h, *l) == relaxed)
    {
        msg.body_hashes
            .push((relaxed.0, relaxed.1, relaxed.2, Vec::new()));
    }
    for (cb, ha, l, bh) in &mut msg.body_hashes {
        match crate::body_hash::body_hash(content, *cb, *ha, *l) {
            Ok(hash) => *bh = hash,
            Err(e) => {
                // The spool could not be read: no signature can pass.
                tracing::warn!(error = %e, "DKIM: cannot read the message body");
                bh.clear();
            }
        }
    }
    Some(msg)
}

/// hardening.md C-OB11: at most [`MAX_DKIM_SIGNATURES`] signatures (and
/// unreadable ones) are looked at.
fn bound(msg: &mut AuthenticatedMessage<'_>) {
    msg.dkim_headers.truncate(MAX_DKIM_SIGNATURES);
    msg.errors.truncate(MAX_DKIM_SIGNATURES);
}

/// One DKIM signature's outcome, as DMARC and the header need it.
#[derive(Debug, Clone)]
struct DkimCheck {
    result: String,
    reason: Option<String>,
    domain: String,
    selector: String,
    /// The first 8 characters of the signature (RFC 6008).
    b: String,
    pass: bool,
    temperror: bool,
}

impl DkimCheck {
    /// mail-auth's outcome in RFC 8601 words. A body hash mismatch is a
    /// failure (RFC 6376 §6.1.3 PERMFAIL), though mail-auth says neutral; an
    /// `l=` signature is neutral: mail-auth refuses to trust a partial body
    /// hash at all (hardening.md C-OB11).
    fn from_output(out: &DkimOutput<'_>) -> DkimCheck {
        let sig = out.signature();
        let (result, reason) = match out.result() {
            DkimResult::Pass => ("pass", None),
            DkimResult::Neutral(e @ mail_auth::Error::Dkim(DkimError::FailedBodyHashMatch)) => {
                ("fail", Some(e.to_string()))
            }
            DkimResult::Neutral(e) => ("neutral", Some(e.to_string())),
            DkimResult::Fail(e) => ("fail", Some(e.to_string())),
            DkimResult::PermError(e) => ("permerror", Some(e.to_string())),
            DkimResult::TempError(e) => ("temperror", Some(e.to_string())),
            DkimResult::None => ("none", None),
        };
        use base64::Engine;
        DkimCheck {
            result: result.to_string(),
            reason,
            domain: sig.map(|s| s.d.to_ascii_lowercase()).unwrap_or_default(),
            selector: sig.map(|s| s.s.clone()).unwrap_or_default(),
            b: sig
                .map(|s| {
                    base64::engine::general_purpose::STANDARD
                        .encode(&s.b)
                        .chars()
                        .take(8)
                        .collect()
                })
                .unwrap_or_default(),
            pass: result == "pass",
            temperror: result == "temperror",
        }
    }
}

/// What matters of an ARC chain: valid or not, how long, who sealed last.
#[derive(Debug, Clone)]
struct ArcSummary {
    pass: bool,
    sets: usize,
    sealer: Option<String>,
}

fn arc_summary(arc: &ArcOutput<'_>) -> ArcSummary {
    ArcSummary {
        pass: *arc.result() == DkimResult::Pass,
        sets: arc.sets().len(),
        sealer: arc
            .sets()
            .last()
            .map(|s| s.seal.header.d.to_ascii_lowercase()),
    }
}

/// The From: domains DMARC evaluates (RFC 7489 §6.6.1), read by Tern's strict
/// header reader (not mail-parser: dependencies.md). A message must have
/// exactly one From: field (RFC 5322 §3.6) with at least one address.
pub fn from_domains(data: &[u8]) -> Result<Vec<String>, AuthProblem> {
    let refuse = |text: &str| AuthProblem::NoUsableFrom(text.to_string());
    let fields = message::header::fields_named(data, "From");
    let [field] = fields.as_slice() else {
        return Err(refuse(&format!(
            "a message needs exactly one From: field (RFC 5322 §3.6); this one has {}",
            fields.len()
        )));
    };
    let mut domains: Vec<String> = Vec::new();
    for a in message::header::addresses(field.value) {
        let Some(d) = a.domain().name() else {
            return Err(refuse("the From: address has no domain name"));
        };
        let d = d.to_ascii_lowercase();
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    if domains.is_empty() {
        return Err(refuse("the From: field has no address Tern can read"));
    }
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_rules() {
        assert_eq!(
            from_domains(b"From: a@A.test\r\n\r\nx").unwrap(),
            ["a.test"]
        );
        assert_eq!(
            from_domains(b"From: a@a.test, b@b.test, c@a.test\r\n\r\nx").unwrap(),
            ["a.test", "b.test"]
        );
        assert!(from_domains(b"Subject: none\r\n\r\nx").is_err());
        assert!(from_domains(b"From: a@a.test\r\nFrom: b@b.test\r\n\r\nx").is_err());
        assert!(from_domains(b"From: nobody\r\n\r\nx").is_err());
        // "Fr om" is not a From: field, so this message has none.
        assert!(from_domains(b"Fr om: a@a.test\r\n\r\nx").is_err());
    }
}
