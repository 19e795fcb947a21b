//! Mailboxes and their messages in PostgreSQL (see `crate::mailbox`): the
//! same rules as the SQLite backend (`sqlite/mailbox.rs`).
//!
//! Implementation notes
//! - A change takes its mailboxes' rows with `FOR UPDATE`, in id order
//!   (`lock`), before it touches them: UIDs and MODSEQs are taken under
//!   that lock, so they ascend in commit order across nodes, and two
//!   changes over the same mailboxes queue instead of deadlocking.
//! - Every change publishes its mailboxes through `feed::notify` in its
//!   own transaction: watchers on every node hear it at commit.

use std::collections::HashSet;

use deadpool_postgres::{GenericClient, Transaction};
use message::spool::Spooled;
use tokio_postgres::Row;

use super::Prepared;
use super::directory::next_uid_validity;
use super::feed::notify;
use super::{PostgresStore, blobs, pg};
use crate::error::{Result, StoreError};
use crate::flags;
use crate::mailbox::MailboxStore;
use crate::types::*;

pub(super) const MAILBOX_COLUMNS: &str = "id, account_id, name, special_use, uid_validity, uid_next, highest_modseq, subscribed, first_recent_uid";
const ENTRY_COLUMNS: &str = "uid, size, internal_date, modseq, flags, blob_id, saved_at";

pub(super) fn mailbox_row(r: &Row) -> MailboxRecord {
    MailboxRecord {
        id: MailboxId(r.get(0)),
        account: AccountId(r.get(1)),
        name: r.get(2),
        special_use: r.get(3),
        uid_validity: r.get::<_, i64>(4) as u32,
        uid_next: r.get::<_, i64>(5) as u32,
        highest_modseq: r.get::<_, i64>(6) as u64,
        subscribed: r.get(7),
        first_recent_uid: r.get::<_, i64>(8) as u32,
    }
}

fn entry_row(r: &Row) -> MessageEntry {
    MessageEntry {
        uid: r.get::<_, i64>(0) as u32,
        size: r.get::<_, i64>(1) as u64,
        internal_date: r.get(2),
        modseq: r.get::<_, i64>(3) as u64,
        flags: r
            .get::<_, &str>(4)
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        email_id: r.get(5),
        saved_at: r.get(6),
    }
}

fn now() -> i64 {
    message::date::unix_now()
}

pub(super) async fn mailbox_by_name(
    c: &impl GenericClient,
    account: AccountId,
    name: &str,
) -> Result<Option<MailboxRecord>> {
    let row = c
        .query_opt_p(
            &format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2"),
            &[&account.0, &name],
        )
        .await
        .map_err(pg)?;
    Ok(row.as_ref().map(mailbox_row))
}

async fn mailbox_by_id(c: &impl GenericClient, id: MailboxId) -> Result<MailboxRecord> {
    let row = c
        .query_opt_p(
            &format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1"),
            &[&id.0],
        )
        .await
        .map_err(pg)?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
    Ok(mailbox_row(&row))
}

/// Take these mailboxes' rows for the rest of the transaction, in id order.
pub(super) async fn lock(c: &impl GenericClient, mailboxes: &[MailboxId]) -> Result<()> {
    let mut ids: Vec<i64> = mailboxes.iter().map(|m| m.0).collect();
    ids.sort_unstable();
    ids.dedup();
    c.query_p(
        "SELECT id FROM mailboxes WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&ids],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// A new mailbox; its record.
pub(super) async fn create(
    c: &impl GenericClient,
    account: AccountId,
    name: &str,
) -> Result<MailboxRecord> {
    let validity = i64::from(next_uid_validity(c).await?);
    let row = c
        .query_one_p(
            &format!(
                "INSERT INTO mailboxes(account_id, name, uid_validity) VALUES ($1, $2, $3)
                 RETURNING {MAILBOX_COLUMNS}"
            ),
            &[&account.0, &name, &validity],
        )
        .await
        .map_err(|e| match pg(e) {
            StoreError::Duplicate(_) => StoreError::Duplicate(format!("mailbox {name}")),
            other => other,
        })?;
    Ok(mailbox_row(&row))
}

/// Take the mailbox's next MODSEQ (its row is locked).
async fn bump(c: &impl GenericClient, mailbox: MailboxId) -> Result<u64> {
    let row = c
        .query_one_p(
            "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
            &[&mailbox.0],
        )
        .await
        .map_err(pg)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Insert one entry, taking the mailbox's next UID and MODSEQ.
pub(super) async fn insert_entry(
    c: &impl GenericClient,
    mailbox: MailboxId,
    blob: i64,
    prefix: &[u8],
    size: u64,
    date: i64,
    flags: &[String],
) -> Result<u32> {
    let row = c
        .query_one_p(
            "UPDATE mailboxes SET uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
             WHERE id = $1 RETURNING uid_next - 1, highest_modseq",
            &[&mailbox.0],
        )
        .await
        .map_err(pg)?;
    let (uid, modseq): (i64, i64) = (row.get(0), row.get(1));
    c.execute_p(
        "INSERT INTO mailbox_messages(mailbox_id, uid, blob_id, prefix, size, internal_date, modseq, flags, saved_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&mailbox.0, &uid, &blob, &prefix, &(size as i64), &date, &modseq, &flags.join(" "), &now()],
    )
    .await
    .map_err(pg)?;
    Ok(uid as u32)
}

/// One entry with its blob and prefix.
async fn entry(
    c: &impl GenericClient,
    mailbox: MailboxId,
    uid: u32,
) -> Result<Option<(MessageEntry, i64, Vec<u8>)>> {
    let row = c
        .query_opt_p(
            &format!("SELECT {ENTRY_COLUMNS}, prefix FROM mailbox_messages WHERE mailbox_id = $1 AND uid = $2"),
            &[&mailbox.0, &i64::from(uid)],
        )
        .await
        .map_err(pg)?;
    Ok(row.map(|r| (entry_row(&r), r.get(5), r.get(7))))
}

/// Remove entries and log them as expunged with one new MODSEQ.
async fn remove_entries(c: &impl GenericClient, mailbox: MailboxId, uids: &[u32]) -> Result<()> {
    if uids.is_empty() {
        return Ok(());
    }
    let modseq = bump(c, mailbox).await? as i64;
    let uids: Vec<i64> = uids.iter().map(|u| i64::from(*u)).collect();
    let blobs: Vec<i64> = c
        .query_p(
            "DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid = ANY($2) RETURNING blob_id",
            &[&mailbox.0, &uids],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    c.execute_p(
        "INSERT INTO expunged(mailbox_id, uid, modseq) SELECT $1, u, $3 FROM unnest($2::BIGINT[]) u
         ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq",
        &[&mailbox.0, &uids, &modseq],
    )
    .await
    .map_err(pg)?;
    blobs::collect(c, &blobs).await
}

/// Copy entries (same blob, prefix, flags, date) into another mailbox, in UID order.
async fn copy_entries(
    c: &impl GenericClient,
    from: MailboxId,
    uids: &[u32],
    to: MailboxId,
) -> Result<Vec<(u32, u32)>> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut pairs = Vec::with_capacity(sorted.len());
    for uid in sorted {
        if let Some((e, blob, prefix)) = entry(c, from, uid).await? {
            let new = insert_entry(c, to, blob, &prefix, e.size, e.internal_date, &e.flags).await?;
            pairs.push((uid, new));
        }
    }
    Ok(pairs)
}

/// Rename INBOX: its messages move to a new mailbox, INBOX stays (RFC 9051 §6.3.6).
async fn rename_inbox(
    tx: &Transaction<'_>,
    source: &MailboxRecord,
    to: &str,
) -> Result<Vec<MailboxId>> {
    let target = create(tx, source.account, to).await?;
    lock(tx, &[source.id, target.id]).await?;
    let uids: Vec<u32> = tx
        .query_p(
            "SELECT uid FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid",
            &[&source.id.0],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get::<_, i64>(0) as u32)
        .collect();
    copy_entries(tx, source.id, &uids, target.id).await?;
    remove_entries(tx, source.id, &uids).await?;
    Ok(vec![source.id, target.id])
}

#[async_trait::async_trait]
impl MailboxStore for PostgresStore {
    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>> {
        let rows = self
            .rows(
                &format!(
                    "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name"
                ),
                &[&account.0],
            )
            .await?;
        Ok(rows.iter().map(mailbox_row).collect())
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>> {
        let rows = self.rows(
                &format!("SELECT {ENTRY_COLUMNS} FROM mailbox_messages WHERE mailbox_id = $1 ORDER BY uid"),
                &[&mailbox.0],
            ).await?;
        Ok(rows.iter().map(entry_row).collect())
    }

    async fn message_content(&self, mailbox: MailboxId, uid: u32) -> Result<Option<Vec<u8>>> {
        Ok(self
            .contents(mailbox, vec![uid])
            .await?
            .pop()
            .map(|(_, content)| content))
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxRecord>> {
        mailbox_by_name(&self.client().await?, account, name).await
    }

    async fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxRecord> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let created = create(&tx, account, name).await?;
        notify(&tx, &[created.id]).await?;
        tx.commit().await.map_err(pg)?;
        Ok(created)
    }

    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let gone = mailbox_by_name(&tx, account, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))?;
        lock(&tx, &[gone.id]).await?;
        let blobs: Vec<i64> = tx
            .query_p(
                "SELECT DISTINCT blob_id FROM mailbox_messages WHERE mailbox_id = $1",
                &[&gone.id.0],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.execute_p("DELETE FROM mailboxes WHERE id = $1", &[&gone.id.0])
            .await
            .map_err(pg)?;
        blobs::collect(&tx, &blobs).await?;
        notify(&tx, &[gone.id]).await?;
        tx.commit().await.map_err(pg)
    }

    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let source = mailbox_by_name(&tx, account, from)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {from}")))?;
        if mailbox_by_name(&tx, account, to).await?.is_some() {
            return Err(StoreError::Duplicate(format!("mailbox {to}")));
        }
        let touched = if from == "INBOX" {
            rename_inbox(&tx, &source, to).await?
        } else {
            let mut touched = Vec::new();
            for mailbox in self_and_below(&tx, account, from).await? {
                let renamed = format!("{to}{}", &mailbox.name[from.len()..]);
                tx.execute_p(
                    "UPDATE mailboxes SET name = $2 WHERE id = $1",
                    &[&mailbox.id.0, &renamed],
                )
                .await
                .map_err(|e| match pg(e) {
                    StoreError::Duplicate(_) => StoreError::Duplicate(format!("mailbox {renamed}")),
                    other => other,
                })?;
                touched.push(mailbox.id);
            }
            touched
        };
        notify(&tx, &touched).await?;
        tx.commit().await.map_err(pg)
    }

    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let row = tx
            .query_opt_p(
                "UPDATE mailboxes SET subscribed = $3 WHERE account_id = $1 AND name = $2 RETURNING id",
                &[&account.0, &name, &subscribed],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {name}")))?;
        notify(&tx, &[MailboxId(row.get(0))]).await?;
        tx.commit().await.map_err(pg)
    }

    async fn changes_since(&self, mailbox: MailboxId, since: u64) -> Result<MailboxChanges> {
        let mut client = self.client().await?;
        // One snapshot for the three queries.
        let tx = super::snapshot(&mut client).await?;
        let record = mailbox_by_id(&tx, mailbox).await?;
        let since = since as i64;
        let changed = tx
            .query_p(
                &format!("SELECT {ENTRY_COLUMNS} FROM mailbox_messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid"),
                &[&mailbox.0, &since],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(entry_row)
            .collect();
        let expunged = tx
            .query_p(
                "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
                &[&mailbox.0, &since],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u32)
            .collect();
        Ok(MailboxChanges {
            mailbox: record,
            changed,
            expunged,
        })
    }

    async fn append(
        &self,
        mailbox: MailboxId,
        data: Spooled,
        flags: Vec<String>,
        internal_date: i64,
    ) -> Result<u32> {
        let index = crate::search::index_of_content(&data);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let blob = blobs::insert(&tx, &data).await?;
        super::search::insert(&tx, blob, &index).await?;
        lock(&tx, &[mailbox]).await?;
        let flags = flags::normalize(&flags);
        let uid = insert_entry(&tx, mailbox, blob, &[], data.len(), internal_date, &flags).await?;
        notify(&tx, &[mailbox]).await?;
        tx.commit().await.map_err(pg)?;
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock(&tx, &[mailbox]).await?;
        let mut out = FlagUpdate::default();
        let wanted: Vec<i64> = uids.iter().map(|u| i64::from(*u)).collect();
        let entries = tx
            .query_p(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM mailbox_messages WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid"
                ),
                &[&mailbox.0, &wanted],
            )
            .await
            .map_err(pg)?;
        let mut changed = Vec::new();
        for row in &entries {
            let mut e = entry_row(row);
            if unchanged_since.is_some_and(|u| e.modseq > u) {
                out.conflicts.push(e.uid);
                continue;
            }
            let new = flags::apply(&e.flags, op, &flags);
            if new != e.flags {
                e.flags = new;
                changed.push(e);
            }
        }
        if !changed.is_empty() {
            // One new MODSEQ for the whole change, one statement for every entry.
            let modseq = bump(&tx, mailbox).await?;
            let uids: Vec<i64> = changed.iter().map(|e| i64::from(e.uid)).collect();
            let lists: Vec<String> = changed.iter().map(|e| e.flags.join(" ")).collect();
            tx.execute_p(
                "UPDATE mailbox_messages m SET flags = u.flags, modseq = $4
                 FROM unnest($2::BIGINT[], $3::TEXT[]) AS u(uid, flags)
                 WHERE m.mailbox_id = $1 AND m.uid = u.uid",
                &[&mailbox.0, &uids, &lists, &(modseq as i64)],
            )
            .await
            .map_err(pg)?;
            for mut e in changed {
                e.modseq = modseq;
                out.updated.push(e);
            }
            notify(&tx, &[mailbox]).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(out)
    }

    async fn expunge(&self, mailbox: MailboxId, uids: Option<Vec<u32>>) -> Result<Vec<u32>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock(&tx, &[mailbox]).await?;
        let deleted: Vec<u32> = tx
            .query_p(
                "SELECT uid FROM mailbox_messages WHERE mailbox_id = $1
                   AND '\\Deleted' = ANY(string_to_array(flags, ' ')) ORDER BY uid",
                &[&mailbox.0],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u32)
            .collect();
        let chosen: Vec<u32> = match uids {
            Some(list) => {
                let allowed: HashSet<u32> = list.into_iter().collect();
                deleted
                    .into_iter()
                    .filter(|u| allowed.contains(u))
                    .collect()
            }
            None => deleted,
        };
        remove_entries(&tx, mailbox, &chosen).await?;
        if !chosen.is_empty() {
            notify(&tx, &[mailbox]).await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(chosen)
    }

    async fn remove_messages(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock(&tx, &[mailbox]).await?;
        remove_entries(&tx, mailbox, &uids).await?;
        notify(&tx, &[mailbox]).await?;
        tx.commit().await.map_err(pg)
    }

    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: Vec<u32>,
        to: MailboxId,
        remove: bool,
    ) -> Result<Vec<(u32, u32)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        lock(&tx, &[from, to]).await?;
        let pairs = copy_entries(&tx, from, &uids, to).await?;
        if remove {
            let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            remove_entries(&tx, from, &moved).await?;
        }
        notify(&tx, &if remove { vec![from, to] } else { vec![to] }).await?;
        tx.commit().await.map_err(pg)?;
        Ok(pairs)
    }

    async fn entries(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<MessageEntry>> {
        let uids: Vec<i64> = uids.iter().map(|u| i64::from(*u)).collect();
        let rows = self.rows(
                &format!("SELECT {ENTRY_COLUMNS} FROM mailbox_messages WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid"),
                &[&mailbox.0, &uids],
            ).await?;
        Ok(rows.iter().map(entry_row).collect())
    }

    async fn contents(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<(u32, Vec<u8>)>> {
        // One query for all of them: each entry's prefix, then its pieces in order.
        let uids: Vec<i64> = uids.into_iter().map(i64::from).collect();
        let rows = self
            .rows(
                "SELECT m.uid, m.prefix, p.data FROM mailbox_messages m
                 LEFT JOIN blob_pieces p ON p.blob_id = m.blob_id
                 WHERE m.mailbox_id = $1 AND m.uid = ANY($2) ORDER BY m.uid, p.seq",
                &[&mailbox.0, &uids],
            )
            .await?;
        let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
        for r in &rows {
            let uid = r.get::<_, i64>(0) as u32;
            if out.last().is_none_or(|(last, _)| *last != uid) {
                out.push((uid, r.get(1)));
            }
            if let (Some((_, content)), Some(piece)) =
                (out.last_mut(), r.get::<_, Option<&[u8]>>(2))
            {
                content.extend_from_slice(piece);
            }
        }
        Ok(out)
    }

    async fn content_range(
        &self,
        mailbox: MailboxId,
        uid: u32,
        start: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        let Some((_, blob, prefix)) = entry(&client, mailbox, uid).await? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(len.min(1 << 20));
        let begin = usize::try_from(start).unwrap_or(usize::MAX);
        if begin < prefix.len() {
            out.extend_from_slice(&prefix[begin..prefix.len().min(begin.saturating_add(len))]);
        }
        let want = len - out.len();
        let from = start.saturating_sub(prefix.len() as u64);
        out.extend_from_slice(&blobs::read_range(&client, blob, from, want).await?);
        Ok(Some(out))
    }

    async fn claim_recent(&self, mailbox: MailboxId) -> Result<u32> {
        let row = self
            .one_row(
                "UPDATE mailboxes m SET first_recent_uid = m.uid_next
                 FROM (SELECT id, first_recent_uid FROM mailboxes WHERE id = $1 FOR UPDATE) old
                 WHERE m.id = old.id RETURNING old.first_recent_uid",
                &[&mailbox.0],
            )
            .await?;
        Ok(row.get::<_, i64>(0) as u32)
    }

    fn watch(&self) -> tokio::sync::broadcast::Receiver<MailboxId> {
        self.feed.subscribe()
    }
}

/// The mailbox named `name` and those below it, locked.
async fn self_and_below(
    tx: &Transaction<'_>,
    account: AccountId,
    name: &str,
) -> Result<Vec<MailboxRecord>> {
    let rows = tx
        .query_p(
            &format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY id FOR UPDATE"),
            &[&account.0],
        )
        .await
        .map_err(pg)?;
    Ok(rows
        .iter()
        .map(mailbox_row)
        .filter(|m| m.name == name || crate::mailbox::is_below(&m.name, name))
        .collect())
}
