//! Bearer tokens in PostgreSQL; see [`crate::tokens`].

use super::{PostgresStore, Prepared, duplicate};
use crate::error::Result;
use crate::tokens::{TokenInfo, TokenStore};
use crate::types::{AccountId, AccountRecord};

#[async_trait::async_trait]
impl TokenStore for PostgresStore {
    async fn add_token(
        &self,
        account: AccountId,
        name: &str,
        digest: [u8; 32],
        created: i64,
    ) -> Result<()> {
        self.client()
            .await?
            .execute_p(
                "INSERT INTO tokens(account_id, name, digest, created) VALUES ($1, $2, $3, $4)",
                &[&account.0, &name, &digest.as_slice(), &created],
            )
            .await
            .map_err(duplicate(|| format!("token {name}")))?;
        Ok(())
    }

    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>> {
        let rows = self
            .rows(
                "SELECT name, created FROM tokens WHERE account_id = $1 ORDER BY name",
                &[&account.0],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TokenInfo {
                name: r.get(0),
                created: r.get(1),
            })
            .collect())
    }

    async fn remove_token(&self, account: AccountId, name: &str) -> Result<bool> {
        let n = self
            .run(
                "DELETE FROM tokens WHERE account_id = $1 AND name = $2",
                &[&account.0, &name],
            )
            .await?;
        Ok(n > 0)
    }

    async fn token_account(&self, digest: [u8; 32]) -> Result<Option<AccountRecord>> {
        let row = self.row(
                "SELECT a.id, a.address, a.created FROM tokens t JOIN accounts a ON a.id = t.account_id
                 WHERE t.digest = $1",
                &[&digest.as_slice()],
            ).await?;
        Ok(row.as_ref().map(super::directory::account_row))
    }
}
