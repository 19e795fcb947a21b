//! The search index in PostgreSQL (see `crate::search`).
//!
//! Implementation notes
//! - `message_index` holds the header fields, one row per content in a
//!   mailbox; `message_text` its text, lower-cased when written, under one
//!   multi-column trigram index (pg_trgm). A search is `LIKE '%needle%'`
//!   on the columns asked about: three characters or more are found
//!   through the index, shorter needles are checked on the mailbox's rows.
//! - Rows are written in the transaction that stores the content, before
//!   its mailbox entries (the change log's triggers read the thread id);
//!   deleting the content deletes them (foreign keys).
//! - Thread ids as in SQLite: a message joins the thread of the first
//!   message it references that is already indexed, else starts its own
//!   (its id); threads are never merged, so ids stay stable.
//! - PostgreSQL text cannot hold NUL: it is dropped from indexed text
//!   (as from SQLite's, whose full-text index would end the text there).

use deadpool_postgres::GenericClient;
use message::index::MessageIndex;
use tokio_postgres::Row;

use super::{PostgresStore, Prepared, blobs, pg};
use crate::error::Result;
use crate::search::{without_nul as storable, *};
use crate::types::MailboxId;

/// Write the index of content `blob` (a new content: never indexed yet).
pub(super) async fn insert(c: &impl GenericClient, blob: i64, i: &MessageIndex) -> Result<()> {
    let mut thread: Option<i64> = None;
    for id in i.references.iter().rev().chain(i.in_reply_to.iter()) {
        thread = c
            .query_opt_p(
                "SELECT thread_id FROM message_index WHERE message_id = $1 LIMIT 1",
                &[&storable(id)],
            )
            .await
            .map_err(pg)?
            .map(|r| r.get(0));
        if thread.is_some() {
            break;
        }
    }
    let ids = |list: &[String]| storable(&list.join(" ")).into_owned();
    c.execute_p(
        "INSERT INTO message_index(blob_id, sent, sent_day, subject, base_subject, reply, from_key, to_key, cc_key, message_id, in_reply_to, refs, preview, thread_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[
            &blob,
            &i.sent,
            &i.sent_day,
            &storable(&i.subject),
            &storable(&i.base_subject),
            &i.reply,
            &storable(&i.from_key),
            &storable(&i.to_key),
            &storable(&i.cc_key),
            &i.message_id.as_deref().map(storable),
            &ids(&i.in_reply_to),
            &ids(&i.references),
            &storable(&i.preview),
            &thread.unwrap_or(blob),
        ],
    )
    .await
    .map_err(pg)?;
    insert_text(c, blob, i).await
}

/// Write the text of content `blob` for full-text search, lower-cased.
pub(super) async fn insert_text(c: &impl GenericClient, blob: i64, i: &MessageIndex) -> Result<()> {
    let lower = |s: &str| storable(&s.to_lowercase()).into_owned();
    c.execute_p(
        "INSERT INTO message_text(blob_id, subject, hfrom, hto, hcc, hbcc, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &blob,
            &lower(&i.subject),
            &lower(&i.from),
            &lower(&i.to),
            &lower(&i.cc),
            &lower(&i.bcc),
            &lower(&i.body),
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// The text columns a search of `field` looks in.
fn columns(field: TextField) -> &'static [&'static str] {
    match field {
        TextField::Subject => &["subject"],
        TextField::From => &["hfrom"],
        TextField::To => &["hto"],
        TextField::Cc => &["hcc"],
        TextField::Bcc => &["hbcc"],
        TextField::Body => &["body"],
        TextField::Text => &["subject", "hfrom", "hto", "hcc", "hbcc", "body"],
    }
}

/// A LIKE pattern for "contains `needle`", its `%`, `_` and `\` taken
/// literally.
fn like_contains(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for ch in needle.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

fn index_row(r: &Row) -> IndexRow {
    let ids = |s: String| s.split_whitespace().map(str::to_string).collect();
    IndexRow {
        uid: r.get::<_, i64>(0) as u32,
        sent: r.get(1),
        sent_day: r.get(2),
        subject: r.get(3),
        base_subject: r.get(4),
        reply: r.get(5),
        from_key: r.get(6),
        to_key: r.get(7),
        cc_key: r.get(8),
        message_id: r.get(9),
        in_reply_to: ids(r.get(10)),
        references: ids(r.get(11)),
        internal_date: r.get(12),
        size: r.get::<_, i64>(13) as u64,
        thread_id: r.get(14),
        email_id: r.get(15),
    }
}

#[async_trait::async_trait]
impl SearchStore for PostgresStore {
    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<u32>> {
        // The text is kept lower-cased: so is the needle (RFC 9051
        // §6.4.4: matching ignores case). Every text contains "".
        let pattern = like_contains(&storable(&needle.to_lowercase()));
        let matches: Vec<String> = columns(field)
            .iter()
            .map(|col| format!("t.{col} LIKE $2"))
            .collect();
        let rows = self
            .rows(
                &format!(
                    "SELECT m.uid FROM mailbox_messages m JOIN message_text t ON t.blob_id = m.blob_id
                     WHERE m.mailbox_id = $1 AND ({}) ORDER BY m.uid",
                    matches.join(" OR ")
                ),
                &[&mailbox.0, &pattern],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u32).collect())
    }

    async fn index_rows(&self, mailbox: MailboxId, after: u32) -> Result<Vec<IndexRow>> {
        let rows = self
            .rows(
                "SELECT m.uid, i.sent, i.sent_day, i.subject, i.base_subject, i.reply, i.from_key, i.to_key, i.cc_key,
                        i.message_id, i.in_reply_to, i.refs, m.internal_date, m.size, i.thread_id, m.blob_id
                 FROM mailbox_messages m JOIN message_index i ON i.blob_id = m.blob_id
                 WHERE m.mailbox_id = $1 AND m.uid > $2 ORDER BY m.uid",
                &[&mailbox.0, &i64::from(after)],
            )
            .await?;
        Ok(rows.iter().map(index_row).collect())
    }

    async fn previews(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<(u32, String)>> {
        let uids: Vec<i64> = uids.into_iter().map(i64::from).collect();
        let rows = self
            .rows(
                "SELECT m.uid, i.preview FROM mailbox_messages m JOIN message_index i ON i.blob_id = m.blob_id
                 WHERE m.mailbox_id = $1 AND m.uid = ANY($2) ORDER BY m.uid",
                &[&mailbox.0, &uids],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u32, r.get(1)))
            .collect())
    }

    async fn email_copies(&self, email_id: i64) -> Result<Vec<EmailCopy>> {
        let client = self.client().await?;
        let rows = client
            .query_p(
                "SELECT a.address, b.name, m.uid, m.flags, m.prefix
                 FROM mailbox_messages m
                 JOIN mailboxes b ON b.id = m.mailbox_id
                 JOIN accounts a ON a.id = b.account_id
                 WHERE m.blob_id = $1 ORDER BY a.address, b.name, m.uid",
                &[&email_id],
            )
            .await
            .map_err(pg)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let data = blobs::read(&client, email_id).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let mut content: Vec<u8> = r.get(4);
                content.extend_from_slice(&data);
                EmailCopy {
                    account: r.get(0),
                    mailbox: r.get(1),
                    uid: r.get::<_, i64>(2) as u32,
                    flags: r
                        .get::<_, String>(3)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                    content,
                }
            })
            .collect())
    }
}
