//! TLS session outcomes in PostgreSQL; see [`crate::tls_results`].

use super::{OwnedRow, PostgresStore};
use crate::error::Result;
use crate::tls_results::{DomainTlsResults, TlsResult, TlsResultStore, fold_tls_results};

#[async_trait::async_trait]
impl TlsResultStore for PostgresStore {
    /// Written by a task of its own: the delivery that saw them does not wait.
    fn record_tls_results(&self, results: Vec<TlsResult>) {
        let rows = results
            .into_iter()
            .map(|r| -> OwnedRow {
                vec![
                    Box::new(r.at),
                    Box::new(r.domain.to_ascii_lowercase()),
                    Box::new(r.policy),
                    Box::new(r.failure),
                ]
            })
            .collect();
        self.insert_detached(
            "TLS results",
            "INSERT INTO tls_results(at, domain, policy, failure) VALUES ($1, $2, $3, $4)",
            rows,
        );
    }

    async fn tls_results_before(&self, until: i64) -> Result<Vec<DomainTlsResults>> {
        let rows = self
            .rows(
                "SELECT domain, policy, failure, count(*) FROM tls_results WHERE at < $1
                 GROUP BY domain, policy, failure ORDER BY domain, min(id)",
                &[&until],
            )
            .await?;
        Ok(fold_tls_results(rows.iter().map(|r| {
            (r.get(0), r.get(1), r.get(2), r.get::<_, i64>(3) as u64)
        })))
    }

    async fn delete_tls_results(&self, domain: &str, until: i64) -> Result<()> {
        self.run(
            "DELETE FROM tls_results WHERE domain = $1 AND at < $2",
            &[&domain.to_ascii_lowercase(), &until],
        )
        .await?;
        Ok(())
    }
}
