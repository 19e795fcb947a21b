//! Sieve scripts and tracked ids in SQLite (see `crate::sieve`).
//!
//! Implementation notes
//! - At most one active script per account: activating clears the others
//!   in the same write job.
//! - Expired ids are deleted as new ones are recorded, a bounded number at
//!   a time, so the table does not grow with old entries.
//! - Every delivery asks for the recipient's active script: the answer is
//!   kept `ACTIVE_FOR` (`crate::sieve::ActiveScripts`: a script changed
//!   through this store is seen at once, one changed by another process
//!   within that time).

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::error::{Result, StoreError};
use crate::sieve::*;
use crate::types::AccountId;

/// Expired tracked ids removed per recording.
const PURGE_BATCH: i64 = 100;

impl SqliteStore {
    /// The active script and the JMAP vacation script (when it is not the
    /// active one), active first: one query, kept a moment (`ActiveScripts`).
    async fn delivery_scripts(&self, account: AccountId) -> Result<Active> {
        if let Some(known) = self.inner.active_scripts.get(account) {
            return Ok(known);
        }
        let scripts = self
            .read(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT name, script, active FROM sieve_scripts
                         WHERE account_id = ?1 AND (active = 1 OR name = ?2) ORDER BY active DESC",
                    )
                    .map_err(sql)?;
                let rows = st
                    .query_map(params![account, VACATION_SCRIPT], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(sql)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
            })
            .await?;
        self.inner.active_scripts.put(account, scripts.clone());
        Ok(scripts)
    }
}

fn purge(c: &rusqlite::Connection, now: i64) -> Result<()> {
    c.prepare_cached(
        "DELETE FROM sieve_tracking WHERE rowid IN (SELECT rowid FROM sieve_tracking WHERE expires <= ?1 LIMIT ?2)",
    )
    .and_then(|mut st| st.execute(params![now, PURGE_BATCH]))
    .map(|_| ())
    .map_err(sql)
}

#[async_trait::async_trait]
impl SieveStore for SqliteStore {
    async fn sieve_list(&self, account: AccountId) -> Result<Vec<SieveScriptInfo>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT name, active, length(CAST(script AS BLOB)) FROM sieve_scripts WHERE account_id = ?1 ORDER BY name")
                .map_err(sql)?;
            let rows = st
                .query_map([account], |r| {
                    Ok(SieveScriptInfo {
                        name: r.get(0)?,
                        active: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                    })
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn sieve_get(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        let name = name.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT script FROM sieve_scripts WHERE account_id = ?1 AND name = ?2")
                .and_then(|mut st| {
                    st.query_row(params![account, name], |r| r.get(0))
                        .optional()
                })
                .map_err(sql)
        })
        .await
    }

    async fn sieve_active(&self, account: AccountId) -> Result<Option<(String, String)>> {
        Ok(active_of(self.delivery_scripts(account).await?))
    }

    async fn sieve_delivery(&self, account: AccountId) -> Result<Vec<(String, String)>> {
        Ok(in_delivery_order(self.delivery_scripts(account).await?))
    }

    async fn sieve_put(&self, account: AccountId, name: &str, text: &str) -> Result<()> {
        let (name, text) = (name.to_string(), text.to_string());
        let result = self
            .write(move |c| {
                c.prepare_cached(
                "INSERT INTO sieve_scripts(account_id, name, script, active) VALUES (?1, ?2, ?3, 0)
                 ON CONFLICT(account_id, name) DO UPDATE SET script = ?3",
            )
            .and_then(|mut st| st.execute(params![account, name, text]))
            .map(|_| ())
            .map_err(sql)
            })
            .await;
        self.inner.active_scripts.forget(account);
        result
    }

    async fn sieve_activate(&self, account: AccountId, name: Option<&str>) -> Result<()> {
        let name = name.map(str::to_string);
        let result = self
            .write(move |c| {
                if let Some(n) = &name {
                    let exists: Option<i64> = c
                        .prepare_cached(
                            "SELECT 1 FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                        )
                        .and_then(|mut st| {
                            st.query_row(params![account, n], |r| r.get(0)).optional()
                        })
                        .map_err(sql)?;
                    if exists.is_none() {
                        return Err(StoreError::NotFound(format!("script {n}")));
                    }
                }
                c.prepare_cached(
                    "UPDATE sieve_scripts SET active = (name IS ?2) WHERE account_id = ?1",
                )
                .and_then(|mut st| st.execute(params![account, name]))
                .map(|_| ())
                .map_err(sql)
            })
            .await;
        self.inner.active_scripts.forget(account);
        result
    }

    async fn sieve_delete(&self, account: AccountId, name: &str) -> Result<()> {
        let name = name.to_string();
        let result = self
            .write(move |c| {
                let active: Option<bool> = c
                    .prepare_cached(
                        "SELECT active FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                    )
                    .and_then(|mut st| {
                        st.query_row(params![account, name], |r| r.get(0))
                            .optional()
                    })
                    .map_err(sql)?;
                match active {
                    None => Err(StoreError::NotFound(format!("script {name}"))),
                    Some(true) => Err(StoreError::InUse(format!("script {name} is active"))),
                    Some(false) => c
                        .execute(
                            "DELETE FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                            params![account, name],
                        )
                        .map(|_| ())
                        .map_err(sql),
                }
            })
            .await;
        self.inner.active_scripts.forget(account);
        result
    }

    async fn sieve_rename(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        let result = self
            .write(move |c| {
                let taken: Option<i64> = c
                    .prepare_cached(
                        "SELECT 1 FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                    )
                    .and_then(|mut st| st.query_row(params![account, to], |r| r.get(0)).optional())
                    .map_err(sql)?;
                if taken.is_some() {
                    return Err(StoreError::Duplicate(format!("script {to}")));
                }
                let n = c
                    .execute(
                        "UPDATE sieve_scripts SET name = ?3 WHERE account_id = ?1 AND name = ?2",
                        params![account, from, to],
                    )
                    .map_err(sql)?;
                match n {
                    0 => Err(StoreError::NotFound(format!("script {from}"))),
                    _ => Ok(()),
                }
            })
            .await;
        self.inner.active_scripts.forget(account);
        result
    }

    async fn sieve_seen(&self, account: AccountId, id: &str, now: i64) -> Result<bool> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT 1 FROM sieve_tracking WHERE account_id = ?1 AND id = ?2 AND expires > ?3",
            )
            .and_then(|mut st| {
                st.query_row(params![account, id, now], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map(|x| x.is_some())
            .map_err(sql)
        })
        .await
    }

    async fn sieve_track(
        &self,
        account: AccountId,
        ids: Vec<(String, i64)>,
        now: i64,
    ) -> Result<()> {
        self.write(move |c| {
            purge(c, now)?;
            let mut st = c
                .prepare_cached(
                    "INSERT INTO sieve_tracking(account_id, id, expires) VALUES (?1, ?2, ?3)
                     ON CONFLICT(account_id, id) DO UPDATE SET expires = max(expires, ?3)",
                )
                .map_err(sql)?;
            for (id, expires) in &ids {
                st.execute(params![account, id, expires]).map_err(sql)?;
            }
            Ok(())
        })
        .await
    }

    async fn sieve_track_once(
        &self,
        account: AccountId,
        id: &str,
        expires: i64,
        now: i64,
    ) -> Result<bool> {
        let id = id.to_string();
        self.write(move |c| {
            purge(c, now)?;
            let n = c
                .prepare_cached(
                    "INSERT INTO sieve_tracking(account_id, id, expires) VALUES (?1, ?2, ?3)
                     ON CONFLICT(account_id, id) DO UPDATE SET expires = ?3 WHERE expires <= ?4",
                )
                .and_then(|mut st| st.execute(params![account, id, expires, now]))
                .map_err(sql)?;
            Ok(n > 0)
        })
        .await
    }
}
