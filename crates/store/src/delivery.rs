//! A message arriving: its content, its copies in local mailboxes and its
//! outbound queue entry, kept in one durable transaction (a 250 after DATA
//! is sent only once this returned, hardening.md C-FT3). The mailboxes it
//! reached are published on the change feed after the commit.
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use crate::error::Result;
use crate::types::*;

#[async_trait::async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Store a message, its local deliveries and its queue entry in one durable transaction.
    async fn store_message(&self, message: NewMessage) -> Result<Stored>;
    /// Several messages (versions of one message: Sieve may edit a user's
    /// copy) in one durable transaction: all are stored or none.
    async fn store_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<Stored>>;
}
