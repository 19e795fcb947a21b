//! Domains, accounts and aliases: who receives mail here, how they sign
//! in, their quota and annotations, and the installation's settings and
//! DKIM keys. Addresses passed in are canonical (see `Mailbox::key`).
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use crate::error::Result;
use crate::types::*;

#[async_trait::async_trait]
pub trait DirectoryStore: Send + Sync {
    async fn add_domain(&self, name: &str) -> Result<DomainRecord>;
    async fn list_domains(&self) -> Result<Vec<DomainRecord>>;
    /// Refused while the domain still has accounts or aliases.
    async fn remove_domain(&self, name: &str) -> Result<()>;
    async fn add_dkim_key(&self, domain: &str, key: NewDkimKey) -> Result<()>;
    /// The value of an installation-wide setting; `initial` becomes it the first
    /// time (atomically: two processes asking at once get the same value).
    async fn setting_or_init(&self, name: &str, initial: Vec<u8>) -> Result<Vec<u8>>;
    /// A domain's DKIM keys, newest first.
    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>>;
    /// Creates the account and its special-use mailboxes.
    async fn add_account(&self, address: &str, credentials: Credentials) -> Result<AccountRecord>;
    async fn set_credentials(&self, address: &str, credentials: Credentials) -> Result<()>;
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>>;
    /// Removes the account with its mailboxes and messages.
    async fn remove_account(&self, address: &str) -> Result<()>;
    async fn account_credentials(&self, address: &str) -> Result<Option<AccountCredentials>>;
    /// Set an account's quota (RFC 9208).
    async fn set_quota(&self, address: &str, quota: Quota) -> Result<()>;
    /// Annotations (RFC 5464) on a mailbox, or on the server (None), by name.
    async fn metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// Set (Some) or remove (None) annotations in one transaction; refused
    /// with `StoreError::Full` when the account would keep more than
    /// `max_entries` of them.
    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: Vec<(String, Option<Vec<u8>>)>,
        max_entries: usize,
    ) -> Result<()>;
    /// An account's limits alone (one row; what a check asks first).
    async fn quota_limits(&self, account: AccountId) -> Result<Quota>;
    /// An account's quota and its usage now (every message in every mailbox).
    async fn quota(&self, account: AccountId) -> Result<QuotaUsage>;
    /// `address` may be `@domain` for a catch-all.
    async fn add_alias(&self, address: &str, targets: &[String]) -> Result<()>;
    async fn list_aliases(&self) -> Result<Vec<AliasRecord>>;
    async fn remove_alias(&self, address: &str) -> Result<()>;
    /// The (non catch-all) aliases that have `address` among their targets.
    async fn aliases_targeting(&self, address: &str) -> Result<Vec<String>>;
    /// What one exact address is: account, alias, unknown in a local domain, or not local.
    async fn lookup_address(&self, address: &str) -> Result<AddressKind>;
}

/// The domain part of a canonical address (`local@domain` or `@domain`).
pub(crate) fn domain_of(address: &str) -> Result<&str> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| crate::StoreError::Invalid(format!("not an address: {address}")))
}

/// An alias's targets as kept (comma-separated) back into a list.
pub(crate) fn split_targets(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}
