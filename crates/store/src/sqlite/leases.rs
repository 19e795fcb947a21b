//! Named leases in SQLite (migration 30); see [`crate::leases`].

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::leases::LeaseStore;

#[async_trait::async_trait]
impl LeaseStore for SqliteStore {
    async fn take_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO leases(name, holder, until) VALUES (?1, ?2, ?4)
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.until <= ?3 OR leases.holder = excluded.holder
                 RETURNING holder",
            )
            .and_then(|mut st| {
                st.query_row(params![name, holder, now, until], |_| Ok(()))
                    .optional()
            })
            .map(|taken| taken.is_some())
            .map_err(sql)
        })
        .await
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |c| {
            c.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .map(drop)
            .map_err(sql)
        })
        .await
    }

    async fn clear_leases(&self) -> Result<()> {
        self.write(|c| c.execute("DELETE FROM leases", []).map(drop).map_err(sql))
            .await
    }
}
