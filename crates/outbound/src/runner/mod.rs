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

use crate::client::{
    ClientError, ClientSettings, OutEnvelope, OutRecipient, RcptResult, Session, TlsUse,
};
use crate::reply::Reply;
use crate::tls_policy::{MessageTls, MtaSts, TlsPolicy};
use crate::tls_reports;
use message::dsn::{self, Action, Report, Reported};

mod hosts;
mod local;
mod reports;

use reports::final_recipient;

/// The longest one message may take to one domain (RFC 5321 §4.5.3.2 timeouts
/// add up over several MX hosts); then its recipients are deferred. Never
/// more than half the lease (`OutboundConfig::lease`), so a run ends long
/// before another claimer could take its recipients.
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
    /// Other domains' MTA-STS policies, enforced (`[outbound] mta_sts`);
    /// None: opportunistic TLS everywhere.
    pub mta_sts: Option<Arc<MtaSts>>,
    /// DANE for MX hosts with DNSSEC-validated TLSA records (`[outbound]
    /// dane`, RFC 7672); needs the resolver's validating path.
    pub dane: bool,
    /// Where a queued message is read to while it is delivered: a large
    /// one is sent from a spool file a piece at a time (C-FT9).
    pub spool: message::spool::Spool,
    /// Other nodes deliver from the same queue (a shared PostgreSQL
    /// store): the leases found at start may be theirs, so they are left
    /// to run out (a dead node's recipients are taken over then) instead
    /// of being dropped as a lone node's crashed run's are.
    pub shared_queue: bool,
    /// How long a claim holds its recipients (`[queue] lease`): longer
    /// than any attempt; a dead node's recipients are due again after it.
    pub lease: Duration,
}

impl OutboundConfig {
    /// The lease a claim takes, in seconds.
    fn lease_secs(&self) -> i64 {
        self.lease.as_secs().max(2) as i64
    }

    /// How long one message's run to one domain may last: [`RUN_LIMIT`], or
    /// half the lease when that is shorter.
    fn run_limit(&self) -> Duration {
        RUN_LIMIT.min(self.lease / 2)
    }

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

/// The outcome of delivering one message to one domain.
struct DomainRun {
    attempts: Vec<Attempt>,
    results: Vec<(QueuedRecipient, RcptResult, Option<String>)>,
    /// Recipients delivered where the next hop could not carry NOTIFY=SUCCESS on.
    relayed: Vec<String>,
    /// Recipients delivered into a local mailbox from the queue (held mail).
    delivered: Vec<String>,
    /// The destination's TLS policy (`TlsPolicy::label`), for the metrics.
    tls_policy: &'static str,
}

impl DomainRun {
    fn new() -> DomainRun {
        DomainRun {
            attempts: Vec::new(),
            results: Vec::new(),
            relayed: Vec::new(),
            delivered: Vec::new(),
            tls_policy: TlsPolicy::Opportunistic.label(),
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
        if !self.cfg.shared_queue
            && let Err(e) = self.store.queue_release().await
        {
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
            .queue_claim(Claim::Due(t), t, t + self.cfg.lease_secs(), budget)
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
                .queue_claim(Claim::Message(id), t, t + self.cfg.lease_secs(), 1)
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
        let content = match self.store.queue_content(job.id, &self.cfg.spool).await {
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
                if me.is_local_domain(&domain).await {
                    return me.deliver_local(&job, &rcpts, &content).await;
                }
                let limiter = me.domain_limiter(&domain);
                let _slot = limiter.acquire().await;
                let run = tokio::time::timeout(
                    me.cfg.run_limit(),
                    me.deliver_domain(&job, &domain, &rcpts, &content),
                )
                .await;
                run.unwrap_or_else(|_| DomainRun::all_temporary(&rcpts, "delivery took too long"))
            });
        }
        let mut attempts = Vec::new();
        let mut settled: Vec<(QueuedRecipient, RecipientOutcome)> = Vec::new();
        let mut relayed = Vec::new();
        let key = store::MessageKey {
            message: None,
            queue_id: Some(job.id),
        };
        let mut history = Vec::new();
        let mut delivered = Vec::new();
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
                let tls = match (&a.mx, &a.tls) {
                    (None, _) => "local",
                    (Some(_), Some(_)) => run.tls_policy,
                    (Some(_), None) => "none",
                };
                metrics::counter!("tern_delivery_attempts_total", "tls" => tls).increment(1);
                history.push(attempt_event(&key, a));
            }
            attempts.extend(run.attempts);
            relayed.extend(run.relayed);
            delivered.extend(run.delivered);
            for (r, result, remote) in run.results {
                let outcome = self.outcome(&job, &r, &result, remote);
                let state = match outcome.state {
                    RecipientState::Delivered => "delivered",
                    RecipientState::Deferred(_) => "deferred",
                    RecipientState::Failed => "failed",
                };
                metrics::counter!("tern_deliveries_total", "result" => state).increment(1);
                history.push(outcome_event(&key, &r, &outcome));
                settled.push((r, outcome));
            }
        }
        let delayed = self.delay_warnings(&job, &mut settled);
        let reported = |list: &[String]| -> Vec<FinalRecipient> {
            settled
                .iter()
                .filter(|(r, _)| list.contains(&r.address))
                .map(|(r, o)| final_recipient(r, o))
                .collect()
        };
        let (relayed, delivered) = (reported(&relayed), reported(&delivered));
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
            return_limit: reports::RETURN_LIMIT,
        };
        self.store.record_history(history);
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
        self.report_progress(&job, content.header(), &relayed, Action::Relayed)
            .await;
        self.report_progress(&job, content.header(), &delivered, Action::Delivered)
            .await;
        self.report_progress(&job, content.header(), &delayed, Action::Delayed)
            .await;
        if let Some(done) = finished {
            self.report_failures(done).await;
        }
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
        job: &QueueJob,
        r: &QueuedRecipient,
        result: &RcptResult,
        remote: Option<String>,
    ) -> RecipientOutcome {
        // RFC 2852 §4.1.3: a return deadline that passed fails with 5.4.7.
        if matches!(result, RcptResult::Temporary(_))
            && let Some(by) = job
                .options
                .deliver_by
                .filter(|b| b.returns && now() > b.deadline)
        {
            let reply = crate::client::local_reply(
                554,
                "5.4.7",
                &format!(
                    "not delivered by {} as asked (DELIVERBY); last: {}",
                    message::date::rfc5322(by.deadline),
                    result.reply().one_line()
                ),
            );
            return self.outcome(job, r, &RcptResult::Permanent(reply), remote);
        }
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
        // RFC 3463 X.7.5: cryptographic failure (only when TLS was required).
        ClientError::Tls(_) | ClientError::TlsRequired(_) => {
            crate::client::local_reply(451, "4.7.5", &e.to_string())
        }
        other => crate::client::local_reply(451, "4.4.2", &other.to_string()),
    }
}

/// An attempt in the delivery history: where, how, and the answer.
fn attempt_event(key: &store::MessageKey, a: &Attempt) -> store::HistoryEvent {
    let detail = match (&a.mx, &a.ip) {
        (Some(mx), ip) => format!(
            "mx {mx} [{}] tls={}: {}",
            ip.as_deref().unwrap_or("-"),
            a.tls.as_deref().unwrap_or("none"),
            a.reply
        ),
        (None, _) => a.reply.clone(),
    };
    store::HistoryEvent::of(
        key,
        a.at,
        store::HistoryKind::Attempt,
        Some(&a.recipients),
        detail,
    )
}

/// A recipient's state after a run, in the delivery history.
fn outcome_event(
    key: &store::MessageKey,
    r: &QueuedRecipient,
    o: &store::RecipientOutcome,
) -> store::HistoryEvent {
    let (kind, detail) = match o.state {
        RecipientState::Delivered => (store::HistoryKind::Delivered, o.reply.clone()),
        RecipientState::Deferred(at) => (
            store::HistoryKind::Deferred,
            format!(
                "{} (next attempt at {})",
                o.reply,
                message::date::rfc3339_text(at)
            ),
        ),
        RecipientState::Failed => (
            store::HistoryKind::Failed,
            format!("{} {}", o.status, o.reply),
        ),
    };
    store::HistoryEvent::of(key, now(), kind, Some(&r.address), detail)
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
        by: job
            .options
            .deliver_by
            .map(|b| (b.deadline - now(), b.returns, b.trace)),
        priority: job.options.priority,
        require_tls: job.options.require_tls,
    }
}

/// A report of success was asked for: NOTIFY=SUCCESS (RFC 3461 §4.1), or a
/// DELIVERBY trace (RFC 2852 §4).
fn wants_success(job: &QueueJob, r: &QueuedRecipient) -> bool {
    job.options.deliver_by.is_some_and(|b| b.trace) || dsn::wants(r.notify.as_deref(), "SUCCESS")
}

/// When the message entered the queue for delivery: held messages (RFC
/// 4865) count from their release.
fn queued_since(job: &QueueJob) -> i64 {
    job.options
        .release_at
        .map_or(job.created, |r| r.max(job.created))
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
            mta_sts: None,
            dane: false,
            spool: message::spool::Spool::memory(),
            shared_queue: false,
            lease: Duration::from_secs(3600),
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
