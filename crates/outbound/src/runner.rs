//! The queue runner: takes due recipients from the store (leased, so a crash
//! mid-delivery only means a retry after restart: hardening.md C-FT1, C-FT12),
//! delivers per destination domain, records every attempt, reschedules or
//! fails each recipient, and sends the delivery status notifications.
//!
//! Implementation notes
//! - Time: the next attempt is stored as a Unix time for restarts, and also
//!   kept as a monotonic deadline in memory, so a clock stepping back does not
//!   stall the queue; expiry (`max_age`) counts attempts of the retry schedule,
//!   so a clock stepping forward does not bounce everything (C-FT10).
//! - Concurrency: at most `max_deliveries` messages at once, at most
//!   `max_per_domain` connections per destination domain (C-OB13).
//! - A session that delivered stays open a little while for the next message
//!   to the same domain (connection reuse).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use delivery::Mda;
use dns::{DnsError, MxPlan, Resolver};
use policy::sign::Signer;
use store::{
    Attempt, Claim, FinalRecipient, FinishedMessage, QueueJob, QueueReport, QueuedRecipient,
    RecipientOutcome, RecipientState, Store,
};
use tokio::sync::{Notify, Semaphore};

use crate::client::{ClientError, ClientSettings, OutEnvelope, OutRecipient, RcptResult, Session};
use crate::reply::Reply;
use message::dsn::{self, Action, Report, Reported};

/// How long a delivery run holds its recipients (a crashed run frees them at
/// the latest then; a restart frees them at once). Longer than [`RUN_LIMIT`].
const LEASE: i64 = 3600;
/// The longest one message may take to one domain (RFC 5321 §4.5.3.2 timeouts
/// add up over several MX hosts); then its recipients are deferred.
const RUN_LIMIT: Duration = Duration::from_secs(1800);
/// Messages claimed per pass; the next pass comes at once if there were more.
const CLAIM_BATCH: usize = 100;
/// MX hosts tried per delivery, best first (hardening.md C-OB9).
const MAX_MX_HOSTS: usize = 10;
/// Addresses tried per MX host.
const MAX_ADDRESSES_PER_HOST: usize = 4;
/// How long deliveries under way may go on after the stop signal.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long an idle session is kept for reuse.
const REUSE_FOR: Duration = Duration::from_secs(10);

/// A relay all (or some) mail goes through instead of MX lookups.
#[derive(Debug, Clone)]
pub struct Smarthost {
    pub host: String,
    pub port: u16,
    /// AUTH PLAIN credentials, sent only over TLS.
    pub credentials: Option<(String, String)>,
    /// Domains routed through it; empty: every domain.
    pub domains: Vec<String>,
}

#[derive(Clone)]
pub struct OutboundConfig {
    pub hostname: String,
    /// Intervals between attempts; the last repeats (`[queue] retry`).
    pub retry: Vec<Duration>,
    /// Give up after attempts spanning this long (`[queue] max_age`).
    pub max_age: Duration,
    /// Port of the MX hosts (`[outbound] port`; 25 outside tests).
    pub port: u16,
    pub client: ClientSettings,
    pub max_deliveries: usize,
    pub max_per_domain: usize,
    /// Our own addresses: an MX that resolves to one of them is a loop (RFC 5321 §5.1).
    pub local_ips: Vec<IpAddr>,
    pub smarthost: Option<Smarthost>,
    /// Tell the sender once when a message is still undelivered after this long.
    pub delay_warning: Option<Duration>,
}

impl OutboundConfig {
    fn interval(&self, attempts: u32) -> Duration {
        let i = (attempts as usize).min(self.retry.len().saturating_sub(1));
        self.retry
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(300))
    }

    /// How many attempts the retry schedule makes: those that start before
    /// `max_age`, and the first one after it (then the message bounces).
    pub fn max_attempts(&self) -> u32 {
        let mut offset = Duration::ZERO;
        let mut n = 0u32;
        while offset < self.max_age && n < 10_000 {
            offset += self.interval(n);
            n += 1;
        }
        n + 1
    }
}

struct Pooled {
    session: Session,
    since: Instant,
}

pub struct Runner {
    store: Arc<dyn Store>,
    mda: Arc<Mda>,
    resolver: Resolver,
    cfg: OutboundConfig,
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
    domains: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Monotonic deadlines of messages deferred by this process.
    timers: Mutex<BTreeMap<Instant, Vec<i64>>>,
    pool: Mutex<HashMap<String, Vec<Pooled>>>,
    /// DKIM signing of our reports (by the domain our host name is in).
    signer: Option<Arc<Signer>>,
}

/// The message a report is about.
struct About<'a> {
    queue_id: i64,
    sender: &'a str,
    envid: Option<&'a str>,
    ret: Option<&'a str>,
    arrival: i64,
    original: &'a [u8],
}

/// A queued recipient as a report shows it.
fn final_recipient(r: &QueuedRecipient, o: &RecipientOutcome) -> FinalRecipient {
    FinalRecipient {
        address: r.address.clone(),
        orcpt: r.orcpt.clone(),
        notify: r.notify.clone(),
        delivered: o.state == RecipientState::Delivered,
        status: o.status.clone(),
        reply: o.reply.clone(),
        remote_mta: o.remote_mta.clone(),
    }
}

/// Where mail for one domain goes.
struct Route {
    /// MX hosts in order (or the smarthost).
    hosts: Vec<String>,
    port: u16,
    /// AUTH PLAIN credentials (smarthost only).
    credentials: Option<(String, String)>,
}

/// The outcome of delivering one message to one domain.
struct DomainRun {
    attempts: Vec<Attempt>,
    results: Vec<(QueuedRecipient, RcptResult, Option<String>)>,
    /// Recipients delivered where the next hop could not carry NOTIFY=SUCCESS on.
    relayed: Vec<String>,
}

impl DomainRun {
    fn new() -> DomainRun {
        DomainRun {
            attempts: Vec::new(),
            results: Vec::new(),
            relayed: Vec::new(),
        }
    }

    /// The same answer for every recipient.
    fn settle(&mut self, rcpts: &[QueuedRecipient], reply: Reply, permanent: bool) {
        self.results = rcpts
            .iter()
            .map(|r| {
                let result = if permanent {
                    RcptResult::Permanent(reply.clone())
                } else {
                    RcptResult::Temporary(reply.clone())
                };
                (r.clone(), result, None)
            })
            .collect();
    }

    fn all_temporary(rcpts: &[QueuedRecipient], why: &str) -> DomainRun {
        let mut run = DomainRun::new();
        run.settle(rcpts, crate::client::local_reply(451, "4.4.7", why), false);
        run
    }
}

fn now() -> i64 {
    message::date::unix_now()
}

impl Runner {
    pub fn new(
        store: Arc<dyn Store>,
        mda: Arc<Mda>,
        resolver: Resolver,
        cfg: OutboundConfig,
        signer: Option<Arc<Signer>>,
    ) -> Arc<Runner> {
        let slots = Arc::new(Semaphore::new(cfg.max_deliveries.max(1)));
        let wake = mda.queued();
        Arc::new(Runner {
            store,
            mda,
            resolver,
            cfg,
            wake,
            slots,
            domains: Mutex::default(),
            timers: Mutex::default(),
            pool: Mutex::default(),
            signer,
        })
    }

    /// Deliver until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        if let Err(e) = self.store.queue_release().await {
            tracing::warn!(error = %e, "queue: cannot release old leases");
        }
        tokio::pin!(stop);
        loop {
            // A full batch with slots still free: more may be due at once.
            if self.pass().await && self.slots.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            self.close_idle_sessions();
        }
        // Let deliveries under way finish for a moment; an interrupted one is
        // retried after the restart (its lease is released then).
        let all = self.cfg.max_deliveries.max(1) as u32;
        let _ = tokio::time::timeout(STOP_GRACE, self.slots.acquire_many(all)).await;
        let idle: Vec<Pooled> = self
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .flat_map(|(_, list)| list)
            .collect();
        for p in idle {
            let _ = tokio::time::timeout(Duration::from_secs(1), p.session.quit()).await;
        }
    }

    /// One pass: claim what is due (by the clock, and by our own timers), no more
    /// than there are free delivery slots, and start it. True if the batch was
    /// full (more may be due).
    async fn pass(self: &Arc<Self>) -> bool {
        let budget = self.slots.available_permits().min(CLAIM_BATCH);
        if budget == 0 {
            return false;
        }
        let t = now();
        let mut jobs = match self
            .store
            .queue_claim(Claim::Due(t), t, t + LEASE, budget)
            .await
        {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "queue: claim failed");
                return false;
            }
        };
        for id in self.due_timers() {
            if jobs.iter().any(|j| j.id == id) {
                continue;
            }
            if jobs.len() >= budget {
                self.schedule(id, Duration::ZERO);
                continue;
            }
            if let Ok(mut more) = self
                .store
                .queue_claim(Claim::Message(id), t, t + LEASE, 1)
                .await
            {
                jobs.append(&mut more);
            }
        }
        let full = jobs.len() >= budget;
        for job in jobs {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                break;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.clone().deliver(job).await;
                drop(permit);
                // A slot is free: look at the queue again.
                me.wake.notify_one();
            });
        }
        full
    }

    /// Remember (monotonically) when a deferred message is due again.
    fn schedule(&self, id: i64, wait: Duration) {
        self.timers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(Instant::now() + wait)
            .or_default()
            .push(id);
    }

    fn due_timers(&self) -> Vec<i64> {
        let mut timers = self.timers.lock().unwrap_or_else(|p| p.into_inner());
        let later = timers.split_off(&Instant::now());
        let due = std::mem::replace(&mut *timers, later);
        due.into_values().flatten().collect()
    }

    async fn deliver(self: Arc<Self>, job: QueueJob) {
        let content = match self.store.queue_content(job.id).await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(queue = job.id, error = %e, "queue: cannot read the message");
                return;
            }
        };
        let content = Arc::new(content);
        let job = Arc::new(job);
        let mut by_domain: BTreeMap<String, Vec<QueuedRecipient>> = BTreeMap::new();
        for r in &job.recipients {
            by_domain
                .entry(r.domain.clone())
                .or_default()
                .push(r.clone());
        }
        // The domains of one message are delivered side by side.
        let mut runs = tokio::task::JoinSet::new();
        for (domain, rcpts) in by_domain {
            let (me, job, content) = (self.clone(), job.clone(), content.clone());
            runs.spawn(async move {
                let limiter = me.domain_limiter(&domain);
                let _slot = limiter.acquire().await;
                let run = tokio::time::timeout(
                    RUN_LIMIT,
                    me.deliver_domain(&job, &domain, &rcpts, &content),
                )
                .await;
                run.unwrap_or_else(|_| DomainRun::all_temporary(&rcpts, "delivery took too long"))
            });
        }
        let mut attempts = Vec::new();
        let mut settled: Vec<(QueuedRecipient, RecipientOutcome)> = Vec::new();
        let mut relayed = Vec::new();
        while let Some(run) = runs.join_next().await {
            let Ok(run) = run else { continue };
            for a in &run.attempts {
                tracing::info!(
                    queue = job.id,
                    to = %a.recipients,
                    mx = %a.mx.as_deref().unwrap_or("-"),
                    ip = %a.ip.as_deref().unwrap_or("-"),
                    tls = %a.tls.as_deref().unwrap_or("none"),
                    reply = %a.reply,
                    "delivery attempt"
                );
            }
            attempts.extend(run.attempts);
            relayed.extend(run.relayed);
            for (r, result, remote) in run.results {
                let outcome = self.outcome(&r, &result, remote);
                settled.push((r, outcome));
            }
        }
        let delayed = self.delay_warnings(&job, &mut settled);
        let relayed: Vec<FinalRecipient> = settled
            .iter()
            .filter(|(r, _)| relayed.contains(&r.address))
            .map(|(r, o)| final_recipient(r, o))
            .collect();
        let next_due = settled
            .iter()
            .filter_map(|(_, o)| match o.state {
                RecipientState::Deferred(at) => Some(at),
                _ => None,
            })
            .min();
        let report = QueueReport {
            queue_id: job.id,
            attempts,
            outcomes: settled.into_iter().map(|(_, o)| o).collect(),
        };
        let finished = match self.store.queue_report(report).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(queue = job.id, error = %e, "queue: cannot record the attempt");
                return;
            }
        };
        if let Some(at) = next_due {
            // Kept in monotonic time too (C-FT10): a clock stepping back does not stall it.
            let wait = Duration::from_secs(u64::try_from(at - now()).unwrap_or(0));
            self.schedule(job.id, wait);
        }
        self.report_progress(&job, &content, &relayed, Action::Relayed)
            .await;
        self.report_progress(&job, &content, &delayed, Action::Delayed)
            .await;
        if let Some(done) = finished {
            self.report_failures(done).await;
        }
    }

    /// The deferred recipients whose sender should now hear of the delay (once,
    /// after `delay_warning`; RFC 3461 §4.1 NOTIFY=DELAY, or no NOTIFY); they are
    /// marked warned.
    fn delay_warnings(
        &self,
        job: &QueueJob,
        settled: &mut [(QueuedRecipient, RecipientOutcome)],
    ) -> Vec<FinalRecipient> {
        let Some(after) = self.cfg.delay_warning else {
            return Vec::new();
        };
        if now() - job.created < after.as_secs() as i64 {
            return Vec::new();
        }
        let mut warn = Vec::new();
        for (r, o) in settled.iter_mut() {
            let wanted = r.notify.is_none() || dsn::wants(r.notify.as_deref(), "DELAY");
            if matches!(o.state, RecipientState::Deferred(_)) && !r.warned && wanted {
                o.warned = true;
                warn.push(final_recipient(r, o));
            }
        }
        warn
    }

    fn domain_limiter(&self, domain: &str) -> Arc<Semaphore> {
        let mut d = self.domains.lock().unwrap_or_else(|p| p.into_inner());
        d.entry(domain.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.max_per_domain.max(1))))
            .clone()
    }

    /// A recipient's new state from an answer; expiry turns a deferral into a failure.
    fn outcome(
        &self,
        r: &QueuedRecipient,
        result: &RcptResult,
        remote: Option<String>,
    ) -> RecipientOutcome {
        let (state, reply) = match result {
            RcptResult::Delivered(reply) => (RecipientState::Delivered, reply),
            RcptResult::Permanent(reply) => (RecipientState::Failed, reply),
            RcptResult::Temporary(reply) if r.attempts + 1 >= self.cfg.max_attempts() => {
                (RecipientState::Failed, reply)
            }
            RcptResult::Temporary(reply) => (
                RecipientState::Deferred(now() + self.retry_wait(r.attempts).as_secs() as i64),
                reply,
            ),
        };
        let expired = matches!(result, RcptResult::Temporary(_)) && state == RecipientState::Failed;
        let text = if expired {
            format!("{} (delivery time expired)", reply.one_line())
        } else {
            reply.one_line()
        };
        tracing::info!(address = %r.address, state = ?state, reply = %text, "recipient");
        RecipientOutcome {
            id: r.id,
            state,
            status: reply.status(),
            reply: text,
            remote_mta: remote,
            warned: false,
        }
    }

    /// The wait before the next attempt, plus up to 10% so that messages deferred
    /// together do not all come back in the same second.
    fn retry_wait(&self, attempts: u32) -> Duration {
        let base = self.cfg.interval(attempts);
        let spread = base.as_millis() as u64 / 10;
        if spread == 0 {
            return base;
        }
        base + Duration::from_millis(rand::random_range(0..spread))
    }

    /// RFC 5321 §5.1: the smarthost, or the MX hosts in order, each address in turn.
    async fn deliver_domain(
        &self,
        job: &QueueJob,
        domain: &str,
        rcpts: &[QueuedRecipient],
        content: &[u8],
    ) -> DomainRun {
        let mut run = DomainRun::new();
        let env = out_envelope(job, rcpts);
        let route = match self.route(domain).await {
            Ok(r) => r,
            Err((reply, permanent)) => {
                run.attempts
                    .push(self.attempt(rcpts, None, None, None, &reply));
                run.settle(rcpts, reply, permanent);
                return run;
            }
        };
        // A session kept from the previous message to this domain: its last
        // transaction ended cleanly, so no RSET. If the server has closed it
        // meanwhile, that is no attempt worth recording: a new connection follows.
        if let Some(mut session) = self.take_pooled(domain) {
            let mut reused = DomainRun::new();
            match self
                .transact(&mut session, &env, content, rcpts, &mut reused)
                .await
            {
                Ok(results) => {
                    reused.results = results;
                    self.give_back(domain, session);
                    return reused;
                }
                Err(reply) => {
                    tracing::debug!(%domain, reply = %reply.one_line(), "reused session failed");
                }
            }
        }
        let mut last_error = crate::client::local_reply(451, "4.4.1", "no MX host answered");
        'hosts: for (i, host) in route.hosts.iter().enumerate() {
            let ips = match self.host_addresses(host).await {
                Ok(ips) => ips,
                Err(e) => {
                    last_error = crate::client::local_reply(
                        451,
                        "4.4.3",
                        &format!("cannot resolve {host}: {e}"),
                    );
                    continue;
                }
            };
            // RFC 5321 §5.1: MX hosts from our own preference on are not used;
            // if we are the best MX, the mail loops (hardening.md C-RL10).
            if self.is_me(host, &ips) {
                if i == 0 {
                    self.looped(domain, host, rcpts, &mut run);
                    return run;
                }
                break;
            }
            for ip in ips {
                let mut session = match self.connect(host, ip, &route, rcpts, &mut run).await {
                    Ok(s) => s,
                    Err(reply) => {
                        last_error = reply;
                        continue;
                    }
                };
                // The server greets with our own name: it is us behind another address.
                if session
                    .greeting_name
                    .eq_ignore_ascii_case(&self.cfg.hostname)
                {
                    session.quit().await;
                    if i == 0 {
                        self.looped(domain, host, rcpts, &mut run);
                        return run;
                    }
                    break 'hosts;
                }
                match self
                    .transact(&mut session, &env, content, rcpts, &mut run)
                    .await
                {
                    Ok(results) => {
                        run.results = results;
                        self.give_back(domain, session);
                        return run;
                    }
                    Err(reply) => last_error = reply,
                }
            }
        }
        run.settle(rcpts, last_error, false);
        run
    }

    /// RFC 5321 §5.1: our own best MX (hardening.md C-RL10): permanent, 5.4.6.
    fn looped(&self, domain: &str, host: &str, rcpts: &[QueuedRecipient], run: &mut DomainRun) {
        let reply = crate::client::local_reply(
            554,
            "5.4.6",
            &format!("mail for {domain} loops back to myself (MX {host})"),
        );
        run.attempts
            .push(self.attempt(rcpts, Some(host), None, None, &reply));
        run.settle(rcpts, reply, true);
    }

    /// A host's addresses; an IP address (a smarthost given by address) is itself.
    async fn host_addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let mut ips = self.resolver.addresses(host).await?;
        ips.truncate(MAX_ADDRESSES_PER_HOST);
        Ok(ips)
    }

    fn is_me(&self, host: &str, ips: &[IpAddr]) -> bool {
        host.trim_end_matches('.')
            .eq_ignore_ascii_case(&self.cfg.hostname)
            || ips.iter().any(|ip| self.cfg.local_ips.contains(ip))
    }

    /// A ready session to one address (after AUTH for a smarthost), or the reply
    /// to remember; failed attempts are logged in `run`.
    async fn connect(
        &self,
        host: &str,
        ip: IpAddr,
        route: &Route,
        rcpts: &[QueuedRecipient],
        run: &mut DomainRun,
    ) -> Result<Session, Reply> {
        let mut session = match self.open(host, ip, route.port).await {
            Ok(s) => s,
            Err(e) => {
                let reply = error_reply(&e);
                run.attempts
                    .push(self.attempt(rcpts, Some(host), Some(ip), None, &reply));
                return Err(reply);
            }
        };
        if let Some((user, password)) = &route.credentials
            && let Err(e) = session.auth_plain(user, password).await
        {
            let reply = error_reply(&e);
            run.attempts.push(self.attempt(
                rcpts,
                Some(host),
                Some(ip),
                session.tls.clone(),
                &reply,
            ));
            return Err(reply);
        }
        Ok(session)
    }

    /// Where mail for a domain goes: (hosts, port, credentials), or the reply that
    /// settles it (and whether that is permanent).
    async fn route(&self, domain: &str) -> Result<Route, (Reply, bool)> {
        if let Some(s) = &self.cfg.smarthost
            && (s.domains.is_empty() || s.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
        {
            return Ok(Route {
                hosts: vec![s.host.clone()],
                port: s.port,
                credentials: s.credentials.clone(),
            });
        }
        let reply = crate::client::local_reply;
        match self.resolver.mx_plan(domain).await {
            Ok(MxPlan::Hosts(mut hosts)) => Ok(Route {
                hosts: {
                    // hardening.md C-OB9: a domain with 50 MX hosts gets the best few.
                    hosts.truncate(MAX_MX_HOSTS);
                    hosts
                },
                port: self.cfg.port,
                credentials: None,
            }),
            // RFC 7505 §4.2: 5.1.10.
            Ok(MxPlan::NullMx) => Err((
                reply(
                    556,
                    "5.1.10",
                    &format!("{domain} accepts no mail (null MX)"),
                ),
                true,
            )),
            Err(DnsError::NoSuchDomain(_)) => Err((
                reply(550, "5.1.2", &format!("domain {domain} does not exist")),
                true,
            )),
            // SERVFAIL, timeouts: never a bounce before max_age.
            Err(e) => Err((reply(451, "4.4.3", &format!("DNS: {e}")), false)),
        }
    }

    async fn open(&self, host: &str, ip: IpAddr, port: u16) -> Result<Session, ClientError> {
        match Session::open(host, ip, port, &self.cfg.client, true).await {
            // A failed handshake: opportunistic TLS falls back to plaintext (RFC 7435 §6).
            Err(ClientError::Tls(e)) => {
                tracing::info!(%host, %ip, error = %e, "TLS failed; retrying without it");
                Session::open(host, ip, port, &self.cfg.client, false).await
            }
            other => other,
        }
    }

    /// RFC 6152 §3: the 7-bit form of an 8-bit message for a server without
    /// 8BITMIME, with our DKIM signatures made again over it. None when
    /// there is nothing to convert (or it cannot be: 8-bit header fields).
    async fn seven_bit(&self, content: &[u8]) -> Option<Vec<u8>> {
        let converted = message::seven_bit::convert(content)?;
        tracing::info!("next server has no 8BITMIME: converted to 7 bit");
        Some(match &self.signer {
            Some(signer) => signer.resign(&converted, now()).await,
            None => converted,
        })
    }

    /// Send over an open session. None if the session failed before any answer
    /// about the recipients (the caller tries elsewhere).
    async fn transact(
        &self,
        session: &mut Session,
        env: &OutEnvelope,
        content: &[u8],
        rcpts: &[QueuedRecipient],
        run: &mut DomainRun,
    ) -> Result<Vec<(QueuedRecipient, RcptResult, Option<String>)>, Reply> {
        let remote = Some(session.mx.clone());
        let converted = match session.ext.eight_bit {
            true => None,
            false => self.seven_bit(content).await,
        };
        let content = converted.as_deref().unwrap_or(content);
        let results = match session.send(env, content).await {
            Ok(results) => results,
            Err(e) => {
                let reply = error_reply(&e);
                run.attempts.push(self.attempt(
                    rcpts,
                    Some(&session.mx),
                    Some(session.ip),
                    session.tls.clone(),
                    &reply,
                ));
                // A 5xx to MAIL or DATA is the server's final word for these
                // recipients; anything else is worth another host.
                return match e.permanent_reply() {
                    Some(r) => Ok(rcpts
                        .iter()
                        .map(|q| (q.clone(), RcptResult::Permanent(r.clone()), remote.clone()))
                        .collect()),
                    None => Err(reply),
                };
            }
        };
        let summary = results
            .iter()
            .zip(rcpts)
            .map(|(r, q)| format!("{}: {}", q.address, r.reply().one_line()))
            .collect::<Vec<_>>()
            .join("; ");
        run.attempts.push(Attempt {
            at: now(),
            recipients: join(rcpts),
            mx: remote.clone(),
            ip: Some(session.ip.to_string()),
            tls: session.tls.clone(),
            reply: summary,
        });
        for (r, q) in results.iter().zip(rcpts) {
            // RFC 3461 §5.2.2.1: NOTIFY=SUCCESS to a server without DSN: "relayed".
            if matches!(r, RcptResult::Delivered(_))
                && !session.ext.dsn
                && dsn::wants(q.notify.as_deref(), "SUCCESS")
            {
                run.relayed.push(q.address.clone());
            }
        }
        Ok(results
            .into_iter()
            .zip(rcpts)
            .map(|(r, q)| (q.clone(), r, remote.clone()))
            .collect())
    }

    fn attempt(
        &self,
        rcpts: &[QueuedRecipient],
        mx: Option<&str>,
        ip: Option<IpAddr>,
        tls: Option<String>,
        reply: &Reply,
    ) -> Attempt {
        Attempt {
            at: now(),
            recipients: join(rcpts),
            mx: mx.map(String::from),
            ip: ip.map(|i| i.to_string()),
            tls,
            reply: reply.one_line(),
        }
    }

    fn take_pooled(&self, domain: &str) -> Option<Session> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.get_mut(domain)?;
        while let Some(p) = list.pop() {
            if p.since.elapsed() < REUSE_FOR {
                return Some(p.session);
            }
        }
        None
    }

    /// Say QUIT to sessions that waited too long for another message.
    fn close_idle_sessions(&self) {
        let mut expired = Vec::new();
        for list in self
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values_mut()
        {
            let (keep, old) = std::mem::take(list)
                .into_iter()
                .partition(|p| p.since.elapsed() < REUSE_FOR);
            *list = keep;
            expired.extend(old);
        }
        for p in expired {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), p.session.quit()).await;
            });
        }
    }

    fn give_back(&self, domain: &str, session: Session) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.entry(domain.to_string()).or_default();
        list.retain(|p| p.since.elapsed() < REUSE_FOR);
        if list.len() < self.cfg.max_per_domain {
            list.push(Pooled {
                session,
                since: Instant::now(),
            });
        }
    }

    /// RFC 3464 failure report to the sender.
    async fn report_failures(&self, done: FinishedMessage) {
        let failed: Vec<Reported<'_>> = done
            .recipients
            .iter()
            .filter(|r| !r.delivered && dsn::wants(r.notify.as_deref(), "FAILURE"))
            .map(|r| Reported {
                recipient: dsn_recipient(r),
                action: Action::Failed,
            })
            .collect();
        let about = About {
            queue_id: done.id,
            sender: &done.sender,
            envid: done.envid.as_deref(),
            ret: done.ret.as_deref(),
            arrival: done.created,
            original: &done.content,
        };
        self.report(about, failed, None).await;
    }

    /// "relayed" (RFC 3461 §5.2.2.1: NOTIFY=SUCCESS the next hop could not carry on)
    /// or "delayed" reports about some recipients of a queued message; headers only.
    async fn report_progress(
        &self,
        job: &QueueJob,
        content: &[u8],
        recipients: &[FinalRecipient],
        action: Action,
    ) {
        let about = About {
            queue_id: job.id,
            sender: &job.sender,
            envid: job.envid.as_deref(),
            ret: Some("HDRS"),
            arrival: job.created,
            original: content,
        };
        let retry_until =
            (action == Action::Delayed).then(|| job.created + self.cfg.max_age.as_secs() as i64);
        let reported = recipients
            .iter()
            .map(|r| Reported {
                recipient: dsn_recipient(r),
                action,
            })
            .collect();
        self.report(about, reported, retry_until).await;
    }

    /// Build and send a report; never to `<>` (RFC 5321 §6.1, hardening.md C-RL8).
    async fn report(
        &self,
        about: About<'_>,
        recipients: Vec<Reported<'_>>,
        retry_until: Option<i64>,
    ) {
        if recipients.is_empty() {
            return;
        }
        if about.sender.is_empty() {
            tracing::warn!(
                queue = about.queue_id,
                "message from <>: no delivery status notification (RFC 5321 §6.1)"
            );
            return;
        }
        let report = Report {
            reporting_mta: &self.cfg.hostname,
            sender: about.sender,
            envid: about.envid,
            ret: about.ret,
            arrival: about.arrival,
            now: now(),
            message_id: self.message_id(),
            retry_until,
            recipients,
            original: about.original,
        };
        self.send_report(about.sender, report.build()).await;
    }

    fn message_id(&self) -> String {
        let mut b = [0u8; 8];
        rand::fill(&mut b[..]);
        format!(
            "dsn.{}.{}@{}",
            now(),
            b.iter().map(|x| format!("{x:02x}")).collect::<String>(),
            self.cfg.hostname
        )
    }

    /// Deliver a report from `<>`: locally if the sender is ours, else through the queue.
    async fn send_report(&self, to: &str, mut bytes: Vec<u8>) {
        if let Some(signer) = &self.signer {
            let signatures = signer.sign(&self.cfg.hostname, &bytes, now()).await;
            bytes.splice(0..0, signatures.into_bytes());
        }
        match self
            .mda
            .deliver_generated("", &[to.to_string()], bytes, now())
            .await
        {
            Ok(0) => {}
            Ok(_) => tracing::info!(to = %to, "delivery status notification sent"),
            Err(e) => tracing::warn!(to = %to, error = %e, "report: cannot store"),
        }
    }
}

fn join(rcpts: &[QueuedRecipient]) -> String {
    rcpts
        .iter()
        .map(|r| r.address.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The reply to record for a session failure: the server's, or ours (4xx: retry).
fn error_reply(e: &ClientError) -> Reply {
    match e {
        ClientError::Reply { reply, .. } => reply.clone(),
        other => crate::client::local_reply(451, "4.4.2", &other.to_string()),
    }
}

fn out_envelope(job: &QueueJob, rcpts: &[QueuedRecipient]) -> OutEnvelope {
    OutEnvelope {
        sender: job.sender.clone(),
        recipients: rcpts
            .iter()
            .map(|r| OutRecipient {
                address: r.address.clone(),
                notify: r.notify.clone(),
                orcpt: r.orcpt.clone(),
            })
            .collect(),
        envid: job.envid.clone(),
        ret: job.ret.clone(),
        smtputf8: job.smtputf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(retry: &[u64], max_age: u64) -> OutboundConfig {
        OutboundConfig {
            hostname: "mx.a.test".into(),
            retry: retry.iter().map(|s| Duration::from_secs(*s)).collect(),
            max_age: Duration::from_secs(max_age),
            port: 25,
            client: ClientSettings {
                helo_name: "mx.a.test".into(),
                timeouts: Default::default(),
                source: None,
                tls: net::tls::opportunistic_client(&[]).unwrap(),
            },
            max_deliveries: 1,
            max_per_domain: 1,
            local_ips: vec![],
            smarthost: None,
            delay_warning: None,
        }
    }

    /// C-FT10: expiry counts attempts of the schedule, not wall-clock time.
    #[test]
    fn attempts_within_max_age() {
        // At 0, 1, 3 (before 5), and the last one at 5.
        assert_eq!(cfg(&[1, 2], 5).max_attempts(), 4);
        // At 0, 1, 2 (before 3), and the last one at 3.
        assert_eq!(cfg(&[1], 3).max_attempts(), 4);
        // 0, 1m, 6m, 21m, then every 4h from 81m: 34 attempts before 5 days,
        // and the last one after.
        let five_days = cfg(&[60, 300, 900, 3600, 14_400], 5 * 86_400);
        assert_eq!(five_days.max_attempts(), 35);
        assert_eq!(cfg(&[10], 0).max_attempts(), 1);
        // One retry after a second, then after an hour, give up after an hour:
        // 0, 1s, then 1h 1s.
        assert_eq!(cfg(&[1, 3600], 3600).max_attempts(), 3);
    }
}

/// What a report says of a recipient whose delivery ended (or was delayed).
fn dsn_recipient(r: &FinalRecipient) -> dsn::Recipient<'_> {
    dsn::Recipient {
        address: &r.address,
        orcpt: r.orcpt.as_deref(),
        status: &r.status,
        reply: &r.reply,
        remote_mta: r.remote_mta.as_deref(),
    }
}
