//! Backups of the SQLite store: `VACUUM INTO` writes a consistent copy of
//! the database as of one read transaction (WAL lets writers go on
//! meanwhile), compacted; the copy is synced to disk, opened and checked
//! (`PRAGMA integrity_check`) before it is called a backup. Restoring is
//! putting that file back as `tern.db` of an empty data directory.

use std::path::PathBuf;

use rusqlite::{Connection, OpenFlags};

use super::{SqliteStore, sql};
use crate::error::{Result, StoreError};
use crate::types::BackupSummary;

/// The name of the database file, in a data directory and in a backup.
pub const FILE: &str = "tern.db";

impl SqliteStore {
    pub(crate) async fn sql_backup(&self, dir: PathBuf) -> Result<BackupSummary> {
        let target = dir.join(FILE);
        if target.exists() {
            return Err(StoreError::Duplicate(format!(
                "{} exists",
                target.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Io(e.to_string()))?;
        let copy = target.clone();
        self.read(move |c| {
            let path = copy.to_string_lossy().into_owned();
            c.execute("VACUUM INTO ?1", [path]).map_err(sql)?;
            Ok(())
        })
        .await?;
        let io = |e: std::io::Error| StoreError::Io(e.to_string());
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::File::open(&dir)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        let bytes = std::fs::metadata(&target).map_err(io)?.len();
        let c =
            Connection::open_with_flags(&target, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(sql)?;
        if check != "ok" {
            return Err(StoreError::Io(format!(
                "the copy fails its integrity check: {check}"
            )));
        }
        let count = |table: &str| -> Result<u64> {
            c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
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
            bytes,
        })
    }
}
