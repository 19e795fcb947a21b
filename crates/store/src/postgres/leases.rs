//! Named leases in PostgreSQL; see [`crate::leases`]. One upsert: the
//! row's lock orders two nodes asking at once, and only one of them gets
//! the row back.

use super::PostgresStore;
use crate::error::Result;
use crate::leases::LeaseStore;

#[async_trait::async_trait]
impl LeaseStore for PostgresStore {
    async fn take_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        let taken = self
            .row(
                "INSERT INTO leases(name, holder, until) VALUES ($1, $2, $4)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.until <= $3 OR leases.holder = excluded.holder
                 RETURNING holder",
                &[&name, &holder, &now, &until],
            )
            .await?;
        Ok(taken.is_some())
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.run(
            "DELETE FROM leases WHERE name = $1 AND holder = $2",
            &[&name, &holder],
        )
        .await?;
        Ok(())
    }

    async fn clear_leases(&self) -> Result<()> {
        self.run("DELETE FROM leases", &[]).await?;
        Ok(())
    }
}
