//! What a local delivery adds to the delivery history (`store::history`):
//! for each local recipient, the mailbox its copy was filed into (or that
//! its Sieve script discarded or rejected it), and for each address the
//! queue took, the queue id.

use std::collections::HashMap;

use store::{AccountId, Folder, HistoryEvent, HistoryKind, NewMessage, Stored};

use crate::Envelope;
use crate::filter::Run;

/// Of each message about to be stored: its copies and the addresses it is
/// queued for.
pub(crate) struct Planned(Vec<PlannedMessage>);

struct PlannedMessage {
    /// (account, mailbox) of each copy.
    copies: Vec<(AccountId, String)>,
    queued: Vec<String>,
}

impl Planned {
    pub fn of(messages: &[NewMessage]) -> Planned {
        Planned(
            messages
                .iter()
                .map(|m| {
                    let copies = m
                        .deliveries
                        .iter()
                        .map(|d| (d.account, folder_name(&d.folder)))
                        .collect();
                    let queued = m
                        .queue
                        .iter()
                        .flat_map(|q| q.recipients.iter().map(|r| r.address.clone()))
                        .collect();
                    PlannedMessage { copies, queued }
                })
                .collect(),
        )
    }
}

fn folder_name(folder: &Folder) -> String {
    match folder {
        Folder::Inbox => "INBOX".into(),
        Folder::SpecialUse(u) => format!("the {u} mailbox"),
        Folder::Named(n) | Folder::Create(n) => n.clone(),
    }
}

/// The events of a delivery once `stored` (one entry per planned message).
pub(crate) fn events(
    envelope: &Envelope,
    runs: &[Run],
    planned: &Planned,
    stored: &[Stored],
    now: i64,
) -> Vec<HistoryEvent> {
    let key = &envelope.history;
    let address: HashMap<AccountId, &str> = envelope
        .recipients
        .iter()
        .flat_map(|r| &r.local)
        .map(|t| (t.account, t.address.as_str()))
        .collect();
    let mut events = Vec::new();
    let mut filed: Vec<AccountId> = Vec::new();
    for (message, stored) in planned.0.iter().zip(stored) {
        for (account, folder) in &message.copies {
            filed.push(*account);
            let to = address.get(account).copied();
            events.push(HistoryEvent::of(
                key,
                now,
                HistoryKind::Filed,
                to,
                format!("into {folder}"),
            ));
        }
        for rcpt in &message.queued {
            let mut e = HistoryEvent::of(key, now, HistoryKind::Queued, Some(rcpt), "queued");
            e.queue_id = stored.queue_id.or(key.queue_id);
            events.push(e);
        }
    }
    for run in runs {
        let to = Some(run.target.address.as_str());
        if let Some(reason) = run.rejection() {
            let detail = format!("rejected by the account's Sieve script: {reason}");
            events.push(HistoryEvent::of(key, now, HistoryKind::Filed, to, detail));
        } else if !filed.contains(&run.target.account) && !run.redirects() {
            let detail = "discarded by the account's Sieve script";
            events.push(HistoryEvent::of(key, now, HistoryKind::Filed, to, detail));
        }
    }
    events
}
