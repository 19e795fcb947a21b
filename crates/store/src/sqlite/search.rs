//! The search index in SQLite (see `crate::search`).
//!
//! Implementation notes
//! - `message_index` holds the header fields, one row per blob in a
//!   mailbox; `message_text` is an FTS5 table with the trigram tokenizer
//!   and `detail=none`, rowid = blob id, its text lower-cased (Unicode)
//!   when written. A needle of three characters or more is looked up as a
//!   GLOB: the index finds the rows holding all its trigrams, SQLite then
//!   checks the pattern on their text. Without positions the index is a
//!   seventh of a full one and far cheaper to write (ingest speed measured
//!   with `scripts/bench-sieve`). Shorter needles scan the mailbox's rows.
//! - Rows are written in the write job that stores the blob; the index is
//!   computed before, outside the writer thread. Deleting a blob deletes
//!   its rows (a foreign key, and a trigger for the FTS table).
//! - A store made before the index existed is indexed when opened.
//! - Thread ids (RFC 8474 THREADID, JMAP threads): a message joins the
//!   thread of the first message it references that is already indexed;
//!   otherwise it starts one with its own id. Threads are never merged, so
//!   ids stay stable.

use message::index::MessageIndex;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::search::*;
use crate::types::MailboxId;

/// Index rows written per transaction when indexing an older store.
const BACKFILL_BATCH: usize = 200;

/// Write the index of blob `blob`.
pub(super) fn insert(c: &Connection, blob: i64, i: &MessageIndex) -> Result<()> {
    // Indexed again (the text table rebuilt): the thread stays what it was.
    let mut thread: Option<i64> = c
        .prepare_cached("SELECT thread_id FROM message_index WHERE blob_id = ?1")
        .and_then(|mut st| st.query_row([blob], |r| r.get(0)).optional())
        .map_err(sql)?;
    for id in i.references.iter().rev().chain(i.in_reply_to.iter()) {
        if thread.is_some() {
            break;
        }
        thread = c
            .prepare_cached("SELECT thread_id FROM message_index WHERE message_id = ?1 LIMIT 1")
            .and_then(|mut st| st.query_row([id], |r| r.get::<_, i64>(0)).optional())
            .map_err(sql)?;
    }
    c.prepare_cached(
        "INSERT OR REPLACE INTO message_index(blob_id, sent, sent_day, subject, base_subject, reply, from_key, to_key, cc_key, message_id, in_reply_to, refs, preview, thread_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut st| {
        st.execute(params![
            blob,
            i.sent,
            i.sent_day,
            i.subject,
            i.base_subject,
            i.reply,
            i.from_key,
            i.to_key,
            i.cc_key,
            i.message_id,
            i.in_reply_to.join(" "),
            i.references.join(" "),
            i.preview,
            thread.unwrap_or(blob),
        ])
    })
    .map_err(sql)?;
    PENDING_TEXT.with(|p| p.borrow_mut().push(TextRow::of(blob, i)));
    Ok(())
}

/// A message's text for the FTS5 table.
struct TextRow {
    rowid: i64,
    columns: [String; 6],
}

impl TextRow {
    fn of(rowid: i64, i: &MessageIndex) -> TextRow {
        TextRow {
            rowid,
            columns: [&i.subject, &i.from, &i.to, &i.cc, &i.bcc, &i.body]
                .map(|c| crate::search::without_nul(&c.to_lowercase()).into_owned()),
        }
    }

    fn write(&self, c: &Connection) -> Result<()> {
        let [subject, from, to, cc, bcc, body] = &self.columns;
        c.prepare_cached("INSERT OR REPLACE INTO message_text(rowid, subject, hfrom, hto, hcc, hbcc, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .and_then(|mut st| st.execute(params![self.rowid, subject, from, to, cc, bcc, body]))
            .map(|_| ())
            .map_err(sql)
    }
}

thread_local! {
    /// Text rows of the jobs of the batch being written, inserted together
    /// just before its COMMIT: FTS5 writes its pending terms to disk at
    /// every SAVEPOINT, and each job runs in one, so inserting them job by
    /// job cost two thirds of the ingest speed (`scripts/bench-sieve`).
    static PENDING_TEXT: std::cell::RefCell<Vec<TextRow>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many text rows wait (a mark to go back to when a job fails).
pub(super) fn pending_mark() -> usize {
    PENDING_TEXT.with(|p| p.borrow().len())
}

/// Forget the rows of a job that rolled back.
pub(super) fn pending_truncate(mark: usize) {
    PENDING_TEXT.with(|p| p.borrow_mut().truncate(mark));
}

/// Insert the waiting text rows, in the transaction about to commit.
pub(super) fn flush_pending(c: &Connection) -> Result<()> {
    let rows = PENDING_TEXT.with(|p| std::mem::take(&mut *p.borrow_mut()));
    rows.iter().try_for_each(|r| r.write(c))
}

/// Index every blob in a mailbox that has no index row (a store from
/// before the index); how many.
pub(super) fn backfill(c: &Connection) -> Result<usize> {
    let mut done = 0;
    loop {
        let batch: Vec<(i64, Vec<u8>)> = c
            .prepare(
                "SELECT b.id, b.data FROM blobs b
                 WHERE EXISTS (SELECT 1 FROM mailbox_messages m WHERE m.blob_id = b.id)
                   AND (NOT EXISTS (SELECT 1 FROM message_index i WHERE i.blob_id = b.id)
                        OR NOT EXISTS (SELECT 1 FROM message_text t WHERE t.rowid = b.id))
                 LIMIT ?1",
            )
            .and_then(|mut st| {
                st.query_map([BACKFILL_BATCH as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(sql)?;
        if batch.is_empty() {
            return Ok(done);
        }
        let tx = c.unchecked_transaction().map_err(sql)?;
        for (blob, data) in &batch {
            insert(&tx, *blob, &MessageIndex::of(data))?;
        }
        flush_pending(&tx)?;
        tx.commit().map_err(sql)?;
        done += batch.len();
    }
}

/// The text columns, in the order of the table.
const TEXT_COLUMNS: [&str; 6] = ["subject", "hfrom", "hto", "hcc", "hbcc", "body"];

/// A GLOB pattern for "contains `needle`": `*needle*` with the needle's
/// `*`, `?` and `[` taken literally.
fn glob_contains(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('*');
    for ch in needle.chars() {
        match ch {
            '*' | '?' | '[' => {
                p.push('[');
                p.push(ch);
                p.push(']');
            }
            _ => p.push(ch),
        }
    }
    p.push('*');
    p
}

fn column(field: TextField) -> Option<&'static str> {
    Some(match field {
        TextField::Subject => "subject",
        TextField::From => "hfrom",
        TextField::To => "hto",
        TextField::Cc => "hcc",
        TextField::Bcc => "hbcc",
        TextField::Body => "body",
        TextField::Text => return None,
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IndexRow> {
    let ids = |s: String| s.split_whitespace().map(str::to_string).collect();
    Ok(IndexRow {
        uid: r.get(0)?,
        sent: r.get(1)?,
        sent_day: r.get(2)?,
        subject: r.get(3)?,
        base_subject: r.get(4)?,
        reply: r.get(5)?,
        from_key: r.get(6)?,
        to_key: r.get(7)?,
        cc_key: r.get(8)?,
        message_id: r.get(9)?,
        in_reply_to: ids(r.get(10)?),
        references: ids(r.get(11)?),
        internal_date: r.get(12)?,
        size: r.get::<_, i64>(13)? as u64,
        thread_id: r.get(14)?,
        email_id: r.get(15)?,
    })
}

#[async_trait::async_trait]
impl SearchStore for SqliteStore {
    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<u32>> {
        let needle = needle.to_string();
        self.read(move |c| {
            if needle.is_empty() {
                // Every message contains the empty string.
                return c
                    .prepare_cached(
                        "SELECT uid FROM mailbox_messages WHERE mailbox_id = ?1 ORDER BY uid",
                    )
                    .and_then(|mut st| st.query_map([mailbox], |r| r.get(0))?.collect())
                    .map_err(sql);
            }
            // The text is kept lower-cased: so is the needle (RFC 9051
            // §6.4.4: matching ignores case).
            let needle = needle.to_lowercase();
            let columns: Vec<&str> = match column(field) {
                Some(col) => vec![col],
                None => TEXT_COLUMNS.to_vec(),
            };
            let uids: rusqlite::Result<Vec<u32>> = if needle.chars().count() >= 3 {
                // One indexed GLOB a column, their union (an OR of GLOBs
                // would not use the index).
                let selects: Vec<String> = columns
                    .iter()
                    .map(|col| format!("SELECT rowid FROM message_text WHERE {col} GLOB ?2"))
                    .collect();
                c.prepare_cached(&format!(
                    "SELECT m.uid FROM mailbox_messages m
                     WHERE m.mailbox_id = ?1 AND m.blob_id IN ({}) ORDER BY m.uid",
                    selects.join(" UNION ")
                ))
                .and_then(|mut st| {
                    st.query_map(params![mailbox, glob_contains(&needle)], |r| r.get(0))?
                        .collect()
                })
            } else {
                // Under three characters the trigram index cannot help: scan.
                let haystack = columns
                    .iter()
                    .map(|col| format!("t.{col}"))
                    .collect::<Vec<_>>()
                    .join(" || ' ' || ");
                c.prepare(&format!(
                    "SELECT m.uid FROM mailbox_messages m JOIN message_text t ON t.rowid = m.blob_id
                     WHERE m.mailbox_id = ?1 AND instr({haystack}, ?2) > 0 ORDER BY m.uid"
                ))
                .and_then(|mut st| {
                    st.query_map(params![mailbox, needle], |r| r.get(0))?
                        .collect()
                })
            };
            uids.map_err(sql)
        })
        .await
    }

    async fn index_rows(&self, mailbox: MailboxId, after: u32) -> Result<Vec<IndexRow>> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT m.uid, i.sent, i.sent_day, i.subject, i.base_subject, i.reply, i.from_key, i.to_key, i.cc_key,
                        i.message_id, i.in_reply_to, i.refs, m.internal_date, m.size, i.thread_id, m.blob_id
                 FROM mailbox_messages m JOIN message_index i ON i.blob_id = m.blob_id
                 WHERE m.mailbox_id = ?1 AND m.uid > ?2 ORDER BY m.uid",
            )
            .and_then(|mut st| st.query_map(params![mailbox, after], row)?.collect())
            .map_err(sql)
        })
        .await
    }

    async fn email_copies(&self, email_id: i64) -> Result<Vec<EmailCopy>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT a.address, b.name, m.uid, m.flags, m.prefix, d.data
                     FROM mailbox_messages m
                     JOIN mailboxes b ON b.id = m.mailbox_id
                     JOIN accounts a ON a.id = b.account_id
                     JOIN blobs d ON d.id = m.blob_id
                     WHERE m.blob_id = ?1 ORDER BY a.address, b.name, m.uid",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([email_id], |r| {
                    let mut content: Vec<u8> = r.get(4)?;
                    content.extend_from_slice(&r.get::<_, Vec<u8>>(5)?);
                    Ok(EmailCopy {
                        account: r.get(0)?,
                        mailbox: r.get(1)?,
                        uid: r.get(2)?,
                        flags: r
                            .get::<_, String>(3)?
                            .split_whitespace()
                            .map(str::to_string)
                            .collect(),
                        content,
                    })
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn previews(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<(u32, String)>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT i.preview FROM mailbox_messages m JOIN message_index i ON i.blob_id = m.blob_id
                     WHERE m.mailbox_id = ?1 AND m.uid = ?2",
                )
                .map_err(sql)?;
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                if let Some(p) = st
                    .query_row(params![mailbox, uid], |r| r.get::<_, String>(0))
                    .optional()
                    .map_err(sql)?
                {
                    out.push((uid, p));
                }
            }
            Ok(out)
        })
        .await
    }
}
