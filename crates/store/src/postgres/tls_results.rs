//! TLS session outcomes in PostgreSQL; see [`crate::tls_results`].

use super::{PostgresStore, pg};
use crate::error::Result;
use crate::tls_results::{DomainTlsResults, TlsResult, TlsResultStore, fold_tls_results};

#[async_trait::async_trait]
impl TlsResultStore for PostgresStore {
    /// Written by a task of its own: the delivery that saw them does not wait.
    fn record_tls_results(&self, results: Vec<TlsResult>) {
        if results.is_empty() {
            return;
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let written = async {
                let mut client = pool.get().await.map_err(|e| e.to_string())?;
                let tx = client.transaction().await.map_err(|e| e.to_string())?;
                for r in &results {
                    tx.execute(
                        "INSERT INTO tls_results(at, domain, policy, failure) VALUES ($1, $2, $3, $4)",
                        &[&r.at, &r.domain.to_ascii_lowercase(), &r.policy, &r.failure],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                }
                tx.commit().await.map_err(|e| e.to_string())
            };
            if let Err(e) = written.await {
                tracing::warn!(error = %e, "store: TLS results not recorded");
            }
        });
    }

    async fn tls_results_before(&self, until: i64) -> Result<Vec<DomainTlsResults>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT domain, policy, failure, count(*) FROM tls_results WHERE at < $1
                 GROUP BY domain, policy, failure ORDER BY domain, min(id)",
                &[&until],
            )
            .await
            .map_err(pg)?;
        Ok(fold_tls_results(rows.iter().map(|r| {
            (r.get(0), r.get(1), r.get(2), r.get::<_, i64>(3) as u64)
        })))
    }

    async fn delete_tls_results(&self, domain: &str, until: i64) -> Result<()> {
        self.client()
            .await?
            .execute(
                "DELETE FROM tls_results WHERE domain = $1 AND at < $2",
                &[&domain.to_ascii_lowercase(), &until],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }
}
