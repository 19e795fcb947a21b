//! Mailbox operations for IMAP and POP3: create, rename, delete, flags, expunge,
//! copy, move, append, and "what changed since MODSEQ n".
//!
//! Implementation notes
//! - Every change takes one new MODSEQ for the mailbox (`bump`) and gives it to
//!   every message it touches (RFC 7162 §3.1: MODSEQs only need to rise).
//! - Expunged UIDs are kept with their MODSEQ in `expunged`, so any session can
//!   learn what disappeared since it last looked (RFC 7162 §3.2.5.1).
//! - Operations that change a mailbox publish its id on the change feed
//!   after the commit (`crate::feed`: IMAP IDLE and JMAP push wake on it).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::admin::next_uid_validity;
use super::mail::{MAILBOX_COLUMNS, blobs_of, collect_blobs, insert_entry, mailbox_row};
use super::{SqliteStore, sql};
use crate::error::{Result, StoreError};
use crate::flags;
use crate::mailbox::MailboxStore;
use crate::types::*;
use message::spool::Spooled;

/// Take the mailbox's next MODSEQ.
fn bump(c: &Connection, mailbox: MailboxId) -> Result<u64> {
    c.prepare_cached("UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?1 RETURNING highest_modseq")
        .and_then(|mut st| st.query_row([mailbox], |r| r.get::<_, i64>(0)))
        .map(|m| m as u64)
        .map_err(sql)
}

pub(super) fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageEntry> {
    Ok(MessageEntry {
        uid: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        internal_date: r.get(2)?,
        modseq: r.get::<_, i64>(3)? as u64,
        flags: r
            .get::<_, String>(4)?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        email_id: r.get(5)?,
        saved_at: r.get(6)?,
    })
}

pub(super) const ENTRY_COLUMNS: &str = "uid, size, internal_date, modseq, flags, blob_id, saved_at";

pub(super) fn mailbox_by_name(
    c: &Connection,
    account: AccountId,
    name: &str,
) -> Result<Option<MailboxRecord>> {
    c.prepare_cached(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?1 AND name = ?2"
    ))
    .and_then(|mut st| st.query_row(params![account, name], mailbox_row).optional())
    .map_err(sql)
}

fn mailbox_by_id(c: &Connection, id: MailboxId) -> Result<MailboxRecord> {
    c.prepare_cached(&format!(
        "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?1"
    ))
    .and_then(|mut st| st.query_row([id], mailbox_row).optional())
    .map_err(sql)?
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
}

fn entry(
    c: &Connection,
    mailbox: MailboxId,
    uid: u32,
) -> Result<Option<(MessageEntry, i64, Vec<u8>)>> {
    c.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS}, prefix FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2"
    ))
    .and_then(|mut st| {
        st.query_row(params![mailbox, uid], |r| {
            Ok((entry_row(r)?, r.get(5)?, r.get(7)?))
        })
        .optional()
    })
    .map_err(sql)
}

/// Remove entries and log them as expunged with one new MODSEQ.
fn remove_entries(c: &Connection, mailbox: MailboxId, uids: &[u32]) -> Result<()> {
    if uids.is_empty() {
        return Ok(());
    }
    let modseq = bump(c, mailbox)?;
    let mut del = c
        .prepare_cached(
            "DELETE FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2 RETURNING blob_id",
        )
        .map_err(sql)?;
    let mut log = c
        .prepare_cached(
            "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)",
        )
        .map_err(sql)?;
    let mut blobs = Vec::with_capacity(uids.len());
    for uid in uids {
        if let Some(blob) = del
            .query_row(params![mailbox, uid], |r| r.get::<_, i64>(0))
            .optional()
            .map_err(sql)?
        {
            blobs.push(blob);
        }
        log.execute(params![mailbox, uid, modseq as i64])
            .map_err(sql)?;
    }
    collect_blobs(c, &blobs)
}

/// Copy entries (same blob, prefix, flags, date) into another mailbox, in UID order.
fn copy_entries(
    c: &Connection,
    from: MailboxId,
    uids: &[u32],
    to: MailboxId,
) -> Result<Vec<(u32, u32)>> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut pairs = Vec::with_capacity(sorted.len());
    for uid in sorted {
        if let Some((e, blob, prefix)) = entry(c, from, uid)? {
            let new = insert_entry(c, to, blob, &prefix, e.size, e.internal_date, &e.flags)?;
            pairs.push((uid, new));
        }
    }
    Ok(pairs)
}

#[async_trait::async_trait]
impl MailboxStore for SqliteStore {
    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = ?1 ORDER BY name"
                ))
                .map_err(sql)?;
            let rows = st.query_map([account], mailbox_row).map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {} FROM mailbox_messages WHERE mailbox_id = ?1 ORDER BY uid",
                    super::mailbox::ENTRY_COLUMNS
                ))
                .map_err(sql)?;
            let rows = st
                .query_map([mailbox], super::mailbox::entry_row)
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn message_content(&self, mailbox: MailboxId, uid: u32) -> Result<Option<Vec<u8>>> {
        self.read(move |c| {
            c.prepare_cached("SELECT m.prefix, b.data FROM mailbox_messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ?1 AND m.uid = ?2")
                .and_then(|mut st| {
                    st.query_row(params![mailbox, uid], |r| {
                        let mut out: Vec<u8> = r.get(0)?;
                        out.extend_from_slice(r.get_ref(1)?.as_blob()?);
                        Ok(out)
                    })
                    .optional()
                })
                .map_err(sql)
        })
        .await
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxRecord>> {
        let name = name.to_string();
        self.read(move |c| mailbox_by_name(c, account, &name)).await
    }

    async fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxRecord> {
        let name = name.to_string();
        let created = self
            .write(move |c| {
                if mailbox_by_name(c, account, &name)?.is_some() {
                    return Err(StoreError::Duplicate(format!("mailbox {name}")));
                }
                let validity = next_uid_validity(c)?;
                c.execute(
                    "INSERT INTO mailboxes(account_id, name, uid_validity) VALUES (?1, ?2, ?3)",
                    params![account, name, validity],
                )
                .map_err(sql)?;
                mailbox_by_id(c, MailboxId(c.last_insert_rowid()))
            })
            .await?;
        self.feed().publish([created.id]);
        Ok(created)
    }

    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let name = name.to_string();
        let gone = self.write(move |c| {
            let gone = mailbox_by_name(c, account, &name)?
                .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))?;
            let blobs = blobs_of(
                c,
                "m.mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2)",
                params![account, name],
            )?;
            let n = c
                .execute(
                    "DELETE FROM mailboxes WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("mailbox {name}")));
            }
            collect_blobs(c, &blobs)?;
            Ok(gone.id)
        })
        .await?;
        self.feed().publish([gone]);
        Ok(())
    }

    /// Rename a mailbox and everything below it. Renaming INBOX moves its messages
    /// into a new mailbox and leaves INBOX empty (RFC 9051 §6.3.6).
    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let from = from.to_string();
        let to = to.to_string();
        let touched = self
            .write(move |c| {
                let source = mailbox_by_name(c, account, &from)?
                    .ok_or_else(|| StoreError::NotFound(format!("mailbox {from}")))?;
                if mailbox_by_name(c, account, &to)?.is_some() {
                    return Err(StoreError::Duplicate(format!("mailbox {to}")));
                }
                if from == "INBOX" {
                    let validity = next_uid_validity(c)?;
                    c.execute(
                        "INSERT INTO mailboxes(account_id, name, uid_validity) VALUES (?1, ?2, ?3)",
                        params![account, to, validity],
                    )
                    .map_err(sql)?;
                    let target = MailboxId(c.last_insert_rowid());
                    let uids: Vec<u32> = c
                        .prepare_cached(
                            "SELECT uid FROM mailbox_messages WHERE mailbox_id = ?1 ORDER BY uid",
                        )
                        .and_then(|mut st| st.query_map([source.id], |r| r.get(0))?.collect())
                        .map_err(sql)?;
                    copy_entries(c, source.id, &uids, target)?;
                    remove_entries(c, source.id, &uids)?;
                    return Ok(vec![source.id, target]);
                }
                let names: Vec<(MailboxId, String)> = c
                    .prepare_cached("SELECT id, name FROM mailboxes WHERE account_id = ?1")
                    .and_then(|mut st| {
                        st.query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect()
                    })
                    .map_err(sql)?;
                let mut touched = Vec::new();
                for (id, name) in names {
                    if name == from || crate::mailbox::is_below(&name, &from) {
                        let renamed = format!("{to}{}", &name[from.len()..]);
                        c.execute(
                            "UPDATE mailboxes SET name = ?2 WHERE id = ?1",
                            params![id, renamed],
                        )
                        .map_err(|e| match sql(e) {
                            StoreError::Duplicate(_) => {
                                StoreError::Duplicate(format!("mailbox {renamed}"))
                            }
                            other => other,
                        })?;
                        touched.push(id);
                    }
                }
                Ok(touched)
            })
            .await?;
        self.feed().publish(touched);
        Ok(())
    }

    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        let name = name.to_string();
        let changed = self
            .write(move |c| {
                c.execute(
                    "UPDATE mailboxes SET subscribed = ?3 WHERE account_id = ?1 AND name = ?2",
                    params![account, name, subscribed],
                )
                .map_err(sql)?;
                mailbox_by_name(c, account, &name)?
                    .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))
            })
            .await?;
        self.feed().publish([changed.id]);
        Ok(())
    }

    async fn changes_since(&self, mailbox: MailboxId, since: u64) -> Result<MailboxChanges> {
        self.read(move |c| {
            // One snapshot for the three queries.
            c.execute_batch("BEGIN").map_err(sql)?;
            let result = (|| {
                let record = mailbox_by_id(c, mailbox)?;
                let changed = c
                    .prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM mailbox_messages WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid"))
                    .and_then(|mut st| st.query_map(params![mailbox, since as i64], entry_row)?.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(sql)?;
                let expunged = c
                    .prepare_cached("SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid")
                    .and_then(|mut st| st.query_map(params![mailbox, since as i64], |r| r.get(0))?.collect::<rusqlite::Result<Vec<u32>>>())
                    .map_err(sql)?;
                Ok(MailboxChanges { mailbox: record, changed, expunged })
            })();
            let _ = c.execute_batch("COMMIT");
            result
        })
        .await
    }

    async fn append(
        &self,
        mailbox: MailboxId,
        data: Spooled,
        flags: Vec<String>,
        internal_date: i64,
    ) -> Result<u32> {
        let flag_list = flags;
        let date = internal_date;
        let index = crate::search::index_of_content(&data);
        let uid = self
            .write(move |c| {
                let blob = super::mail::insert_spooled(c, &data)?;
                super::search::insert(c, blob, &index)?;
                insert_entry(
                    c,
                    mailbox,
                    blob,
                    &[],
                    data.len(),
                    date,
                    &flags::normalize(&flag_list),
                )
            })
            .await?;
        self.feed().publish([mailbox]);
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
        let flag_list = flags;
        let update = self.write(move |c| {
            let mut out = FlagUpdate::default();
            let mut modseq = None;
            let mut update = c.prepare_cached("UPDATE mailbox_messages SET flags = ?3, modseq = ?4 WHERE mailbox_id = ?1 AND uid = ?2").map_err(sql)?;
            for uid in uids {
                let Some((mut e, _, _)) = entry(c, mailbox, uid)? else { continue };
                if unchanged_since.is_some_and(|u| e.modseq > u) {
                    out.conflicts.push(uid);
                    continue;
                }
                let new = flags::apply(&e.flags, op, &flag_list);
                if new == e.flags {
                    continue;
                }
                let m = match modseq {
                    Some(m) => m,
                    None => *modseq.insert(bump(c, mailbox)?),
                };
                update.execute(params![mailbox, uid, new.join(" "), m as i64]).map_err(sql)?;
                e.flags = new;
                e.modseq = m;
                out.updated.push(e);
            }
            Ok(out)
        })
        .await?;
        if !update.updated.is_empty() {
            self.feed().publish([mailbox]);
        }
        Ok(update)
    }

    /// Remove the messages flagged \Deleted (among `uids`, if given). Returns their UIDs.
    async fn expunge(&self, mailbox: MailboxId, uids: Option<Vec<u32>>) -> Result<Vec<u32>> {
        let gone = self.write(move |c| {
            let deleted: Vec<u32> = c
                .prepare_cached("SELECT uid FROM mailbox_messages WHERE mailbox_id = ?1 AND instr(' ' || flags || ' ', ' \\Deleted ') > 0 ORDER BY uid")
                .and_then(|mut st| st.query_map([mailbox], |r| r.get(0))?.collect())
                .map_err(sql)?;
            let chosen: Vec<u32> = match uids {
                Some(list) => {
                    let allowed: HashSet<u32> = list.into_iter().collect();
                    deleted.into_iter().filter(|u| allowed.contains(u)).collect()
                }
                None => deleted,
            };
            remove_entries(c, mailbox, &chosen)?;
            Ok(chosen)
        })
        .await?;
        if !gone.is_empty() {
            self.feed().publish([mailbox]);
        }
        Ok(gone)
    }

    /// Remove these messages whatever their flags (POP3 DELE at QUIT).
    async fn remove_messages(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<()> {
        self.write(move |c| remove_entries(c, mailbox, &uids))
            .await?;
        self.feed().publish([mailbox]);
        Ok(())
    }

    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: Vec<u32>,
        to: MailboxId,
        remove: bool,
    ) -> Result<Vec<(u32, u32)>> {
        let pairs = self
            .write(move |c| {
                let pairs = copy_entries(c, from, &uids, to)?;
                if remove {
                    let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
                    remove_entries(c, from, &moved)?;
                }
                Ok(pairs)
            })
            .await?;
        self.feed()
            .publish(if remove { vec![from, to] } else { vec![to] });
        Ok(pairs)
    }

    /// The entries of these UIDs (those that exist), in UID order.
    async fn entries(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<MessageEntry>> {
        let mut uids = uids;
        uids.sort_unstable();
        uids.dedup();
        self.read(move |c| {
            // Few UIDs: one indexed lookup each; many: one scan of the mailbox.
            if uids.len() <= 512 {
                let mut st = c.prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM mailbox_messages WHERE mailbox_id = ?1 AND uid = ?2")).map_err(sql)?;
                let mut out = Vec::with_capacity(uids.len());
                for uid in uids {
                    if let Some(e) = st.query_row(params![mailbox, uid], entry_row).optional().map_err(sql)? {
                        out.push(e);
                    }
                }
                return Ok(out);
            }
            let wanted: HashSet<u32> = uids.into_iter().collect();
            let mut st = c.prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM mailbox_messages WHERE mailbox_id = ?1 ORDER BY uid")).map_err(sql)?;
            let rows = st.query_map([mailbox], entry_row).map_err(sql)?;
            let mut out = Vec::new();
            for r in rows {
                let e = r.map_err(sql)?;
                if wanted.contains(&e.uid) {
                    out.push(e);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn contents(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<(u32, Vec<u8>)>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT m.prefix, b.data FROM mailbox_messages m JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ?1 AND m.uid = ?2")
                .map_err(sql)?;
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                let found = st
                    .query_row(params![mailbox, uid], |r| {
                        let mut v: Vec<u8> = r.get(0)?;
                        v.extend_from_slice(r.get_ref(1)?.as_blob()?);
                        Ok(v)
                    })
                    .optional()
                    .map_err(sql)?;
                if let Some(v) = found {
                    out.push((uid, v));
                }
            }
            Ok(out)
        })
        .await
    }

    /// A piece of one message: the part of its prefix (our trace lines)
    /// that falls in the range, then the rest read from the blob with
    /// SQLite's incremental blob I/O, so only the piece is in memory.
    async fn content_range(
        &self,
        mailbox: MailboxId,
        uid: u32,
        start: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>> {
        self.read(move |c| {
            let found = c
                .prepare_cached("SELECT m.prefix, m.blob_id FROM mailbox_messages m WHERE m.mailbox_id = ?1 AND m.uid = ?2")
                .and_then(|mut st| {
                    st.query_row(params![mailbox, uid], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
                        .optional()
                })
                .map_err(sql)?;
            let Some((prefix, blob_id)) = found else {
                return Ok(None);
            };
            let mut out = Vec::with_capacity(len.min(1 << 20));
            let start = usize::try_from(start).unwrap_or(usize::MAX);
            if start < prefix.len() {
                let end = prefix.len().min(start.saturating_add(len));
                out.extend_from_slice(&prefix[start..end]);
            }
            let want = len - out.len();
            if want == 0 {
                return Ok(Some(out));
            }
            let from = start.saturating_sub(prefix.len());
            let blob = c
                .blob_open(rusqlite::MAIN_DB, "blobs", "data", blob_id, true)
                .map_err(sql)?;
            let available = blob.len().saturating_sub(from).min(want);
            let at = out.len();
            out.resize(at + available, 0);
            blob.read_at_exact(&mut out[at..], from).map_err(sql)?;
            Ok(Some(out))
        })
        .await
    }

    /// RFC 3501 §2.3.2: the first session to select a mailbox after new mail claims it
    /// as \Recent. Returns the first UID this session sees as recent.
    async fn claim_recent(&self, mailbox: MailboxId) -> Result<u32> {
        self.write(move |c| {
            let (first, next): (u32, u32) = c
                .query_row(
                    "SELECT first_recent_uid, uid_next FROM mailboxes WHERE id = ?1",
                    [mailbox],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sql)?;
            c.execute(
                "UPDATE mailboxes SET first_recent_uid = ?2 WHERE id = ?1",
                params![mailbox, next],
            )
            .map_err(sql)?;
            Ok(first)
        })
        .await
    }

    fn watch(&self) -> tokio::sync::broadcast::Receiver<MailboxId> {
        self.feed().subscribe()
    }
}
