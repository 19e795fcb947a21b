//! What TLS reporting (RFC 8460) needs kept: the outcome of each TLS
//! session setup our MTA made, by destination domain, until the day's
//! report about it goes out. The policy and the failure are opaque here
//! (serialized by the outbound crate); equal ones are counted together.
//!
//! Like the delivery history, results are written with the next group
//! commit and nobody waits for them.

use crate::error::Result;

/// One session's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsResult {
    pub at: i64,
    /// The destination (policy) domain.
    pub domain: String,
    /// The policy applied, serialized.
    pub policy: String,
    /// None: TLS was set up as the policy asks; else why not, serialized.
    pub failure: Option<String>,
}

/// A domain's results before some time: (policy, failure, sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainTlsResults {
    pub domain: String,
    pub rows: Vec<(String, Option<String>, u64)>,
}

#[async_trait::async_trait]
pub trait TlsResultStore: Send + Sync {
    /// Keep these outcomes (not waited for).
    fn record_tls_results(&self, results: Vec<TlsResult>);
    /// The outcomes recorded before `until`, counted, by domain.
    async fn tls_results_before(&self, until: i64) -> Result<Vec<DomainTlsResults>>;
    /// Forget a domain's outcomes recorded before `until` (once reported).
    async fn delete_tls_results(&self, domain: &str, until: i64) -> Result<()>;
}

/// Group a backend's rows (domain, policy, failure, count), ordered by
/// domain, into one report's worth per domain.
pub(crate) fn fold_tls_results(
    rows: impl IntoIterator<Item = (String, String, Option<String>, u64)>,
) -> Vec<DomainTlsResults> {
    let mut out: Vec<DomainTlsResults> = Vec::new();
    for (domain, policy, failure, n) in rows {
        match out.last_mut() {
            Some(d) if d.domain == domain => d.rows.push((policy, failure, n)),
            _ => out.push(DomainTlsResults {
                domain,
                rows: vec![(policy, failure, n)],
            }),
        }
    }
    out
}
