//! NOTIFY (RFC 5465): what a client watching several mailboxes is told
//! without asking, at any time, not only in IDLE.
//!
//! - The selected mailbox (`SELECTED`): new messages (EXISTS, and the
//!   FETCH items the client named), expunges and flag changes as they are
//!   committed, the same responses IDLE gives. `SELECTED-DELAYED` keeps
//!   them for IDLE and the next command.
//! - Other mailboxes (`INBOXES`, `PERSONAL`, `SUBSCRIBED`, `SUBTREE`,
//!   `MAILBOXES`): a STATUS response when their messages or flags change
//!   (§5.2, §5.3, §5.1); LIST responses when one is created, deleted or
//!   renamed (`MailboxName`) or (un)subscribed (`SubscriptionChange`);
//!   METADATA responses naming the entries that changed
//!   (`MailboxMetadataChange`, `ServerMetadataChange`).
//!
//! Content changes come from the store's change feed (every process
//! writer). Name, subscription and annotation changes are announced by
//! the IMAP sessions of this process that make them ([`MailboxEvents`]):
//! a folder Sieve creates at delivery shows up in the next LIST.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use store::{AccountId, MailboxId, MailboxRecord};
use tokio::sync::broadcast;

use super::{ImapSession, Outcome, SessionState};
use crate::error::ImapError;
use crate::parse::{FetchItem, NotifyEvent, NotifyFilter, NotifyGroup, SequenceSet};
use crate::response;

/// What a session changed that others of the same user may want to hear.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// Created (`old` None, `exists`), renamed from `old`, or deleted.
    Name {
        name: String,
        old: Option<String>,
        exists: bool,
    },
    Subscription {
        name: String,
        subscribed: bool,
    },
    /// Entries changed on a mailbox, or (None) on the server.
    Metadata {
        mailbox: Option<String>,
        entries: Vec<String>,
    },
}

#[derive(Debug, Clone)]
pub struct MailboxEvent {
    /// The session that made the change (it is not told again).
    session: u64,
    account: AccountId,
    kind: EventKind,
}

/// The in-process channel of [`MailboxEvent`]s, shared by every session.
pub struct MailboxEvents {
    tx: broadcast::Sender<MailboxEvent>,
    next_session: AtomicU64,
}

impl Default for MailboxEvents {
    fn default() -> Self {
        MailboxEvents {
            tx: broadcast::channel(1024).0,
            next_session: AtomicU64::new(1),
        }
    }
}

impl MailboxEvents {
    pub fn session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}

/// The events one filter asks for.
#[derive(Debug, Default, Clone, Copy)]
struct Wants {
    messages: bool,
    flags: bool,
    names: bool,
    subscriptions: bool,
    metadata: bool,
    server_metadata: bool,
}

/// What woke the session.
enum Pending {
    Mailbox(MailboxId),
    Event(MailboxEvent),
}

pub(super) struct Notify {
    /// For the selected mailbox: the FETCH items for new messages, and
    /// whether news waits for IDLE or a command (SELECTED-DELAYED).
    selected: Option<(Vec<FetchItem>, bool)>,
    groups: Vec<(NotifyFilter, Wants)>,
    events: broadcast::Receiver<MailboxEvent>,
    pending: Vec<Pending>,
    /// This user's mailboxes (own and shared), by id.
    known: HashMap<MailboxId, MailboxRecord>,
}

/// The events this server can report.
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange";

fn wants_of(events: &[NotifyEvent]) -> Result<Wants, ImapError> {
    let mut w = Wants::default();
    let mut new = false;
    let mut expunge = false;
    for e in events {
        match e {
            NotifyEvent::MessageNew(_) => new = true,
            NotifyEvent::MessageExpunge => expunge = true,
            NotifyEvent::FlagChange => w.flags = true,
            NotifyEvent::MailboxName => w.names = true,
            NotifyEvent::SubscriptionChange => w.subscriptions = true,
            NotifyEvent::MailboxMetadataChange => w.metadata = true,
            NotifyEvent::ServerMetadataChange => w.server_metadata = true,
            NotifyEvent::AnnotationChange | NotifyEvent::Other(_) => {
                return Err(ImapError::BadEvent(SUPPORTED));
            }
        }
    }
    // §5: MessageNew and MessageExpunge go together; FlagChange needs both.
    if new != expunge || (w.flags && !new) {
        return Err(ImapError::Syntax(
            "MessageNew and MessageExpunge go together, and FlagChange needs them (RFC 5465 §5)"
                .into(),
        ));
    }
    w.messages = new;
    Ok(w)
}

fn under(name: &str, root: &str) -> bool {
    name == root || name.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

impl ImapSession {
    pub(super) async fn notify(
        &mut self,
        arg: Option<(bool, Vec<NotifyGroup>)>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let Some((status, groups)) = arg else {
            self.notify = None;
            if !matches!(self.state, SessionState::Selected(..)) {
                self.changes = None;
            }
            return Ok("NOTIFY completed".into());
        };
        let mut selected = None;
        let mut others = Vec::new();
        for g in groups {
            let wants = wants_of(&g.events)?;
            let fetch = g.events.iter().find_map(|e| match e {
                NotifyEvent::MessageNew(items) => Some(items.clone()),
                _ => None,
            });
            match g.filter {
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed => {
                    let delayed = g.filter == NotifyFilter::SelectedDelayed;
                    selected = wants.messages.then(|| (fetch.unwrap_or_default(), delayed));
                }
                _ if fetch.is_some_and(|f| !f.is_empty()) => {
                    return Err(ImapError::Syntax(
                        "FETCH items only for the selected mailbox (RFC 5465 §5.2)".into(),
                    ));
                }
                NotifyFilter::Subtree(names) => {
                    let names = self.internal_names(&names)?;
                    others.push((NotifyFilter::Subtree(names), wants));
                }
                NotifyFilter::Mailboxes(names) => {
                    let names = self.internal_names(&names)?;
                    others.push((NotifyFilter::Mailboxes(names), wants));
                }
                filter => others.push((filter, wants)),
            }
        }
        if self.changes.is_none() {
            self.changes = Some(self.store().watch());
        }
        self.notify = Some(Box::new(Notify {
            selected,
            groups: others,
            events: self.services.events.tx.subscribe(),
            pending: Vec::new(),
            known: HashMap::new(),
        }));
        self.refresh_known().await?;
        if status {
            // §3.1 STATUS: where messages are watched, how things stand now.
            let selected_id = self.selected().ok().map(|s| s.mailbox.id);
            let watched: Vec<MailboxRecord> = self
                .notify
                .as_ref()
                .map(|n| n.known.values().cloned().collect())
                .unwrap_or_default();
            let mut watched: Vec<MailboxRecord> = watched
                .into_iter()
                .filter(|m| Some(m.id) != selected_id)
                .filter(|m| self.wants_for(m).is_some_and(|w| w.messages))
                .collect();
            watched.sort_by(|a, b| a.name.cmp(&b.name));
            for m in watched {
                self.notify_status(&m, out).await?;
            }
        }
        Ok("NOTIFY completed".into())
    }

    fn internal_names(&self, raw: &[String]) -> Result<Vec<String>, ImapError> {
        raw.iter().map(|n| self.mailbox_name(n)).collect()
    }

    /// Read again which mailboxes this user has.
    async fn refresh_known(&mut self) -> Result<(), ImapError> {
        let account = self.account_id()?;
        let mut known: HashMap<MailboxId, MailboxRecord> = self
            .store()
            .mailboxes(account)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        for (m, _) in self.shared_mailboxes().await? {
            known.insert(m.id, m);
        }
        if let Some(n) = self.notify.as_mut() {
            n.known = known;
        }
        Ok(())
    }

    /// The events the first filter that covers this mailbox asks for.
    fn wants_for(&self, m: &MailboxRecord) -> Option<Wants> {
        let own = self.account_id().is_ok_and(|a| a == m.account);
        self.notify.as_ref()?.groups.iter().find_map(|(f, w)| {
            let covers = match f {
                NotifyFilter::Inboxes => own && m.name == "INBOX",
                NotifyFilter::Personal => own,
                NotifyFilter::Subscribed => m.subscribed,
                NotifyFilter::Subtree(roots) => roots.iter().any(|r| under(&m.name, r)),
                NotifyFilter::Mailboxes(names) => names.contains(&m.name),
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed => false,
            };
            covers.then_some(*w)
        })
    }

    /// `* STATUS name (MESSAGES UIDNEXT UIDVALIDITY UNSEEN [HIGHESTMODSEQ])`.
    async fn notify_status(&self, m: &MailboxRecord, out: &mut Vec<u8>) -> Result<(), ImapError> {
        let fresh = match self.store().mailbox(m.account, store_name(m)).await? {
            Some(f) => MailboxRecord {
                name: m.name.clone(),
                ..f
            },
            None => return Ok(()),
        };
        let mut items: Vec<String> = ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"]
            .map(String::from)
            .to_vec();
        if self.condstore {
            items.push("HIGHESTMODSEQ".into());
        }
        self.status_line(&fresh, &items, out).await
    }

    /// Tell the user's other sessions what this one changed.
    pub(super) fn announce(&self, kind: EventKind) {
        if let Some(account) = self.state.account() {
            let _ = self.services.events.tx.send(MailboxEvent {
                session: self.session_id,
                account: account.id,
                kind,
            });
        }
    }

    /// Wait for what NOTIFY asked to hear about (the selected mailbox is
    /// `idle.rs`'s): returns with it queued.
    pub(super) async fn wait_for_notify(&mut self, selected: Option<MailboxId>) -> bool {
        let me = self.state.account().map(|a| a.id);
        let session = self.session_id;
        let (Some(changes), Some(notify)) = (self.changes.as_mut(), self.notify.as_mut()) else {
            return std::future::pending().await;
        };
        loop {
            tokio::select! {
                id = changes.recv() => match id {
                    Ok(id) if Some(id) == selected || id == store::feed::EVERY_MAILBOX => return true,
                    Ok(id) => {
                        notify.pending.push(Pending::Mailbox(id));
                        return false;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
                },
                e = notify.events.recv() => match e {
                    Ok(e) if e.session != session && Some(e.account) == me => {
                        notify.pending.push(Pending::Event(e));
                        return false;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
                },
            }
        }
    }

    /// Whether NOTIFY wants news of the selected mailbox now (not delayed).
    pub(super) fn notify_selected_now(&self) -> bool {
        self.notify
            .as_ref()
            .and_then(|n| n.selected.as_ref())
            .is_some_and(|(_, delayed)| !delayed)
    }

    /// After the selected mailbox was brought up to date: FETCH what the
    /// client asked for each new message (§5.2).
    pub(super) async fn notify_new_messages(&mut self, before: u32, out: &mut Vec<u8>) {
        let Some(items) = self
            .notify
            .as_ref()
            .and_then(|n| n.selected.as_ref())
            .map(|(items, _)| items.clone())
            .filter(|i| !i.is_empty())
        else {
            return;
        };
        let new: Vec<u32> = match self.selected() {
            Ok(s) => s
                .messages
                .iter()
                .map(|k| k.uid)
                .filter(|&u| u > before)
                .collect(),
            Err(_) => return,
        };
        if !new.is_empty()
            && let Err(e) = self.fetch_now(&SequenceSet::of(&new), items, out).await
        {
            tracing::warn!(error = %e, "NOTIFY FETCH failed");
        }
    }

    /// Answer what is queued for other mailboxes.
    pub(super) async fn notify_pending(&mut self, out: &mut Vec<u8>) {
        let pending = match self.notify.as_mut() {
            Some(n) => std::mem::take(&mut n.pending),
            None => return,
        };
        for p in pending {
            let result = match p {
                Pending::Mailbox(id) => self.mailbox_changed(id, out).await,
                Pending::Event(e) => {
                    self.mailbox_event(e.kind, out).await;
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "NOTIFY update failed");
            }
        }
    }

    async fn mailbox_changed(&mut self, id: MailboxId, out: &mut Vec<u8>) -> Result<(), ImapError> {
        if self.selected().is_ok_and(|s| s.mailbox.id == id) {
            // The selected mailbox is told in its own responses, not STATUS.
            return Ok(());
        }
        let known = |s: &Self| s.notify.as_ref().and_then(|n| n.known.get(&id).cloned());
        let mut m = known(self);
        if m.is_none() {
            // A mailbox made since: read the list again (others' are not ours).
            self.refresh_known().await?;
            m = known(self);
        }
        let Some(m) = m else { return Ok(()) };
        if self.wants_for(&m).is_some_and(|w| w.messages || w.flags) {
            self.notify_status(&m, out).await?;
        }
        Ok(())
    }

    async fn mailbox_event(&mut self, kind: EventKind, out: &mut Vec<u8>) {
        let _ = self.refresh_known().await;
        let record = |name: &str| -> MailboxRecord {
            let found = self
                .notify
                .as_ref()
                .and_then(|n| n.known.values().find(|m| m.name == name).cloned());
            found.unwrap_or(MailboxRecord {
                id: MailboxId::default(),
                account: self.account_id().unwrap_or_default(),
                name: name.to_string(),
                special_use: None,
                uid_validity: 0,
                uid_next: 0,
                highest_modseq: 0,
                subscribed: false,
                first_recent_uid: 0,
            })
        };
        let utf8 = self.utf8_names();
        match kind {
            EventKind::Name { name, old, exists } => {
                let m = record(&name);
                let mut w = self.wants_for(&m);
                if let Some(o) = &old {
                    w = w.or_else(|| self.wants_for(&record(o)));
                }
                if !w.is_some_and(|w| w.names) {
                    return;
                }
                let attrs = if exists { "" } else { "\\NonExistent" };
                let mut line = format!("* LIST ({attrs}) \"/\" ").into_bytes();
                response::astring(&mut line, &self.display_name(&name), utf8);
                if let Some(o) = old {
                    line.extend_from_slice(b" (\"OLDNAME\" (");
                    response::astring(&mut line, &self.display_name(&o), utf8);
                    line.extend_from_slice(b"))");
                }
                line.extend_from_slice(b"\r\n");
                out.extend_from_slice(&line);
            }
            EventKind::Subscription { name, subscribed } => {
                if !self
                    .wants_for(&record(&name))
                    .is_some_and(|w| w.subscriptions)
                {
                    return;
                }
                let attrs = if subscribed { "\\Subscribed" } else { "" };
                let mut line = format!("* LIST ({attrs}) \"/\" ").into_bytes();
                response::astring(&mut line, &self.display_name(&name), utf8);
                line.extend_from_slice(b"\r\n");
                out.extend_from_slice(&line);
            }
            EventKind::Metadata { mailbox, entries } => {
                let wanted = match &mailbox {
                    Some(name) => self.wants_for(&record(name)).is_some_and(|w| w.metadata),
                    None => self
                        .notify
                        .as_ref()
                        .is_some_and(|n| n.groups.iter().any(|(_, w)| w.server_metadata)),
                };
                if !wanted {
                    return;
                }
                let mut line = b"* METADATA ".to_vec();
                let name = mailbox.map(|n| self.display_name(&n)).unwrap_or_default();
                response::astring(&mut line, &name, utf8);
                line.extend_from_slice(b" (");
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 {
                        line.push(b' ');
                    }
                    response::astring(&mut line, e, true);
                }
                line.extend_from_slice(b")\r\n");
                out.extend_from_slice(&line);
            }
        }
    }
}

/// The name the owner's store knows a mailbox by.
fn store_name(m: &MailboxRecord) -> &str {
    match m.name.strip_prefix("Shared/") {
        Some(rest) => rest.split_once('/').map(|(_, n)| n).unwrap_or(rest),
        None => &m.name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_that_go_together() {
        use NotifyEvent::*;
        assert!(wants_of(&[MessageNew(vec![]), MessageExpunge]).is_ok());
        assert!(wants_of(&[MessageNew(vec![])]).is_err());
        assert!(wants_of(&[FlagChange]).is_err());
        assert!(wants_of(&[MailboxName, SubscriptionChange]).is_ok());
        assert!(matches!(
            wants_of(&[AnnotationChange]),
            Err(ImapError::BadEvent(_))
        ));
        assert!(under("Lists/rust", "Lists"));
        assert!(!under("Listsx", "Lists"));
    }
}
