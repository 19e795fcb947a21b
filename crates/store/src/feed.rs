//! The change feed: which mailboxes changed, told to whoever waits on them
//! (IMAP IDLE and NOTIFY, JMAP push, the webmail's event stream).
//!
//! The contract every backend keeps:
//! - After a change commits, the backend publishes the id of every mailbox
//!   whose contents changed (a message added, removed, flagged, moved) and of
//!   every mailbox created, deleted, renamed or (un)subscribed (an
//!   account removed: all of its mailboxes; an account's first mailboxes,
//!   made with it, are not announced: nobody can watch them yet). Never before
//!   the commit: a watcher that reads on a notice sees the change. (Where
//!   nodes relay notices through the database, a notice may reach a
//!   watcher a moment after the call that made the change returned.)
//! - A notice carries an id only. The watcher reads what changed from the
//!   store itself (`MailboxStore::changes_since`, the account change log), so
//!   a notice lost or merged costs a wake-up, never a change: a receiver that
//!   lags behind gets `RecvError::Lagged` and must read everything it
//!   watches again.
//! - A deleted mailbox's id names nothing any more; watchers of it find it
//!   gone when they read.
//! - [`EVERY_MAILBOX`] is a notice about all of them (after a node lost
//!   its relay for a while): a watcher treats it as it treats a lag.
//!
//! One process: a broadcast channel (this type). Several processes sharing
//! a database relay their notices through it (see docs/scale.md): each
//! node publishes what it committed and republishes what the others did,
//! so a watcher on any node hears every change.

use tokio::sync::broadcast;

use crate::types::MailboxId;

/// Notices a receiver may fall behind by before it must read everything again.
const BACKLOG: usize = 1024;

/// A notice about every mailbox at once (no mailbox has id 0): anything
/// may have changed, read all you watch, as after `RecvError::Lagged`.
pub const EVERY_MAILBOX: MailboxId = MailboxId(0);

/// The process's end of the change feed. Cheap to share behind the store.
#[derive(Debug)]
pub struct ChangeFeed {
    sender: broadcast::Sender<MailboxId>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed {
            sender: broadcast::channel(BACKLOG).0,
        }
    }
}

impl ChangeFeed {
    /// Tell every watcher that these mailboxes changed (after the commit).
    pub fn publish(&self, mailboxes: impl IntoIterator<Item = MailboxId>) {
        for mailbox in mailboxes {
            // No receiver is not an error: nobody is watching right now.
            let _ = self.sender.send(mailbox);
        }
    }

    /// Tell every receiver it may have missed notices (a node's relay lost
    /// its connection to the database for a while): each hears
    /// [`EVERY_MAILBOX`] and reads everything it watches again.
    pub fn resync(&self) {
        self.publish([EVERY_MAILBOX]);
    }

    /// A receiver of every notice published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MailboxId> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_hears_what_is_published_after_it_subscribed() {
        let feed = ChangeFeed::default();
        feed.publish([MailboxId(1)]);
        let mut a = feed.subscribe();
        let mut b = feed.subscribe();
        feed.publish([MailboxId(2), MailboxId(3)]);
        for rx in [&mut a, &mut b] {
            assert_eq!(rx.recv().await.unwrap(), MailboxId(2));
            assert_eq!(rx.recv().await.unwrap(), MailboxId(3));
            assert!(rx.try_recv().is_err());
        }
    }

    #[tokio::test]
    async fn resync_tells_every_receiver_to_read_everything() {
        let feed = ChangeFeed::default();
        let mut rx = feed.subscribe();
        feed.publish([MailboxId(7)]);
        feed.resync();
        assert_eq!(rx.recv().await.unwrap(), MailboxId(7));
        assert_eq!(rx.recv().await.unwrap(), EVERY_MAILBOX);
    }

    #[tokio::test]
    async fn a_receiver_that_falls_behind_is_told_so() {
        let feed = ChangeFeed::default();
        let mut rx = feed.subscribe();
        feed.publish((0..(BACKLOG as i64 + 10)).map(MailboxId));
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));
    }
}
