//! `tern migrate --to postgres`: an SQLite store copied into an empty
//! PostgreSQL database, everything or nothing (one transaction), checked
//! before it commits.
//!
//! Implementation notes
//! - The SQLite side is read in one read transaction (one consistent
//!   snapshot even if a server still writes; stop it first so nothing
//!   arrives after the snapshot) on a thread of its own, which hands the
//!   rows over in batches.
//! - Tables are copied column by column under the same names, ids and all
//!   (UIDs, UIDVALIDITY, MODSEQs, EMAILIDs, THREADIDs and JMAP states stay
//!   what clients know). What differs: contents go into 256 KiB pieces,
//!   the text index is computed again from them (SQLite keeps it in an
//!   FTS5 table), and each account's change counter starts at its last
//!   change. The change-log triggers are off during the copy: the log is
//!   copied, not written anew.
//! - Ids are never handed out twice: each identity column continues above
//!   the highest id the SQLite store ever gave (its floors included).
//! - Checked before COMMIT: every table's row count against SQLite's, and
//!   the SHA-256 of every content.

use std::collections::HashMap;
use std::path::Path;

use deadpool_postgres::GenericClient;
use rusqlite::types::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, Prepared, blobs, pg};
use crate::error::{Result, StoreError};

/// Tables copied row by row, parents before children. (`blobs` goes first,
/// by itself; `leases` are not copied: they belong to running processes,
/// nor `login_failures`: counts of minutes, started again at no cost.)
const TABLES: &[&str] = &[
    "meta",
    "settings",
    "domains",
    "accounts",
    "aliases",
    "dkim_keys",
    "mailboxes",
    "metadata",
    "acl",
    "mailbox_messages",
    "expunged",
    "message_index",
    "queue_messages",
    "queue_require_tls",
    "queue_recipients",
    "queue_attempts",
    "submissions",
    "history",
    "sieve_scripts",
    "sieve_tracking",
    "greylist",
    "greylist_clients",
    "spam_tokens",
    "spam_totals",
    "spam_trained",
    "sending",
    "sent_domains",
    "dmarc_evaluations",
    "received_reports",
    "tls_results",
    "tokens",
    "push_subscriptions",
    "public_keys",
    "key_settings",
    "login_known",
    "changes",
    "change_floor",
];

/// Rows handed over at once.
const BATCH: usize = 500;

/// A column's name in SQLite where it differs (`begin` and `end` are
/// reserved words in PostgreSQL).
fn sqlite_name<'a>(table: &str, column: &'a str) -> &'a str {
    match (table, column) {
        ("received_reports", "begin_at") => "begin",
        ("received_reports", "end_at") => "end",
        _ => column,
    }
}

/// What the copy did, for the operator.
#[derive(Debug, Clone, Default)]
pub struct CopySummary {
    /// Each table and its rows, in copy order (`blobs` first).
    pub tables: Vec<(String, u64)>,
    /// Contents and their octets.
    pub contents: u64,
    pub octets: u64,
}

/// What the reading thread hands over.
enum Piece {
    /// One content: its id, octets, whether it has an index row.
    Content(i64, Vec<u8>, bool),
    Rows(Vec<Vec<Value>>),
    /// The end of a table, with SQLite's row count.
    End(u64),
}

/// One PostgreSQL column: its name and type.
struct Column {
    name: String,
    kind: String,
}

impl PostgresStore {
    /// Copy the SQLite store at `sqlite` into this database, which must hold
    /// no domain or account yet; `progress` hears each table done and
    /// every thousand contents.
    pub async fn copy_from_sqlite(
        &self,
        sqlite: &Path,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<CopySummary> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let used: i64 = tx
            .query_one_p(
                "SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM accounts)",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        if used > 0 {
            return Err(StoreError::Invalid(
                "the PostgreSQL database already holds domains or accounts: copy into an empty one"
                    .into(),
            ));
        }
        tx.batch_execute(
            "ALTER TABLE mailboxes DISABLE TRIGGER USER; ALTER TABLE mailbox_messages DISABLE TRIGGER USER",
        )
        .await
        .map_err(pg)?;
        // The columns both stores have (a column only PostgreSQL has takes
        // its default).
        let in_sqlite = {
            let path = sqlite.to_path_buf();
            tokio::task::spawn_blocking(move || sqlite_columns(&path))
                .await
                .map_err(|e| StoreError::Io(e.to_string()))??
        };
        let mut columns = HashMap::new();
        for table in TABLES {
            let present = in_sqlite.get(*table).cloned().unwrap_or_default();
            let shared: Vec<Column> = table_columns(&tx, table)
                .await?
                .into_iter()
                .filter(|c| present.iter().any(|p| p == sqlite_name(table, &c.name)))
                .collect();
            columns.insert(*table, shared);
        }
        let wanted: Vec<(String, Vec<String>)> = TABLES
            .iter()
            .map(|t| {
                let names = columns[t]
                    .iter()
                    .map(|c| sqlite_name(t, &c.name).to_string())
                    .collect();
                (t.to_string(), names)
            })
            .collect();
        let (sender, mut pieces) = mpsc::channel(4);
        let path = sqlite.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || read_sqlite(&path, &wanted, &sender));
        let mut summary = CopySummary::default();
        let mut digest = Sha256::new();
        copy_contents(&tx, &mut pieces, &mut summary, &mut digest, progress).await?;
        for table in TABLES {
            let rows = copy_table(&tx, table, &columns[table], &mut pieces).await?;
            progress(&format!("{table}: {rows} rows"));
            summary.tables.push((table.to_string(), rows));
        }
        reader
            .await
            .map_err(|e| StoreError::Io(format!("the SQLite reader: {e}")))??;
        finish_ids(&tx, sqlite).await?;
        check_contents(&tx, digest.finalize().to_vec()).await?;
        tx.batch_execute(
            "ALTER TABLE mailboxes ENABLE TRIGGER USER; ALTER TABLE mailbox_messages ENABLE TRIGGER USER",
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(summary)
    }
}

async fn table_columns(c: &impl GenericClient, table: &str) -> Result<Vec<Column>> {
    let rows = c
        .query_p(
            "SELECT column_name, data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            kind: r.get(1),
        })
        .collect())
}

/// The contents, each with its text index row when SQLite indexed it.
async fn copy_contents(
    c: &impl GenericClient,
    pieces: &mut mpsc::Receiver<Result<Piece>>,
    summary: &mut CopySummary,
    digest: &mut Sha256,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    loop {
        match next(pieces).await? {
            Piece::Content(id, data, indexed) => {
                digest.update(id.to_be_bytes());
                digest.update(Sha256::digest(&data));
                summary.octets += data.len() as u64;
                let content = message::spool::Spooled::from_vec(data);
                blobs::insert_with_id(c, id, &content).await?;
                if indexed {
                    let index = crate::search::index_of_content(&content);
                    super::search::insert_text(c, id, &index).await?;
                }
                summary.contents += 1;
                if summary.contents.is_multiple_of(1000) {
                    progress(&format!(
                        "contents: {} ({} MB)",
                        summary.contents,
                        summary.octets >> 20
                    ));
                }
            }
            Piece::End(count) => {
                if count != summary.contents {
                    return Err(StoreError::Invalid(format!(
                        "contents: {count} in SQLite, {} copied",
                        summary.contents
                    )));
                }
                summary.tables.push(("blobs".into(), summary.contents));
                progress(&format!(
                    "contents: {} ({} MB)",
                    summary.contents,
                    summary.octets >> 20
                ));
                return Ok(());
            }
            Piece::Rows(_) => return Err(StoreError::Io("rows before the contents ended".into())),
        }
    }
}

async fn next(pieces: &mut mpsc::Receiver<Result<Piece>>) -> Result<Piece> {
    pieces
        .recv()
        .await
        .ok_or_else(|| StoreError::Io("the SQLite reader stopped".into()))?
}

/// One table's rows; checked against SQLite's count.
async fn copy_table(
    c: &impl GenericClient,
    table: &str,
    columns: &[Column],
    pieces: &mut mpsc::Receiver<Result<Piece>>,
) -> Result<u64> {
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let overriding = if names.contains(&"id") {
        "OVERRIDING SYSTEM VALUE "
    } else {
        ""
    };
    let insert = c
        .prepare(&format!(
            "INSERT INTO {table} ({}) {overriding}VALUES ({})",
            names.join(", "),
            params.join(", ")
        ))
        .await
        .map_err(pg)?;
    let mut copied = 0u64;
    loop {
        match next(pieces).await? {
            Piece::Rows(rows) => {
                for row in rows {
                    let values: Vec<Box<dyn ToSql + Sync + Send>> = row
                        .into_iter()
                        .zip(columns)
                        .map(|(v, col)| typed(v, &col.kind))
                        .collect::<Result<_>>()?;
                    let refs: Vec<&(dyn ToSql + Sync)> =
                        values.iter().map(|v| v.as_ref() as _).collect();
                    c.execute(&insert, &refs)
                        .await
                        .map_err(|e| StoreError::Io(format!("{table}: {}", pg(e))))?;
                    copied += 1;
                }
            }
            Piece::End(count) => {
                let here: i64 = c
                    .query_one_p(&format!("SELECT count(*) FROM {table}"), &[])
                    .await
                    .map_err(pg)?
                    .get(0);
                if here as u64 != count || copied != count {
                    return Err(StoreError::Invalid(format!(
                        "{table}: {count} rows in SQLite, {here} in PostgreSQL"
                    )));
                }
                return Ok(copied);
            }
            Piece::Content(..) => return Err(StoreError::Io("a content among rows".into())),
        }
    }
}

/// An SQLite value as the PostgreSQL column's type wants it.
fn typed(v: Value, kind: &str) -> Result<Box<dyn ToSql + Sync + Send>> {
    let bad = |v: &Value| StoreError::Invalid(format!("{v:?} where {kind} goes"));
    Ok(match (kind, v) {
        ("bigint", Value::Null) => Box::new(None::<i64>),
        ("bigint", Value::Integer(n)) => Box::new(n),
        ("integer", Value::Null) => Box::new(None::<i32>),
        ("integer", Value::Integer(n)) => {
            Box::new(i32::try_from(n).map_err(|_| bad(&Value::Integer(n)))?)
        }
        ("smallint", Value::Null) => Box::new(None::<i16>),
        ("smallint", Value::Integer(n)) => {
            Box::new(i16::try_from(n).map_err(|_| bad(&Value::Integer(n)))?)
        }
        ("boolean", Value::Null) => Box::new(None::<bool>),
        ("boolean", Value::Integer(n)) => Box::new(n != 0),
        ("text", Value::Null) => Box::new(None::<String>),
        ("text", Value::Text(s)) => Box::new(crate::search::without_nul(&s).into_owned()),
        ("text", Value::Integer(n)) => Box::new(n.to_string()),
        ("text", Value::Blob(b)) => {
            Box::new(crate::search::without_nul(&String::from_utf8_lossy(&b)).into_owned())
        }
        ("bytea", Value::Null) => Box::new(None::<Vec<u8>>),
        ("bytea", Value::Blob(b)) => Box::new(b),
        ("bytea", Value::Text(s)) => Box::new(s.into_bytes()),
        (_, other) => return Err(bad(&other)),
    })
}

/// Each identity continues above the highest id SQLite ever gave (its
/// floors remember deleted ones); each account's change counter at its
/// last change.
async fn finish_ids(c: &impl GenericClient, sqlite: &Path) -> Result<()> {
    let floors = {
        let path = sqlite.to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<(i64, i64)> {
            let db = open_read_only(&path)?;
            let floor = |table: &str| -> Result<i64> {
                db.query_row(
                    &format!("SELECT coalesce(max(id), 0) FROM {table}"),
                    [],
                    |r| r.get(0),
                )
                .map_err(super::super::sqlite::sql)
            };
            Ok((floor("blob_floor")?, floor("queue_floor")?))
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))??
    };
    let identities = c
        .query_p(
            "SELECT table_name FROM information_schema.columns
             WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'",
            &[],
        )
        .await
        .map_err(pg)?;
    for row in identities {
        let table: String = row.get(0);
        let floor = match table.as_str() {
            "blobs" => floors.0,
            "queue_messages" => floors.1,
            _ => 0,
        };
        c.execute_p(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                               greatest((SELECT coalesce(max(id), 0) FROM {table}), $1, 1))"
            ),
            &[&floor],
        )
        .await
        .map_err(pg)?;
    }
    c.execute_p(
        "INSERT INTO change_counters(account_id, seq) SELECT account_id, max(seq) FROM changes GROUP BY account_id",
        &[],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Every content as PostgreSQL now holds it, against what was read.
async fn check_contents(c: &impl GenericClient, expected: Vec<u8>) -> Result<()> {
    let rows = c
        .query_p(
            "SELECT b.id, sha256(coalesce(string_agg(p.data, ''::bytea ORDER BY p.seq), ''::bytea))
             FROM blobs b LEFT JOIN blob_pieces p ON p.blob_id = b.id GROUP BY b.id ORDER BY b.id",
            &[],
        )
        .await
        .map_err(pg)?;
    let mut digest = Sha256::new();
    for r in rows {
        digest.update(r.get::<_, i64>(0).to_be_bytes());
        digest.update(r.get::<_, &[u8]>(1));
    }
    if digest.finalize().to_vec() != expected {
        return Err(StoreError::Invalid(
            "the contents in PostgreSQL differ from SQLite's".into(),
        ));
    }
    Ok(())
}

/// Each table's columns in the SQLite store.
fn sqlite_columns(path: &Path) -> Result<HashMap<String, Vec<String>>> {
    let db = open_read_only(path)?;
    let mut out = HashMap::new();
    for table in TABLES {
        let names: Vec<String> = db
            .prepare(&format!("PRAGMA table_info({table})"))
            .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(1))?.collect())
            .map_err(super::super::sqlite::sql)?;
        out.insert(table.to_string(), names);
    }
    Ok(out)
}

fn open_read_only(path: &Path) -> Result<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(super::super::sqlite::sql)
}

/// The reading thread: the contents, then each table, in one read
/// transaction.
fn read_sqlite(
    path: &Path,
    tables: &[(String, Vec<String>)],
    out: &mpsc::Sender<Result<Piece>>,
) -> Result<()> {
    let result = read_all(path, tables, out);
    if let Err(e) = &result {
        let _ = out.blocking_send(Err(StoreError::Io(e.to_string())));
    }
    result
}

fn read_all(
    path: &Path,
    tables: &[(String, Vec<String>)],
    out: &mpsc::Sender<Result<Piece>>,
) -> Result<()> {
    let sql = super::super::sqlite::sql;
    let send = |piece: Piece| {
        out.blocking_send(Ok(piece))
            .map_err(|_| StoreError::Io("the copy stopped".into()))
    };
    let db = open_read_only(path)?;
    db.execute_batch("BEGIN").map_err(sql)?;
    let mut contents = 0u64;
    {
        let mut st = db
            .prepare(
                "SELECT b.id, b.data, EXISTS (SELECT 1 FROM message_index i WHERE i.blob_id = b.id)
                 FROM blobs b ORDER BY b.id",
            )
            .map_err(sql)?;
        let mut rows = st.query([]).map_err(sql)?;
        while let Some(r) = rows.next().map_err(sql)? {
            send(Piece::Content(
                r.get(0).map_err(sql)?,
                r.get(1).map_err(sql)?,
                r.get(2).map_err(sql)?,
            ))?;
            contents += 1;
        }
    }
    send(Piece::End(contents))?;
    for (table, columns) in tables {
        let select: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let mut st = db
            .prepare(&format!("SELECT {} FROM {table}", select.join(", ")))
            .map_err(sql)?;
        let mut rows = st.query([]).map_err(sql)?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut count = 0u64;
        while let Some(r) = rows.next().map_err(sql)? {
            let row = (0..columns.len())
                .map(|i| r.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            batch.push(row);
            count += 1;
            if batch.len() == BATCH {
                send(Piece::Rows(std::mem::take(&mut batch)))?;
            }
        }
        if !batch.is_empty() {
            send(Piece::Rows(batch))?;
        }
        send(Piece::End(count))?;
    }
    db.execute_batch("COMMIT").map_err(sql)
}
