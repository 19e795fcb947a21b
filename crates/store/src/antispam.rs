//! What the spam defences keep: greylisting triplets and client networks
//! (RFC 6647), the Bayesian token counts per owner (0 is the shared table,
//! otherwise an account), the messages each owner trained, the sending
//! history of each account (rate limits, the compromised-account hold).
//!
//! A contract of its own, separate from mail and queue: the [`crate::Store`]
//! trait requires it, and every backend implements both.

use crate::error::Result;

/// The owner of the shared Bayes tables.
pub const SHARED: i64 = 0;

/// One greylisting triplet as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreylistEntry {
    /// `network|sender|recipient`.
    pub key: String,
    pub first_seen: i64,
    pub last_seen: i64,
    /// When a retry after the delay let it through (then it passes directly).
    pub passed_at: Option<i64>,
    pub attempts: u32,
}

/// One training of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Training {
    /// The tables to train (the account's and [`SHARED`]).
    pub owners: Vec<i64>,
    /// Identifies the message (a digest of its content), so that training
    /// twice is a no-op and training the other way first undoes the first.
    pub digest: Vec<u8>,
    pub spam: bool,
    /// The message's token hashes (each once).
    pub tokens: Vec<u64>,
    pub now: i64,
}

/// What training did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trained {
    New,
    /// It was trained the other way before: that was undone.
    Reversed,
    /// Already trained this way: nothing changed.
    Unchanged,
}

/// An account's sending over the last hour and its usual pace.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SendingStats {
    pub messages_last_hour: u64,
    pub recipients_last_hour: u64,
    pub new_domains_last_hour: u64,
    pub bounces_last_hour: u64,
    pub spam_last_hour: u64,
    /// Messages an hour, averaged over the hours of the last 14 days that
    /// had any.
    pub usual_per_hour: f64,
}

/// One submission to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub account: String,
    pub now: i64,
    pub recipients: u64,
    /// Recipient domains (those never sent to before count as new).
    pub domains: Vec<String>,
    /// Its content scored as spam.
    pub spam: bool,
}

#[async_trait::async_trait]
pub trait AntispamStore: Send + Sync {
    async fn greylist_entry(&self, key: &str) -> Result<Option<GreylistEntry>>;
    async fn greylist_put(&self, entry: GreylistEntry) -> Result<()>;
    /// How many triplets from this client network passed, and when the
    /// last did.
    async fn greylist_client(&self, network: &str) -> Result<(u32, i64)>;
    async fn greylist_client_passed(&self, network: &str, now: i64) -> Result<()>;
    /// Every triplet, newest first, at most `limit`.
    async fn greylist_list(&self, limit: usize) -> Result<Vec<GreylistEntry>>;
    /// Forget triplets last seen before `before`.
    async fn greylist_expire(&self, before: i64) -> Result<usize>;

    /// (spam, ham) counts of these tokens for one owner; absent tokens are absent.
    async fn spam_tokens(&self, owner: i64, tokens: Vec<u64>) -> Result<Vec<(u64, u32, u32)>>;
    /// How many spam and ham messages an owner's table learned from.
    async fn spam_totals(&self, owner: i64) -> Result<(u64, u64)>;
    async fn spam_train(&self, training: Training) -> Result<Trained>;
    /// Keep at most `max` tokens in an owner's table, dropping the rarest
    /// and oldest first; how many were dropped.
    async fn spam_prune(&self, owner: i64, max: usize) -> Result<usize>;

    /// Stop (true) or resume an account's outgoing mail: its queued
    /// messages are held or released with it; how many recipients changed.
    async fn set_held(&self, account: &str, held: bool, now: i64) -> Result<usize>;
    async fn is_held(&self, account: &str) -> Result<bool>;
    async fn record_sent(&self, sent: Sent) -> Result<()>;
    async fn record_bounce(&self, account: &str, now: i64) -> Result<()>;
    async fn sending_stats(&self, account: &str, now: i64) -> Result<SendingStats>;
}

const HOUR: i64 = 3600;
/// The window the usual sending pace is averaged over.
const USUAL_WINDOW: i64 = 14 * 24 * HOUR;

/// A token hash as a backend keeps it: the same 64 bits as a signed integer.
pub(crate) fn to_i64(h: u64) -> i64 {
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// A trained message's token hashes as kept (to undo them exactly later).
pub(crate) fn pack(tokens: &[u64]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
}

pub(crate) fn unpack(blob: &[u8]) -> Vec<u64> {
    blob.chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect()
}

/// The hour a sending count goes in.
pub(crate) fn hour_of(now: i64) -> i64 {
    now / HOUR
}

/// The first hour the usual pace is read from.
pub(crate) fn usual_since(now: i64) -> i64 {
    (now - USUAL_WINDOW) / HOUR
}

/// One hour of an account's sending: (hour, messages, recipients, new
/// domains, bounces, spam).
pub(crate) type SendingHour = (i64, i64, i64, i64, i64, i64);

/// An account's pace from its hours since [`usual_since`]: the last 60
/// minutes (this hour, and the previous one weighted by how much of it is
/// still inside them), and the usual messages per hour before.
pub(crate) fn sending_stats(rows: Vec<SendingHour>, now: i64) -> SendingStats {
    let hour = hour_of(now);
    let part = 1.0 - (now % HOUR) as f64 / HOUR as f64;
    let mut s = SendingStats::default();
    let (mut past_messages, mut past_hours) = (0i64, 0i64);
    for (h, m, r, d, b, sp) in rows {
        let weight = if h == hour {
            1.0
        } else if h == hour - 1 {
            part
        } else {
            past_messages += m;
            past_hours += 1;
            0.0
        };
        let w = |v: i64| (v as f64 * weight).round() as u64;
        s.messages_last_hour += w(m);
        s.recipients_last_hour += w(r);
        s.new_domains_last_hour += w(d);
        s.bounces_last_hour += w(b);
        s.spam_last_hour += w(sp);
    }
    s.usual_per_hour = if past_hours > 0 {
        past_messages as f64 / past_hours as f64
    } else {
        0.0
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip() {
        assert_eq!(to_i64(u64::MAX), -1);
        assert_eq!(unpack(&pack(&[1, u64::MAX, 42])), [1, u64::MAX, 42]);
    }
}
