//! Sending DMARC aggregate reports (RFC 7489 §7.2). Once per reporting
//! interval, each domain whose record asked for them (`rua=`) gets the
//! counted rows of the evaluations made here: the XML gzipped, in a message
//! from our report address, DKIM-signed, queued like any other mail.
//!
//! Implementation notes
//! - A domain's evaluations are forgotten once its report went to at least
//!   one destination, or when no destination can ever take it; a temporary
//!   DNS failure keeps them for the next run (for a week at most).
//! - The report id is `domain.until@hostname`: sending the same period again
//!   (after a crash between queueing and forgetting) gives the same id, which
//!   receivers use to drop the duplicate.

use std::sync::Arc;
use std::time::Duration;

use delivery::Mda;
use policy::aggregate::{self, Destination, Metadata, Published, Row};
use policy::psl::PublicSuffixList;
use policy::sign::Signer;
use store::{DomainEvaluations, Store, StoreError};

/// How long evaluations wait for a destination whose DNS keeps failing.
const KEEP_UNSENT: i64 = 7 * 86_400;

/// What [`Reporter`] needs to know.
#[derive(Debug, Clone)]
pub struct ReporterConfig {
    pub hostname: String,
    /// The reporting interval in seconds; periods are aligned to multiples of
    /// it since 1970 (a day: from 00:00 UTC).
    pub interval: i64,
}

/// What happened to one domain's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub domain: String,
    pub messages: u64,
    /// Destinations that got it.
    pub sent: Vec<String>,
    /// Destinations left out, with why.
    pub skipped: Vec<(String, String)>,
}

/// Run `work` with the end of each period of `interval` seconds (periods
/// aligned to multiples of it since 1970), half a second after it (so the
/// last results are in), until `stop`. Each period's run is `job`'s turn,
/// a store lease: of several nodes sharing the store, the one that takes
/// it runs; a node that dies in the middle leaves its work (the
/// evaluations are kept until sent) to the next period's turn.
pub(crate) async fn at_each_period_end<F, Fut>(
    store: &Arc<dyn Store>,
    job: &str,
    interval: i64,
    stop: impl std::future::Future<Output = ()>,
    mut work: F,
) where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let interval = interval.max(1);
    let period_start = |now: i64| now - now.rem_euclid(interval);
    tokio::pin!(stop);
    loop {
        let now = message::date::unix_now();
        let next = period_start(now) + interval;
        let wait = Duration::from_secs((next - now).max(0) as u64) + Duration::from_millis(500);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let now = message::date::unix_now();
        let until = period_start(now);
        match store
            .take_lease(job, store::this_node(), now, until + interval)
            .await
        {
            Ok(true) => work(until).await,
            Ok(false) => tracing::debug!(job, "another node has this period's turn"),
            Err(e) => tracing::warn!(error = %e, job, "cannot take this period's turn"),
        }
    }
}

/// The domain our reports come from: the one our host name is in, else the first.
pub(crate) async fn reporting_domain(
    store: &Arc<dyn Store>,
    hostname: &str,
) -> Result<Option<String>, StoreError> {
    let domains = store.list_domains().await?;
    let host = hostname.to_ascii_lowercase();
    let by_host = domains
        .iter()
        .filter(|d| host == d.name || host.ends_with(&format!(".{}", d.name)))
        .max_by_key(|d| d.name.len());
    Ok(by_host.or(domains.first()).map(|d| d.name.clone()))
}

pub struct Reporter {
    store: Arc<dyn Store>,
    mda: Arc<Mda>,
    signer: Option<Arc<Signer>>,
    dns: dns::Resolver,
    psl: Arc<PublicSuffixList>,
    cfg: ReporterConfig,
}

/// Whether a destination may get the report (RFC 7489 §7.1).
enum Verified {
    Yes,
    No(String),
    /// DNS trouble: try again next run.
    Later(String),
}

impl Reporter {
    pub fn new(
        store: Arc<dyn Store>,
        mda: Arc<Mda>,
        signer: Option<Arc<Signer>>,
        dns: dns::Resolver,
        psl: Arc<PublicSuffixList>,
        cfg: ReporterConfig,
    ) -> Reporter {
        Reporter {
            store,
            mda,
            signer,
            dns,
            psl,
            cfg,
        }
    }

    /// The start of the period that `now` falls in: reports cover what came before.
    pub fn due_until(&self, now: i64) -> i64 {
        now - now.rem_euclid(self.cfg.interval.max(1))
    }

    /// Send the reports of every evaluation recorded before `until`.
    pub async fn send_due(&self, until: i64) -> Result<Vec<Outcome>, StoreError> {
        let due = self.store.evaluations_before(until).await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let Some(ours) = self.reporting_domain().await? else {
            tracing::warn!("DMARC reports: no domain to send them from; add one");
            return Ok(Vec::new());
        };
        let mut outcomes = Vec::new();
        for d in &due {
            outcomes.push(self.send_one(d, &ours, until).await?);
        }
        Ok(outcomes)
    }

    /// Run until `stop`: at each period's end (a few seconds after, so the
    /// last evaluations are in), send what is due.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let this = &self;
        at_each_period_end(&self.store, "dmarc-reports", self.cfg.interval, stop, |until| async move {
            match this.send_due(until).await {
                Ok(outcomes) => {
                    for o in outcomes {
                        tracing::info!(domain = %o.domain, messages = o.messages, sent = ?o.sent, skipped = ?o.skipped, "DMARC aggregate report");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "DMARC reports: cannot send"),
            }
        })
        .await;
    }

    /// Ours that reports come from: the domain of our hostname, else the first.
    async fn reporting_domain(&self) -> Result<Option<String>, StoreError> {
        reporting_domain(&self.store, &self.cfg.hostname).await
    }

    async fn send_one(
        &self,
        d: &DomainEvaluations,
        ours: &str,
        until: i64,
    ) -> Result<Outcome, StoreError> {
        let mut outcome = Outcome {
            domain: d.domain.clone(),
            messages: d.rows.iter().map(|(_, n)| n).sum(),
            sent: Vec::new(),
            skipped: Vec::new(),
        };
        let (Ok(published), rows) = (serde_json::from_str::<Published>(&d.policy), rows(d)) else {
            tracing::warn!(domain = %d.domain, "DMARC reports: unreadable stored policy; dropped");
            self.store.delete_evaluations(&d.domain, until).await?;
            return Ok(outcome);
        };
        let interval = self.cfg.interval.max(1);
        let meta = Metadata {
            org_name: ours.to_string(),
            email: format!("{}@{ours}", delivery::REPORT_LOCAL_PART),
            report_id: format!("{}.{until}@{}", d.domain, self.cfg.hostname),
            begin: d.first - d.first.rem_euclid(interval),
            end: until - 1,
        };
        let xml = aggregate::xml(&meta, &published, &rows);
        let mut retry_later = false;
        for dest in aggregate::destinations(&d.rua) {
            match self.verify(&d.domain, &dest).await {
                Verified::Yes => {}
                Verified::No(why) => {
                    outcome.skipped.push((dest.address, why));
                    continue;
                }
                Verified::Later(why) => {
                    retry_later = true;
                    outcome.skipped.push((dest.address, why));
                    continue;
                }
            }
            let mut bytes = aggregate::message(
                &meta,
                &d.domain,
                ours,
                std::slice::from_ref(&dest.address),
                &xml,
            );
            if let Some(limit) = dest.max_size
                && bytes.len() as u64 > limit
            {
                outcome.skipped.push((
                    dest.address,
                    format!("report larger than its limit of {limit} bytes"),
                ));
                continue;
            }
            if let Some(signer) = &self.signer {
                let signatures = signer.sign(ours, &bytes, message::date::unix_now()).await;
                bytes.splice(0..0, signatures.into_bytes());
            }
            let taken = self
                .mda
                .deliver_generated(
                    &meta.email,
                    std::slice::from_ref(&dest.address),
                    bytes,
                    message::date::unix_now(),
                )
                .await?;
            if taken > 0 {
                outcome.sent.push(dest.address);
            } else {
                outcome
                    .skipped
                    .push((dest.address, "cannot receive mail".into()));
            }
        }
        if outcome.sent.is_empty() && retry_later && until - d.first < KEEP_UNSENT {
            return Ok(outcome);
        }
        self.store.delete_evaluations(&d.domain, until).await?;
        Ok(outcome)
    }

    /// RFC 7489 §7.1: a destination outside the policy domain's
    /// Organizational Domain must publish `<domain>._report._dmarc.<dest>`
    /// with a `v=DMARC1` record.
    async fn verify(&self, domain: &str, dest: &Destination) -> Verified {
        let Some((_, host)) = dest.address.rsplit_once('@') else {
            return Verified::No("not an address".into());
        };
        let host = host.to_ascii_lowercase();
        if self.psl.organizational_domain(&host) == self.psl.organizational_domain(domain) {
            return Verified::Yes;
        }
        let name = format!("{domain}._report._dmarc.{host}");
        match self.dns.txt(&name).await {
            Ok(txts)
                if txts
                    .iter()
                    .any(|t| t.trim_start().to_ascii_lowercase().starts_with("v=dmarc1")) =>
            {
                Verified::Yes
            }
            Ok(_) | Err(dns::DnsError::NoRecords(_) | dns::DnsError::NoSuchDomain(_)) => {
                Verified::No(format!("external destination not authorized ({name})"))
            }
            Err(e) => Verified::Later(e.to_string()),
        }
    }
}

/// The stored rows, decoded; unreadable ones are dropped.
fn rows(d: &DomainEvaluations) -> Vec<(Row, u64)> {
    d.rows
        .iter()
        .filter_map(|(row, n)| serde_json::from_str::<Row>(row).ok().map(|r| (r, *n)))
        .collect()
}
