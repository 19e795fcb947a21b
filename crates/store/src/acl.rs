//! Shared mailboxes (RFC 4314 ACL): the rights an owner granted others on
//! one of their mailboxes. Grantees are account addresses, or `anyone`
//! (every account of this server). Rights are the RFC 4314 §2.1 letters,
//! kept as given (the protocol side checks and orders them); the owner's
//! own rights are not stored (they are all of them).
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use crate::error::Result;
use crate::types::{MailboxId, MailboxRecord};

/// The grantee every account matches.
pub const ANYONE: &str = "anyone";

/// A mailbox another account shared with this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMailbox {
    /// The owner's address.
    pub owner: String,
    pub mailbox: MailboxRecord,
    /// The rights granted to this account and to `anyone`, together.
    pub rights: String,
}

#[async_trait::async_trait]
pub trait AclStore: Send + Sync {
    /// Grant `rights` to `grantee` on the mailbox, replacing what it had;
    /// empty rights remove the entry.
    async fn set_rights(&self, mailbox: MailboxId, grantee: &str, rights: &str) -> Result<()>;
    /// The mailbox's entries, by grantee.
    async fn acl(&self, mailbox: MailboxId) -> Result<Vec<(String, String)>>;
    /// What `grantee` may do on the mailbox (its entry and anyone's).
    async fn rights_of(&self, mailbox: MailboxId, grantee: &str) -> Result<String>;
    /// The mailboxes of other accounts `grantee` has some right on.
    async fn shared_with(&self, grantee: &str) -> Result<Vec<SharedMailbox>>;
}

/// Every letter of `a` and `b`, once, in the order first seen.
pub(crate) fn rights_union(a: &str, b: &str) -> String {
    let mut out = String::new();
    for c in a.chars().chain(b.chars()) {
        if !out.contains(c) {
            out.push(c);
        }
    }
    out
}

/// Rows of shared mailboxes ordered by owner and name, where a mailbox may
/// come twice (the grantee's own entry and anyone's): one each, with both
/// entries' rights.
pub(crate) fn merge_shared(rows: impl IntoIterator<Item = SharedMailbox>) -> Vec<SharedMailbox> {
    let mut out: Vec<SharedMailbox> = Vec::new();
    for row in rows {
        match out.last_mut() {
            Some(last) if last.mailbox.id == row.mailbox.id => {
                last.rights = rights_union(&last.rights, &row.rights);
            }
            _ => out.push(row),
        }
    }
    out
}
