//! One account as JMAP sees it (RFC 8621 §2, §3, §4.1.1): its mailboxes
//! and its emails, an email being one stored content (blob) whatever
//! mailboxes hold it, with one set of keywords.
//!
//! IMAP keeps flags per mailbox entry; an email held by several mailboxes
//! shows the union of its entries' flags, and a JMAP change of keywords
//! is written to every entry. The view is built from the store and kept
//! while the account's Email and Mailbox states stay the same (a state
//! is read before the view is built, so a kept view is never older than
//! its key).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use store::{AccountId, DataType, IndexRow, MailboxId, MailboxRecord, Store};

use crate::error::MethodError;

/// One email of the account.
#[derive(Debug, Clone)]
pub struct EmailView {
    /// The blob id (EMAILID).
    pub id: i64,
    pub thread: i64,
    /// Each mailbox entry holding it: (mailbox, UID).
    pub entries: Vec<(MailboxId, u32)>,
    /// The union of its entries' flags, IMAP spelling.
    pub flags: Vec<String>,
    pub received_at: i64,
    pub size: u64,
    /// What the search index keeps of it.
    pub index: IndexRow,
}

impl EmailView {
    pub fn keywords(&self) -> Vec<String> {
        self.flags.iter().filter_map(|f| keyword_of(f)).collect()
    }

    /// Whether it has this keyword (compared as its IMAP flag: queries
    /// and counts ask this of every email, so nothing is built per flag).
    pub fn has_keyword(&self, keyword: &str) -> bool {
        let flag = flag_of(keyword);
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(&flag))
    }

    pub fn in_mailbox(&self, mailbox: MailboxId) -> bool {
        self.entries.iter().any(|(m, _)| *m == mailbox)
    }
}

/// The JMAP keyword of an IMAP flag (RFC 8621 §4.1.1): the four system
/// flags that have one, keywords lowercased; \Deleted and \Recent have
/// none (IMAP's business; kept when JMAP rewrites keywords).
pub fn keyword_of(flag: &str) -> Option<String> {
    match flag {
        "\\Seen" => Some("$seen".into()),
        "\\Answered" => Some("$answered".into()),
        "\\Flagged" => Some("$flagged".into()),
        "\\Draft" => Some("$draft".into()),
        f if f.starts_with('\\') => None,
        f => Some(f.to_ascii_lowercase()),
    }
}

/// The IMAP flag of a JMAP keyword.
pub fn flag_of(keyword: &str) -> String {
    match keyword.to_ascii_lowercase().as_str() {
        "$seen" => "\\Seen".into(),
        "$answered" => "\\Answered".into(),
        "$flagged" => "\\Flagged".into(),
        "$draft" => "\\Draft".into(),
        other => other.to_string(),
    }
}

/// A keyword as RFC 8621 §4.1.1 allows it: 1–255 of `%x21-7E` except
/// `( ) { ] % * " \`.
pub fn valid_keyword(keyword: &str) -> bool {
    !keyword.is_empty()
        && keyword.len() <= 255
        && keyword
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"(){]%*\"\\".contains(&b))
}

/// The mailboxes and emails of one account.
#[derive(Debug)]
pub struct AccountView {
    pub mailboxes: Vec<MailboxRecord>,
    pub emails: HashMap<i64, EmailView>,
    /// Each thread's emails, oldest first (RFC 8621 §3: by receivedAt).
    pub threads: HashMap<i64, Vec<i64>>,
    pub email_state: u64,
    pub mailbox_state: u64,
}

/// Counts of one mailbox (RFC 8621 §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total_emails: u64,
    pub unread_emails: u64,
    pub total_threads: u64,
    pub unread_threads: u64,
}

impl AccountView {
    /// Build the view from the store.
    pub async fn load(store: &dyn Store, account: AccountId) -> Result<AccountView, MethodError> {
        let email_state = store.change_state(account, DataType::Email).await?;
        let mailbox_state = store.change_state(account, DataType::Mailbox).await?;
        let mailboxes = store.mailboxes(account).await?;
        let mut emails: HashMap<i64, EmailView> = HashMap::new();
        for mailbox in &mailboxes {
            let entries = store.messages(mailbox.id).await?;
            let mut index: HashMap<u32, IndexRow> = store
                .index_rows(mailbox.id, 0)
                .await?
                .into_iter()
                .map(|r| (r.uid, r))
                .collect();
            for entry in entries {
                let row = index.remove(&entry.uid).unwrap_or_else(|| IndexRow {
                    uid: entry.uid,
                    thread_id: entry.email_id,
                    email_id: entry.email_id,
                    ..IndexRow::default()
                });
                let view = emails.entry(entry.email_id).or_insert_with(|| EmailView {
                    id: entry.email_id,
                    thread: row.thread_id,
                    entries: Vec::new(),
                    flags: Vec::new(),
                    received_at: entry.internal_date,
                    size: entry.size,
                    index: row,
                });
                view.entries.push((mailbox.id, entry.uid));
                view.flags = store::flags::normalize(view.flags.iter().chain(&entry.flags));
                view.received_at = view.received_at.min(entry.internal_date);
            }
        }
        let mut threads: HashMap<i64, Vec<i64>> = HashMap::new();
        for e in emails.values() {
            threads.entry(e.thread).or_default().push(e.id);
        }
        for ids in threads.values_mut() {
            ids.sort_by_key(|id| emails.get(id).map(|e| (e.received_at, e.id)));
        }
        Ok(AccountView {
            mailboxes,
            emails,
            threads,
            email_state,
            mailbox_state,
        })
    }

    pub fn mailbox_by_jmap_id(&self, id: &str) -> Option<&MailboxRecord> {
        let validity = store::object_id::parse(id, 'M')?;
        self.mailboxes
            .iter()
            .find(|m| i64::from(m.uid_validity) == validity)
    }

    pub fn mailbox(&self, id: MailboxId) -> Option<&MailboxRecord> {
        self.mailboxes.iter().find(|m| m.id == id)
    }

    pub fn email_by_jmap_id(&self, id: &str) -> Option<&EmailView> {
        self.emails.get(&store::object_id::parse(id, 'E')?)
    }

    /// The counts of every mailbox, by mailbox id.
    pub fn counts(&self) -> HashMap<MailboxId, Counts> {
        let mut threads: HashMap<MailboxId, (BTreeSet<i64>, BTreeSet<i64>)> = HashMap::new();
        let mut out: HashMap<MailboxId, Counts> = HashMap::new();
        for e in self.emails.values() {
            let unread = !e.has_keyword("$seen");
            let mut seen_here = BTreeSet::new();
            for (m, _) in &e.entries {
                if !seen_here.insert(*m) {
                    continue;
                }
                let c = out.entry(*m).or_default();
                c.total_emails += 1;
                let t = threads.entry(*m).or_default();
                t.0.insert(e.thread);
                if unread {
                    c.unread_emails += 1;
                    t.1.insert(e.thread);
                }
            }
        }
        for (m, (all, unread)) in threads {
            let c = out.entry(m).or_default();
            c.total_threads = all.len() as u64;
            c.unread_threads = unread.len() as u64;
        }
        out
    }
}

/// How many accounts' views are kept at once; past it the kept ones are
/// dropped (each is rebuilt at its account's next request).
const MAX_KEPT_VIEWS: usize = 256;

/// Views kept per account while their states hold.
#[derive(Default)]
pub struct ViewCache {
    views: std::sync::Mutex<HashMap<AccountId, Arc<AccountView>>>,
}

impl ViewCache {
    /// The account's view now: the kept one if nothing changed since.
    pub async fn get(
        &self,
        store: &dyn Store,
        account: AccountId,
    ) -> Result<Arc<AccountView>, MethodError> {
        let email_state = store.change_state(account, DataType::Email).await?;
        let mailbox_state = store.change_state(account, DataType::Mailbox).await?;
        if let Some(view) = self.kept(account)
            && view.email_state == email_state
            && view.mailbox_state == mailbox_state
        {
            return Ok(view);
        }
        let view = Arc::new(AccountView::load(store, account).await?);
        if let Ok(mut views) = self.views.lock() {
            if views.len() >= MAX_KEPT_VIEWS && !views.contains_key(&account) {
                views.clear();
            }
            views.insert(account, view.clone());
        }
        Ok(view)
    }

    fn kept(&self, account: AccountId) -> Option<Arc<AccountView>> {
        self.views.lock().ok()?.get(&account).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_flags_map_both_ways() {
        assert_eq!(keyword_of("\\Seen").as_deref(), Some("$seen"));
        assert_eq!(keyword_of("$Forwarded").as_deref(), Some("$forwarded"));
        assert_eq!(keyword_of("\\Deleted"), None);
        assert_eq!(flag_of("$SEEN"), "\\Seen");
        assert_eq!(flag_of("work"), "work");
        assert!(valid_keyword("$junk"));
        assert!(!valid_keyword("a b"));
        assert!(!valid_keyword("x]"));
        assert!(!valid_keyword(""));
    }
}
