//! The records the store keeps, as the rest of Tern sees them.

pub use crate::ids::{AccountId, DomainId, MailboxId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    pub id: DomainId,
    pub name: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: AccountId,
    /// Canonical form: local part lowercased, `@`, domain.
    pub address: String,
    pub created: i64,
}

/// An account's limits (RFC 9208 STORAGE and MESSAGE); None: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Octets of all its messages.
    pub storage: Option<u64>,
    pub messages: Option<u64>,
}

/// An account's quota and what it uses now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    pub quota: Quota,
    pub storage: u64,
    pub messages: u64,
}

impl QuotaUsage {
    /// Whether adding `count` messages of `octets` in all would pass a limit.
    pub fn exceeded_by(&self, octets: u64, count: u64) -> bool {
        self.quota
            .storage
            .is_some_and(|l| self.storage + octets > l)
            || self
                .quota
                .messages
                .is_some_and(|l| self.messages + count > l)
    }
}

/// What authentication needs of an account. The strings are opaque to the store:
/// the `auth` crate writes and reads them (an Argon2id PHC string, SCRAM keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub password_hash: String,
    pub scram_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCredentials {
    pub account: AccountRecord,
    pub credentials: Credentials,
}

/// An alias: `address` (or `@domain` for a catch-all) delivers to every target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    pub address: String,
    pub targets: Vec<String>,
}

/// What an address is to this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressKind {
    Account(AccountRecord),
    Alias(Vec<String>),
    /// The domain is ours but nobody has this address.
    Unknown,
    /// Not one of our domains.
    NotLocal,
}

/// The special-use mailboxes every account has (RFC 6154), created with it.
pub const SPECIAL_MAILBOXES: [(&str, Option<&str>); 6] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Junk", Some("\\Junk")),
    ("Trash", Some("\\Trash")),
    ("Archive", Some("\\Archive")),
];

/// Which mailbox of an account a delivery goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Folder {
    Inbox,
    /// By special use, e.g. `\Junk` (falls back to INBOX if the account has none).
    SpecialUse(String),
    /// By name (falls back to INBOX if it does not exist).
    Named(String),
    /// By name, created if it does not exist (Sieve `fileinto :create`).
    Create(String),
}

/// One local recipient's copy of a message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub account: AccountId,
    pub folder: Folder,
    /// Per-recipient header lines put before the shared message (Return-Path, Delivered-To).
    pub prefix: Vec<u8>,
    pub flags: Vec<String>,
}

/// One remote recipient waiting in the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecipient {
    pub address: String,
    /// RFC 3461 ORCPT, as received (`rfc822;addr` in xtext).
    pub orcpt: Option<String>,
    /// RFC 3461 NOTIFY, as received (`SUCCESS,FAILURE`, `NEVER`).
    pub notify: Option<String>,
}

/// A message entering the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInsert {
    /// The reverse-path, empty for `<>`.
    pub sender: String,
    pub recipients: Vec<QueueRecipient>,
    /// RFC 3461 ENVID and RET, as received.
    pub envid: Option<String>,
    pub ret: Option<String>,
    /// The message needs SMTPUTF8 at the next hop (RFC 6531).
    pub smtputf8: bool,
    /// BODY=8BITMIME was declared (RFC 6152).
    pub eight_bit: bool,
    pub options: QueueOptions,
    /// The account that submitted it: its mail is held while the account is.
    pub submitter: Option<String>,
}

/// What the sender asked of the queue beyond delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueOptions {
    /// RFC 4865 FUTURERELEASE: not before this Unix time.
    pub release_at: Option<i64>,
    /// RFC 2852 DELIVERBY.
    pub deliver_by: Option<DeliverBy>,
    /// RFC 6710 MT-PRIORITY, -9 (lowest) to 9; due messages go out
    /// highest priority first.
    pub priority: i8,
    /// RFC 8689 REQUIRETLS: only over TLS the next hop's DNSSEC (DANE) or
    /// MTA-STS policy authenticates, to a server that offers REQUIRETLS.
    pub require_tls: bool,
}

/// RFC 2852 §4: the deadline and what to do when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverBy {
    /// Unix time.
    pub deadline: i64,
    /// `R`: fail (return) the message then; `N`: tell the sender and go on.
    pub returns: bool,
    /// `T`: report every hop's success too.
    pub trace: bool,
}

/// A message accepted by SMTP (or made by Tern): stored once, linked into each local
/// recipient's mailbox and queued once for the remote ones, in one transaction.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The content, in memory or in the spool (`message::spool`).
    pub data: message::spool::Spooled,
    pub received_at: i64,
    pub deliveries: Vec<Delivery>,
    pub queue: Option<QueueInsert>,
}

/// Where each delivery of a [`NewMessage`] landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub placed: Vec<(MailboxId, u32)>,
    pub queue_id: Option<i64>,
}

/// A DKIM key to add to a domain.
#[derive(Clone, PartialEq, Eq)]
pub struct NewDkimKey {
    pub selector: String,
    /// `rsa-sha256` or `ed25519-sha256` (RFC 6376 §3.3, RFC 8463).
    pub algorithm: String,
    /// RSA: PKCS#1 DER; Ed25519: PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// The `p=` value of the DNS record (base64).
    pub public_key: String,
    /// Unix time from which it signs.
    pub active_from: i64,
}

/// A stored DKIM key.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub domain: String,
    pub key: NewDkimKey,
    pub created: i64,
}

impl std::fmt::Debug for NewDkimKey {
    // The private key stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDkimKey")
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("active_from", &self.active_from)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("key", &self.key)
            .field("created", &self.created)
            .finish()
    }
}

/// A queued message, as `tern queue list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSummary {
    pub id: i64,
    pub sender: String,
    pub created: i64,
    pub size: i64,
    pub recipients: Vec<(String, String)>,
}

/// Mailbox metadata (IMAP SELECT/STATUS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRecord {
    pub id: MailboxId,
    pub account: AccountId,
    pub name: String,
    pub special_use: Option<String>,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    pub subscribed: bool,
    /// Messages from this UID on are \Recent for the next session that
    /// selects the mailbox (RFC 3501 §2.3.2).
    pub first_recent_uid: u32,
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// The outcome of a flag change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagUpdate {
    /// Messages whose flags changed, with their new flags and MODSEQ.
    pub updated: Vec<MessageEntry>,
    /// UIDs left alone because they changed after UNCHANGEDSINCE (RFC 7162 §3.1.3).
    pub conflicts: Vec<u32>,
}

/// What changed in a mailbox since a MODSEQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxChanges {
    pub mailbox: MailboxRecord,
    /// Messages added or changed after the MODSEQ, by UID.
    pub changed: Vec<MessageEntry>,
    /// UIDs expunged after the MODSEQ, ascending.
    pub expunged: Vec<u32>,
}

/// One message in a mailbox (IMAP's view of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEntry {
    pub uid: u32,
    pub size: u64,
    pub internal_date: i64,
    pub modseq: u64,
    pub flags: Vec<String>,
    /// The message content's id: the same in every mailbox it is copied
    /// or moved to (RFC 8474 EMAILID).
    pub email_id: i64,
    /// When it was put in this mailbox (RFC 8514 SAVEDATE).
    pub saved_at: i64,
}

/// A recipient of a queued message, as the queue runner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    pub id: i64,
    pub address: String,
    pub domain: String,
    pub orcpt: Option<String>,
    pub notify: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// The sender has had a delay warning about this recipient.
    pub warned: bool,
}

/// A queued message with the recipients claimed for one delivery run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueJob {
    pub id: i64,
    pub sender: String,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    pub created: i64,
    pub size: u64,
    pub options: QueueOptions,
    pub recipients: Vec<QueuedRecipient>,
}

/// Which queued recipients to claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Every recipient due by this time.
    Due(i64),
    /// The recipients of one message, due or not.
    Message(i64),
}

/// One delivery attempt, as `tern queue show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: i64,
    pub recipients: String,
    pub mx: Option<String>,
    pub ip: Option<String>,
    /// TLS version and cipher, or None for plaintext.
    pub tls: Option<String>,
    pub reply: String,
}

/// What became of a recipient after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientState {
    Delivered,
    /// Try again at this Unix time.
    Deferred(i64),
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    pub id: i64,
    pub state: RecipientState,
    /// RFC 3463 status code, e.g. 5.1.1.
    pub status: String,
    /// The remote's reply or our diagnosis.
    pub reply: String,
    pub remote_mta: Option<String>,
    /// A delay warning went out for this recipient now.
    pub warned: bool,
}

/// The results of one delivery run of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueReport {
    pub queue_id: i64,
    pub attempts: Vec<Attempt>,
    pub outcomes: Vec<RecipientOutcome>,
    /// When the message leaves the queue with a failed recipient, its
    /// content comes along for the report: whole when the sender asked
    /// RET=FULL or it is at most this long, otherwise its first this many
    /// octets (a bounce then returns the header section alone).
    pub return_limit: u64,
}

/// A recipient's final word, for delivery status notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalRecipient {
    pub address: String,
    pub orcpt: Option<String>,
    pub notify: Option<String>,
    pub delivered: bool,
    pub status: String,
    pub reply: String,
    pub remote_mta: Option<String>,
}

/// A queued message every recipient of which is done; it has left the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedMessage {
    pub id: i64,
    pub sender: String,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub created: i64,
    /// The content, or its first [`QueueReport::return_limit`] octets.
    pub content: Vec<u8>,
    /// Octets in the whole message.
    pub size: u64,
    pub recipients: Vec<FinalRecipient>,
}

/// Everything about one queued message (`tern queue show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDetail {
    pub summary: QueueSummary,
    /// (address, state, attempts, next attempt, last reply)
    pub recipients: Vec<(String, String, u32, i64, Option<String>)>,
    pub attempts: Vec<Attempt>,
}

/// One DMARC evaluation to count in the next aggregate report to `domain`.
/// `policy` and `row` are opaque to the store (serialized by the policy
/// crate); evaluations with equal rows are counted together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvaluation {
    pub at: i64,
    /// The domain whose DMARC record asked for reports.
    pub domain: String,
    /// Its `rua=` destinations, comma-separated as published.
    pub rua: String,
    pub policy: String,
    pub row: String,
}

/// The recorded evaluations of one domain, rows counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvaluations {
    pub domain: String,
    /// `rua` and `policy` as last recorded.
    pub rua: String,
    pub policy: String,
    /// Each distinct row with how many evaluations had it.
    pub rows: Vec<(String, u64)>,
    pub first: i64,
    pub last: i64,
}

/// A DMARC aggregate report that another receiver sent us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedReport {
    /// Assigned by the store (0 when new).
    pub id: i64,
    pub kind: ReportKind,
    pub received_at: i64,
    pub org: String,
    pub report_id: String,
    /// The domain the report is about.
    pub domain: String,
    pub begin: i64,
    pub end: i64,
    /// Messages (DMARC) or TLS sessions (TLS-RPT) counted, and those that
    /// failed DMARC or failed to set up TLS.
    pub messages: u64,
    pub failed: u64,
    /// The report as parsed, serialized by the policy crate (empty in listings).
    pub document: Vec<u8>,
}

/// What a received report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// A DMARC aggregate report (RFC 7489 §7.2).
    Dmarc,
    /// A TLS report (RFC 8460): how senders' TLS to our MX went.
    Tls,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Dmarc => "dmarc",
            ReportKind::Tls => "tls",
        }
    }

    pub fn parse(s: &str) -> Option<ReportKind> {
        [ReportKind::Dmarc, ReportKind::Tls]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// What a backup holds (counted in the copy, after its integrity check).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupSummary {
    pub accounts: u64,
    pub mailboxes: u64,
    pub messages: u64,
    pub queued: u64,
    pub bytes: u64,
}
