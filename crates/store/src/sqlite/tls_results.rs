//! TLS session outcomes in SQLite; see [`crate::tls_results`].

use rusqlite::params;

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::tls_results::{DomainTlsResults, TlsResult, TlsResultStore, fold_tls_results};

#[async_trait::async_trait]
impl TlsResultStore for SqliteStore {
    fn record_tls_results(&self, results: Vec<TlsResult>) {
        if results.is_empty() {
            return;
        }
        self.write_detached(move |c| {
            let mut st = c
                .prepare_cached(
                    "INSERT INTO tls_results(at, domain, policy, failure) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql)?;
            for r in &results {
                st.execute(params![
                    r.at,
                    r.domain.to_ascii_lowercase(),
                    r.policy,
                    r.failure
                ])
                .map_err(sql)?;
            }
            Ok(())
        });
    }

    async fn tls_results_before(&self, until: i64) -> Result<Vec<DomainTlsResults>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT domain, policy, failure, count(*) FROM tls_results WHERE at < ?1
                     GROUP BY domain, policy, failure ORDER BY domain, min(id)",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([until], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, i64>(3)? as u64,
                    ))
                })
                .map_err(sql)?;
            let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)?;
            Ok(fold_tls_results(rows))
        })
        .await
    }

    async fn delete_tls_results(&self, domain: &str, until: i64) -> Result<()> {
        let domain = domain.to_ascii_lowercase();
        self.write(move |c| {
            c.execute(
                "DELETE FROM tls_results WHERE domain = ?1 AND at < ?2",
                params![domain, until],
            )
            .map(drop)
            .map_err(sql)
        })
        .await
    }
}
