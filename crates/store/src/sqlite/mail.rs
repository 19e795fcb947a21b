//! Messages in mailboxes: delivery of new mail, reads, garbage collection of blobs.
//!
//! Implementation notes
//! - A message body is stored once as a blob; each mailbox entry points at it and
//!   carries its own small header prefix (Return-Path, Delivered-To), so one
//!   message to 50 local recipients costs one blob and 50 small rows.
//! - UIDs come from the mailbox's `uid_next` and MODSEQs from its
//!   `highest_modseq`, both bumped in the same transaction as the insert: UIDs
//!   strictly ascend and are never reused (RFC 9051 §2.3.1.1), MODSEQ rises with
//!   every change (RFC 7162 §3.1).

use message::index::MessageIndex;
use message::spool::Spooled;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::delivery::DeliveryStore;
use crate::error::{Result, StoreError};
use crate::types::*;

/// Delete those of `blobs` that no mailbox entry and no queued message points
/// to any more (each is one indexed lookup, whatever the store's size).
pub(super) fn collect_blobs(c: &Connection, blobs: &[i64]) -> Result<()> {
    let mut delete = c
        .prepare_cached(
            "DELETE FROM blobs WHERE id = ?1
               AND NOT EXISTS (SELECT 1 FROM mailbox_messages m WHERE m.blob_id = ?1)
               AND NOT EXISTS (SELECT 1 FROM queue_messages q WHERE q.blob_id = ?1)",
        )
        .map_err(sql)?;
    for id in blobs {
        delete.execute([id]).map_err(sql)?;
    }
    Ok(())
}

/// The blobs of the messages `filter` selects from mailbox_messages (`m`), to
/// collect once those entries are gone.
pub(super) fn blobs_of(
    c: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<i64>> {
    c.prepare_cached(&format!(
        "SELECT DISTINCT m.blob_id FROM mailbox_messages m WHERE {filter}"
    ))
    .and_then(|mut st| st.query_map(args, |r| r.get(0))?.collect())
    .map_err(sql)
}

/// The mailbox a delivery goes to; INBOX when the asked one does not exist.
fn folder_mailbox(c: &Connection, account: AccountId, folder: &Folder) -> Result<MailboxId> {
    let found: Option<MailboxId> = match folder {
        Folder::Inbox => None,
        Folder::SpecialUse(s) => c
            .prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND special_use = ?2")
            .and_then(|mut st| st.query_row(params![account, s], |r| r.get(0)).optional())
            .map_err(sql)?,
        Folder::Named(n) => c
            .prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2")
            .and_then(|mut st| st.query_row(params![account, n], |r| r.get(0)).optional())
            .map_err(sql)?,
        Folder::Create(n) => match super::mailbox::mailbox_by_name(c, account, n)? {
            Some(m) => Some(m.id),
            None => {
                let validity = super::admin::next_uid_validity(c)?;
                c.execute(
                    "INSERT INTO mailboxes(account_id, name, uid_validity) VALUES (?1, ?2, ?3)",
                    params![account, n, validity],
                )
                .map_err(sql)?;
                Some(MailboxId(c.last_insert_rowid()))
            }
        },
    };
    if let Some(id) = found {
        return Ok(id);
    }
    c.prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND name = 'INBOX'")
        .and_then(|mut st| st.query_row([account], |r| r.get(0)).optional())
        .map_err(sql)?
        .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account}")))
}

/// Insert one mailbox entry, taking the next UID and MODSEQ of the mailbox.
pub(super) fn insert_entry(
    c: &Connection,
    mailbox: MailboxId,
    blob: i64,
    prefix: &[u8],
    size: u64,
    date: i64,
    flags: &[String],
) -> Result<u32> {
    let (uid, modseq): (u32, i64) = c
        .prepare_cached("UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1 WHERE id = ?1 RETURNING uid_next - 1, highest_modseq")
        .and_then(|mut st| st.query_row([mailbox], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(sql)?;
    c.prepare_cached(
        "INSERT INTO mailbox_messages(mailbox_id, uid, blob_id, prefix, size, internal_date, modseq, flags, saved_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, CAST(strftime('%s', 'now') AS INTEGER))",
    )
    .and_then(|mut st| st.execute(params![mailbox, uid, blob, prefix, size as i64, date, modseq, flags.join(" ")]))
    .map_err(sql)?;
    Ok(uid)
}

/// Keep a message's bytes; its id is never one used before (migration 13).
///
/// An id `table` never had: above every live row and the highest ever
/// deleted (kept in `floor` by a trigger). `SELECT max(id)` alone reads
/// the last row; wrapped it would scan.
pub(super) fn unused_id(c: &Connection, table: &str, floor: &str) -> Result<i64> {
    c.prepare_cached(&format!(
        "SELECT max(coalesce((SELECT max(id) FROM {table}), 0), (SELECT id FROM {floor})) + 1"
    ))
    .and_then(|mut st| st.query_row([], |r| r.get(0)))
    .map_err(sql)
}

/// The id is read first, then inserted as a plain value: an INSERT that
/// reads its own table in a subquery runs under a statement savepoint, and
/// every savepoint makes FTS5 flush the search index's pending terms to
/// disk (a third of the ingest speed, measured with `scripts/bench-sieve`).
pub(super) fn insert_blob(c: &Connection, data: &[u8]) -> Result<i64> {
    let id = unused_id(c, "blobs", "blob_floor")?;
    c.prepare_cached("INSERT INTO blobs(id, data) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute(params![id, data]))
        .map_err(sql)?;
    Ok(id)
}

/// Keep a message received into the spool: its content is copied from the
/// spool file into the row a block at a time (SQLite's incremental blob
/// I/O), never held whole in memory (hardening.md C-FT9).
pub(super) fn insert_spooled(c: &Connection, content: &Spooled) -> Result<i64> {
    if !content.is_spooled() {
        return insert_blob(c, content.head());
    }
    let id = unused_id(c, "blobs", "blob_floor")?;
    c.prepare_cached("INSERT INTO blobs(id, data) VALUES (?1, zeroblob(?2))")
        .and_then(|mut st| st.execute(params![id, content.len() as i64]))
        .map_err(sql)?;
    let mut blob = c
        .blob_open(rusqlite::MAIN_DB, "blobs", "data", id, false)
        .map_err(sql)?;
    let mut failed = None;
    content
        .chunks(|chunk| {
            if failed.is_none()
                && let Err(e) = std::io::Write::write_all(&mut blob, chunk)
            {
                failed = Some(e);
            }
        })
        .map_err(StoreError::from)?;
    if let Some(e) = failed {
        return Err(StoreError::from(e));
    }
    Ok(id)
}

fn store_new_message(
    c: &Connection,
    msg: &NewMessage,
    index: Option<&MessageIndex>,
) -> Result<Stored> {
    let blob = insert_spooled(c, &msg.data)?;
    if let Some(i) = index {
        super::search::insert(c, blob, i)?;
    }
    let mut placed = Vec::with_capacity(msg.deliveries.len());
    for d in &msg.deliveries {
        let mailbox = folder_mailbox(c, d.account, &d.folder)?;
        let size = d.prefix.len() as u64 + msg.data.len();
        let uid = insert_entry(c, mailbox, blob, &d.prefix, size, msg.received_at, &d.flags)?;
        placed.push((mailbox, uid));
    }
    let queue_id = match &msg.queue {
        Some(q) => Some(super::queue::insert(c, blob, q, msg.received_at)?),
        None => None,
    };
    Ok(Stored { placed, queue_id })
}

pub(super) fn mailbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailboxRecord> {
    Ok(MailboxRecord {
        id: r.get(0)?,
        account: r.get(1)?,
        name: r.get(2)?,
        special_use: r.get(3)?,
        uid_validity: r.get(4)?,
        uid_next: r.get(5)?,
        highest_modseq: r.get::<_, i64>(6)? as u64,
        subscribed: r.get(7)?,
        first_recent_uid: r.get(8)?,
    })
}

pub(super) const MAILBOX_COLUMNS: &str = "id, account_id, name, special_use, uid_validity, uid_next, highest_modseq, subscribed, first_recent_uid";

#[async_trait::async_trait]
impl DeliveryStore for SqliteStore {
    async fn store_message(&self, message: NewMessage) -> Result<Stored> {
        let index = crate::search::index_of(&message);
        let stored = self
            .write(move |c| store_new_message(c, &message, index.as_ref()))
            .await?;
        self.feed().publish(stored.placed.iter().map(|p| p.0));
        Ok(stored)
    }

    async fn store_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<Stored>> {
        let indexes: Vec<Option<MessageIndex>> =
            messages.iter().map(crate::search::index_of).collect();
        let stored: Vec<Stored> = self
            .write(move |c| {
                messages
                    .iter()
                    .zip(&indexes)
                    .map(|(m, i)| store_new_message(c, m, i.as_ref()))
                    .collect()
            })
            .await?;
        let placed = stored.iter().flat_map(|s| s.placed.iter().map(|p| p.0));
        self.feed().publish(placed);
        Ok(stored)
    }
}
