//! What a script decided: the inputs a run needs ([`Context`], [`Host`])
//! and what it gives back ([`Outcome`]). The interpreter performs nothing:
//! the MDA stores, queues and sends what the outcome says, in one go.

use std::sync::Arc;

use crate::ir::Script;

/// Bounds on one run (RFC 5228 §2.10.5 lets a site limit actions).
#[derive(Debug, Clone)]
pub struct Limits {
    /// `redirect` actions (ManageSieve advertises it as MAXREDIRECTS).
    pub max_redirects: usize,
    /// `notify` actions.
    pub max_notifications: usize,
    /// Actions in all.
    pub max_actions: usize,
    /// `include` nesting (RFC 6609 §3.2 leaves the depth to the site).
    pub max_include_depth: usize,
    /// Bytes in one variable (RFC 5229 §6 lets a site truncate).
    pub max_variable_size: usize,
    /// Variables in one script.
    pub max_variables: usize,
    /// Commands and tests run, in all: the cost of one run.
    pub max_steps: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_redirects: 4,
            max_notifications: 4,
            max_actions: 32,
            max_include_depth: 5,
            max_variable_size: 4096,
            max_variables: 256,
            max_steps: 100_000,
        }
    }
}

/// The spam filter's verdict in the scale of RFC 5235.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpamLevel {
    /// 1 (surely not spam) to 10 (surely spam); 0 would be "not tested".
    pub level: u8,
    /// 0 to 100, for `spamtestplus`'s `:percent`.
    pub percent: u8,
}

/// What a run knows besides the message.
#[derive(Debug, Clone)]
pub struct Context {
    /// The reverse-path, empty for `<>`.
    pub envelope_from: String,
    /// The recipient address that brought the message to this user.
    pub envelope_to: String,
    /// The authenticated submitter, if any (`envelope "auth"`).
    pub auth: Option<String>,
    /// The account's own address (vacation's "the user").
    pub user: String,
    /// Unix seconds.
    pub now: i64,
    pub spam: Option<SpamLevel>,
    /// RFC 5183 items: `domain`, `host`, `location`, `name`, `phase`,
    /// `remote-host`, `remote-ip`, `version`.
    pub environment: Vec<(String, String)>,
    /// RFC 5233: the sub-address separator.
    pub separator: Option<char>,
    pub limits: Limits,
}

impl Context {
    pub fn new(user: &str, envelope_from: &str, envelope_to: &str, now: i64) -> Context {
        Context {
            envelope_from: envelope_from.to_string(),
            envelope_to: envelope_to.to_string(),
            auth: None,
            user: user.to_string(),
            now,
            spam: None,
            environment: vec![
                ("location".into(), "MDA".into()),
                ("phase".into(), "during".into()),
                ("name".into(), "Tern".into()),
                ("version".into(), env!("CARGO_PKG_VERSION").into()),
            ],
            separator: Some('+'),
            limits: Limits::default(),
        }
    }
}

/// What a run asks of the store while it runs.
#[async_trait::async_trait]
pub trait Host: Send + Sync {
    /// RFC 5490 §3.1: the user has this mailbox.
    async fn mailbox_exists(&self, name: &str) -> bool;
    /// RFC 7352: the tracked id was recorded and has not expired.
    async fn seen(&self, id: &str) -> bool;
    /// RFC 6609: a script of the user's (`global` false) or of the site's;
    /// Ok(None) when there is none of that name; Err when it does not compile.
    async fn script(&self, name: &str, global: bool) -> Result<Option<Arc<Script>>, String>;
}

/// A message as an action delivers it: None is the message as received,
/// otherwise the message edited by `addheader`/`deleteheader` at that point
/// (its new header section over the body as it came).
pub type Content = Option<Arc<crate::mail::Edited>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Into the user's default place. `implicit`: no action cancelled the
    /// implicit keep (RFC 5228 §2.10.2).
    Keep {
        flags: Vec<String>,
        content: Content,
        implicit: bool,
    },
    FileInto {
        mailbox: String,
        flags: Vec<String>,
        create: bool,
        content: Content,
    },
    Redirect {
        address: String,
        content: Content,
    },
    Discard,
    /// RFC 5429: refuse the message with this reason.
    Reject {
        reason: String,
        extended: bool,
    },
    Vacation(Box<VacationReply>),
    Notify(Box<Notification>),
}

/// A vacation response to send (RFC 5230): the checks of §4.5 and §4.6
/// passed; the MDA still checks that no response went to `to` for
/// `tracking` within `period` seconds (§4.2), and records this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationReply {
    /// The original envelope sender.
    pub to: String,
    pub from: String,
    pub subject: String,
    /// The text, or with `:mime` a MIME entity (header fields and body).
    pub reason: String,
    pub mime: bool,
    pub period: u64,
    /// Handle and sender: what "already answered" means.
    pub tracking: String,
    /// The original's Message-ID and References, for threading.
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
}

/// An enotify notification by `mailto` (RFC 5435, RFC 5436).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub body: String,
    /// 1 high, 2 normal, 3 low.
    pub importance: u8,
    /// Header fields the URI asked for that RFC 5436 §2.2 allows.
    pub headers: Vec<(String, String)>,
}

/// A duplicate id to record once the message is delivered (RFC 7352 §3:
/// only a delivery that happened counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub id: String,
    /// Unix seconds after which it is forgotten.
    pub expires: i64,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// In the order they were taken; the implicit keep last if it stands.
    pub actions: Vec<Action>,
    pub track: Vec<Tracked>,
    /// RFC 5228 §2.10.6: a runtime error; `actions` is then the implicit keep.
    pub error: Option<String>,
}

impl Action {
    /// One line for `tern sieve test` and the log.
    pub fn describe(&self) -> String {
        let flags = |f: &[String]| match f.is_empty() {
            true => String::new(),
            false => format!(" flags {}", f.join(" ")),
        };
        let edited = |c: &Content| match c {
            Some(_) => " (edited)",
            None => "",
        };
        match self {
            Action::Keep {
                flags: f,
                content,
                implicit,
            } => format!(
                "keep{}{}{}",
                if *implicit { " (implicit)" } else { "" },
                flags(f),
                edited(content)
            ),
            Action::FileInto {
                mailbox,
                flags: f,
                create,
                content,
            } => format!(
                "fileinto {mailbox:?}{}{}{}",
                if *create { " create" } else { "" },
                flags(f),
                edited(content)
            ),
            Action::Redirect { address, content } => {
                format!("redirect {address}{}", edited(content))
            }
            Action::Discard => "discard".into(),
            Action::Reject { reason, extended } => {
                format!(
                    "{} {reason:?}",
                    if *extended { "ereject" } else { "reject" }
                )
            }
            Action::Vacation(v) => format!(
                "vacation to {} from {} subject {:?} period {}{}",
                v.to,
                v.from,
                v.subject,
                v.period,
                if v.mime { " mime" } else { "" }
            ),
            Action::Notify(n) => format!(
                "notify {} from {} importance {} subject {:?}",
                n.to.join(","),
                n.from,
                n.importance,
                n.subject
            ),
        }
    }
}
