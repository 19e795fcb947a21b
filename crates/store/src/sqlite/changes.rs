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
}
