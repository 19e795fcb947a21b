//! Delivery history: the life of each message as events (accepted or
//! refused at SMTP, delivered to which folder, queued, each outbound
//! attempt with its MX, IP, TLS and reply, delivered, deferred, failed,
//! bounced), kept for a configured period and searched by address,
//! Message-ID, SMTP id or queue id (`tern history`).
//!
//! History is a record of what happened, not mail: events are written with
//! the next group commit and nobody waits for them, so recording never
//! slows a reply; a crash may lose the last few events, never a message.
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use crate::error::Result;

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    /// SMTP refused a recipient or the message, with the reply.
    Refused,
    /// SMTP accepted it (250 after DATA), with the verdicts of the checks.
    Accepted,
    /// What became of a local recipient's copy: the mailbox it was filed
    /// into, or discarded or rejected by the account's Sieve script.
    Filed,
    /// Put in the outbound queue for a recipient.
    Queued,
    /// One outbound delivery attempt: MX, IP, TLS, reply.
    Attempt,
    /// A recipient's copy reached the next hop (or a local mailbox from the queue).
    Delivered,
    /// A recipient will be tried again.
    Deferred,
    /// A recipient's delivery failed for good.
    Failed,
    /// A delivery status notification went to the sender.
    Bounced,
}

impl HistoryKind {
    pub const ALL: [HistoryKind; 9] = [
        HistoryKind::Refused,
        HistoryKind::Accepted,
        HistoryKind::Filed,
        HistoryKind::Queued,
        HistoryKind::Attempt,
        HistoryKind::Delivered,
        HistoryKind::Deferred,
        HistoryKind::Failed,
        HistoryKind::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Accepted => "accepted",
            HistoryKind::Refused => "refused",
            HistoryKind::Filed => "filed",
            HistoryKind::Queued => "queued",
            HistoryKind::Attempt => "attempt",
            HistoryKind::Delivered => "delivered",
            HistoryKind::Deferred => "deferred",
            HistoryKind::Failed => "failed",
            HistoryKind::Bounced => "bounced",
        }
    }

    pub fn parse(s: &str) -> Option<HistoryKind> {
        HistoryKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One event of a message's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// Unix time.
    pub at: i64,
    pub kind: HistoryKind,
    /// The SMTP transaction's id ("queued as ..."), when SMTP took it.
    pub message: Option<String>,
    /// The outbound queue's id of the message, once queued.
    pub queue_id: Option<i64>,
    /// The Message-ID header field's value, when known.
    pub message_id: Option<String>,
    /// The envelope sender, empty for `<>`.
    pub sender: Option<String>,
    /// The recipient (or recipients, for an attempt) the event is about.
    pub recipient: Option<String>,
    /// What to tell an operator: folder, verdicts, MX and reply...
    pub detail: String,
}

/// What links the events of one message: its SMTP id and/or queue id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageKey {
    pub message: Option<String>,
    pub queue_id: Option<i64>,
}

impl HistoryEvent {
    /// An event of the message `key` about `recipient` (None: the whole message).
    pub fn of(
        key: &MessageKey,
        at: i64,
        kind: HistoryKind,
        recipient: Option<&str>,
        detail: impl Into<String>,
    ) -> HistoryEvent {
        HistoryEvent {
            at,
            kind,
            message: key.message.clone(),
            queue_id: key.queue_id,
            message_id: None,
            sender: None,
            recipient: recipient.map(str::to_string),
            detail: detail.into(),
        }
    }

    /// Where the event falls in a message's life, for events of the same
    /// second (refused recipients, accepted, filed, queued, attempted...).
    pub fn stage(&self) -> usize {
        HistoryKind::ALL
            .iter()
            .position(|k| *k == self.kind)
            .unwrap_or(usize::MAX)
    }
}

/// Which messages' histories to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryQuery {
    /// Messages from or to this address (compared without case).
    Address(String),
    /// By Message-ID (with or without its angle brackets).
    MessageId(String),
    /// By SMTP transaction id.
    Message(String),
    /// By outbound queue id.
    Queue(i64),
}

#[async_trait::async_trait]
pub trait HistoryStore: Send + Sync {
    /// Keep these events; written with the next group commit, not waited
    /// for. Dropped (and counted in the log) when the writer is overloaded.
    fn record_history(&self, events: Vec<HistoryEvent>);
    /// Every event of the (at most `limit`, most recent) messages the
    /// query matches, oldest first; the events of one message are linked
    /// by its SMTP id and its queue id.
    async fn history(&self, query: HistoryQuery, limit: usize) -> Result<Vec<HistoryEvent>>;
    /// Forget events older than `before` (Unix time); how many.
    async fn expire_history(&self, before: i64) -> Result<usize>;
}

/// A Message-ID without its angle brackets, as it is kept and searched.
pub(crate) fn bare_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}
