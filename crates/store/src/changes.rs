//! The account change log: what changed in an account, in order, for
//! JMAP's `/changes` methods (RFC 8620 §5.2) and push (§7). Every backend
//! writes it in the transaction that makes the change, whatever the path
//! (SMTP delivery, IMAP, POP3, JMAP, Sieve), so a client that asks "what
//! changed since state N" is never told too little.
//!
//! A state is the sequence number of the account's latest change of a
//! data type (0: none yet); it only goes up. An object appears once per
//! change: the caller folds the rows into created / updated / destroyed.
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use crate::error::Result;
use crate::types::AccountId;

/// The data types whose changes are logged (RFC 8621 §2, §3, §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Object: the mailbox's UIDVALIDITY (its MAILBOXID, `object_id`).
    Mailbox,
    /// Object: the blob id (EMAILID): one stored content in the account,
    /// in however many of its mailboxes.
    Email,
    /// Object: the thread id (THREADID).
    Thread,
}

impl DataType {
    /// The log's columns for this type: (object, change).
    pub fn columns(self) -> (&'static str, &'static str) {
        match self {
            DataType::Mailbox => ("mailbox", "mailbox_change"),
            DataType::Email => ("email", "email_change"),
            DataType::Thread => ("thread", "thread_change"),
        }
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Destroyed,
    /// A mailbox's counts of emails and threads changed, nothing else
    /// (RFC 8621 §2.2 `updatedProperties`).
    Counts,
}

impl Change {
    pub fn from_code(code: i64) -> Option<Change> {
        match code {
            1 => Some(Change::Created),
            2 => Some(Change::Updated),
            3 => Some(Change::Destroyed),
            4 => Some(Change::Counts),
            _ => None,
        }
    }
}

/// One logged change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeRow {
    pub seq: u64,
    pub object: i64,
    pub change: Change,
}

#[async_trait::async_trait]
pub trait ChangeStore: Send + Sync {
    /// The account's current state for a data type.
    async fn change_state(&self, account: AccountId, kind: DataType) -> Result<u64>;
    /// The account's changes of a data type after state `since`, oldest
    /// first, at most `limit` rows.
    async fn changes_after(
        &self,
        account: AccountId,
        kind: DataType,
        since: u64,
        limit: usize,
    ) -> Result<Vec<ChangeRow>>;
    /// The oldest state the log still answers from: changes after a
    /// state below it were forgotten (`prune_changes`), so a client there
    /// must sync again (RFC 8620 §5.2 `cannotCalculateChanges`).
    async fn change_floor(&self, account: AccountId) -> Result<u64>;
    /// Forget each account's changes but its newest `keep` (and the
    /// newest of each data type, which are its states, so states never
    /// go back); the accounts' floors move up. How many rows went.
    async fn prune_changes(&self, keep: usize) -> Result<usize>;
}
