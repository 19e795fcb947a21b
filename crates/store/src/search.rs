//! The search index's contract: what IMAP SEARCH, SORT and THREAD (and
//! later JMAP Email/query) ask of the store. Every message content stored
//! in a mailbox has its index row, written in the same transaction
//! (`message::index::MessageIndex` says what it holds).
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use message::index::MessageIndex;
use message::spool::Spooled;

use crate::error::Result;
use crate::types::{MailboxId, NewMessage};

/// Where a text search looks (RFC 9051 §6.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    Subject,
    From,
    To,
    Cc,
    Bcc,
    /// The text parts and attachment names.
    Body,
    /// All of the above.
    Text,
}

/// One message's indexed fields, with its UID in the mailbox asked about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexRow {
    pub uid: u32,
    /// The Date: field in Unix seconds.
    pub sent: Option<i64>,
    /// The day of the Date: field in its own zone (days since 1970), for
    /// SENTBEFORE/SENTON/SENTSINCE (RFC 9051 §6.4.4 disregards time and zone).
    pub sent_day: Option<i64>,
    pub subject: String,
    /// RFC 5256 §2.1, uppercased.
    pub base_subject: String,
    pub reply: bool,
    pub from_key: String,
    pub to_key: String,
    pub cc_key: String,
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The mailbox entry's arrival time and size (SORT ARRIVAL, SIZE).
    pub internal_date: i64,
    pub size: u64,
    /// The conversation: the id of the first message content of it stored.
    pub thread_id: i64,
    /// The message content's id (the same in every mailbox it is copied to).
    pub email_id: i64,
}

#[async_trait::async_trait]
pub trait SearchStore: Send + Sync {
    /// The UIDs of `mailbox` whose `field` contains `needle`, compared
    /// without case; in UID order.
    async fn search_text(
        &self,
        mailbox: MailboxId,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<u32>>;
    /// The index rows of a mailbox's messages with a UID above `after`
    /// (0: all), in UID order.
    async fn index_rows(&self, mailbox: MailboxId, after: u32) -> Result<Vec<IndexRow>>;
    /// RFC 8970 previews of these messages (those that exist).
    async fn previews(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<(u32, String)>>;
    /// Every copy of the message whose EMAILID is `email_id` (its blob),
    /// in every account and mailbox, as each account reads it.
    async fn email_copies(&self, email_id: i64) -> Result<Vec<EmailCopy>>;
}

/// One mailbox's copy of a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailCopy {
    pub account: String,
    pub mailbox: String,
    pub uid: u32,
    pub flags: Vec<String>,
    /// The message with the account's own header lines (Delivered-To...).
    pub content: Vec<u8>,
}

/// What the search index keeps of a message that goes into mailboxes
/// (computed before the write: SQLite's writer thread only writes).
pub(crate) fn index_of(msg: &NewMessage) -> Option<MessageIndex> {
    (!msg.deliveries.is_empty()).then(|| index_of_content(&msg.data))
}

/// A large message is indexed by its beginning: its header section and
/// the first text (hardening.md C-FT9).
pub(crate) fn index_of_content(data: &Spooled) -> MessageIndex {
    match data.view(INDEX_VIEW) {
        Ok(view) => MessageIndex::of(&view),
        Err(_) => MessageIndex::of(data.head()),
    }
}

/// How much of a message the search index reads: the text it keeps is at
/// most `message::index::MAX_BODY_TEXT` anyway.
const INDEX_VIEW: usize = 1024 * 1024;

/// Indexed text without NUL characters: PostgreSQL text cannot hold them,
/// and SQLite's full-text index ends a text at the first one, losing what
/// follows.
pub(crate) fn without_nul(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}
