//! Mailboxes and the messages in them, as IMAP, POP3 and JMAP see them:
//! UIDs, MODSEQs, flags, appends, copies, moves and expunges (RFC 9051,
//! RFC 7162), and the change feed's subscription ([`crate::feed`]).
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use message::spool::Spooled;

use crate::error::Result;
use crate::types::*;

#[async_trait::async_trait]
pub trait MailboxStore: Send + Sync {
    async fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>>;
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageEntry>>;
    /// The full message as delivered: per-recipient prefix and shared body.
    async fn message_content(&self, mailbox: MailboxId, uid: u32) -> Result<Option<Vec<u8>>>;
    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<MailboxRecord>>;
    async fn create_mailbox(&self, account: AccountId, name: &str) -> Result<MailboxRecord>;
    /// Removes the mailbox with its messages (not the mailboxes below it).
    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()>;
    /// Renames the mailbox and the ones below it; INBOX moves its messages instead.
    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()>;
    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()>;
    /// Messages added or changed, and UIDs expunged, after `since` (a MODSEQ).
    async fn changes_since(&self, mailbox: MailboxId, since: u64) -> Result<MailboxChanges>;
    /// Keep a message a client put into a mailbox (IMAP APPEND, import):
    /// large content comes spooled and is copied into the store a block at
    /// a time (hardening.md C-FT9). Its UID.
    async fn append(
        &self,
        mailbox: MailboxId,
        data: Spooled,
        flags: Vec<String>,
        internal_date: i64,
    ) -> Result<u32>;
    async fn set_flags(
        &self,
        mailbox: MailboxId,
        uids: Vec<u32>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<FlagUpdate>;
    /// Remove the messages flagged \Deleted, among `uids` if given; their UIDs.
    async fn expunge(&self, mailbox: MailboxId, uids: Option<Vec<u32>>) -> Result<Vec<u32>>;
    /// Remove these messages whatever their flags.
    async fn remove_messages(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<()>;
    /// Copy (or move) messages; (source UID, new UID) pairs in UID order.
    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: Vec<u32>,
        to: MailboxId,
        remove: bool,
    ) -> Result<Vec<(u32, u32)>>;
    /// The entries (flags, size, dates, MODSEQ) of these UIDs, those that exist.
    async fn entries(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<MessageEntry>>;
    /// The contents of several messages, those that still exist.
    async fn contents(&self, mailbox: MailboxId, uids: Vec<u32>) -> Result<Vec<(u32, Vec<u8>)>>;
    /// At most `len` octets of a message's content from octet `start`
    /// (fewer at its end): a large message is sent to a client a piece at
    /// a time (hardening.md C-FT9). None if the message is gone.
    async fn content_range(
        &self,
        mailbox: MailboxId,
        uid: u32,
        start: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>>;
    /// Claim the \Recent messages of a mailbox; the first UID that is recent for the caller.
    async fn claim_recent(&self, mailbox: MailboxId) -> Result<u32>;
    /// A subscription to the change feed: the ids of mailboxes whose
    /// contents changed, or that were created, deleted, renamed or
    /// (un)subscribed, each published after its commit (the contract is
    /// in [`crate::feed`]).
    fn watch(&self) -> tokio::sync::broadcast::Receiver<MailboxId>;
}

/// A fresh UIDVALIDITY: the time now, but always above the last one handed
/// out, so a mailbox deleted and created again within a second still gets
/// a new value (RFC 9051 §2.3.1.1).
pub(crate) fn next_uid_validity(last: u32, now: i64) -> u32 {
    u32::try_from(now)
        .unwrap_or(u32::MAX - 1)
        .max(last.saturating_add(1))
        .max(1)
}

/// Whether `name` is below `parent` in the hierarchy (`/` separated).
pub(crate) fn is_below(name: &str, parent: &str) -> bool {
    name.len() > parent.len()
        && name.starts_with(parent)
        && name.as_bytes().get(parent.len()) == Some(&b'/')
}
