//! The inbound check pipeline: what the SMTP session asks at each stage,
//! and what it gets back. A stage either lets the transaction go on (maybe
//! adding scored [`Hit`]s to its [`Assessment`]) or returns an
//! [`Objection`]; the session maps objections to replies.
//!
//! | stage | checks |
//! |---|---|
//! | client (first MAIL) | exempt networks, DNS allow lists, DNS block lists (RFC 5782) |
//! | MAIL | iprev and SPF (via `policy`), HELO rules; submission: hourly limits |
//! | RCPT | a deciding block list refuses; greylisting (RFC 6647) |
//! | end of DATA | DKIM, ARC, DMARC (via `policy`), content rules, domain lists, Bayes; the total decides |
//!
//! Submission is not checked for spam on the way in (the user is known),
//! but what it sends is counted and scored for the compromised-account hold.

use std::net::IpAddr;
use std::sync::Arc;

use clock::Clock;
use dns::Resolver;
use message::spool::Spooled;
use net::Cidr;
use policy::sign::ArcKey;
use policy::verify::{Action, SenderChecks, Verifier};
use store::antispam::Sent;
use store::{AccountId, Store};

use crate::bayes::Bayes;
use crate::dnsbl::{self, DnsList};
use crate::greylist::{Answer, Greylist, GreylistConfig};
use crate::limits::{self, HoldReason, SendingLimits};
use crate::objection::Objection;
use crate::rules;
use crate::score::{self, Disposition, Hit, Thresholds};

/// `[antispam]` and `[limits]` of the configuration.
#[derive(Debug, Clone)]
pub struct AntispamConfig {
    /// Our host name (HELO and Received checks, the header).
    pub hostname: String,
    /// None: no greylisting.
    pub greylist: Option<GreylistConfig>,
    pub dnsbl: Vec<DnsList>,
    pub dnswl: Vec<DnsList>,
    /// Domain lists (DBL style) for the sender, From: and link domains.
    pub domain_lists: Vec<DnsList>,
    /// Networks that skip greylisting and block lists.
    pub exempt: Vec<Cidr>,
    pub thresholds: Thresholds,
    pub bayes: bool,
    /// Points a DNS allow list is worth (negative).
    pub dnswl_score: f64,
    pub limits: SendingLimits,
    /// Postscreen's pregreet test on the MX: how long the greeting waits
    /// for the client to stay silent (None: no test).
    pub pregreet_wait: Option<std::time::Duration>,
}

impl Default for AntispamConfig {
    fn default() -> Self {
        AntispamConfig {
            hostname: "localhost".into(),
            greylist: None,
            dnsbl: Vec::new(),
            dnswl: Vec::new(),
            domain_lists: Vec::new(),
            exempt: Vec::new(),
            thresholds: Thresholds::default(),
            bayes: true,
            dnswl_score: -2.0,
            limits: SendingLimits::default(),
            pregreet_wait: None,
        }
    }
}

/// What is known of the client, once per connection (and again after
/// XCLIENT names another one).
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    pub exempt: bool,
    /// DNS allow lists naming it.
    pub allowed: Vec<String>,
    /// DNS block lists naming it.
    pub listed: Vec<DnsList>,
}

impl Client {
    /// Skips greylisting and block lists.
    pub fn trusted(&self) -> bool {
        self.exempt || !self.allowed.is_empty()
    }
}

/// What the checks learned of one transaction.
#[derive(Debug, Default)]
pub struct Assessment {
    /// iprev and SPF (None on submission or without sender authentication).
    pub sender: Option<SenderChecks>,
    pub hits: Vec<Hit>,
}

/// The outcome of the end of DATA for a message the MX takes.
#[derive(Debug, Clone)]
pub struct DataVerdict {
    /// Authentication-Results (and an ARC set when forwarding), to put on top.
    pub auth_header: String,
    /// DMARC quarantine: Junk for everyone.
    pub quarantine: bool,
    pub dmarc: Vec<policy::dmarc::Evaluation>,
    /// Every rule that fired, for the log line.
    pub hits: Vec<Hit>,
    pub score: f64,
    /// Per local account: its own verdict.
    pub accounts: Vec<AccountVerdict>,
}

/// One local account's verdict on a message.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountVerdict {
    pub account: AccountId,
    /// To the Junk folder.
    pub junk: bool,
    /// Its `X-Spam-Status:` field (CRLF ended).
    pub field: String,
    /// RFC 5235 scale: 1 (not spam) to 10.
    pub level: u8,
    /// 0 to 100.
    pub percent: u8,
}

/// How long the list of our domains is kept in memory.
const DOMAINS_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Clients that passed the pregreet test lately (skip it for a day), bounded.
const PREGREET_MEMORY: usize = 100_000;

/// How much of a message the content rules and the Bayesian filter read:
/// its beginning, header section included (the tokens take at most 512 KiB
/// of decoded text anyway). A large message is never read whole for them
/// (hardening.md C-FT9).
pub const CONTENT_VIEW: usize = 1024 * 1024;
const PREGREET_PASS_FOR: i64 = 86_400;

/// What [`Checks::classify`] found.
#[derive(Debug, Clone)]
pub struct Classified {
    pub hits: Vec<Hit>,
    pub bayes: Option<crate::bayes::Classification>,
    pub disposition: Disposition,
}

pub struct Checks {
    cfg: AntispamConfig,
    domains: std::sync::Mutex<Option<(std::time::Instant, Arc<Vec<String>>)>>,
    pregreet_passed: std::sync::Mutex<std::collections::HashMap<IpAddr, i64>>,
    verifier: Option<Arc<Verifier>>,
    resolver: Resolver,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    greylist: Option<Greylist>,
    bayes: Bayes,
}

impl Checks {
    pub fn new(
        cfg: AntispamConfig,
        verifier: Option<Arc<Verifier>>,
        resolver: Resolver,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Checks {
        let greylist = cfg
            .greylist
            .map(|g| Greylist::new(store.clone(), clock.clone(), g));
        Checks {
            domains: std::sync::Mutex::default(),
            pregreet_passed: std::sync::Mutex::default(),
            bayes: Bayes::new(store.clone()),
            cfg,
            verifier,
            resolver,
            store,
            clock,
            greylist,
        }
    }

    pub fn config(&self) -> &AntispamConfig {
        &self.cfg
    }

    pub fn bayes(&self) -> &Bayes {
        &self.bayes
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Whether this client's greeting waits for the pregreet test: not for
    /// exempt networks, nor for a client that passed it within a day.
    pub fn pregreet_wait(&self, ip: IpAddr) -> Option<std::time::Duration> {
        let wait = self.cfg.pregreet_wait?;
        if self.cfg.exempt.iter().any(|c| c.contains(ip)) {
            return None;
        }
        let passed = self
            .pregreet_passed
            .lock()
            .ok()
            .and_then(|m| m.get(&ip).copied())
            .is_some_and(|at| self.clock.now() - at < PREGREET_PASS_FOR);
        (!passed).then_some(wait)
    }

    /// The client kept silent through the pregreet wait.
    pub fn pregreet_passed(&self, ip: IpAddr) {
        if let Ok(mut m) = self.pregreet_passed.lock() {
            if m.len() >= PREGREET_MEMORY {
                m.clear();
            }
            m.insert(ip, self.clock.now());
        }
    }

    /// The client: exempt, or looked up in the DNS lists (side by side).
    pub async fn client(&self, ip: IpAddr) -> Client {
        let exempt = self.cfg.exempt.iter().any(|c| c.contains(ip));
        if exempt {
            return Client {
                ip: Some(ip),
                exempt,
                ..Client::default()
            };
        }
        let (allowed, listed) = tokio::join!(
            dnsbl::address_listed(&self.resolver, &self.cfg.dnswl, ip),
            dnsbl::address_listed(&self.resolver, &self.cfg.dnsbl, ip),
        );
        Client {
            ip: Some(ip),
            exempt,
            allowed: allowed.into_iter().map(|l| l.zone).collect(),
            listed,
        }
    }

    /// MAIL on the MX: iprev and SPF (an SPF refusal if the operator wants
    /// one), and the scored signals of the session so far.
    pub async fn mail(
        &self,
        client: &Client,
        helo: &str,
        sender: &str,
    ) -> Result<Assessment, Objection> {
        let Some(ip) = client.ip else {
            return Ok(Assessment::default());
        };
        let mut a = Assessment::default();
        if let Some(v) = &self.verifier {
            let checks = v.sender(ip, helo, sender).await;
            if let Some(problem) = v.spf_refusal(&checks) {
                return Err(Objection::Auth(problem));
            }
            a.hits.extend(sender_hits(&checks));
            a.sender = Some(checks);
        }
        let domains = self.local_domains().await;
        a.hits
            .extend(rules::session(helo, ip, &self.cfg.hostname, &domains));
        if !client.allowed.is_empty() {
            a.hits.push(Hit::new(
                "RCVD_IN_DNSWL",
                self.cfg.dnswl_score,
                client.allowed.join(", "),
            ));
        }
        for list in client.listed.iter().filter(|l| l.score.is_some()) {
            a.hits.push(Hit::new(
                "RCVD_IN_DNSBL",
                list.score.unwrap_or_default(),
                list.zone.clone(),
            ));
        }
        Ok(a)
    }

    /// RCPT on the MX: a block list that decides alone refuses (here, so
    /// the log shows sender and recipient); then greylisting.
    pub async fn rcpt(
        &self,
        client: &Client,
        sender: &str,
        recipient: &str,
    ) -> Result<(), Objection> {
        let Some(ip) = client.ip else {
            return Ok(());
        };
        if client.trusted() {
            return Ok(());
        }
        let deciding: Vec<String> = client
            .listed
            .iter()
            .filter(|l| l.score.is_none_or(|s| s >= self.cfg.thresholds.reject))
            .map(|l| l.zone.clone())
            .collect();
        if !deciding.is_empty() {
            return Err(Objection::Listed {
                ip,
                lists: deciding,
            });
        }
        if let Some(g) = &self.greylist
            && let Answer::Defer(wait) = g.check(ip, sender, recipient).await
        {
            return Err(Objection::Greylisted { wait });
        }
        Ok(())
    }

    /// The end of DATA on the MX: sender authentication of the message, the
    /// content, the score; per recipient account its own Bayes verdict.
    pub async fn data(
        &self,
        a: &mut Assessment,
        content: &Spooled,
        envelope_sender: &str,
        seal: Option<ArcKey>,
        accounts: &[AccountId],
    ) -> Result<DataVerdict, Objection> {
        let mut verdict = DataVerdict {
            auth_header: String::new(),
            quarantine: false,
            dmarc: Vec::new(),
            hits: Vec::new(),
            score: 0.0,
            accounts: Vec::new(),
        };
        if let (Some(v), Some(sender)) = (&self.verifier, &a.sender) {
            let auth = v.message(sender, content, seal).await;
            // Reported whatever happens next, refusals included (RFC 7489 §7.2).
            self.record_evaluations(&auth.reports);
            match auth.action {
                Action::Refuse(problem) => return Err(Objection::Auth(problem)),
                Action::Junk => verdict.quarantine = true,
                Action::Accept => {}
            }
            a.hits.extend(dmarc_hits(&auth.dmarc));
            verdict.auth_header = auth.arc_set + &auth.header;
            verdict.dmarc = auth.dmarc;
        }
        let domains = self.local_domains().await;
        let ctx = rules::Context {
            hostname: &self.cfg.hostname,
            local_domains: &domains,
            now: self.clock.now(),
        };
        // One parse for the rules and the tokens (which only the Bayesian
        // filter and the domain lists need).
        let want_tokens = self.cfg.bayes || !self.cfg.domain_lists.is_empty();
        let view = content.view(CONTENT_VIEW).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "spool: cannot read the message; checking its head only");
            bytes::Bytes::copy_from_slice(content.head())
        });
        let raw = &view[..];
        let (content_hits, words) = {
            let parsed = message::parsed::parse(raw);
            let words = match want_tokens {
                true => crate::tokens::of_message(raw, parsed.message()),
                false => Vec::new(),
            };
            (rules::content_of(raw, parsed.message(), &ctx), words)
        };
        a.hits.extend(content_hits);
        a.hits
            .extend(self.domain_list_hits(raw, envelope_sender, &words).await);
        let shared = match self.cfg.bayes {
            true => self
                .bayes
                .classify_tokens(None, &words)
                .await
                .ok()
                .flatten(),
            false => None,
        };
        let mut hits = a.hits.clone();
        hits.extend(shared.as_ref().map(|c| c.hit()));
        let score = score::total(&hits);
        if self.cfg.thresholds.disposition(score) == Disposition::Reject {
            return Err(Objection::Spam {
                score,
                rules: score::rule_list(&hits),
            });
        }
        for account in accounts {
            // Only an account with its own trained table is asked again.
            let own = match self.cfg.bayes && self.bayes.has_own_table(*account).await {
                true => self
                    .bayes
                    .classify_tokens(Some(*account), &words)
                    .await
                    .ok()
                    .flatten(),
                false => None,
            };
            let mine: Vec<Hit> = match own {
                Some(c) => a.hits.iter().cloned().chain([c.hit()]).collect(),
                None => hits.clone(),
            };
            let mine_score = score::total(&mine);
            let junk = verdict.quarantine
                || self.cfg.thresholds.disposition(mine_score) != Disposition::Inbox;
            let (level, percent) = score::spam_scale(mine_score, &self.cfg.thresholds);
            verdict.accounts.push(AccountVerdict {
                account: *account,
                junk,
                field: score::status_field(&mine, &self.cfg.thresholds),
                level,
                percent,
            });
        }
        verdict.score = score;
        verdict.hits = hits;
        Ok(verdict)
    }

    /// RFC 7489 §7.2: keep the evaluations that the From: domains want
    /// reported. In the background: the answer to the client does not wait.
    fn record_evaluations(&self, reports: &[policy::aggregate::Recordable]) {
        if reports.is_empty() {
            return;
        }
        let now = self.clock.now();
        let rows: Vec<_> = reports.iter().map(|r| r.to_store(now)).collect();
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_evaluations(rows).await {
                tracing::warn!(error = %e, "DMARC: cannot record evaluations for reports");
            }
        });
    }

    /// Domain lists for the envelope sender's domain, the From: domain and
    /// the hosts links point to (at most ten names asked).
    async fn domain_list_hits(
        &self,
        raw: &[u8],
        envelope_sender: &str,
        words: &[String],
    ) -> Vec<Hit> {
        if self.cfg.domain_lists.is_empty() {
            return Vec::new();
        }
        let mut names: Vec<String> = Vec::new();
        let mut add = |d: &str| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !d.is_empty() && !names.contains(&d) && names.len() < 10 {
                names.push(d);
            }
        };
        if let Some((_, d)) = envelope_sender.rsplit_once('@') {
            add(d);
        }
        if let Ok(from) = policy::verify::from_domains(raw) {
            from.iter().for_each(|d| add(d));
        }
        for t in words {
            if let Some(host) = t.strip_prefix("url:").filter(|h| h.contains('.')) {
                add(host);
            }
        }
        let mut hits = Vec::new();
        for name in names {
            for list in dnsbl::domain_listed(&self.resolver, &self.cfg.domain_lists, &name).await {
                hits.push(Hit::new(
                    "DOMAIN_IN_DBL",
                    list.score.unwrap_or(3.0),
                    format!("{name} on {}", list.zone),
                ));
            }
        }
        hits
    }

    /// Our domains (the rules compare names against them), read again at
    /// most every [`DOMAINS_FOR`]: asking the store for every message would
    /// cost more than all the rules.
    async fn local_domains(&self) -> Arc<Vec<String>> {
        if let Ok(cache) = self.domains.lock()
            && let Some((at, domains)) = cache.as_ref()
            && at.elapsed() < DOMAINS_FOR
        {
            return domains.clone();
        }
        let domains: Arc<Vec<String>> = Arc::new(
            self.store
                .list_domains()
                .await
                .map(|d| d.into_iter().map(|d| d.name.to_ascii_lowercase()).collect())
                .unwrap_or_default(),
        );
        if let Ok(mut cache) = self.domains.lock() {
            *cache = Some((std::time::Instant::now(), domains.clone()));
        }
        domains
    }

    /// Submission: the hourly limits of an authenticated user (MAIL, with
    /// the recipients so far at RCPT).
    pub async fn sending_allowed(&self, account: &str, recipients: u64) -> Result<(), Objection> {
        let limits = &self.cfg.limits;
        let Ok(s) = self.store.sending_stats(account, self.clock.now()).await else {
            return Ok(());
        };
        if s.messages_last_hour >= limits.messages_per_hour {
            return Err(Objection::RateLimited {
                what: "messages",
                limit: limits.messages_per_hour,
            });
        }
        if s.recipients_last_hour + recipients > limits.recipients_per_hour {
            return Err(Objection::RateLimited {
                what: "recipients",
                limit: limits.recipients_per_hour,
            });
        }
        Ok(())
    }

    /// Submission accepted: count it (its recipient domains, whether its
    /// content scores as spam) and hold the account if its sending now
    /// looks compromised. Some(reason) when this submission started a hold.
    pub async fn submitted(
        &self,
        account: &str,
        domains: Vec<String>,
        recipients: u64,
        raw: &[u8],
    ) -> Option<HoldReason> {
        let now = self.clock.now();
        let spam = self.outgoing_score(raw).await >= self.cfg.thresholds.junk;
        let sent = Sent {
            account: account.to_string(),
            now,
            recipients,
            domains,
            spam,
        };
        if let Err(e) = self.store.record_sent(sent).await {
            tracing::warn!(%account, error = %e, "cannot record sending");
            return None;
        }
        let stats = self.store.sending_stats(account, now).await.ok()?;
        let reason = limits::hold_reason(&stats, &self.cfg.limits.hold)?;
        if self.store.is_held(account).await.unwrap_or(false) {
            return None;
        }
        match self.store.set_held(account, true, now).await {
            Ok(n) => {
                tracing::warn!(%account, %reason, queued = n, "outgoing mail held: the account looks compromised");
                Some(reason)
            }
            Err(e) => {
                tracing::warn!(%account, error = %e, "cannot hold the account");
                None
            }
        }
    }

    /// How spammy a message we send looks: content rules and the shared
    /// Bayes table.
    pub async fn outgoing_score(&self, raw: &[u8]) -> f64 {
        score::total(&self.classify(None, raw).await.hits)
    }

    /// What the content says of a message for an account (None: the
    /// shared table): the rules that fire, the Bayes verdict, and where it
    /// would go. No session signals (`tern spam classify`, outgoing mail).
    pub async fn classify(&self, account: Option<AccountId>, raw: &[u8]) -> Classified {
        let domains = self.local_domains().await;
        let ctx = rules::Context {
            hostname: &self.cfg.hostname,
            local_domains: &domains,
            now: self.clock.now(),
        };
        let mut hits = rules::content(raw, &ctx);
        let bayes = match self.cfg.bayes {
            true => self.bayes.classify(account, raw).await.ok().flatten(),
            false => None,
        };
        hits.extend(bayes.as_ref().map(|c| c.hit()));
        let disposition = self.cfg.thresholds.disposition(score::total(&hits));
        Classified {
            hits,
            bayes,
            disposition,
        }
    }
}

/// iprev and SPF as scored signals.
fn sender_hits(s: &SenderChecks) -> Vec<Hit> {
    use policy::spf::SpfResult;
    let mut hits = Vec::new();
    if let policy::verify::Iprev::Fail(why) = s.iprev() {
        hits.push(Hit::new("IPREV_FAIL", 1.0, why.clone()));
    }
    let spf = s.spf();
    match spf.result {
        SpfResult::Fail => hits.push(Hit::new("SPF_FAIL", 3.0, spf.domain.clone())),
        SpfResult::SoftFail => hits.push(Hit::new("SPF_SOFTFAIL", 1.0, spf.domain.clone())),
        SpfResult::PermError => hits.push(Hit::new("SPF_PERMERROR", 0.5, spf.domain.clone())),
        _ => {}
    }
    hits
}

/// DMARC as scored signals (its policy acts on its own: reject, quarantine).
fn dmarc_hits(evaluations: &[policy::dmarc::Evaluation]) -> Vec<Hit> {
    use policy::dmarc::DmarcResult;
    evaluations
        .iter()
        .filter_map(|e| match e.result {
            DmarcResult::Pass => Some(Hit::new("DMARC_PASS", -1.0, e.from_domain.clone())),
            DmarcResult::Fail => Some(Hit::new("DMARC_FAIL", 2.0, e.from_domain.clone())),
            _ => None,
        })
        .collect()
}
