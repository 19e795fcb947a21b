//! Bearer tokens (RFC 6750) that sign a user's programs in to JMAP
//! instead of the password: each has a name the user chose, and only its
//! SHA-256 digest is kept (a stolen database holds no usable token).
//! `tern account token` issues, lists and revokes them.

use crate::error::Result;
use crate::types::{AccountId, AccountRecord};

/// One token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub created: i64,
}

#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    /// Keep a token's digest under `name`; `Duplicate` when the account
    /// already has a token of that name.
    async fn add_token(
        &self,
        account: AccountId,
        name: &str,
        digest: [u8; 32],
        created: i64,
    ) -> Result<()>;
    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>>;
    /// Revoke one; whether it was there.
    async fn remove_token(&self, account: AccountId, name: &str) -> Result<bool>;
    /// The account a token's digest belongs to.
    async fn token_account(&self, digest: [u8; 32]) -> Result<Option<AccountRecord>>;
}
