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
    /// Drop every lease (one node starting: nobody else delivers).
    async fn queue_release(&self) -> Result<()>;
    /// Each message with queued recipients and its earliest next attempt.
    async fn queue_pending(&self) -> Result<Vec<(i64, i64)>>;
}
