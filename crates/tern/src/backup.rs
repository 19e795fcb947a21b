//! `tern backup DIR` and `tern restore DIR`: the store as one checked
//! file (see `store::SqliteStore::backup`), with the data directory's
//! `tls/` (a self-signed certificate made at the first start).

use std::path::Path;
use std::sync::Arc;

use store::Store;

use crate::config::{BackendName, Config};

fn copy_tls(from: &Path, to: &Path) -> Result<(), String> {
    let src = from.join("tls");
    if !src.is_dir() {
        return Ok(());
    }
    let dst = to.join("tls");
    std::fs::create_dir_all(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    for entry in std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name()))
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub async fn backup(store: Arc<dyn Store>, config: &Config, dir: &Path) -> Result<(), String> {
    if dir.join(store::SQLITE_FILE).exists() {
        return Err(format!("{} already holds a backup", dir.display()));
    }
    let started = std::time::Instant::now();
    let s = store
        .backup(dir)
        .await
        .map_err(|e| format!("backup failed: {e}"))?;
    copy_tls(&config.data_dir, dir)?;
    println!(
        "backed up {} account(s), {} mailbox(es), {} message(s), {} queued, {} octets to {} in {:.1} s (integrity checked)",
        s.accounts,
        s.mailboxes,
        s.messages,
        s.queued,
        s.bytes,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn restore(config: &Config, dir: &Path) -> Result<(), String> {
    if config.store.backend != BackendName::Sqlite {
        return Err("restore works on the sqlite backend".into());
    }
    let from = dir.join(store::SQLITE_FILE);
    if !from.is_file() {
        return Err(format!(
            "{}: no backup here ({} missing)",
            dir.display(),
            store::SQLITE_FILE
        ));
    }
    let to = config.data_dir.join(store::SQLITE_FILE);
    if to.exists() {
        return Err(format!(
            "{} already holds a store: restore only into an empty data directory",
            config.data_dir.display()
        ));
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    // Copied under another name and renamed when synced: never half a store.
    let partial = config
        .data_dir
        .join(format!("{}.restoring", store::SQLITE_FILE));
    std::fs::copy(&from, &partial).map_err(|e| format!("{}: {e}", from.display()))?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&partial, &to).map_err(|e| e.to_string())?;
    copy_tls(dir, &config.data_dir)?;
    println!(
        "restored {} into {}",
        dir.display(),
        config.data_dir.display()
    );
    Ok(())
}

/// `tern migrate --check`: the schema version of the data and of this
/// build, and what starting this build would do; nothing is changed.
pub fn migrate_check(config: &Config) -> Result<(), String> {
    if config.store.backend == BackendName::Postgres {
        println!(
            "PostgreSQL: the schema is brought up to date when a node or `tern migrate` connects \
             (one transaction under an advisory lock; a schema newer than this Tern is refused)"
        );
        return Ok(());
    }
    let db = config.data_dir.join(store::SQLITE_FILE);
    if !db.is_file() {
        println!(
            "no store yet in {}: the first start creates it",
            config.data_dir.display()
        );
        return Ok(());
    }
    let (have, want) = store::sqlite_schema_status(&db).map_err(|e| e.to_string())?;
    match have.cmp(&want) {
        std::cmp::Ordering::Equal => println!("schema version {have}: up to date, nothing to do"),
        std::cmp::Ordering::Less => println!(
            "schema version {have}; this Tern writes {want}: starting it would copy the store \
             next to {} (checked), then apply migrations {}..{want} in one transaction",
            db.display(),
            have + 1
        ),
        std::cmp::Ordering::Greater => {
            return Err(format!(
                "schema version {have} is newer than this Tern ({want}): run the newer Tern"
            ));
        }
    }
    Ok(())
}

/// `tern migrate --to postgres`: the SQLite store of the data directory
/// copied into the PostgreSQL database `[store]` names (which must be
/// empty), with progress, counts and checksums checked before it commits
/// (`store::PostgresStore::copy_from_sqlite`).
pub async fn copy_to_postgres(
    config: &Config,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(), String> {
    let (BackendName::Postgres, Some(url)) = (config.store.backend, &config.store.url) else {
        return Err(
            "set [store] backend = \"postgres\" and its url first: the database to copy into \
             (the SQLite store of data_dir is what is copied)"
                .into(),
        );
    };
    let source = config.data_dir.join(store::SQLITE_FILE);
    if !source.is_file() {
        return Err(format!("no SQLite store at {}", source.display()));
    }
    let started = std::time::Instant::now();
    let target = match tls {
        Some(tls) => store::PostgresStore::connect_tls(url, tls).await,
        None => store::PostgresStore::connect(url).await,
    }
    .map_err(|e| format!("store unreachable: {e}"))?;
    println!("copying {} into PostgreSQL", source.display());
    let summary = target
        .copy_from_sqlite(&source, &|step| println!("  {step}"))
        .await
        .map_err(|e| format!("nothing copied: {e}"))?;
    let rows: u64 = summary.tables.iter().map(|(_, n)| n).sum();
    println!(
        "copied {} tables, {rows} rows, {} contents ({} octets) in {:.1} s; counts and content checksums checked",
        summary.tables.len(),
        summary.contents,
        summary.octets,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
