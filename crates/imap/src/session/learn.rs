//! The user teaches the spam filter by what they do (the Bayesian
//! classifier of `antispam::bayes`): moving or copying messages into the
//! Junk mailbox (RFC 6154 `\Junk`) marks them spam; moving them out of Junk
//! to anything but Trash marks them ham; so do the keywords mail clients
//! set (`$Junk`/`$NotJunk` of RFC 5788, Thunderbird's `Junk`/`NonJunk`).
//!
//! Training runs in the background after the command's answer, at most
//! [`MAX_PER_COMMAND`] messages per command.

use store::{AccountId, MailboxId, MailboxRecord};

use super::ImapSession;

pub const MAX_PER_COMMAND: usize = 1000;

/// What a move or copy between two mailboxes teaches: Some(true) spam,
/// Some(false) ham, None nothing.
pub fn lesson_of_move(from: &MailboxRecord, to: &MailboxRecord) -> Option<bool> {
    let is = |m: &MailboxRecord, use_: &str| m.special_use.as_deref() == Some(use_);
    match (is(from, "\\Junk"), is(to, "\\Junk")) {
        (false, true) => Some(true),
        (true, false) if !is(to, "\\Trash") => Some(false),
        _ => None,
    }
}

/// What keywords added by STORE teach.
pub fn lesson_of_keywords(flags: &[String]) -> Option<bool> {
    let has = |names: &[&str]| {
        flags
            .iter()
            .any(|f| names.iter().any(|n| f.eq_ignore_ascii_case(n)))
    };
    if has(&["$Junk", "Junk"]) {
        Some(true)
    } else if has(&["$NotJunk", "NotJunk", "NonJunk"]) {
        Some(false)
    } else {
        None
    }
}

impl ImapSession {
    /// Train these messages of `mailbox` for the logged-in user, in the
    /// background.
    pub(super) fn learn(&self, mailbox: MailboxId, uids: &[u32], spam: bool) {
        let Some(account) = self.state.account().map(|a| a.id) else {
            return;
        };
        let store = self.store().clone();
        let uids: Vec<u32> = uids.iter().copied().take(MAX_PER_COMMAND).collect();
        tokio::spawn(train(store, account, mailbox, uids, spam));
    }
}

async fn train(
    store: std::sync::Arc<dyn store::Store>,
    account: AccountId,
    mailbox: MailboxId,
    uids: Vec<u32>,
    spam: bool,
) {
    let bayes = antispam::bayes::Bayes::new(store.clone());
    let contents = match store.contents(mailbox, uids).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "spam training: cannot read the messages");
            return;
        }
    };
    let now = message::date::unix_now();
    let mut trained = 0;
    for (_, raw) in &contents {
        match bayes.train(Some(account), raw, spam, now).await {
            Ok(store::antispam::Trained::Unchanged) => {}
            Ok(_) => trained += 1,
            Err(e) => {
                tracing::warn!(error = %e, "spam training failed");
                return;
            }
        }
    }
    tracing::info!(account, spam, trained, "spam filter trained by the user");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: &str, special: Option<&str>) -> MailboxRecord {
        MailboxRecord {
            id: 1,
            account: 1,
            name: name.into(),
            special_use: special.map(String::from),
            uid_validity: 1,
            uid_next: 1,
            highest_modseq: 1,
            subscribed: true,
            first_recent_uid: 1,
        }
    }

    #[test]
    fn lessons() {
        let inbox = mailbox("INBOX", None);
        let junk = mailbox("Junk", Some("\\Junk"));
        let trash = mailbox("Trash", Some("\\Trash"));
        assert_eq!(lesson_of_move(&inbox, &junk), Some(true));
        assert_eq!(lesson_of_move(&junk, &inbox), Some(false));
        assert_eq!(lesson_of_move(&junk, &trash), None);
        assert_eq!(lesson_of_move(&inbox, &trash), None);
        assert_eq!(lesson_of_keywords(&["$Junk".into()]), Some(true));
        assert_eq!(lesson_of_keywords(&["NonJunk".into()]), Some(false));
        assert_eq!(lesson_of_keywords(&["\\Seen".into()]), None);
    }
}
