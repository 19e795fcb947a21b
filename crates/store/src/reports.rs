//! DMARC reporting (RFC 7489 §7): the evaluations kept for the aggregate
//! reports Tern sends, and the aggregate reports it receives.
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use crate::error::Result;
use crate::types::*;

#[async_trait::async_trait]
pub trait ReportStore: Send + Sync {
    /// Keep DMARC evaluations for the next aggregate reports.
    async fn record_evaluations(&self, evaluations: Vec<NewEvaluation>) -> Result<()>;
    /// The evaluations recorded before `until`, by domain.
    async fn evaluations_before(&self, until: i64) -> Result<Vec<DomainEvaluations>>;
    /// Forget a domain's evaluations recorded before `until` (once reported).
    async fn delete_evaluations(&self, domain: &str, until: i64) -> Result<()>;
    /// Keep a received aggregate report; None if the same organisation's
    /// report with this id is already kept.
    async fn add_received_report(&self, report: ReceivedReport) -> Result<Option<i64>>;
    /// The received reports, oldest first, without their XML.
    async fn received_reports(&self) -> Result<Vec<ReceivedReport>>;
    async fn received_report(&self, id: i64) -> Result<Option<ReceivedReport>>;
}
