//! Bearer tokens in SQLite (migration 24); see [`crate::tokens`].

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::error::{Result, StoreError};
use crate::tokens::{TokenInfo, TokenStore};
use crate::types::{AccountId, AccountRecord};

#[async_trait::async_trait]
impl TokenStore for SqliteStore {
    async fn add_token(
        &self,
        account: AccountId,
        name: &str,
        digest: [u8; 32],
        created: i64,
    ) -> Result<()> {
        let name = name.to_string();
        self.write(move |c| {
            c.execute(
                "INSERT INTO tokens(account_id, name, digest, created) VALUES (?1, ?2, ?3, ?4)",
                params![account, name, digest.to_vec(), created],
            )
            .map_err(|e| match sql(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("token {name}")),
                other => other,
            })?;
            Ok(())
        })
        .await
    }

    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT name, created FROM tokens WHERE account_id = ?1 ORDER BY name",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([account], |r| {
                    Ok(TokenInfo {
                        name: r.get(0)?,
                        created: r.get(1)?,
                    })
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn remove_token(&self, account: AccountId, name: &str) -> Result<bool> {
        let name = name.to_string();
        self.write(move |c| {
            c.execute(
                "DELETE FROM tokens WHERE account_id = ?1 AND name = ?2",
                params![account, name],
            )
            .map(|n| n > 0)
            .map_err(sql)
        })
        .await
    }

    async fn token_account(&self, digest: [u8; 32]) -> Result<Option<AccountRecord>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT a.id, a.address, a.created FROM tokens t JOIN accounts a ON a.id = t.account_id
                 WHERE t.digest = ?1",
            )
            .and_then(|mut st| {
                st.query_row([digest.to_vec()], |r| {
                    Ok(AccountRecord { id: r.get(0)?, address: r.get(1)?, created: r.get(2)? })
                })
                .optional()
            })
            .map_err(sql)
        })
        .await
    }
}
