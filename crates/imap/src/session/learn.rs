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
        let messages = uids
            .iter()
            .take(antispam::learn::MAX_PER_ACTION)
            .map(|uid| (mailbox, *uid))
            .collect();
        antispam::learn::learn(self.store().clone(), account, messages, spam);
    }
}
