//! The PostgreSQL backend, for when one machine is not enough: several Tern
//! nodes share one database (`docs/scale.md`).
//!
//! Implementation notes
//! - Durability: every change is one transaction and returns after its
//!   COMMIT, which PostgreSQL acknowledges once the WAL is flushed
//!   (`synchronous_commit` on, its default): callers may acknowledge on it,
//!   as with SQLite (hardening.md C-FT3).
//! - Connections come from a pool (`deadpool-postgres`); the pool size
//!   bounds this node's concurrent statements.
//! - Ids are `BIGINT GENERATED ALWAYS AS IDENTITY`: never reused.
//! - Migrations run at connect under a transaction-scoped advisory lock,
//!   so nodes starting together migrate once (`schema.rs`).
//! - Errors: a unique violation is `Duplicate`, a full disk `Full`, a
//!   serialization or lock failure `Busy`, anything else `Io`.
//! - In progress: the contracts implemented so far are the ones the suite
//!   runs on this backend (`tests/suite.rs`); `[store]` does not offer it
//!   until it implements them all.

mod acl;
mod antispam;
mod blobs;
mod changes;
mod copy;
mod delivery;
mod directory;
mod feed;
mod history;
mod keys;
mod leases;
mod logins;
mod mailbox;
#[cfg(test)]
#[allow(dead_code)] // the TLS server and psql are for the node tests
#[path = "../../../testkit/src/postgres.rs"]
mod pg_server;
mod push;
mod queue;
mod reports;
mod schema;
mod search;
mod sieve;
mod submissions;
mod tls_results;
mod tokens;

use std::sync::Arc;

use tokio::sync::mpsc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::Row;
use tokio_postgres::Socket;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::ToSql;

use crate::error::{Result, StoreError};
use crate::feed::ChangeFeed;
pub use copy::CopySummary;

/// Connections this node keeps open at most.
const POOL_SIZE: usize = 16;

/// The PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    pool: Pool,
    /// Each account's active Sieve script as read lately (`sieve.rs`).
    active_scripts: crate::sieve::ActiveScripts,
    /// This node's end of the change feed, fed by the relay (`feed.rs`).
    feed: Arc<ChangeFeed>,
    /// Deliveries waiting for their shared transaction (`delivery.rs`).
    deliveries: delivery::Batcher,
    /// Records waiting for their writer (`insert_detached`).
    records: mpsc::Sender<Records>,
}

impl PostgresStore {
    /// Connect without TLS to the database `url` names (a libpq
    /// connection string or URL: a Unix socket, or a trusted network) and
    /// bring its schema up to date.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        PostgresStore::open(url, tokio_postgres::NoTls).await
    }

    /// Connect over TLS checked by `tls` (its roots: the operator's CA or
    /// the system's). TCP connections ask for TLS; `sslmode=require` in
    /// the url refuses a server that does not offer it (with the default
    /// `prefer`, such a server is spoken to in plain text). Unix sockets
    /// never use TLS.
    pub async fn connect_tls(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<PostgresStore> {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone());
        PostgresStore::open(url, tls).await
    }

    async fn open<T>(url: &str, tls: T) -> Result<PostgresStore>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + Sync + 'static,
        T::TlsConnect: Send + Sync,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("database url: {e}")))?;
        let feed = Arc::new(ChangeFeed::default());
        feed::start_relay(config.clone(), tls.clone(), &feed).await?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Io(format!("database pool: {e}")))?;
        let store = PostgresStore {
            deliveries: delivery::Batcher::start(pool.clone()),
            records: start_records_writer(pool.clone()),
            pool,
            feed,
            active_scripts: Default::default(),
        };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        Ok(store)
    }

    /// A statement's rows, on a connection from the pool.
    async fn rows(&self, statement: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.client()
            .await?
            .query_p(statement, params)
            .await
            .map_err(pg)
    }

    /// A statement's row, if any.
    async fn row(&self, statement: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        self.client()
            .await?
            .query_opt_p(statement, params)
            .await
            .map_err(pg)
    }

    /// A statement's one row (an error if there is none).
    async fn one_row(&self, statement: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        self.client()
            .await?
            .query_one_p(statement, params)
            .await
            .map_err(pg)
    }

    /// Run a statement; how many rows it changed.
    async fn run(&self, statement: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.client()
            .await?
            .execute_p(statement, params)
            .await
            .map_err(pg)
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Io(format!("database connection: {e}")))
    }
}

/// One row's parameters, owned (for a write that outlives its caller).
type OwnedRow = Vec<Box<dyn tokio_postgres::types::ToSql + Send + Sync>>;

/// Rows nobody acknowledges on (TLS results, the delivery history), of
/// one kind: what they are (for the log), the statement, the rows.
struct Records {
    what: &'static str,
    statement: &'static str,
    rows: Vec<OwnedRow>,
}

/// Records waiting for the writer at most; past it new ones are dropped
/// and logged (the database is far behind: mail goes first).
const RECORDS_WAITING: usize = 10_000;
/// Records written in one transaction at most.
const RECORDS_PER_COMMIT: usize = 1_000;

/// The writer of records: everything waiting goes in one transaction, so
/// a busy node commits them a few times a second instead of once per
/// message.
fn start_records_writer(pool: Pool) -> mpsc::Sender<Records> {
    let (sender, mut waiting) = mpsc::channel::<Records>(RECORDS_WAITING);
    tokio::spawn(async move {
        while let Some(first) = waiting.recv().await {
            let mut batch = vec![first];
            while batch.len() < RECORDS_PER_COMMIT
                && let Ok(more) = waiting.try_recv()
            {
                batch.push(more);
            }
            if let Err(e) = write_records(&pool, &batch).await {
                let what: std::collections::BTreeSet<&str> = batch.iter().map(|r| r.what).collect();
                tracing::warn!(error = %e, ?what, "store: records not written");
            }
        }
    });
    sender
}

async fn write_records(pool: &Pool, batch: &[Records]) -> std::result::Result<(), String> {
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    for records in batch {
        for row in &records.rows {
            let params: Vec<&(dyn ToSql + Sync)> = row.iter().map(|p| p.as_ref() as _).collect();
            tx.execute_p(records.statement, &params)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())
}

impl PostgresStore {
    /// Hand `rows` to the records writer: written with others shortly,
    /// never waited for. A failure is logged, naming `what`.
    fn insert_detached(&self, what: &'static str, statement: &'static str, rows: Vec<OwnedRow>) {
        if rows.is_empty() {
            return;
        }
        let records = Records {
            what,
            statement,
            rows,
        };
        if self.records.try_send(records).is_err() {
            tracing::warn!("store: {what} not recorded: the database is behind");
        }
    }
}

/// Statements prepared once per connection and kept (deadpool's statement
/// cache): PostgreSQL parses and plans a statement's text once instead of
/// at every call, and a call is one round trip instead of two (measured
/// with `scripts/bench-nodes`: parsing was most of the database's CPU).
/// Every statement here is one of a fixed set of texts (values are always
/// parameters, never spliced in), so the cache stays small.
#[async_trait::async_trait]
pub(super) trait Prepared: deadpool_postgres::GenericClient {
    async fn query_p(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query(&statement, params).await
    }

    async fn query_one_p(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Row, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query_one(&statement, params).await
    }

    async fn query_opt_p(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.query_opt(&statement, params).await
    }

    async fn execute_p(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.execute(&statement, params).await
    }
}

impl<T: deadpool_postgres::GenericClient + ?Sized> Prepared for T {}

/// A read-only transaction that sees one snapshot, for reads made of
/// several queries that must agree with each other.
async fn snapshot(client: &mut Object) -> Result<deadpool_postgres::Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)
}

/// A database error as the store's error.
fn pg(e: tokio_postgres::Error) -> StoreError {
    let Some(state) = e.code() else {
        return StoreError::Io(e.to_string());
    };
    let detail = e
        .as_db_error()
        .map(|d| d.detail().unwrap_or(d.message()).to_string())
        .unwrap_or_else(|| e.to_string());
    if *state == SqlState::UNIQUE_VIOLATION {
        StoreError::Duplicate(detail)
    } else if *state == SqlState::DISK_FULL || *state == SqlState::PROGRAM_LIMIT_EXCEEDED {
        StoreError::Full
    } else if *state == SqlState::T_R_SERIALIZATION_FAILURE
        || *state == SqlState::T_R_DEADLOCK_DETECTED
        || *state == SqlState::LOCK_NOT_AVAILABLE
    {
        StoreError::Busy
    } else {
        StoreError::Io(detail)
    }
}

/// A unique violation named for what the caller added; other errors as they are.
fn duplicate(what: impl Fn() -> String) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| match pg(e) {
        StoreError::Duplicate(_) => StoreError::Duplicate(what()),
        other => other,
    }
}

/// Ok when a statement changed some row, NotFound (of `what`) when none.
pub(super) fn changed(rows: u64, what: impl FnOnce() -> String) -> Result<()> {
    match rows {
        0 => Err(StoreError::NotFound(what())),
        _ => Ok(()),
    }
}

#[async_trait::async_trait]
impl crate::Store for PostgresStore {
    /// A PostgreSQL store is backed up by the database's own tools
    /// (`pg_dump`, or base backups with WAL archiving for point-in-time
    /// recovery), which see one snapshot while Tern writes on.
    async fn backup(&self, _dir: &std::path::Path) -> Result<crate::types::BackupSummary> {
        Err(StoreError::Invalid(
            "a PostgreSQL store is backed up with pg_dump (or a base backup); `tern backup` copies SQLite stores".into(),
        ))
    }
}
