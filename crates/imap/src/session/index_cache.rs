//! The search index rows SORT and THREAD read, kept for every session of
//! the process: a message's row never changes (it describes the message's
//! content), so a mailbox's rows are read once and then only for UIDs
//! above the highest kept. Keyed by mailbox and UIDVALIDITY (a mailbox
//! made again has a new one). Bounded: past [`MAX_ROWS`] it starts over.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use store::{IndexRow, MailboxId};

pub const MAX_ROWS: usize = 500_000;

type Rows = BTreeMap<u32, Arc<IndexRow>>;

#[derive(Default)]
pub struct IndexCache {
    mailboxes: Mutex<HashMap<(MailboxId, u32), Rows>>,
}

impl IndexCache {
    /// The highest UID kept for this mailbox (0: none).
    pub fn highest(&self, mailbox: MailboxId, validity: u32) -> u32 {
        self.mailboxes
            .lock()
            .ok()
            .and_then(|m| {
                m.get(&(mailbox, validity))
                    .and_then(|r| r.keys().next_back().copied())
            })
            .unwrap_or(0)
    }

    pub fn add(&self, mailbox: MailboxId, validity: u32, rows: Vec<IndexRow>) {
        let Ok(mut m) = self.mailboxes.lock() else {
            return;
        };
        let total: usize = m.values().map(BTreeMap::len).sum();
        if total + rows.len() > MAX_ROWS {
            m.clear();
        }
        m.entry((mailbox, validity))
            .or_default()
            .extend(rows.into_iter().map(|r| (r.uid, Arc::new(r))));
    }

    /// The rows of these UIDs, in the order given (a UID without a row
    /// gets an empty one).
    pub fn rows(
        &self,
        mailbox: MailboxId,
        validity: u32,
        uids: impl Iterator<Item = u32>,
    ) -> Vec<Arc<IndexRow>> {
        let m = self.mailboxes.lock().ok();
        let rows = m.as_ref().and_then(|m| m.get(&(mailbox, validity)));
        uids.map(|uid| {
            rows.and_then(|r| r.get(&uid).cloned()).unwrap_or_else(|| {
                Arc::new(IndexRow {
                    uid,
                    ..Default::default()
                })
            })
        })
        .collect()
    }
}
