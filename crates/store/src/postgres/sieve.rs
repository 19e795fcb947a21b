//! Sieve scripts and tracked ids in PostgreSQL (see `crate::sieve`).
//!
//! Implementation notes
//! - At most one active script per account: activating sets every one of
//!   the account's rows in one statement.
//! - Expired ids are deleted as new ones are recorded, a bounded number at
//!   a time.
//! - The active script, as read, is kept a moment per node
//!   (`crate::sieve::ActiveScripts`): a change made on this node is seen
//!   at once, one made on another node within that time.

use deadpool_postgres::GenericClient;

use super::{PostgresStore, Prepared, changed, pg};
use crate::error::{Result, StoreError};
use crate::sieve::*;
use crate::types::AccountId;

/// Expired tracked ids removed per recording.
const PURGE_BATCH: i64 = 100;

impl PostgresStore {
    /// The active script and the JMAP vacation script (when it is not the
    /// active one), active first.
    async fn delivery_scripts(&self, account: AccountId) -> Result<Active> {
        if let Some(known) = self.active_scripts.get(account) {
            return Ok(known);
        }
        let rows = self
            .rows(
                "SELECT name, script, active FROM sieve_scripts
                 WHERE account_id = $1 AND (active OR name = $2) ORDER BY active DESC",
                &[&account.0, &VACATION_SCRIPT],
            )
            .await?;
        let scripts: Active = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        self.active_scripts.put(account, scripts.clone());
        Ok(scripts)
    }

    /// Run a script change and forget the account's active script.
    async fn changing<T>(
        &self,
        account: AccountId,
        change: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = change.await;
        self.active_scripts.forget(account);
        result
    }
}

async fn purge(c: &impl GenericClient, now: i64) -> Result<()> {
    c.execute_p(
        "DELETE FROM sieve_tracking WHERE ctid IN
           (SELECT ctid FROM sieve_tracking WHERE expires <= $1 LIMIT $2)",
        &[&now, &PURGE_BATCH],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

async fn script_active(
    c: &impl GenericClient,
    account: AccountId,
    name: &str,
) -> Result<Option<bool>> {
    let row = c
        .query_opt_p(
            "SELECT active FROM sieve_scripts WHERE account_id = $1 AND name = $2",
            &[&account.0, &name],
        )
        .await
        .map_err(pg)?;
    Ok(row.map(|r| r.get(0)))
}

#[async_trait::async_trait]
impl SieveStore for PostgresStore {
    async fn sieve_list(&self, account: AccountId) -> Result<Vec<SieveScriptInfo>> {
        let rows = self.rows(
                "SELECT name, active, octet_length(script) FROM sieve_scripts WHERE account_id = $1 ORDER BY name",
                &[&account.0],
            ).await?;
        Ok(rows
            .iter()
            .map(|r| SieveScriptInfo {
                name: r.get(0),
                active: r.get(1),
                size: r.get::<_, i32>(2) as u64,
            })
            .collect())
    }

    async fn sieve_get(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        let row = self
            .row(
                "SELECT script FROM sieve_scripts WHERE account_id = $1 AND name = $2",
                &[&account.0, &name],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn sieve_active(&self, account: AccountId) -> Result<Option<(String, String)>> {
        Ok(active_of(self.delivery_scripts(account).await?))
    }

    async fn sieve_delivery(&self, account: AccountId) -> Result<Vec<(String, String)>> {
        Ok(in_delivery_order(self.delivery_scripts(account).await?))
    }

    async fn sieve_put(&self, account: AccountId, name: &str, text: &str) -> Result<()> {
        self.changing(account, async {
            self.run(
                    "INSERT INTO sieve_scripts(account_id, name, script, active) VALUES ($1, $2, $3, FALSE)
                     ON CONFLICT (account_id, name) DO UPDATE SET script = excluded.script",
                    &[&account.0, &name, &text],
                ).await?;
            Ok(())
        })
        .await
    }

    async fn sieve_activate(&self, account: AccountId, name: Option<&str>) -> Result<()> {
        self.changing(account, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            if let Some(n) = name
                && script_active(&tx, account, n).await?.is_none()
            {
                return Err(StoreError::NotFound(format!("script {n}")));
            }
            tx.execute_p(
                "UPDATE sieve_scripts SET active = (name IS NOT DISTINCT FROM $2) WHERE account_id = $1",
                &[&account.0, &name],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)
        })
        .await
    }

    async fn sieve_delete(&self, account: AccountId, name: &str) -> Result<()> {
        self.changing(account, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            match script_active(&tx, account, name).await? {
                None => return Err(StoreError::NotFound(format!("script {name}"))),
                Some(true) => return Err(StoreError::InUse(format!("script {name} is active"))),
                Some(false) => {}
            }
            tx.execute_p(
                "DELETE FROM sieve_scripts WHERE account_id = $1 AND name = $2",
                &[&account.0, &name],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)
        })
        .await
    }

    async fn sieve_rename(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        self.changing(account, async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            if script_active(&tx, account, to).await?.is_some() {
                return Err(StoreError::Duplicate(format!("script {to}")));
            }
            let n = tx
                .execute_p(
                    "UPDATE sieve_scripts SET name = $3 WHERE account_id = $1 AND name = $2",
                    &[&account.0, &from, &to],
                )
                .await
                .map_err(pg)?;
            changed(n, || format!("script {from}"))?;
            tx.commit().await.map_err(pg)
        })
        .await
    }

    async fn sieve_seen(&self, account: AccountId, id: &str, now: i64) -> Result<bool> {
        let row = self
            .row(
                "SELECT 1 FROM sieve_tracking WHERE account_id = $1 AND id = $2 AND expires > $3",
                &[&account.0, &id, &now],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn sieve_track(
        &self,
        account: AccountId,
        ids: Vec<(String, i64)>,
        now: i64,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        purge(&tx, now).await?;
        for (id, expires) in &ids {
            tx.execute_p(
                "INSERT INTO sieve_tracking(account_id, id, expires) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id, id) DO UPDATE SET expires = greatest(sieve_tracking.expires, excluded.expires)",
                &[&account.0, id, expires],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn sieve_track_once(
        &self,
        account: AccountId,
        id: &str,
        expires: i64,
        now: i64,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        purge(&tx, now).await?;
        let n = tx
            .execute_p(
                "INSERT INTO sieve_tracking(account_id, id, expires) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id, id) DO UPDATE SET expires = excluded.expires
                 WHERE sieve_tracking.expires <= $4",
                &[&account.0, &id, &expires, &now],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(n > 0)
    }
}
