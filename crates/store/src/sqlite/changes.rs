//! The account change log in SQLite (migration 22: written by triggers);
//! see [`crate::changes`].

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::changes::{Change, ChangeRow, ChangeStore, DataType};
use crate::error::Result;
use crate::types::AccountId;

#[async_trait::async_trait]
impl ChangeStore for SqliteStore {
    async fn change_state(&self, account: AccountId, kind: DataType) -> Result<u64> {
        let (object, _) = kind.columns();
        // Walks the account's rows from the newest (the index) to the
        // first that changed this type: most rows change every type.
        let query = format!(
            "SELECT seq FROM changes WHERE account_id = ?1 AND {object} IS NOT NULL
             ORDER BY seq DESC LIMIT 1"
        );
        self.read(move |c| {
            c.prepare_cached(&query)
                .and_then(|mut st| st.query_row([account], |r| r.get::<_, i64>(0)).optional())
                .map(|seq| seq.unwrap_or(0) as u64)
                .map_err(sql)
        })
        .await
    }

    async fn changes_after(
        &self,
        account: AccountId,
        kind: DataType,
        since: u64,
        limit: usize,
    ) -> Result<Vec<ChangeRow>> {
        let (object, change) = kind.columns();
        let query = format!(
            "SELECT seq, {object}, {change} FROM changes
             WHERE account_id = ?1 AND seq > ?2 AND {object} IS NOT NULL ORDER BY seq LIMIT ?3"
        );
        self.read(move |c| {
            let mut st = c.prepare_cached(&query).map_err(sql)?;
            let rows = st
                .query_map(params![account, since as i64, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, object, change) = row.map_err(sql)?;
                if let Some(change) = Change::from_code(change) {
                    out.push(ChangeRow {
                        seq: seq as u64,
                        object,
                        change,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn change_floor(&self, account: AccountId) -> Result<u64> {
        self.read(move |c| {
            c.prepare_cached("SELECT seq FROM change_floor WHERE account_id = ?1")
                .and_then(|mut st| st.query_row([account], |r| r.get::<_, i64>(0)).optional())
                .map(|s| s.unwrap_or(0) as u64)
                .map_err(sql)
        })
        .await
    }

    async fn prune_changes(&self, keep: usize) -> Result<usize> {
        // The accounts over the limit, then one write job each (the writer
        // is not held for the whole log at once).
        let over: Vec<i64> = self
            .read(move |c| {
                c.prepare("SELECT account_id FROM changes GROUP BY account_id HAVING count(*) > ?1")
                    .and_then(|mut st| st.query_map([keep as i64], |r| r.get(0))?.collect())
                    .map_err(sql)
            })
            .await?;
        // The rows of accounts removed go first.
        let mut pruned = self
            .write(|c| {
                c.execute(
                    "DELETE FROM changes WHERE account_id NOT IN (SELECT id FROM accounts)",
                    [],
                )
                .map_err(sql)
            })
            .await?;
        for account in over {
            pruned += self
                .write(move |c| {
                    // Below the newest `keep` rows, and below each type's
                    // newest row (its state).
                    let floor: Option<i64> = c
                        .query_row(
                            "SELECT min(
                                 (SELECT seq FROM changes WHERE account_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2),
                                 coalesce((SELECT max(seq) FROM changes WHERE account_id = ?1 AND mailbox IS NOT NULL), 1 << 62),
                                 coalesce((SELECT max(seq) FROM changes WHERE account_id = ?1 AND email IS NOT NULL), 1 << 62),
                                 coalesce((SELECT max(seq) FROM changes WHERE account_id = ?1 AND thread IS NOT NULL), 1 << 62))",
                            params![account, keep as i64 - 1],
                            |r| r.get(0),
                        )
                        .map_err(sql)?;
                    let Some(floor) = floor else { return Ok(0) };
                    let n = c
                        .execute(
                            "DELETE FROM changes WHERE account_id = ?1 AND seq < ?2",
                            params![account, floor],
                        )
                        .map_err(sql)?;
                    // The oldest state still answered: the newest forgotten row's.
                    c.execute(
                        "INSERT INTO change_floor(account_id, seq) VALUES (?1, ?2 - 1)
                         ON CONFLICT(account_id) DO UPDATE SET seq = max(seq, excluded.seq)",
                        params![account, floor],
                    )
                    .map_err(sql)?;
                    Ok(n)
                })
                .await?;
        }
        Ok(pruned)
    }
}
