//! The embedded backend: one SQLite database file in WAL mode.
//!
//! Implementation notes
//! - Durability: `synchronous=FULL` makes every COMMIT fsync the WAL, so a
//!   write that returned Ok survives a crash or power loss (hardening.md C-FT3).
//! - Group commit: all writes of this process go through one writer thread.
//!   It takes every job waiting in its channel, runs each inside its own
//!   SAVEPOINT (a failing job rolls back alone) and commits them together: one
//!   fsync serves many SMTP sessions. A job's caller hears back only after the
//!   COMMIT succeeded.
//! - Other processes (the admin CLI while the server runs) write through their
//!   own writer; SQLite's lock serialises them, `busy_timeout` makes each side
//!   wait for the other instead of failing with "database is locked".
//! - Reads use a small pool of read-only connections on blocking threads; WAL
//!   lets them run while the writer commits.

mod acl;
mod admin;
mod antispam;
pub(crate) mod backup;
mod changes;
mod history;
mod keys;
mod leases;
mod logins;
mod mail;
mod mailbox;
mod push;
mod queue;
mod reports;
mod schema;
mod search;
mod sieve;
mod submissions;
mod tls_results;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::StoreOptions;
use crate::error::{Result, StoreError};

/// The store's ids go in and out of SQLite as the integers inside them.
macro_rules! sql_id {
    ($($name:ty),*) => {$(
        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(v).map(Self)
            }
        }
    )*};
}
sql_id!(
    crate::ids::DomainId,
    crate::ids::AccountId,
    crate::ids::MailboxId
);

/// Read connections (and concurrent reads) at most.
const READERS: usize = 8;
/// The most jobs one commit carries.
const MAX_BATCH: usize = 256;

type Completer = Box<dyn FnOnce(Result<()>) + Send>;
/// A write job. Called with the connection to run, or with None when its transaction
/// could not begin (then it does nothing and its completer reports the error).
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Completer) + Send>;

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// Mailboxes whose contents changed, published after the commit.
    feed: crate::feed::ChangeFeed,
    options: StoreOptions,
    writer: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    /// Bounds concurrent reads, and with them the pool (see `read`).
    reading: tokio::sync::Semaphore,
    /// Each account's active Sieve script as read lately (`sieve.rs`).
    pub(crate) active_scripts: crate::sieve::ActiveScripts,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    /// Must be called inside a Tokio runtime.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<SqliteStore> {
        let mut conn = open_connection(path, false, options)?;
        migrate(&mut conn, path)?;
        let indexed = search::backfill(&conn)?;
        if indexed > 0 {
            tracing::info!(messages = indexed, "search index: older messages indexed");
        }
        if let Some(max) = options.max_size {
            // SQLite answers SQLITE_FULL past this size, as a full disk would (C-FT5).
            let page: i64 = conn
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .map_err(sql)?;
            let pages = (max as i64 / page.max(1)).max(1);
            conn.pragma_update(None, "max_page_count", pages)
                .map_err(sql)?;
        }
        // Checkpoints run on their own thread, never inside a commit that someone
        // waits for (SQLite's automatic checkpoint would run in the COMMIT call).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(sql)?;
        let checkpointer = open_connection(path, false, options)?;
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        spawn("store-checkpoint", move || {
            checkpoint_loop(checkpointer, woken)
        })?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        spawn("store-writer", move || writer_loop(conn, rx, wake))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                feed: Default::default(),
                options: options.clone(),
                writer: tx,
                readers: Mutex::new(Vec::new()),
                reading: tokio::sync::Semaphore::new(READERS),
                active_scripts: Default::default(),
            }),
        })
    }

    /// The change feed this process's writes are published on.
    pub(crate) fn feed(&self) -> &crate::feed::ChangeFeed {
        &self.inner.feed
    }

    /// Run `f` in the next group commit; resolves once its changes are durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = conn.map(f);
            let failed = !matches!(result, Some(Ok(_)));
            let complete: Completer = Box::new(move |commit| {
                // The job's own failure says most about it; otherwise the commit's.
                let outcome = match result {
                    Some(Ok(v)) => commit.map(|()| v),
                    Some(Err(e)) => Err(e),
                    None => commit.and(Err(StoreError::Busy)),
                };
                let _ = tx.send(outcome);
            });
            (failed, complete)
        });
        self.inner
            .writer
            .send(job)
            .await
            .map_err(|_| StoreError::Io("the store writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Io("the store writer has stopped".into()))?
    }

    /// Run `f` in the next group commit without waiting for it (records
    /// nobody acknowledges on: the delivery history). When the writer's
    /// queue is full the work is dropped, with a warning, rather than
    /// making the caller wait.
    pub(crate) fn write_detached<F>(&self, f: F)
    where
        F: FnOnce(&Connection) -> Result<()> + Send + 'static,
    {
        let job: Job = Box::new(move |conn| {
            let result = conn.map(f);
            let failed = !matches!(result, Some(Ok(())));
            let complete: Completer = Box::new(move |commit| {
                if let Err(e) = result.unwrap_or(Err(StoreError::Busy)).and(commit) {
                    tracing::warn!(error = %e, "store: a detached write was lost");
                }
            });
            (failed, complete)
        });
        if self.inner.writer.try_send(job).is_err() {
            metrics::counter!("tern_store_detached_dropped_total").increment(1);
            tracing::warn!("store: writer overloaded, a detached write was dropped");
        }
    }

    /// Run `f` on a read-only connection from the pool, on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        // At most READERS reads at once: each holds a connection with its own page
        // cache, and a thousand idle IMAP sessions selecting at once must not open
        // a thousand of them.
        let _permit = self
            .inner
            .reading
            .acquire()
            .await
            .map_err(|_| StoreError::Io("store closed".into()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&inner.path, true, &inner.options)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Io(format!("read task failed: {e}")))?
    }
}

fn open_connection(path: &Path, read_only: bool, options: &StoreOptions) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", path.display())))?;
    // How long to wait for another process's write lock (C-FT7: then `Busy`).
    conn.busy_timeout(options.busy_timeout).map_err(sql)?;
    if !read_only {
        // WAL: readers never block the writer; FULL: fsync at every commit (durability).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sql)?;
    Ok(conn)
}

/// Apply the migrations that have not run yet, all in one transaction:
/// a failure leaves the schema and the data as they were, so the Tern
/// that wrote them still runs on them. A store that has data is first
/// copied next to the database and the copy checked (`quick_check`), in
/// case the new version is wrong about something the old one needs.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let version = schema_version(conn)?;
    let latest = schema::MIGRATIONS.len();
    if version > 0 && version < latest {
        let snapshot = snapshot_path(path, version);
        backup::copy_checked(conn, &snapshot, "quick_check").map_err(|e| {
            StoreError::Invalid(format!(
                "no snapshot before migrating ({e}); nothing was migrated"
            ))
        })?;
        tracing::warn!(
            from = version,
            to = latest,
            snapshot = %snapshot.display(),
            "store schema migrating; the data as it was is kept in the snapshot"
        );
    }
    migrate_with(conn, schema::MIGRATIONS)
}

/// Where the copy before migrating from `version` goes.
fn snapshot_path(db: &Path, version: usize) -> PathBuf {
    let name = db.file_name().unwrap_or_default().to_string_lossy();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    db.with_file_name(format!("{name}.schema-{version}-{now}.bak"))
}

fn schema_version(conn: &Connection) -> Result<usize> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    Ok(usize::try_from(version).unwrap_or(usize::MAX))
}

fn migrate_with(conn: &mut Connection, steps: &[&str]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)?;
    let version = schema_version(&tx)?;
    if version > steps.len() {
        return Err(StoreError::Invalid(format!(
            "the database has schema version {version}, newer than this Tern knows ({}); upgrade Tern",
            steps.len()
        )));
    }
    for (i, step) in steps.iter().enumerate().skip(version) {
        tx.execute_batch(step)
            .map_err(|e| StoreError::Invalid(format!("schema migration {} failed: {e}", i + 1)))?;
    }
    tx.pragma_update(None, "user_version", steps.len() as i64)
        .map_err(sql)?;
    tx.commit().map_err(sql)?;
    if version < steps.len() {
        tracing::info!(from = version, to = steps.len(), "store schema migrated");
    }
    Ok(())
}

/// A database's schema version and the one this Tern writes, without
/// changing anything (`tern migrate --check`).
pub fn schema_status(path: &Path) -> Result<(usize, usize)> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    Ok((schema_version(&conn)?, schema::MIGRATIONS.len()))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| StoreError::Io(format!("cannot start the {name} thread: {e}")))
}

/// At most one checkpoint per this interval: each one syncs the database file, and
/// fewer, larger syncs disturb the commits' own WAL syncs less.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Copy committed pages from the WAL into the database file (PASSIVE: never blocks
/// the writer) after commits, at most once per [`CHECKPOINT_INTERVAL`]; wake-ups
/// coalesce meanwhile.
fn checkpoint_loop(conn: Connection, woken: std::sync::mpsc::Receiver<()>) {
    while woken.recv().is_ok() {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "store: checkpoint failed");
        }
        std::thread::sleep(CHECKPOINT_INTERVAL);
    }
}

fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    checkpoint: std::sync::mpsc::SyncSender<()>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, batch);
        let _ = checkpoint.try_send(());
    }
}

fn commit_batch(conn: &Connection, batch: Vec<Job>) {
    let started = std::time::Instant::now();
    let jobs = batch.len();
    commit_batch_timed(conn, batch);
    // From BEGIN to the durable COMMIT: what a 250 after DATA waits for.
    metrics::histogram!("tern_store_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("tern_store_commit_jobs").record(jobs as f64);
}

fn commit_batch_timed(conn: &Connection, batch: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let err = sql(e);
        tracing::warn!(error = %err, jobs = batch.len(), "store: cannot begin a write transaction");
        for job in batch {
            let (_, complete) = job(None);
            complete(Err(err.clone()));
        }
        return;
    }
    let mut completers = Vec::with_capacity(batch.len());
    // Some errors (SQLITE_FULL, SQLITE_IOERR...) make SQLite roll the whole transaction
    // back: then every job of the batch is lost, the rest must not run outside it.
    let mut rolled_back = false;
    for job in batch {
        if rolled_back {
            completers.push(job(None).1);
            continue;
        }
        let savepoint = conn.execute_batch("SAVEPOINT job");
        let mark = search::pending_mark();
        let (failed, complete) = job(Some(conn));
        if failed {
            search::pending_truncate(mark);
        }
        if conn.is_autocommit() {
            rolled_back = true;
        } else if savepoint.is_ok() {
            let end = if failed {
                "ROLLBACK TO job; RELEASE job"
            } else {
                "RELEASE job"
            };
            if let Err(e) = conn.execute_batch(end) {
                tracing::warn!(error = %e, "store: savepoint failed");
            }
        }
        completers.push(complete);
    }
    // The jobs' search text, outside their savepoints (see `search`).
    let text = if rolled_back {
        search::pending_truncate(0);
        Ok(())
    } else {
        search::flush_pending(conn)
    };
    let outcome = if rolled_back {
        Err(StoreError::Io(
            "the database rolled the transaction back after a failed write".into(),
        ))
    } else {
        text.and_then(|()| conn.execute_batch("COMMIT").map_err(sql))
    };
    if let Err(e) = &outcome {
        tracing::warn!(error = %e, jobs = completers.len(), "store: commit failed");
        let _ = conn.execute_batch("ROLLBACK");
    }
    for complete in completers {
        complete(outcome.clone());
    }
}

/// Map an SQLite error to the store's error (C-FT5, C-FT6, C-FT7).
pub(crate) fn sql(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        match f.code {
            ErrorCode::DiskFull => return StoreError::Full,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => return StoreError::Busy,
            ErrorCode::ConstraintViolation => {
                return StoreError::Duplicate(msg.clone().unwrap_or_else(|| "record".into()));
            }
            _ => {}
        }
    }
    StoreError::Io(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migration that fails leaves every step of the run undone: the
    /// version and the data are what the previous Tern wrote.
    #[test]
    fn a_failed_migration_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("t.db")).unwrap();
        let old: &[&str] = &["CREATE TABLE a(x); INSERT INTO a VALUES (1);"];
        migrate_with(&mut conn, old).unwrap();
        let new: &[&str] = &[
            old[0],
            "CREATE TABLE b(y); UPDATE a SET x = 2;",
            "INSERT INTO no_such_table VALUES (3);",
        ];
        let err = migrate_with(&mut conn, new).unwrap_err();
        assert!(
            err.to_string().contains("schema migration 3 failed"),
            "{err}"
        );
        assert_eq!(schema_version(&conn).unwrap(), 1);
        let x: i64 = conn.query_row("SELECT x FROM a", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 1);
        let b: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(b, 0);
        // The old list still opens it; a newer database is refused.
        migrate_with(&mut conn, old).unwrap();
        migrate_with(&mut conn, &new[..2]).unwrap();
        let err = migrate_with(&mut conn, old).unwrap_err();
        assert!(
            err.to_string().contains("newer than this Tern knows"),
            "{err}"
        );
    }
}
