//! The store: every durable thing Tern keeps (domains, accounts, aliases,
//! mailboxes, messages with their UIDs, MODSEQs and flags, message blobs, the
//! outbound queue, DMARC evaluations and received reports, and the rest
//! listed on [`Store`]).
//!
//! Layout: [`Store`] is the interface the rest of Tern uses, the sum of one
//! contract per concern, each in its own file (`directory`, `delivery`,
//! `mailbox`, `queue`, `reports`, `antispam`, …). [`SqliteStore`] (the
//! embedded default, `sqlite/`) implements them, and any other backend must
//! pass the same suite (`tests/suite.rs`). `ids` holds the typed ids,
//! `types` the records, `feed` the change feed and its contract, `error`
//! the one error type. `docs/scale.md` says what several nodes would need.
//!
//! Every method that changes something returns only after the change is
//! durable (committed and synced): callers may acknowledge on that.

pub mod acl;
pub mod antispam;
pub mod changes;
pub mod delivery;
pub mod directory;
pub mod error;
pub mod feed;
pub mod flags;
pub mod history;
pub mod ids;
pub mod keys;
pub mod leases;
pub mod logins;
pub mod mailbox;
pub mod object_id;
mod postgres;
pub mod push;
pub mod queue;
pub mod reports;
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
pub use delivery::DeliveryStore;
pub use directory::DirectoryStore;
pub use error::{Result, StoreError};
pub use feed::ChangeFeed;
pub use history::{HistoryEvent, HistoryKind, HistoryQuery, HistoryStore, MessageKey};
pub use keys::{KeyKind, KeyStore, PublicKey};
pub use leases::{LeaseStore, this_node};
pub use logins::{LoginStanding, LoginStore, LoginWindows};
pub use mailbox::MailboxStore;
pub use postgres::{CopySummary, PostgresStore};
pub use push::{PushStore, PushSubscription};
pub use queue::QueueStore;
pub use reports::ReportStore;
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

/// Everything Tern keeps, one contract per concern: [`DirectoryStore`]
/// (domains, accounts, aliases), [`DeliveryStore`] (a message arriving),
/// [`MailboxStore`] (mailboxes and their messages, the change feed),
/// [`QueueStore`] (outbound), [`ReportStore`] (DMARC), and the spam
/// defences' [`AntispamStore`], Sieve's [`SieveStore`], the search
/// index's [`SearchStore`], shared mailboxes' [`AclStore`], the delivery
/// history's [`HistoryStore`], TLS reporting's [`TlsResultStore`], the
/// account change log's [`ChangeStore`], JMAP submissions'
/// [`SubmissionStore`], bearer tokens' [`TokenStore`], JMAP push
/// subscriptions' [`PushStore`], and the public keys users publish,
/// [`KeyStore`], the named leases of [`LeaseStore`] and the guessing
/// throttle's [`LoginStore`]. A backend implements every one; `tests/suite.rs` holds
/// it to them.
#[async_trait::async_trait]
pub trait Store:
    DirectoryStore
    + DeliveryStore
    + MailboxStore
    + QueueStore
    + ReportStore
    + AntispamStore
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
    + LeaseStore
    + LoginStore
    + Send
    + Sync
{
    /// Write a consistent copy of everything into the empty directory
    /// `dir` while writers go on, synced and checked; what it holds.
    async fn backup(&self, dir: &std::path::Path) -> Result<BackupSummary>;
}

/// Which backend to open, from `[store]` of the configuration.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The database file `tern.db` inside this directory.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database every node shares (`docs/scale.md`): its url,
    /// and the TLS client that checks the server (None: no TLS, for a Unix
    /// socket or a trusted network).
    Postgres {
        url: String,
        tls: Option<Arc<rustls::ClientConfig>>,
    },
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
/// Open the store a node runs on, whichever the backend.
pub async fn connect(backend: &Backend, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    match backend {
        Backend::Sqlite(_) => open_with(backend, options),
        Backend::Postgres { url, tls: None } => Ok(Arc::new(PostgresStore::connect(url).await?)),
        Backend::Postgres {
            url,
            tls: Some(tls),
        } => Ok(Arc::new(
            PostgresStore::connect_tls(url, tls.clone()).await?,
        )),
    }
}

/// Open an embedded store (SQLite) without a runtime; PostgreSQL is
/// reached with [`connect`].
pub fn open_with(backend: &Backend, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    match backend {
        Backend::Postgres { .. } => Err(StoreError::Invalid(
            "a PostgreSQL store is opened with store::connect".into(),
        )),
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
