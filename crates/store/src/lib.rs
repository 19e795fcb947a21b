//! The store: every durable thing Tern keeps (domains, accounts, aliases,
//! mailboxes, messages with their UIDs, MODSEQs and flags, message blobs, the
//! outbound queue, DMARC evaluations and received reports).
//!
//! Layout: [`Store`] is the interface the rest of Tern uses, written so that
//! a PostgreSQL backend can implement it next to [`SqliteStore`] (the embedded
//! default, `sqlite/`) and pass the same test suite (`tests/suite.rs`).
//! `types` holds the records, `error` the one error type.
//!
//! Every method that changes something returns only after the change is
//! durable (committed and synced): callers may acknowledge on that.

pub mod acl;
pub mod antispam;
pub mod changes;
pub mod error;
pub mod flags;
pub mod history;
pub mod keys;
pub mod object_id;
pub mod push;
pub mod search;
pub mod sieve;
mod sqlite;
pub mod stream;
pub mod submissions;
pub mod tls_results;
pub mod tokens;
pub mod types;

use std::sync::Arc;

pub use message::spool::Spooled;

pub use acl::{ANYONE, AclStore, SharedMailbox};
pub use antispam::AntispamStore;
pub use changes::{Change, ChangeRow, ChangeStore, DataType};
pub use error::{Result, StoreError};
pub use history::{HistoryEvent, HistoryKind, HistoryQuery, HistoryStore, MessageKey};
pub use keys::{KeyKind, KeyStore, PublicKey};
pub use push::{PushStore, PushSubscription};
pub use search::{EmailCopy, IndexRow, SearchStore, TextField};
pub use sieve::{SieveScriptInfo, SieveStore, VACATION_SCRIPT};
pub use sqlite::SqliteStore;
/// The database file of the SQLite store, in a data directory and in a backup.
pub use sqlite::backup::FILE as SQLITE_FILE;
/// (schema version of the database, version this build writes), read only.
pub use sqlite::schema_status as sqlite_schema_status;
pub use submissions::{Submission, SubmissionStore};
pub use tls_results::{DomainTlsResults, TlsResult, TlsResultStore};
pub use tokens::{TokenInfo, TokenStore};
pub use types::*;

/// Everything Tern keeps. Addresses passed in are canonical (see `Mailbox::key`).
/// The spam defences' part is its own contract, [`AntispamStore`], and so
/// are Sieve's, [`SieveStore`], the search index's, [`SearchStore`],
/// shared mailboxes', [`AclStore`], the delivery history's, [`HistoryStore`],
/// TLS reporting's, [`TlsResultStore`], the account change log's,
/// [`ChangeStore`], JMAP submissions', [`SubmissionStore`], bearer
/// tokens', [`TokenStore`], JMAP push subscriptions', [`PushStore`], and
/// the public keys users publish, [`KeyStore`].
#[async_trait::async_trait]
pub trait Store:
    AntispamStore
    + SieveStore
    + SearchStore
    + AclStore
    + HistoryStore
    + TlsResultStore
    + ChangeStore
    + SubmissionStore
    + TokenStore
    + PushStore
    + KeyStore
    + Send
    + Sync
{
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

    /// Store a message, its local deliveries and its queue entry in one durable transaction.
    async fn store_message(&self, message: NewMessage) -> Result<Stored>;
    /// Several messages (versions of one message: Sieve may edit a user's
    /// copy) in one durable transaction: all are stored or none.
    async fn store_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<Stored>>;
    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>>;
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>>;
    /// The full message as delivered: per-recipient prefix and shared body.
    async fn message_content(&self, mailbox: MailboxId, uid: u32) -> Result<Option<Vec<u8>>>;

    async fn queue_list(&self) -> Result<Vec<QueueSummary>>;
    /// Lease queued recipients (due ones, or one message's) until `lease_until`.
    async fn queue_claim(
        &self,
        claim: Claim,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueueJob>>;
    /// A queued message's content, copied a block at a time into `spool`
    /// (memory while small, a spool file past that: hardening.md C-FT9).
    async fn queue_content(
        &self,
        id: i64,
        spool: &message::spool::Spool,
    ) -> Result<Option<Spooled>>;
    /// Record a delivery run: attempts, and each recipient's new state; releases
    /// leases. If no recipient is left to try, the message leaves the queue in the
    /// same transaction and comes back (with its content if a recipient failed).
    async fn queue_report(&self, report: QueueReport) -> Result<Option<FinishedMessage>>;
    async fn queue_show(&self, id: i64) -> Result<Option<QueueDetail>>;
    /// Make recipients due now: one message's, or every one; how many.
    async fn queue_retry(&self, id: Option<i64>, now: i64) -> Result<usize>;
    async fn queue_delete(&self, id: i64) -> Result<()>;
    /// Drop every lease (one node starting: nobody else delivers).
    async fn queue_release(&self) -> Result<()>;
    /// Each message with queued recipients and its earliest next attempt.
    async fn queue_pending(&self) -> Result<Vec<(i64, i64)>>;

    // --- mailboxes (IMAP, POP3) ---
    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxRecord>>;
    async fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxRecord>;
    /// Removes the mailbox with its messages (not the mailboxes below it).
    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()>;
    /// Renames the mailbox and the ones below it; INBOX moves its messages instead.
    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()>;
    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()>;
    /// Messages added or changed, and UIDs expunged, after `since` (a MODSEQ).
    async fn changes_since(&self, mailbox: MailboxId, since: u64) -> Result<MailboxChanges>;
    /// Store a message in a mailbox (IMAP APPEND); its UID.
    /// Keep a message a client put into a mailbox (IMAP APPEND, import):
    /// large content comes spooled and is copied into the store a block at
    /// a time (hardening.md C-FT9).
    async fn append(
        &self,
        mailbox: MailboxId,
        data: Spooled,
        flags: Vec<String>,
        internal_date: i64,
    ) -> Result<u32>;
    async fn set_flags(
        &self,
        mailbox: MailboxId,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<FlagUpdate>;
    /// Remove the messages flagged \Deleted, among `uids` if given; their UIDs.
    async fn expunge(&self, mailbox: MailboxId, uids: Option<Vec<u32>>) -> Result<Vec<u32>>;
    /// Remove these messages whatever their flags.
    async fn remove_messages(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<()>;
    /// Copy (or move) messages; (source UID, new UID) pairs in UID order.
    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: Vec<u32>,
        to: MailboxId,
        remove: bool,
    ) -> Result<Vec<(u32, u32)>>;
    /// The entries (flags, size, dates, MODSEQ) of these UIDs, those that exist.
    async fn entries(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<MessageEntry>>;
    /// The contents of several messages, those that still exist.
    async fn contents(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<(u32, Vec<u8>)>>;
    /// At most `len` octets of a message's content from octet `start`
    /// (fewer at its end): a large message is sent to a client a piece at
    /// a time (hardening.md C-FT9). None if the message is gone.
    async fn content_range(
        &self,
        mailbox: MailboxId,
        uid: u32,
        start: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>>;
    /// Claim the \Recent messages of a mailbox; the first UID that is recent for the caller.
    async fn claim_recent(&self, mailbox: MailboxId) -> Result<u32>;
    /// Mailbox ids announced after every change of their contents, and
    /// after a mailbox is created, deleted or (un)subscribed (a deleted
    /// one's id names nothing any more).
    fn watch(&self) -> tokio::sync::broadcast::Receiver<MailboxId>;
    /// Write a consistent copy of everything into the empty directory
    /// `dir` while writers go on, synced and checked; what it holds.
    async fn backup(&self, dir: &std::path::Path) -> Result<BackupSummary>;

    /// Keep DMARC evaluations for the next aggregate reports.
    async fn record_evaluations(&self, evaluations: Vec<NewEvaluation>) -> Result<()>;
    /// The evaluations recorded before `until`, by domain.
    async fn evaluations_before(&self, until: i64) -> Result<Vec<DomainEvaluations>>;
    /// Forget a domain's evaluations recorded before `until` (once reported).
    async fn delete_evaluations(&self, domain: &str, until: i64) -> Result<()>;
    /// Keep a received aggregate report; None if the same organisation's
    /// report with this id is already kept.
    async fn add_received_report(&self, report: ReceivedReport) -> Result<Option<i64>>;
    /// The received reports, oldest first, without their XML.
    async fn received_reports(&self) -> Result<Vec<ReceivedReport>>;
    async fn received_report(&self, id: i64) -> Result<Option<ReceivedReport>>;
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn record_evaluations(&self, evaluations: Vec<NewEvaluation>) -> Result<()> {
        self.sql_record_evaluations(evaluations).await
    }
    async fn evaluations_before(&self, until: i64) -> Result<Vec<DomainEvaluations>> {
        self.sql_evaluations_before(until).await
    }
    async fn delete_evaluations(&self, domain: &str, until: i64) -> Result<()> {
        self.sql_delete_evaluations(domain.to_string(), until).await
    }
    async fn add_received_report(&self, report: ReceivedReport) -> Result<Option<i64>> {
        self.sql_add_received_report(report).await
    }
    async fn received_reports(&self) -> Result<Vec<ReceivedReport>> {
        self.sql_received_reports().await
    }
    async fn received_report(&self, id: i64) -> Result<Option<ReceivedReport>> {
        self.sql_received_report(id).await
    }
    async fn add_domain(&self, name: &str) -> Result<DomainRecord> {
        self.sql_add_domain(name.to_string()).await
    }
    async fn list_domains(&self) -> Result<Vec<DomainRecord>> {
        self.sql_list_domains().await
    }
    async fn remove_domain(&self, name: &str) -> Result<()> {
        self.sql_remove_domain(name.to_string()).await
    }
    async fn add_dkim_key(&self, domain: &str, key: NewDkimKey) -> Result<()> {
        self.sql_add_dkim_key(domain.to_string(), key).await
    }
    async fn setting_or_init(&self, name: &str, initial: Vec<u8>) -> Result<Vec<u8>> {
        self.sql_setting_or_init(name.to_string(), initial).await
    }
    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        self.sql_dkim_keys(domain.to_string()).await
    }
    async fn add_account(&self, address: &str, credentials: Credentials) -> Result<AccountRecord> {
        self.sql_add_account(address.to_string(), credentials).await
    }
    async fn set_credentials(&self, address: &str, credentials: Credentials) -> Result<()> {
        self.sql_set_credentials(address.to_string(), credentials)
            .await
    }
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>> {
        self.sql_list_accounts().await
    }
    async fn remove_account(&self, address: &str) -> Result<()> {
        self.sql_remove_account(address.to_string()).await
    }
    async fn account_credentials(&self, address: &str) -> Result<Option<AccountCredentials>> {
        self.sql_account_credentials(address.to_string()).await
    }
    async fn set_quota(&self, address: &str, quota: Quota) -> Result<()> {
        self.sql_set_quota(address.to_string(), quota).await
    }
    async fn metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.sql_metadata(account, mailbox).await
    }
    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: Vec<(String, Option<Vec<u8>>)>,
        max_entries: usize,
    ) -> Result<()> {
        self.sql_set_metadata(account, mailbox, entries, max_entries)
            .await
    }
    async fn quota_limits(&self, account: AccountId) -> Result<Quota> {
        self.sql_quota_limits(account).await
    }
    async fn quota(&self, account: AccountId) -> Result<QuotaUsage> {
        self.sql_quota(account).await
    }
    async fn add_alias(&self, address: &str, targets: &[String]) -> Result<()> {
        self.sql_add_alias(address.to_string(), targets.to_vec())
            .await
    }
    async fn list_aliases(&self) -> Result<Vec<AliasRecord>> {
        self.sql_list_aliases().await
    }
    async fn remove_alias(&self, address: &str) -> Result<()> {
        self.sql_remove_alias(address.to_string()).await
    }
    async fn aliases_targeting(&self, address: &str) -> Result<Vec<String>> {
        self.sql_aliases_targeting(address.to_string()).await
    }
    async fn lookup_address(&self, address: &str) -> Result<AddressKind> {
        self.sql_lookup_address(address.to_string()).await
    }
    async fn store_message(&self, message: NewMessage) -> Result<Stored> {
        let stored = self.sql_store_message(message).await?;
        self.announce(stored.placed.iter().map(|p| p.0));
        Ok(stored)
    }
    async fn store_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<Stored>> {
        let stored = self.sql_store_messages(messages).await?;
        self.announce(stored.iter().flat_map(|s| s.placed.iter().map(|p| p.0)));
        Ok(stored)
    }
    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>> {
        self.sql_mailboxes(account).await
    }
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>> {
        self.sql_messages(mailbox).await
    }
    async fn message_content(&self, mailbox: MailboxId, uid: u32) -> Result<Option<Vec<u8>>> {
        self.sql_message_content(mailbox, uid).await
    }
    async fn queue_list(&self) -> Result<Vec<QueueSummary>> {
        self.sql_queue_list().await
    }
    async fn queue_claim(
        &self,
        claim: Claim,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueueJob>> {
        self.sql_queue_claim(claim, now, lease_until, limit).await
    }
    async fn queue_content(
        &self,
        id: i64,
        spool: &message::spool::Spool,
    ) -> Result<Option<Spooled>> {
        self.sql_queue_content(id, spool.writer()).await
    }
    async fn queue_report(&self, report: QueueReport) -> Result<Option<FinishedMessage>> {
        self.sql_queue_report(report).await
    }
    async fn queue_show(&self, id: i64) -> Result<Option<QueueDetail>> {
        self.sql_queue_show(id).await
    }
    async fn queue_retry(&self, id: Option<i64>, now: i64) -> Result<usize> {
        self.sql_queue_retry(id, now).await
    }
    async fn queue_delete(&self, id: i64) -> Result<()> {
        self.sql_queue_delete(id).await
    }
    async fn queue_release(&self) -> Result<()> {
        self.sql_queue_release().await
    }
    async fn queue_pending(&self) -> Result<Vec<(i64, i64)>> {
        self.sql_queue_pending().await
    }
    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxRecord>> {
        self.sql_mailbox(account, name.to_string()).await
    }
    async fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxRecord> {
        let created = self.sql_create_mailbox(account, name.to_string()).await?;
        self.announce([created.id]);
        Ok(created)
    }
    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let gone = self.sql_mailbox(account, name.to_string()).await?;
        self.sql_delete_mailbox(account, name.to_string()).await?;
        self.announce(gone.map(|m| m.id));
        Ok(())
    }
    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let touched = self
            .sql_rename_mailbox(account, from.to_string(), to.to_string())
            .await?;
        self.announce(touched);
        Ok(())
    }
    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        self.sql_set_subscribed(account, name.to_string(), subscribed)
            .await?;
        let changed = self.sql_mailbox(account, name.to_string()).await?;
        self.announce(changed.map(|m| m.id));
        Ok(())
    }
    async fn changes_since(&self, mailbox: MailboxId, since: u64) -> Result<MailboxChanges> {
        self.sql_changes_since(mailbox, since).await
    }
    async fn append(
        &self,
        mailbox: MailboxId,
        data: Spooled,
        flags: Vec<String>,
        internal_date: i64,
    ) -> Result<u32> {
        let uid = self.sql_append(mailbox, data, flags, internal_date).await?;
        self.announce([mailbox]);
        Ok(uid)
    }
    async fn set_flags(
        &self,
        mailbox: MailboxId,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<FlagUpdate> {
        let update = self
            .sql_set_flags(mailbox, uids, op, flags, unchanged_since)
            .await?;
        if !update.updated.is_empty() {
            self.announce([mailbox]);
        }
        Ok(update)
    }
    async fn expunge(&self, mailbox: MailboxId, uids: Option<Vec<u32>>) -> Result<Vec<u32>> {
        let gone = self.sql_expunge(mailbox, uids).await?;
        if !gone.is_empty() {
            self.announce([mailbox]);
        }
        Ok(gone)
    }
    async fn remove_messages(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<()> {
        self.sql_remove_messages(mailbox, uids).await?;
        self.announce([mailbox]);
        Ok(())
    }
    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: Vec<u32>,
        to: MailboxId,
        remove: bool,
    ) -> Result<Vec<(u32, u32)>> {
        let pairs = self.sql_copy(from, uids, to, remove).await?;
        self.announce(if remove { vec![from, to] } else { vec![to] });
        Ok(pairs)
    }
    async fn entries(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<MessageEntry>> {
        self.sql_entries(mailbox, uids).await
    }
    async fn contents(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<(u32, Vec<u8>)>> {
        self.sql_contents(mailbox, uids).await
    }
    async fn content_range(
        &self,
        mailbox: MailboxId,
        uid: u32,
        start: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>> {
        self.sql_content_range(mailbox, uid, start, len).await
    }
    async fn claim_recent(&self, mailbox: MailboxId) -> Result<u32> {
        self.sql_claim_recent(mailbox).await
    }
    fn watch(&self) -> tokio::sync::broadcast::Receiver<MailboxId> {
        SqliteStore::watch(self)
    }
    async fn backup(&self, dir: &std::path::Path) -> Result<BackupSummary> {
        self.sql_backup(dir.to_path_buf()).await
    }
}

/// Which backend to open, from `[store]` of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The database file `tern.db` inside this directory.
    Sqlite(std::path::PathBuf),
}

/// Tuning of the backend, from `[store]` of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a write waits for another process's lock before failing with `Busy`.
    pub busy_timeout: std::time::Duration,
    /// Refuse to grow the database past this many bytes (`Full`, like a full disk).
    pub max_size: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: std::time::Duration::from_secs(10),
            max_size: None,
        }
    }
}

/// Open the configured backend with default options.
pub fn open(backend: &Backend) -> Result<Arc<dyn Store>> {
    open_with(backend, &StoreOptions::default())
}

/// Open the configured backend (creating and migrating it as needed).
pub fn open_with(backend: &Backend, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    match backend {
        Backend::Sqlite(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", dir.display())))?;
            Ok(Arc::new(SqliteStore::open(
                &dir.join(sqlite::backup::FILE),
                options,
            )?))
        }
    }
}
