//! The account change log in PostgreSQL (written by the triggers of the
//! schema, numbered per account in commit order); see [`crate::changes`].

use super::{PostgresStore, Prepared, pg};
use crate::changes::{Change, ChangeRow, ChangeStore, DataType};
use crate::error::Result;
use crate::types::AccountId;

#[async_trait::async_trait]
impl ChangeStore for PostgresStore {
    async fn change_state(&self, account: AccountId, kind: DataType) -> Result<u64> {
        let (object, _) = kind.columns();
        let row = self
            .row(
                &format!(
                    "SELECT seq FROM changes WHERE account_id = $1 AND {object} IS NOT NULL
                     ORDER BY seq DESC LIMIT 1"
                ),
                &[&account.0],
            )
            .await?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    async fn changes_after(
        &self,
        account: AccountId,
        kind: DataType,
        since: u64,
        limit: usize,
    ) -> Result<Vec<ChangeRow>> {
        let (object, change) = kind.columns();
        let rows = self
            .rows(
                &format!(
                    "SELECT seq, {object}, {change} FROM changes
                     WHERE account_id = $1 AND seq > $2 AND {object} IS NOT NULL ORDER BY seq LIMIT $3"
                ),
                &[&account.0, &(since as i64), &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(ChangeRow {
                    seq: r.get::<_, i64>(0) as u64,
                    object: r.get(1),
                    change: Change::from_code(i64::from(r.get::<_, i16>(2)))?,
                })
            })
            .collect())
    }

    async fn change_floor(&self, account: AccountId) -> Result<u64> {
        let row = self
            .row(
                "SELECT seq FROM change_floor WHERE account_id = $1",
                &[&account.0],
            )
            .await?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    async fn prune_changes(&self, keep: usize) -> Result<usize> {
        // The rows of accounts removed go first (ids are never reused).
        let mut pruned = self
            .run(
                "DELETE FROM changes WHERE account_id NOT IN (SELECT id FROM accounts)",
                &[],
            )
            .await? as usize;
        self.run(
            "DELETE FROM change_counters WHERE account_id NOT IN (SELECT id FROM accounts)",
            &[],
        )
        .await?;
        let over: Vec<i64> = self
            .rows(
                "SELECT account_id FROM changes GROUP BY account_id HAVING count(*) > $1",
                &[&(keep as i64)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for account in over {
            pruned += self.prune_account(account, keep).await?;
        }
        Ok(pruned)
    }
}

impl PostgresStore {
    /// Forget one account's changes below its newest `keep` and below each
    /// type's newest (its state); raise its floor. How many rows went.
    async fn prune_account(&self, account: i64, keep: usize) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let Some(oldest_kept) = tx
            .query_opt_p(
                "SELECT seq FROM changes WHERE account_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2",
                &[&account, &(keep.saturating_sub(1) as i64)],
            )
            .await
            .map_err(pg)?
            .map(|r| r.get::<_, i64>(0))
        else {
            return Ok(0);
        };
        let states = tx
            .query_one_p(
                "SELECT (SELECT max(seq) FROM changes WHERE account_id = $1 AND mailbox IS NOT NULL),
                        (SELECT max(seq) FROM changes WHERE account_id = $1 AND email IS NOT NULL),
                        (SELECT max(seq) FROM changes WHERE account_id = $1 AND thread IS NOT NULL)",
                &[&account],
            )
            .await
            .map_err(pg)?;
        let floor = (0..3)
            .filter_map(|i| states.get::<_, Option<i64>>(i))
            .fold(oldest_kept, i64::min);
        let n = tx
            .execute_p(
                "DELETE FROM changes WHERE account_id = $1 AND seq < $2",
                &[&account, &floor],
            )
            .await
            .map_err(pg)?;
        // The oldest state still answered: the newest forgotten row's.
        tx.execute_p(
            "INSERT INTO change_floor(account_id, seq) VALUES ($1, $2)
             ON CONFLICT (account_id) DO UPDATE SET seq = greatest(change_floor.seq, excluded.seq)",
            &[&account, &(floor - 1)],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(n as usize)
    }
}
