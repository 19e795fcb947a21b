//! The outbound queue: leased recipients, delivery runs and their
//! outcome, the operator's view (list, show, retry, delete).
//!
//! A lease is how a deliverer owns a recipient for a while: a recipient
//! whose lease expired is due again, so a deliverer that died loses
//! nothing (its work is taken over), and two deliverers never hold the
//! same recipient at once.
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use message::spool::Spooled;

use crate::error::Result;
use crate::types::*;

#[async_trait::async_trait]
pub trait QueueStore: Send + Sync {
    async fn queue_list(&self) -> Result<Vec<QueueSummary>>;
    /// Lease queued recipients (due ones, or one message's) through
    /// `lease_until`: none is leased to two claimers at once, and one
    /// whose lease ran out (`lease_until < now`) may be claimed again.
    async fn queue_claim(
        &self,
        claim: Claim,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueueJob>>;
    /// A queued message's content, copied a block at a time into `spool`
    /// (memory while small, a spool file past that: hardening.md C-FT9).
    async fn queue_content(
        &self,
        id: i64,
        spool: &message::spool::Spool,
    ) -> Result<Option<Spooled>>;
    /// Record a delivery run: attempts, and each recipient's new state; releases
    /// leases. If no recipient is left to try, the message leaves the queue in the
    /// same transaction and comes back (with its content if a recipient failed).
    async fn queue_report(&self, report: QueueReport) -> Result<Option<FinishedMessage>>;
    async fn queue_show(&self, id: i64) -> Result<Option<QueueDetail>>;
    /// Make recipients due now: one message's, or every one; how many.
    async fn queue_retry(&self, id: Option<i64>, now: i64) -> Result<usize>;
    async fn queue_delete(&self, id: i64) -> Result<()>;
    /// Drop every lease. Only for a node that knows nobody else delivers
    /// from this queue (one node starting); with several nodes, a dead
    /// node's leases run out instead (docs/scale.md).
    async fn queue_release(&self) -> Result<()>;
    /// Each message with queued recipients and its earliest next attempt.
    async fn queue_pending(&self) -> Result<Vec<(i64, i64)>>;
}

/// A recipient waiting for its next attempt.
pub const QUEUED: &str = "queued";
/// Waiting while its submitter's account is held.
pub const HELD: &str = "held";
/// A recipient that is done.
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// `R`/`N` with `T` when tracing (RFC 2852 §4 by-mode, by-trace).
pub(crate) fn by_mode(by: &DeliverBy) -> String {
    format!(
        "{}{}",
        if by.returns { "R" } else { "N" },
        if by.trace { "T" } else { "" }
    )
}

/// The DELIVERBY of a queued message back from its deadline and by-mode.
pub(crate) fn deliver_by(deadline: Option<i64>, mode: Option<String>) -> Option<DeliverBy> {
    let (deadline, mode) = (deadline?, mode?);
    Some(DeliverBy {
        deadline,
        returns: mode.starts_with('R'),
        trace: mode.contains('T'),
    })
}

/// When a new message is first due: now, or at its release time
/// (RFC 4865 FUTURERELEASE).
pub(crate) fn first_attempt(options: &QueueOptions, now: i64) -> i64 {
    options.release_at.map_or(now, |at| at.max(now))
}

/// A recipient's domain, as the queue groups deliveries by it.
pub(crate) fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
}
