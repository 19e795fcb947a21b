//! Backups of the SQLite store: `VACUUM INTO` writes a consistent copy of
//! the database as of one read transaction (WAL lets writers go on
//! meanwhile), compacted; the copy is synced to disk, opened and checked
//! (`PRAGMA integrity_check`) before it is called a backup. Restoring is
//! putting that file back as `tern.db` of an empty data directory.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{SqliteStore, sql};
use crate::error::{Result, StoreError};
use crate::types::BackupSummary;

/// The name of the database file, in a data directory and in a backup.
pub const FILE: &str = "tern.db";

/// Copy the database `conn` reads into `target` with `VACUUM INTO` (one
/// consistent read transaction), sync the copy and its directory, and
/// open it checked by `check` (`integrity_check`, or `quick_check` when
/// time matters more). Used by backups and before schema migrations.
pub(super) fn copy_checked(conn: &Connection, target: &Path, check: &str) -> Result<Connection> {
    conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])
        .map_err(sql)?;
    let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", target.display()));
    std::fs::File::open(target)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
    }
    let copy =
        Connection::open_with_flags(target, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    let result: String = copy
        .query_row(&format!("PRAGMA {check}"), [], |r| r.get(0))
        .map_err(sql)?;
    if result != "ok" {
        return Err(StoreError::Invalid(format!(
            "the copy {} fails its {check}: {result}",
            target.display()
        )));
    }
    Ok(copy)
}

#[async_trait::async_trait]
impl crate::Store for SqliteStore {
    async fn backup(&self, dir: &std::path::Path) -> Result<BackupSummary> {
        let dir = dir.to_path_buf();
        let target = dir.join(FILE);
        if target.exists() {
            return Err(StoreError::Duplicate(format!(
                "{} exists",
                target.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Io(e.to_string()))?;
        self.read(move |c| {
            let copy = copy_checked(c, &target, "integrity_check")?;
            let count = |table: &str| -> Result<u64> {
                copy.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as u64)
                .map_err(sql)
            };
            Ok(BackupSummary {
                accounts: count("accounts")?,
                mailboxes: count("mailboxes")?,
                messages: count("mailbox_messages")?,
                queued: count("queue_messages")?,
                bytes: std::fs::metadata(&target)
                    .map_err(|e| StoreError::Io(e.to_string()))?
                    .len(),
            })
        })
        .await
    }
}
