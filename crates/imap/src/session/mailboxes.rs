//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 9051 §6.3), LIST with
//! LIST-EXTENDED, LIST-STATUS and SPECIAL-USE (RFC 5258, 5819, 6154), LSUB
//! (IMAP4rev1), STATUS (§6.3.11), APPEND (§6.3.12, RFC 4315 APPENDUID).

use store::{MailboxRecord, flags};

use super::notify::EventKind;
use super::{ImapSession, Outcome};
use crate::error::ImapError;
use crate::parse::{ListReturn, ListSelect};
use crate::response;

/// `*` matches anything, `%` anything but the hierarchy delimiter (RFC 9051 §6.3.9).
/// Dynamic programming over (pattern, name) positions: O(|pattern| x |name|).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().take(1024).collect();
    let n: Vec<char> = name.chars().collect();
    // reach[j]: the first i pattern chars can match the first j name chars.
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' | '%' => {
                for j in 0..=n.len() {
                    // Either match nothing here, or extend a match by one more char.
                    next[j] = reach[j] || (j > 0 && next[j - 1] && (pc == '*' || n[j - 1] != '/'));
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = reach[j - 1] && n[j - 1] == c;
                }
            }
        }
        reach = next;
    }
    reach[n.len()]
}

/// One name a LIST may show: a mailbox, or a parent that only exists as a prefix.
struct Entry<'a> {
    name: String,
    mailbox: Option<&'a MailboxRecord>,
    has_children: bool,
}

impl ImapSession {
    pub(super) fn account_id(&self) -> Result<store::AccountId, ImapError> {
        Ok(self.state.account().ok_or(ImapError::WrongState)?.id)
    }

    pub(super) async fn create(&mut self, raw: &str) -> Outcome {
        let account = self.account_id()?;
        // RFC 9051 §6.3.4: a trailing delimiter only says the name will have children.
        let name = self.personal_name(raw.strip_suffix('/').unwrap_or(raw))?;
        if name == "INBOX" {
            return Err(ImapError::MailboxExists);
        }
        // Create the missing parents too (§6.3.4: SHOULD).
        let mut prefix = String::new();
        let segments: Vec<&str> = name.split('/').collect();
        let mut created = None;
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(seg);
            let last = i + 1 == segments.len();
            match self.store().create_mailbox(account, &prefix).await {
                Ok(m) => created = Some(m),
                Err(store::StoreError::Duplicate(_)) if !last => {}
                Err(store::StoreError::Duplicate(_)) => return Err(ImapError::MailboxExists),
                Err(e) => return Err(e.into()),
            }
        }
        if created.is_some() {
            self.announce(EventKind::Name {
                name: name.clone(),
                old: None,
                exists: true,
            });
        }
        // RFC 8474 §4.1: the new mailbox's id.
        Ok(match created {
            Some(m) => format!(
                "[MAILBOXID ({})] CREATE completed",
                store::object_id::mailbox(m.uid_validity)
            ),
            None => "CREATE completed".into(),
        })
    }

    /// A name for one of this user's own mailboxes: the shared namespace is
    /// its owners' (RFC 4314 §4: k, x are theirs alone here).
    fn personal_name(&self, raw: &str) -> Result<String, ImapError> {
        let name = self.mailbox_name(raw)?;
        if super::acl::in_shared_namespace(&name) {
            return Err(ImapError::SharedNamespace);
        }
        Ok(name)
    }

    pub(super) async fn delete(&mut self, raw: &str) -> Outcome {
        let account = self.account_id()?;
        let name = self.personal_name(raw)?;
        if name == "INBOX" {
            return Err(ImapError::Cannot("INBOX cannot be deleted"));
        }
        self.store()
            .delete_mailbox(account, &name)
            .await
            .map_err(|e| match e {
                store::StoreError::NotFound(_) => ImapError::NoSuchMailbox,
                other => other.into(),
            })?;
        self.announce(EventKind::Name {
            name,
            old: None,
            exists: false,
        });
        Ok("DELETE completed".into())
    }

    pub(super) async fn rename(&mut self, from: &str, to: &str) -> Outcome {
        let account = self.account_id()?;
        let (from, to) = (self.personal_name(from)?, self.personal_name(to)?);
        if to == "INBOX" || to.starts_with(&format!("{from}/")) {
            return Err(ImapError::Cannot("cannot rename to that name"));
        }
        self.store()
            .rename_mailbox(account, &from, &to)
            .await
            .map_err(|e| match e {
                store::StoreError::NotFound(_) => ImapError::NoSuchMailbox,
                store::StoreError::Duplicate(_) => ImapError::MailboxExists,
                other => other.into(),
            })?;
        self.announce(EventKind::Name {
            name: to,
            old: Some(from),
            exists: true,
        });
        Ok("RENAME completed".into())
    }

    pub(super) async fn subscribe(&mut self, raw: &str, on: bool) -> Outcome {
        let account = self.account_id()?;
        let name = self.mailbox_name(raw)?;
        if super::acl::in_shared_namespace(&name) {
            // Shared mailboxes are always listed as subscribed.
            self.find_mailbox(raw).await?;
            return Ok("SUBSCRIBE completed".into());
        }
        self.store()
            .set_subscribed(account, &name, on)
            .await
            .map_err(|e| match e {
                store::StoreError::NotFound(_) => ImapError::NoSuchMailbox,
                other => other.into(),
            })?;
        self.announce(EventKind::Subscription {
            name,
            subscribed: on,
        });
        Ok(if on {
            "SUBSCRIBE completed".into()
        } else {
            "UNSUBSCRIBE completed".into()
        })
    }

    pub(super) async fn list(
        &mut self,
        select: &ListSelect,
        reference: &str,
        patterns: &[String],
        returns: &ListReturn,
        lsub: bool,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let account = self.account_id()?;
        let word = if lsub { "LSUB" } else { "LIST" };
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter.
        if patterns.len() == 1 && patterns[0].is_empty() {
            response::untagged(out, &format!("{word} (\\Noselect) \"/\" \"\""));
            return Ok(format!("{word} completed"));
        }
        let mut boxes = self.store().mailboxes(account).await?;
        // Others' mailboxes shared with this user, under Shared/owner/.
        let mut shared_rights = std::collections::HashMap::new();
        for (m, rights) in self.shared_mailboxes().await? {
            shared_rights.insert(m.id, rights);
            boxes.push(m);
        }
        let entries = list_entries(&boxes);
        let utf8 = self.utf8_names();
        for e in &entries {
            let display = self.display_name(&e.name);
            let matched = patterns.iter().any(|p| {
                let pattern = format!("{reference}{p}");
                let pattern = if utf8 {
                    Some(pattern)
                } else {
                    crate::mutf7::decode(&pattern).map(|_| pattern)
                };
                pattern.is_some_and(|pt| {
                    pattern_matches(&pt, &display)
                        || (e.name == "INBOX" && pattern_matches(&pt.to_ascii_uppercase(), "INBOX"))
                })
            });
            if !matched {
                continue;
            }
            let subscribed = e.mailbox.is_some_and(|m| m.subscribed);
            if (lsub || select.subscribed) && !subscribed {
                continue;
            }
            if select.special_use && e.mailbox.and_then(|m| m.special_use.as_ref()).is_none() {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            match e.mailbox {
                None => attrs.push(if self.rev2 {
                    "\\NonExistent"
                } else {
                    "\\Noselect"
                }),
                Some(m) => {
                    if let Some(s) = &m.special_use {
                        attrs.push(s);
                    }
                    if subscribed && (returns.subscribed || select.subscribed || lsub) {
                        attrs.push("\\Subscribed");
                    }
                }
            }
            attrs.push(if e.has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
            let mut line = format!("* {word} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            response::astring(&mut line, &display, utf8);
            line.extend_from_slice(b"\r\n");
            out.extend_from_slice(&line);
            let rights = e.mailbox.map(|m| {
                shared_rights
                    .get(&m.id)
                    .cloned()
                    .unwrap_or_else(crate::rights::Rights::all)
            });
            if let (Some(items), Some(m), Some(r)) = (&returns.status, e.mailbox, &rights)
                && r.has('r')
            {
                self.status_line(m, items, out).await?;
            }
            // RFC 8440: the rights after the LIST line.
            if let (true, Some(m), Some(r)) = (returns.myrights, e.mailbox, &rights) {
                self.my_rights_line(m, r, out);
            }
        }
        Ok(format!("{word} completed"))
    }

    pub(super) async fn status(
        &mut self,
        raw: &str,
        items: &[String],
        out: &mut Vec<u8>,
    ) -> Outcome {
        let mailbox = self.mailbox_with(raw, 'r').await?;
        self.status_line(&mailbox, items, out).await?;
        Ok("STATUS completed".into())
    }

    /// `* STATUS name (MESSAGES n ...)` (RFC 9051 §7.3.4).
    pub(super) async fn status_line(
        &self,
        m: &MailboxRecord,
        items: &[String],
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        let entries = self.store().messages(m.id).await?;
        let mut parts = Vec::new();
        for item in items {
            let value = match item.as_str() {
                "MESSAGES" => entries.len() as u64,
                "UIDNEXT" => u64::from(m.uid_next),
                "UIDVALIDITY" => u64::from(m.uid_validity),
                "UNSEEN" => entries
                    .iter()
                    .filter(|e| !flags::contains(&e.flags, "\\Seen"))
                    .count() as u64,
                "DELETED" => entries
                    .iter()
                    .filter(|e| flags::contains(&e.flags, "\\Deleted"))
                    .count() as u64,
                "SIZE" => entries.iter().map(|e| e.size).sum(),
                "HIGHESTMODSEQ" => m.highest_modseq,
                // RFC 3501 §6.3.10: what the next SELECT would show as \Recent
                // (STATUS does not claim them). Gone in IMAP4rev2.
                "RECENT" if !self.rev2 => entries
                    .iter()
                    .filter(|e| e.uid >= m.first_recent_uid)
                    .count() as u64,
                // RFC 9208 §4.2.2: what an EXPUNGE would free, in the
                // STORAGE resource's units of 1024 octets.
                "DELETED-STORAGE" => entries
                    .iter()
                    .filter(|e| flags::contains(&e.flags, "\\Deleted"))
                    .map(|e| e.size)
                    .sum::<u64>()
                    .div_ceil(1024),
                "MAILBOXID" => {
                    // RFC 8474 §4.3: a parenthesised id, not a number.
                    parts.push(format!(
                        "MAILBOXID ({})",
                        store::object_id::mailbox(m.uid_validity)
                    ));
                    continue;
                }
                "APPENDLIMIT" => self.cfg.limits.max_append as u64,
                other => return Err(ImapError::Syntax(format!("unknown STATUS item {other}"))),
            };
            parts.push(format!("{item} {value}"));
        }
        let mut line = b"* STATUS ".to_vec();
        response::astring(&mut line, &self.display_name(&m.name), self.utf8_names());
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        out.extend_from_slice(&line);
        Ok(())
    }

    pub(super) async fn append(
        &mut self,
        raw: &str,
        flag_list: Vec<String>,
        date: Option<i64>,
        data: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        // A large message was spooled by the reader as it came (C-FT9).
        let data = match self.reader.take_spooled() {
            Some(spooled) => spooled.map_err(store::StoreError::from)?,
            None => store::Spooled::from_vec(data),
        };
        let mailbox = match self.mailbox_with(raw, 'i').await {
            Err(ImapError::NoSuchMailbox) => return Err(ImapError::TryCreate),
            other => other?,
        };
        if data.is_empty() {
            return Err(ImapError::Syntax("empty message".into()));
        }
        if data.len() > self.cfg.limits.max_append as u64 {
            return Err(ImapError::TooBig);
        }
        let flag_list: Vec<String> = flag_list
            .into_iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        self.check_quota(mailbox.account, data.len(), 1).await?;
        let date = date.unwrap_or_else(message::date::unix_now);
        let uid = self
            .store()
            .append(mailbox.id, data, flag_list, date)
            .await?;
        if self.selected().is_ok_and(|s| s.mailbox.id == mailbox.id) {
            self.sync(out, true).await?;
        }
        Ok(format!(
            "[APPENDUID {} {uid}] APPEND completed",
            mailbox.uid_validity
        ))
    }
}

/// Every mailbox, and every parent name that exists only as a prefix, sorted.
fn list_entries(boxes: &[MailboxRecord]) -> Vec<Entry<'_>> {
    let mut names: std::collections::BTreeMap<String, Option<&MailboxRecord>> =
        std::collections::BTreeMap::new();
    for m in boxes {
        names.insert(m.name.clone(), Some(m));
        let mut prefix = m.name.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            names.entry(parent.to_string()).or_insert(None);
            prefix = parent;
        }
    }
    let all: Vec<String> = names.keys().cloned().collect();
    names
        .into_iter()
        .map(|(name, mailbox)| {
            let child_prefix = format!("{name}/");
            let has_children = all.iter().any(|n| n.starts_with(&child_prefix));
            Entry {
                name,
                mailbox,
                has_children,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "a/b/c"));
        assert!(pattern_matches("%", "Sent"));
        assert!(!pattern_matches("%", "a/b"));
        assert!(pattern_matches("a/%", "a/b"));
        assert!(!pattern_matches("a/%", "a/b/c"));
        assert!(pattern_matches("a*c", "a/b/c"));
        assert!(pattern_matches("INBOX", "INBOX"));
        assert!(!pattern_matches("INBOX", "INBOX/x"));
        assert!(pattern_matches("%/%", "a/b"));
        assert!(pattern_matches("*/%", "a/b/c"));
        assert!(!pattern_matches("%/%", "a/b/c"));
        // Pathological patterns stay fast.
        let long = "a".repeat(200);
        assert!(!pattern_matches(&"*a".repeat(50), &format!("{long}b")));
    }
}
