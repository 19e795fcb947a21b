//! What a user's filing says about spam (the Bayesian filter learns from
//! it, whatever the protocol: IMAP MOVE/COPY and STORE, JMAP Email/set):
//! a message put into the Junk mailbox (RFC 6154 `\\Junk`) is spam, one
//! taken out of it (not to the Trash) is not; so are the keywords users'
//! clients set (`$Junk`/`$NotJunk` of RFC 5788, Thunderbird's
//! `Junk`/`NonJunk`).

use std::sync::Arc;

use crate::pipeline::CONTENT_VIEW;

use store::{AccountId, MailboxId, MailboxRecord, Store};

/// The most messages one user action trains on.
pub const MAX_PER_ACTION: usize = 1000;

/// Moving from `from` to `to`: Some(true) spam, Some(false) not spam.
pub fn lesson_of_move(from: &MailboxRecord, to: &MailboxRecord) -> Option<bool> {
    let is = |m: &MailboxRecord, use_: &str| m.special_use.as_deref() == Some(use_);
    match (is(from, "\\Junk"), is(to, "\\Junk")) {
        (false, true) => Some(true),
        (true, false) if !is(to, "\\Trash") => Some(false),
        _ => None,
    }
}

/// Keywords (IMAP flags) set on messages: what they say, if anything.
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

/// Train the account's filter on these messages (at most
/// [`MAX_PER_ACTION`]), off the caller's path: each read from the store in
/// turn, its first [`CONTENT_VIEW`] octets only, as the filter scores them
/// (hardening.md C-FT9: a large message is never read whole for it).
pub fn learn(
    store: Arc<dyn Store>,
    account: AccountId,
    messages: Vec<(MailboxId, u32)>,
    spam: bool,
) {
    tokio::spawn(async move {
        let bayes = crate::bayes::Bayes::new(store.clone());
        let now = message::date::unix_now();
        let mut trained = 0;
        for (mailbox, uid) in messages.into_iter().take(MAX_PER_ACTION) {
            let raw = match store.content_range(mailbox, uid, 0, CONTENT_VIEW).await {
                Ok(Some(raw)) => raw,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "spam training: cannot read a message");
                    return;
                }
            };
            match bayes.train(Some(account), &raw, spam, now).await {
                Ok(store::antispam::Trained::Unchanged) => {}
                Ok(_) => trained += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "spam training failed");
                    return;
                }
            }
        }
        tracing::info!(%account, spam, trained, "spam filter trained by the user");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: &str, special: Option<&str>) -> MailboxRecord {
        MailboxRecord {
            id: store::MailboxId(1),
            account: store::AccountId(1),
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
