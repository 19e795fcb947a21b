//! The IMAP session (RFC 9051 §3): a state machine fed with bytes.
//!
//! Modules by command group: `login` (CAPABILITY, STARTTLS, LOGIN,
//! AUTHENTICATE, ENABLE, ID), `mailboxes` (CREATE, DELETE, RENAME, SUBSCRIBE,
//! LIST, NAMESPACE, STATUS, APPEND), `selected` (SELECT, EXAMINE, CLOSE,
//! UNSELECT, EXPUNGE, and keeping the client's view in step with the store),
//! `fetch`, `flags` (STORE), `search`, `sort` (SORT, THREAD), `copy` (COPY,
//! MOVE), `idle`.
//!
//! Which commands each state allows is [`SessionState::allows`]; every failure
//! is an [`ImapError`], answered in [`ImapSession::finish`].

mod acl;
mod copy;
mod fetch;
mod flags;
mod idle;
mod index_cache;
mod learn;
mod login;
mod mailboxes;
mod metadata;
mod notify;
mod quota;
mod search;
mod selected;
mod sort;
mod user_limit;

pub use index_cache::IndexCache;
pub use notify::MailboxEvents;
pub use user_limit::UserIpLimiter;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use net::{ConnInfo, Flow, TlsInfo};
use store::{AccountRecord, MailboxId, MailboxRecord, Store};

use crate::error::ImapError;
use crate::parse::{Command, ParseError, parse_command};
use crate::reader::{CommandReader, Limits, Read, ReadError};
use crate::response;

/// What the session needs from the rest of the server.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub auth: Arc<auth::Authenticator>,
    pub user_ip: Arc<UserIpLimiter>,
    /// Index rows for SORT and THREAD, shared by every session.
    pub index: Arc<IndexCache>,
    /// Mailbox names, subscriptions and annotations changed by a session,
    /// for the user's other sessions that asked with NOTIFY.
    pub events: Arc<MailboxEvents>,
    /// Where large APPEND literals go as they arrive.
    pub spool: message::spool::Spool,
}

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub hostname: String,
    /// A certificate is loaded: STARTTLS can be offered.
    pub starttls: bool,
    /// Allow LOGIN/AUTHENTICATE without TLS for clients on loopback addresses.
    pub plaintext_on_loopback: bool,
    pub limits: Limits,
    /// RFC 9051 §5.4: the autologout timer is at least 30 minutes.
    pub idle_timeout: Duration,
    /// After this many BAD responses the session ends.
    pub max_errors: u32,
    /// Sessions of one user from one address (hardening.md C-IM8).
    pub max_per_user_ip: usize,
    /// A message larger than this is read from the store as a stream,
    /// never whole, for FETCH (hardening.md C-FT9).
    pub stream_over: u64,
}

impl ImapConfig {
    pub fn new(hostname: &str, max_message_size: usize) -> ImapConfig {
        ImapConfig {
            hostname: hostname.to_string(),
            starttls: false,
            plaintext_on_loopback: false,
            limits: Limits {
                max_line: 64 * 1024,
                max_literal_before_auth: 8 * 1024,
                max_literals: 256 * 1024,
                max_append: max_message_size,
            },
            idle_timeout: Duration::from_secs(30 * 60),
            max_errors: 20,
            max_per_user_ip: 20,
            stream_over: 256 * 1024,
        }
    }
}

/// A message as the client knows it: its UID and the MODSEQ it last saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    uid: u32,
    modseq: u64,
}

/// The selected mailbox, as this session has shown it to the client.
#[derive(Debug)]
struct Selected {
    mailbox: MailboxRecord,
    read_only: bool,
    /// Index i is message sequence number i+1.
    messages: Vec<Known>,
    /// Changes up to this MODSEQ are reflected in `messages`.
    synced_modseq: u64,
    /// UIDs from this one on are \Recent for this session (IMAP4rev1).
    first_recent: u32,
    /// This user's rights on it (all of them on their own, RFC 4314).
    rights: crate::rights::Rights,
    /// The UIDs SEARCH RETURN (SAVE) kept, named `$` (RFC 5182).
    saved: Vec<u32>,
}

impl Selected {
    fn seq_of(&self, uid: u32) -> Option<usize> {
        self.messages
            .binary_search_by_key(&uid, |k| k.uid)
            .ok()
            .map(|i| i + 1)
    }
}

enum SessionState {
    NotAuthenticated,
    Authenticated(AccountRecord),
    Selected(AccountRecord, Box<Selected>),
    Logout,
}

impl SessionState {
    /// RFC 9051 §3 and §6: the commands each state allows.
    fn allows(&self, cmd: &Command) -> bool {
        use Command::*;
        let any = matches!(cmd, Capability | Noop | Logout | Id);
        match self {
            SessionState::NotAuthenticated => {
                any || matches!(cmd, StartTls | Authenticate { .. } | Login { .. })
            }
            SessionState::Authenticated(_) => any || is_authenticated_command(cmd),
            SessionState::Selected(..) => {
                any || is_authenticated_command(cmd) || is_selected_command(cmd)
            }
            SessionState::Logout => false,
        }
    }

    fn account(&self) -> Option<&AccountRecord> {
        match self {
            SessionState::Authenticated(a) | SessionState::Selected(a, _) => Some(a),
            _ => None,
        }
    }
}

fn is_authenticated_command(cmd: &Command) -> bool {
    use Command::*;
    matches!(
        cmd,
        Enable(_)
            | Select { .. }
            | Create(_)
            | Delete(_)
            | Rename(..)
            | Subscribe(_)
            | Unsubscribe(_)
            | List { .. }
            | Namespace
            | Status { .. }
            | Append { .. }
            | Idle
            | GetQuota(_)
            | GetQuotaRoot(_)
            | SetQuota(_)
            | Compress(_)
            | GetMetadata { .. }
            | SetMetadata { .. }
            | GetAcl(_)
            | SetAcl { .. }
            | DeleteAcl { .. }
            | ListRights { .. }
            | MyRights(_)
            | Notify(_)
    )
}

fn is_selected_command(cmd: &Command) -> bool {
    use Command::*;
    matches!(
        cmd,
        Check
            | Close
            | Unselect
            | Expunge { .. }
            | Search { .. }
            | Sort { .. }
            | Thread { .. }
            | Fetch { .. }
            | Store { .. }
            | Copy { .. }
    )
}

enum Mode {
    Command,
    Idle {
        tag: String,
    },
    Authenticate {
        tag: String,
        exchange: Box<auth::Exchange>,
    },
}

/// The outcome of a command: the text of the tagged OK, or a failure.
type Outcome = Result<String, ImapError>;

pub struct ImapSession {
    cfg: Arc<ImapConfig>,
    services: Arc<Services>,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    state: SessionState,
    reader: CommandReader,
    mode: Mode,
    /// ENABLEd extensions (RFC 5161).
    rev2: bool,
    condstore: bool,
    qresync: bool,
    utf8: bool,
    /// COMPRESS=DEFLATE is on (RFC 4978).
    compressed: bool,
    errors: u32,
    /// Change announcements of the store, while a mailbox is selected or
    /// NOTIFY is on.
    changes: Option<tokio::sync::broadcast::Receiver<MailboxId>>,
    /// What NOTIFY asked for (RFC 5465).
    notify: Option<Box<notify::Notify>>,
    /// This session among the process's (for [`MailboxEvents`]).
    session_id: u64,
    /// The selected mailbox changed: the next update brings the client up to date.
    selected_dirty: bool,
    /// This session's place under the per-user-per-address limit, and in
    /// the logged-in sessions gauge, once logged in.
    _permit: Option<(user_limit::UserIpPermit, net::Gauged)>,
    /// Counted in the IDLE gauge while in IDLE.
    idling: Option<net::Gauged>,
    /// A FETCH whose answer is not all written yet (backpressure).
    fetching: Option<Box<fetch::Fetching>>,
    /// Pipelined commands wait until the answers so far are written.
    paused: bool,
}

/// Answers are handed to the driver when they hold this much
/// (backpressure, hardening.md C-SL2).
const OUT_PIECE: usize = 256 * 1024;

impl ImapSession {
    pub fn new(cfg: Arc<ImapConfig>, services: Arc<Services>, conn: &ConnInfo) -> ImapSession {
        let session_id = services.events.session_id();
        let spool = services.spool.clone();
        ImapSession {
            cfg,
            services,
            peer: conn.peer,
            tls: conn.tls.clone(),
            state: SessionState::NotAuthenticated,
            reader: CommandReader::with_spool(spool),
            mode: Mode::Command,
            rev2: false,
            condstore: false,
            qresync: false,
            utf8: false,
            compressed: false,
            errors: 0,
            notify: None,
            session_id,
            selected_dirty: false,
            changes: None,
            _permit: None,
            idling: None,
            fetching: None,
            paused: false,
        }
    }

    fn store(&self) -> &Arc<dyn Store> {
        &self.services.store
    }

    /// UTF-8 mailbox names and quoted strings (IMAP4rev2 or UTF8=ACCEPT).
    fn utf8_names(&self) -> bool {
        self.rev2 || self.utf8
    }

    async fn process(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        loop {
            let flow = match &mut self.mode {
                Mode::Idle { .. } | Mode::Authenticate { .. } => {
                    let Some(line) = self.reader.other_line(input, &self.cfg.limits) else {
                        return Flow::Continue;
                    };
                    self.continuation(line, out).await
                }
                Mode::Command => {
                    let authenticated = self.state.account().is_some();
                    match self
                        .reader
                        .next(input, authenticated, &self.cfg.limits, out)
                    {
                        None => return Flow::Continue,
                        Some(Read::Error(e)) => self.read_error(e, out),
                        Some(Read::Command(bytes)) => self.command(&bytes, out).await,
                    }
                }
            };
            if flow != Flow::Continue {
                return flow;
            }
            // A FETCH answered in pieces: the commands behind it wait.
            if input.is_empty() || self.fetching.is_some() {
                return Flow::Continue;
            }
            // Many commands pipelined: what is answered is written first.
            if out.len() >= OUT_PIECE {
                self.paused = true;
                return Flow::Continue;
            }
        }
    }

    fn read_error(&mut self, e: ReadError, out: &mut Vec<u8>) -> Flow {
        match e {
            ReadError::LineTooLong { tag } => {
                self.fail(tag.as_deref().unwrap_or("*"), ImapError::LineTooLong, out)
            }
            ReadError::LiteralTooLarge { tag } => self.fail(
                tag.as_deref().unwrap_or("*"),
                ImapError::LiteralTooLarge,
                out,
            ),
            ReadError::NonSyncTooLarge => {
                response::untagged(out, "BYE [TOOBIG] Literal too large");
                Flow::Close
            }
        }
    }

    async fn command(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Flow {
        let (tag, cmd) = match parse_command(bytes) {
            Ok(parsed) => parsed,
            Err(ParseError { tag, message }) => {
                let tag = tag.unwrap_or_else(|| "*".into());
                let e = if message.starts_with("BADCHARSET") {
                    ImapError::BadCharset
                } else {
                    ImapError::Syntax(message)
                };
                return self.fail(&tag, e, out);
            }
        };
        if !self.state.allows(&cmd) {
            return self.fail(&tag, ImapError::WrongState, out);
        }
        tracing::debug!(tag = %tag, command = ?std::mem::discriminant(&cmd), "command");
        match cmd {
            Command::Logout => {
                response::untagged(out, "BYE Logging out");
                response::tagged(out, &tag, "OK", "LOGOUT completed");
                self.state = SessionState::Logout;
                Flow::Close
            }
            Command::StartTls => match self.starttls() {
                Ok(()) => {
                    response::tagged(out, &tag, "OK", "Begin TLS negotiation now");
                    Flow::StartTls
                }
                Err(e) => self.fail(&tag, e, out),
            },
            Command::Idle => self.idle_start(tag, out).await,
            Command::Compress(algorithm) => {
                if algorithm != "DEFLATE" {
                    let e = ImapError::Syntax(format!("unknown compression {algorithm}"));
                    return self.fail(&tag, e, out);
                }
                if self.compressed {
                    return self.fail(&tag, ImapError::CompressionActive, out);
                }
                // RFC 4978 §3: this reply is the last uncompressed data.
                response::tagged(out, &tag, "OK", "DEFLATE active");
                self.compressed = true;
                Flow::Compress
            }
            Command::Authenticate { mechanism, initial } => {
                self.authenticate_start(tag, &mechanism, initial, out).await
            }
            Command::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => {
                let started = self
                    .fetch_start(&tag, uid, &set, items, changed_since, vanished, out)
                    .await;
                match started {
                    Ok(()) => self.fetch_more(out).await,
                    Err(e) => self.fail(&tag, e, out),
                }
            }
            other => {
                let outcome = self.run(other, &tag, out).await;
                self.finish(&tag, outcome, out)
            }
        }
    }

    /// Run a command; untagged responses go to `out` as they come.
    async fn run(&mut self, cmd: Command, tag: &str, out: &mut Vec<u8>) -> Outcome {
        match cmd {
            Command::Capability => {
                response::untagged(out, &format!("CAPABILITY {}", self.capabilities()));
                Ok("CAPABILITY completed".into())
            }
            Command::Noop | Command::Check => {
                self.sync(out, true).await?;
                Ok("NOOP completed".into())
            }
            Command::Id => {
                response::untagged(out, "ID (\"name\" \"Tern\")");
                Ok("ID completed".into())
            }
            Command::Login { user, password } => self.login(&user, &password, out).await,
            Command::Enable(caps) => Ok(self.enable(&caps, out)),
            Command::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                self.select(&mailbox, read_only, condstore, qresync, out)
                    .await
            }
            Command::Create(name) => self.create(&name).await,
            Command::Delete(name) => self.delete(&name).await,
            Command::Rename(from, to) => self.rename(&from, &to).await,
            Command::Subscribe(name) => self.subscribe(&name, true).await,
            Command::Unsubscribe(name) => self.subscribe(&name, false).await,
            Command::List {
                select,
                reference,
                patterns,
                returns,
                lsub,
            } => {
                self.list(&select, &reference, &patterns, &returns, lsub, out)
                    .await
            }
            Command::Namespace => {
                // RFC 2342 §5: personal, other users' (shared with me), shared.
                response::untagged(
                    out,
                    &format!(
                        "NAMESPACE ((\"\" \"/\")) ((\"{}/\" \"/\")) NIL",
                        acl::SHARED_PREFIX
                    ),
                );
                Ok("NAMESPACE completed".into())
            }
            Command::Status { mailbox, items } => self.status(&mailbox, &items, out).await,
            Command::Append {
                mailbox,
                flags,
                date,
                data,
            } => self.append(&mailbox, flags, date, data, out).await,
            Command::Close => self.close(true).await,
            Command::Unselect => self.close(false).await,
            Command::Expunge { uids } => self.expunge(uids, out).await,
            Command::Search { uid, returns, key } => {
                self.search(uid, returns, &key, tag, out).await
            }
            Command::Sort {
                uid,
                returns,
                criteria,
                key,
            } => self.sort(uid, returns, &criteria, &key, tag, out).await,
            Command::Thread {
                uid,
                algorithm,
                key,
            } => self.thread(uid, algorithm, &key, out).await,
            Command::Store {
                uid,
                set,
                unchanged_since,
                op,
                silent,
                flags,
            } => {
                self.store_flags(uid, &set, unchanged_since, op, silent, flags, out)
                    .await
            }
            Command::Copy {
                uid,
                set,
                mailbox,
                remove,
            } => self.copy(uid, &set, &mailbox, remove, out).await,
            Command::Notify(arg) => self.notify(arg, out).await,
            Command::GetAcl(mailbox) => self.get_acl(&mailbox, out).await,
            Command::SetAcl {
                mailbox,
                identifier,
                rights,
            } => self.set_acl(&mailbox, &identifier, &rights).await,
            Command::DeleteAcl {
                mailbox,
                identifier,
            } => self.delete_acl(&mailbox, &identifier).await,
            Command::ListRights {
                mailbox,
                identifier,
            } => self.list_rights(&mailbox, &identifier, out).await,
            Command::MyRights(mailbox) => self.my_rights(&mailbox, out).await,
            Command::GetQuota(root) => self.get_quota(&root, out).await,
            Command::GetQuotaRoot(mailbox) => self.get_quota_root(&mailbox, out).await,
            Command::SetQuota(_) => Err(ImapError::QuotaReadOnly),
            Command::GetMetadata {
                mailbox,
                entries,
                max_size,
                depth,
            } => {
                self.get_metadata(&mailbox, &entries, max_size, depth, out)
                    .await
            }
            Command::SetMetadata { mailbox, entries } => self.set_metadata(&mailbox, entries).await,
            // Handled in `command`, which acts on the connection.
            Command::Logout
            | Command::StartTls
            | Command::Idle
            | Command::Authenticate { .. }
            | Command::Fetch { .. }
            | Command::Compress(_) => Err(ImapError::WrongState),
        }
    }

    /// Answer a command with its tagged response.
    fn finish(&mut self, tag: &str, outcome: Outcome, out: &mut Vec<u8>) -> Flow {
        match outcome {
            Ok(text) => {
                response::tagged(out, tag, "OK", &text);
                Flow::Continue
            }
            Err(e) => self.fail(tag, e, out),
        }
    }

    fn fail(&mut self, tag: &str, e: ImapError, out: &mut Vec<u8>) -> Flow {
        let f = e.failure();
        tracing::info!(tag = %tag, error = %e, "command failed");
        if f.status == "BYE" {
            response::untagged(out, &format!("BYE {}", f.text));
            return Flow::Close;
        }
        response::tagged(out, tag, f.status, &f.text);
        if f.status == "BAD" {
            self.errors += 1;
            if self.errors >= self.cfg.max_errors {
                response::untagged(out, "BYE Too many errors");
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    fn client_ip(&self) -> std::net::IpAddr {
        self.peer.ip()
    }
}

impl net::Session for ImapSession {
    fn greeting(&mut self, out: &mut Vec<u8>) {
        response::untagged(
            out,
            &format!(
                "OK [CAPABILITY {}] {} Tern IMAP ready",
                self.capabilities(),
                self.cfg.hostname
            ),
        );
    }

    async fn receive(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        self.process(input, out).await
    }

    fn has_more(&self) -> bool {
        self.fetching.is_some() || self.paused
    }

    async fn resume(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        if std::mem::take(&mut self.paused) {
            return self.process(input, out).await;
        }
        let flow = self.fetch_more(out).await;
        if flow != Flow::Continue || self.fetching.is_some() || input.is_empty() {
            return flow;
        }
        self.process(input, out).await
    }

    fn tls_started(&mut self, info: TlsInfo) {
        self.tls = Some(info);
        self.reader.reset();
    }

    fn timeout(&self) -> Duration {
        self.cfg.idle_timeout
    }

    fn on_timeout(&mut self, out: &mut Vec<u8>) {
        response::untagged(out, "BYE Autologout; idle for too long");
    }

    fn on_shutdown(&mut self, out: &mut Vec<u8>) {
        response::untagged(out, "BYE [UNAVAILABLE] Server shutting down");
    }

    fn is_idle(&self) -> bool {
        true
    }

    async fn wait_event(&mut self) {
        self.wait_for_change().await
    }

    async fn on_event(&mut self, out: &mut Vec<u8>) -> Flow {
        self.idle_update(out).await
    }
}
