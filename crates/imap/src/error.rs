//! Every way an IMAP command can fail, and the one mapping to the tagged (or
//! BYE) response with its response code (RFC 9051 §7.1, RFC 5530).

use store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapError {
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("command not allowed in this state")]
    WrongState,
    #[error("line too long")]
    LineTooLong,
    #[error("literal too large")]
    LiteralTooLarge,
    #[error("cleartext login is disabled")]
    PrivacyRequired,
    #[error("authentication failed")]
    AuthFailed,
    #[error("authentication cancelled")]
    AuthCancelled,
    #[error("unsupported authentication mechanism")]
    UnknownMechanism,
    #[error("too many authentication failures")]
    AuthBlocked,
    #[error("temporary authentication failure")]
    AuthTemporary,
    #[error("no such mailbox")]
    NoSuchMailbox,
    #[error("mailbox exists")]
    MailboxExists,
    #[error("mailbox does not exist; create it first")]
    TryCreate,
    #[error("not allowed: {0}")]
    Cannot(&'static str),
    /// RFC 3516 §4.3: BINARY of a part whose encoding is not known.
    #[error("unknown Content-Transfer-Encoding")]
    UnknownCte,
    #[error("bad mailbox name")]
    BadMailboxName,
    #[error("mailbox is read-only")]
    ReadOnly,
    #[error("message too big")]
    TooBig,
    #[error("invalid sequence set")]
    BadSequence,
    #[error("unsupported charset")]
    BadCharset,
    #[error("TLS already active")]
    AlreadyTls,
    #[error("STARTTLS not available")]
    NoTls,
    #[error("too many errors")]
    TooManyErrors,
    #[error("too many sessions for this user from this address")]
    TooManySessions,
    #[error("the shared namespace is its owners'")]
    SharedNamespace,
    #[error("unsupported NOTIFY event")]
    BadEvent(&'static str),
    #[error("over quota")]
    OverQuota,
    #[error("the right {0} is missing")]
    NoRight(char),
    #[error("no such quota root")]
    NoSuchQuotaRoot,
    #[error("quotas are set by the administrator")]
    QuotaReadOnly,
    #[error("compression already active")]
    CompressionActive,
    #[error("metadata: {0}")]
    Metadata(String),
    #[error("store: {0}")]
    Store(StoreError),
}

/// How a failure is answered.
pub struct Failure {
    /// "NO", "BAD" or "BYE".
    pub status: &'static str,
    pub text: String,
}

impl ImapError {
    pub fn failure(&self) -> Failure {
        use ImapError::*;
        let (status, text): (&'static str, String) = match self {
            Syntax(why) => ("BAD", format!("Syntax error: {why}")),
            WrongState => ("BAD", "Command not allowed in this state".into()),
            LineTooLong => ("BAD", "Line too long".into()),
            LiteralTooLarge => ("NO", "[TOOBIG] Literal too large".into()),
            PrivacyRequired => (
                "NO",
                "[PRIVACYREQUIRED] Use STARTTLS or port 993 before logging in".into(),
            ),
            AuthFailed => ("NO", "[AUTHENTICATIONFAILED] Authentication failed".into()),
            AuthCancelled => ("BAD", "Authentication cancelled".into()),
            UnknownMechanism => ("NO", "Unsupported authentication mechanism".into()),
            AuthBlocked => (
                "BYE",
                "[UNAVAILABLE] Too many authentication failures; try again later".into(),
            ),
            AuthTemporary => (
                "NO",
                "[UNAVAILABLE] Temporary authentication failure".into(),
            ),
            NoSuchMailbox => ("NO", "[NONEXISTENT] No such mailbox".into()),
            MailboxExists => ("NO", "[ALREADYEXISTS] Mailbox already exists".into()),
            TryCreate => ("NO", "[TRYCREATE] No such mailbox".into()),
            Cannot(why) => ("NO", format!("[CANNOT] {why}")),
            UnknownCte => (
                "NO",
                "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding".into(),
            ),
            BadMailboxName => ("NO", "[CANNOT] Invalid mailbox name".into()),
            ReadOnly => ("NO", "[READ-ONLY] Mailbox is read-only".into()),
            TooBig => ("NO", "[TOOBIG] Message too big".into()),
            BadSequence => ("BAD", "Invalid sequence set".into()),
            BadCharset => (
                "NO",
                "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset".into(),
            ),
            AlreadyTls => ("BAD", "TLS already active".into()),
            NoTls => ("BAD", "STARTTLS not available".into()),
            TooManyErrors => ("BYE", "Too many errors".into()),
            TooManySessions => (
                "NO",
                "[LIMIT] Too many sessions for this user from this address".into(),
            ),
            NoRight(right) => (
                "NO",
                format!("[NOPERM] You lack the right {right:?} on this mailbox"),
            ),
            SharedNamespace => (
                "NO",
                "[NOPERM] Mailboxes under Shared/ are managed by their owners".into(),
            ),
            BadEvent(supported) => ("NO", format!("[BADEVENT ({supported})] Unsupported event")),
            OverQuota => (
                "NO",
                "[OVERQUOTA] Over quota: delete some mail first".into(),
            ),
            NoSuchQuotaRoot => ("NO", "[NONEXISTENT] No such quota root".into()),
            QuotaReadOnly => ("NO", "[NOPERM] Quotas are set by the administrator".into()),
            CompressionActive => ("NO", "[COMPRESSIONACTIVE] Already compressing".into()),
            Metadata(code) => ("NO", format!("[METADATA {code}] Refused")),
            Store(StoreError::Full) => ("NO", "[OVERQUOTA] Insufficient storage".into()),
            Store(StoreError::NotFound(_)) => ("NO", "[NONEXISTENT] No such mailbox".into()),
            Store(StoreError::Duplicate(_)) => ("NO", "[ALREADYEXISTS] Already exists".into()),
            Store(_) => ("NO", "[UNAVAILABLE] Temporary failure; try again".into()),
        };
        Failure { status, text }
    }
}

impl From<StoreError> for ImapError {
    fn from(e: StoreError) -> Self {
        ImapError::Store(e)
    }
}
