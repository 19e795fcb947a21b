//! Training the spam filter from what the user does in IMAP: the lessons
//! are `antispam::learn`'s, the same as JMAP's.

use store::MailboxId;

use super::ImapSession;

impl ImapSession {
    /// Train on these messages of `mailbox`, read off the command's path.
    pub(super) fn learn(&self, mailbox: MailboxId, uids: &[u32], spam: bool) {
        let Some(account) = self.state.account().map(|a| a.id) else {
            return;
        };
        let store = self.store().clone();
        let uids: Vec<u32> = uids
            .iter()
            .copied()
            .take(antispam::learn::MAX_PER_ACTION)
            .collect();
        tokio::spawn(async move {
            match store.contents(mailbox, uids).await {
                Ok(contents) => antispam::learn::learn(
                    store,
                    account,
                    contents.into_iter().map(|(_, raw)| raw).collect(),
                    spam,
                ),
                Err(e) => tracing::warn!(error = %e, "spam training: cannot read the messages"),
            }
        });
    }
}
