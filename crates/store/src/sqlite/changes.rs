//! The account change log in SQLite (migration 22: written by triggers);
//! see [`crate::changes`].

use rusqlite::params;

use super::{SqliteStore, sql};
use crate::changes::{Change, ChangeRow, ChangeStore, DataType};
use crate::error::Result;
use crate::types::AccountId;

#[async_trait::async_trait]
impl ChangeStore for SqliteStore {
    async fn change_state(&self, account: AccountId, kind: DataType) -> Result<u64> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT coalesce(max(seq), 0) FROM changes WHERE account_id = ?1 AND kind = ?2",
            )
            .and_then(|mut st| st.query_row(params![account, kind.code()], |r| r.get::<_, i64>(0)))
            .map(|seq| seq as u64)
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
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT seq, object, change FROM changes
                     WHERE account_id = ?1 AND kind = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(
                    params![account, kind.code(), since as i64, limit as i64],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
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
}
