//! Every way an SMTP command can fail, and the one place that turns a failure
//! into a reply (conventions.md §2).

use message::AddressError;
use store::StoreError;

use crate::reply::{Enhanced, Reply};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    #[error("line too long")]
    LineTooLong,
    #[error("line not ended by CRLF")]
    BareLineFeed,
    #[error("unknown command")]
    UnknownCommand,
    #[error("command not implemented")]
    NotImplemented,
    #[error("HTTP request on the SMTP port")]
    HttpRequest,
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    #[error("bad sequence: {0}")]
    BadSequence(&'static str),
    #[error("bad address: {0}")]
    Address(AddressError),
    #[error("unsupported parameter {0}")]
    UnsupportedParameter(String),
    #[error("bad parameter {0}")]
    BadParameter(String),
    #[error("message too big")]
    MessageTooBig,
    #[error("declared chunk larger than any acceptable message")]
    ChunkTooBig,
    #[error("header section too big")]
    HeaderTooBig,
    #[error("too many recipients")]
    TooManyRecipients,
    #[error("relay denied")]
    RelayDenied,
    #[error("unknown user")]
    UnknownUser,
    #[error("alias loop")]
    AliasLoop,
    #[error("mailbox of {0} is over its quota")]
    MailboxFull(String),
    #[error("forged or expired SRS address")]
    BadSrs,
    #[error("not a DMARC aggregate report: {0}")]
    NotAReport(String),
    #[error("authentication required")]
    AuthRequired,
    #[error("STARTTLS required")]
    TlsRequired,
    #[error("already in TLS")]
    AlreadyTls,
    #[error("sender not owned by the authenticated user")]
    SenderNotOwned,
    #[error("From: header not owned by the authenticated user")]
    FromNotOwned,
    #[error("no From: header")]
    NoFrom,
    #[error("unknown SASL mechanism")]
    UnknownMechanism,
    #[error("already authenticated")]
    AlreadyAuthenticated,
    #[error("authentication failed")]
    AuthFailed,
    #[error("authentication cancelled")]
    AuthCancelled,
    #[error("malformed SASL response")]
    AuthMalformed,
    #[error("client blocked after authentication failures")]
    AuthBlocked,
    #[error("temporary authentication failure")]
    AuthTemporary,
    #[error("mail loop")]
    Loop,
    #[error("bare CR or LF in message data")]
    BareLineEnding,
    #[error("text line too long")]
    TextLineTooLong,
    #[error("empty message")]
    EmptyMessage,
    #[error("message data sent before the 354 reply")]
    ImproperPipelining,
    #[error("commands pipelined without PIPELINING")]
    UnnegotiatedPipelining,
    #[error("too many errors")]
    TooManyErrors,
    #[error("timeout")]
    Timeout,
    #[error("shutting down")]
    ShuttingDown,
    #[error("service busy")]
    Busy,
    #[error("store: {0}")]
    Store(StoreError),
    /// The check pipeline objected (sender authentication, spam defence).
    #[error("policy: {0}")]
    Policy(antispam::Objection),
    /// Every recipient's Sieve filter refused the message (RFC 5429 §2.1),
    /// with the script's reason.
    #[error("refused: {0}")]
    Refused(String),
}

impl SmtpError {
    /// The reply for this error, and whether the connection closes after it.
    pub fn reply(&self) -> (Reply, bool) {
        use SmtpError::*;
        let r = |code, e: (u8, u16, u16), text: &'static str| {
            Reply::new(code, Enhanced(e.0, e.1, e.2), text)
        };
        match self {
            LineTooLong => (
                r(500, (5, 5, 2), "Line too long (RFC 5321 §4.5.3.1.4)"),
                false,
            ),
            BareLineFeed => (
                r(500, (5, 5, 2), "Line must end with CRLF (RFC 5321 §2.3.8)"),
                false,
            ),
            UnknownCommand => (r(500, (5, 5, 2), "Command unrecognized"), false),
            NotImplemented => (r(502, (5, 5, 1), "Command not implemented"), false),
            HttpRequest => (
                r(500, (5, 5, 1), "This is an SMTP server, not HTTP; goodbye"),
                true,
            ),
            Syntax(what) => (
                Reply::new(501, Enhanced(5, 5, 2), format!("Syntax error: {what}")),
                false,
            ),
            BadSequence(what) => (
                Reply::new(
                    503,
                    Enhanced(5, 5, 1),
                    format!("Bad sequence of commands: {what}"),
                ),
                false,
            ),
            Address(AddressError::NeedsUtf8) => (
                r(
                    553,
                    (5, 6, 7),
                    "Non-ASCII address requires SMTPUTF8 (RFC 6531)",
                ),
                false,
            ),
            Address(AddressError::LocalPartTooLong) => {
                (r(553, (5, 1, 3), "Local part longer than 64 octets"), false)
            }
            Address(AddressError::DomainTooLong) => {
                (r(553, (5, 1, 2), "Domain longer than 255 octets"), false)
            }
            Address(AddressError::PathTooLong) => {
                (r(553, (5, 1, 3), "Path longer than 256 octets"), false)
            }
            Address(AddressError::Syntax) => (r(501, (5, 1, 3), "Bad address syntax"), false),
            UnsupportedParameter(p) => (
                Reply::new(555, Enhanced(5, 5, 4), format!("Unsupported parameter {p}")),
                false,
            ),
            BadParameter(p) => (
                Reply::new(501, Enhanced(5, 5, 4), format!("Bad parameter {p}")),
                false,
            ),
            MessageTooBig => (r(552, (5, 3, 4), "Message size exceeds the limit"), false),
            ChunkTooBig => (
                r(
                    552,
                    (5, 3, 4),
                    "Chunk size exceeds the message size limit; closing",
                ),
                true,
            ),
            HeaderTooBig => (r(552, (5, 3, 4), "Header section exceeds the limit"), false),
            TooManyRecipients => (r(452, (4, 5, 3), "Too many recipients"), false),
            RelayDenied => (r(554, (5, 7, 1), "Relay access denied"), false),
            UnknownUser => (r(550, (5, 1, 1), "No such user here"), false),
            AliasLoop => (r(554, (5, 4, 6), "Alias loop"), false),
            // RFC 3463 §3.3: X.2.2 mailbox full; 452 as RFC 9208 §1 and
            // RFC 5321 §4.2.3 ask, so the sender's server tries again later.
            MailboxFull(_) => (r(452, (4, 2, 2), "Mailbox full, try again later"), false),
            BadSrs => (
                r(
                    550,
                    (5, 1, 1),
                    "No such user here (invalid or expired SRS address)",
                ),
                false,
            ),
            // RFC 3463 §3.7: 5.6.0, other or undefined media error.
            NotAReport(why) => (
                Reply::new(
                    550,
                    Enhanced(5, 6, 0),
                    format!("Not a DMARC aggregate or TLS report: {why}"),
                ),
                false,
            ),
            AuthRequired => (r(530, (5, 7, 0), "Authentication required"), false),
            TlsRequired => (
                r(530, (5, 7, 0), "Must issue a STARTTLS command first"),
                false,
            ),
            AlreadyTls => (r(503, (5, 5, 1), "TLS already active"), false),
            SenderNotOwned => (
                r(
                    553,
                    (5, 7, 1),
                    "Sender address not owned by the authenticated user",
                ),
                false,
            ),
            FromNotOwned => (
                r(
                    553,
                    (5, 7, 1),
                    "From: header address not owned by the authenticated user",
                ),
                false,
            ),
            NoFrom => (
                r(
                    554,
                    (5, 6, 0),
                    "Message has no From: header (RFC 5322 §3.6)",
                ),
                false,
            ),
            UnknownMechanism => (
                r(504, (5, 5, 4), "Unrecognized authentication mechanism"),
                false,
            ),
            AlreadyAuthenticated => (r(503, (5, 5, 1), "Already authenticated"), false),
            AuthFailed => (
                r(535, (5, 7, 8), "Authentication credentials invalid"),
                false,
            ),
            AuthCancelled => (r(501, (5, 0, 0), "Authentication cancelled"), false),
            AuthMalformed => (
                r(501, (5, 5, 2), "Malformed authentication response"),
                false,
            ),
            AuthBlocked => (
                r(
                    421,
                    (4, 7, 0),
                    "Too many authentication failures; try again later",
                ),
                true,
            ),
            AuthTemporary => (r(454, (4, 7, 0), "Temporary authentication failure"), false),
            Loop => (
                r(554, (5, 4, 6), "Too many Received headers: mail loop"),
                false,
            ),
            BareLineEnding => (
                r(
                    554,
                    (5, 5, 2),
                    "Bare CR or LF in message data (RFC 5321 §2.3.8)",
                ),
                false,
            ),
            TextLineTooLong => (
                r(
                    554,
                    (5, 5, 2),
                    "Line longer than 1000 octets in message data (RFC 5321 §4.5.3.1.6)",
                ),
                false,
            ),
            EmptyMessage => (r(554, (5, 6, 0), "Empty message"), false),
            ImproperPipelining => (
                r(
                    554,
                    (5, 5, 0),
                    "Message data sent before the 354 reply; closing",
                ),
                true,
            ),
            UnnegotiatedPipelining => (
                r(
                    554,
                    (5, 5, 0),
                    "Commands sent ahead without PIPELINING (RFC 2920: say EHLO); closing",
                ),
                true,
            ),
            TooManyErrors => (r(421, (4, 7, 0), "Too many errors; closing"), true),
            Timeout => (r(421, (4, 4, 2), "Timeout; closing"), true),
            ShuttingDown => (
                r(421, (4, 3, 2), "Server shutting down; try again later"),
                true,
            ),
            Busy => (
                r(421, (4, 7, 0), "Too many connections; try again later"),
                true,
            ),
            Store(StoreError::Full) => (r(452, (4, 3, 1), "Insufficient system storage"), false),
            Store(_) => (
                r(451, (4, 3, 0), "Local error in processing; try again later"),
                false,
            ),
            Policy(o) => (
                policy_reply(o),
                matches!(o, antispam::Objection::EarlyTalker),
            ),
            // RFC 5429 §2.1: 550 5.7.1 with the reason, on one line.
            Refused(reason) => (
                Reply::new(550, Enhanced(5, 7, 1), refusal_text(reason)),
                false,
            ),
        }
    }
}

/// A script's reason as reply text: one line of printable characters, bounded.
fn refusal_text(reason: &str) -> String {
    let line: String = reason
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(400)
        .collect();
    match line.is_empty() {
        true => "Refused by the recipient's filter".into(),
        false => line,
    }
}

/// The reply to each objection of the check pipeline.
fn policy_reply(o: &antispam::Objection) -> Reply {
    use antispam::Objection as O;
    use policy::verify::AuthProblem as A;
    let text = o.to_string();
    let (code, e) = match o {
        // RFC 7372 §3.2 (SPF), RFC 7489 §7.3 (DMARC is a policy refusal).
        O::Auth(A::SpfFail { .. }) => (550, (5, 7, 23)),
        O::Auth(A::SpfTemporary { .. }) => (451, (4, 7, 24)),
        O::Auth(A::DmarcReject { .. }) => (550, (5, 7, 1)),
        O::Auth(A::DmarcTemporary { .. }) => (451, (4, 7, 5)),
        O::Auth(A::NoUsableFrom(_)) => (550, (5, 7, 1)),
        // RFC 6647 §2.1: a temporary failure the sender retries.
        O::Greylisted { .. } => (451, (4, 7, 1)),
        // RFC 5782 §1 practice, and Postfix: 554 5.7.1 naming the list.
        O::Listed { .. } => (554, (5, 7, 1)),
        O::EarlyTalker => (554, (5, 5, 1)),
        O::Spam { .. } => (550, (5, 7, 1)),
        // RFC 7372 does not cover rates; 4.7.28 "mail flood detected" is
        // what large providers answer.
        O::RateLimited { .. } => (451, (4, 7, 28)),
    };
    Reply::new(code, Enhanced(e.0, e.1, e.2), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// conventions.md §2: basic and enhanced classes agree on every reply.
    #[test]
    fn classes_agree() {
        use SmtpError::*;
        let all = [
            LineTooLong,
            BareLineFeed,
            UnknownCommand,
            NotImplemented,
            HttpRequest,
            Syntax("x"),
            BadSequence("x"),
            Address(AddressError::NeedsUtf8),
            Address(AddressError::LocalPartTooLong),
            Address(AddressError::DomainTooLong),
            Address(AddressError::PathTooLong),
            Address(AddressError::Syntax),
            UnsupportedParameter("X".into()),
            BadParameter("X".into()),
            MessageTooBig,
            ChunkTooBig,
            HeaderTooBig,
            TooManyRecipients,
            RelayDenied,
            UnknownUser,
            AliasLoop,
            MailboxFull("a@b".into()),
            BadSrs,
            NotAReport("x".into()),
            AuthRequired,
            TlsRequired,
            AlreadyTls,
            SenderNotOwned,
            FromNotOwned,
            NoFrom,
            UnknownMechanism,
            AlreadyAuthenticated,
            AuthFailed,
            AuthCancelled,
            AuthMalformed,
            AuthBlocked,
            AuthTemporary,
            Loop,
            BareLineEnding,
            TextLineTooLong,
            EmptyMessage,
            ImproperPipelining,
            UnnegotiatedPipelining,
            TooManyErrors,
            Timeout,
            ShuttingDown,
            Busy,
            Store(StoreError::Full),
            Store(StoreError::Busy),
            Store(StoreError::Io("x".into())),
            Refused("Not\r\nwanted".into()),
        ];
        use antispam::Objection as O;
        use policy::verify::AuthProblem as A;
        let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let objections = [
            O::Auth(A::SpfFail {
                domain: "x".into(),
                ip,
                explanation: None,
            }),
            O::Auth(A::SpfTemporary { domain: "x".into() }),
            O::Auth(A::DmarcReject { domain: "x".into() }),
            O::Auth(A::DmarcTemporary { domain: "x".into() }),
            O::Auth(A::NoUsableFrom("x".into())),
            O::Greylisted { wait: 300 },
            O::Listed {
                ip,
                lists: vec!["bl.test".into()],
            },
            O::EarlyTalker,
            O::Spam {
                score: 20.0,
                rules: "X(20.0)".into(),
            },
            O::RateLimited {
                what: "messages",
                limit: 10,
            },
        ];
        let mut all = all.to_vec();
        for o in objections {
            let (reply, _) = Policy(o.clone()).reply();
            assert_eq!(reply.code < 500, o.is_temporary(), "{o:?}");
            all.push(Policy(o));
        }
        for e in all {
            let (reply, _) = e.reply();
            let class = reply.enhanced.expect("errors carry an enhanced code").0;
            assert_eq!(u16::from(class), reply.code / 100, "{e:?}");
            assert!(reply.code >= 400, "{e:?}");
        }
    }
}
