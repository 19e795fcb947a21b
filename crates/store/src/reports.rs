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

/// The latest `rua` and policy of a domain's evaluations: (domain, rua, policy).
pub(crate) type Latest = (String, String, String);
/// One distinct row of a domain's evaluations: (domain, row, count, first at, last at).
pub(crate) type RowCount = (String, String, i64, i64, i64);

/// Fold what a backend read (each domain's latest rua and policy, the
/// count of each distinct row) into one report's worth per domain, by
/// domain name.
pub(crate) fn fold_evaluations(
    latest: Vec<Latest>,
    counts: Vec<RowCount>,
) -> Vec<DomainEvaluations> {
    let mut out: std::collections::BTreeMap<String, DomainEvaluations> = latest
        .into_iter()
        .map(|(domain, rua, policy)| {
            let evaluations = DomainEvaluations {
                domain: domain.clone(),
                rua,
                policy,
                rows: Vec::new(),
                first: i64::MAX,
                last: i64::MIN,
            };
            (domain, evaluations)
        })
        .collect();
    for (domain, row, count, first, last) in counts {
        if let Some(d) = out.get_mut(&domain) {
            d.rows.push((row, count as u64));
            d.first = d.first.min(first);
            d.last = d.last.max(last);
        }
    }
    out.into_values().collect()
}
