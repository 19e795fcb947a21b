//! The POP3 session (RFC 1939 §3): AUTHORIZATION, TRANSACTION, UPDATE.
//!
//! The maildrop is the account's INBOX as it was at login; DELE only marks,
//! and the marked messages are removed at QUIT (UPDATE state), never when the
//! connection just drops. One POP3 session per maildrop at a time
//! (`-ERR [IN-USE]`, RFC 2449 §8.1.1). Removals go through the store like
//! IMAP's, so IMAP sessions see them as EXPUNGE.
//!
//! A large message is sent a piece at a time (hardening.md C-SL2, C-FT9):
//! RETR and TOP read it from the store [`PIECE`] octets at a time and
//! dot-stuff each piece as it goes ([`Stuffing`]); the driver writes each
//! part of the reply before the next is made.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::{Exchange, Mechanism, Progress, Verdict};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::BytesMut;
use net::line::{self, Line, LineReader};
use net::{ConnInfo, Flow, TlsInfo};
use store::{AccountRecord, MailboxRecord, Store};

use message::wire::WireForm;

use crate::command::{Command, MAX_LINE, parse};
use crate::lock::MaildropLock;

pub struct Services {
    pub store: Arc<dyn Store>,
    pub auth: Arc<auth::Authenticator>,
}

#[derive(Debug, Clone)]
pub struct Pop3Config {
    pub hostname: String,
    pub starttls: bool,
    /// USER/PASS and AUTH without TLS for clients on loopback addresses.
    pub plaintext_on_loopback: bool,
    /// RFC 1939 §3: the autologout timer is at least 10 minutes.
    pub idle_timeout: Duration,
    pub max_errors: u32,
}

impl Pop3Config {
    pub fn new(hostname: &str) -> Pop3Config {
        Pop3Config {
            hostname: hostname.to_string(),
            starttls: false,
            plaintext_on_loopback: false,
            idle_timeout: Duration::from_secs(600),
            max_errors: 20,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Msg {
    uid: u32,
    size: u64,
    deleted: bool,
}

struct Maildrop {
    mailbox: MailboxRecord,
    messages: Vec<Msg>,
    /// Contents read ahead: clients fetch messages in order, and one store read
    /// for several messages costs less than one each.
    ahead: std::collections::HashMap<u32, Vec<u8>>,
    /// A large message being sent.
    sending: Option<Sending>,
    lock: MaildropLock,
}

/// Messages read at once when a RETR or TOP finds nothing read ahead.
const READ_AHEAD: usize = 16;
/// ... and at most this many octets of them.
const READ_AHEAD_BUDGET: u64 = 1 << 20;
/// A message larger than this is sent a piece at a time, never read whole.
const STREAM_OVER: u64 = 256 * 1024;
/// What one read of a streamed message takes from the store.
const PIECE: usize = 64 * 1024;
/// The reply is handed to the driver when it holds this much.
const OUT_PIECE: usize = 256 * 1024;

/// The rest of a large message's RETR or TOP.
struct Sending {
    uid: u32,
    /// The next octet to read, and the message's size.
    next: u64,
    end: u64,
    stuffing: Stuffing,
}

impl Maildrop {
    /// The content of message `n` (uid `uid`), from the read-ahead or the store.
    async fn content(
        &mut self,
        n: u32,
        uid: u32,
        store: &Arc<dyn Store>,
    ) -> Result<Vec<u8>, String> {
        if let Some(bytes) = self.ahead.remove(&uid) {
            return Ok(bytes);
        }
        // This message and the next few small ones that are not deleted.
        let mut budget = 0;
        let uids: Vec<u32> = self
            .messages
            .iter()
            .skip((n - 1) as usize)
            .filter(|m| !m.deleted && m.size <= STREAM_OVER)
            .take(READ_AHEAD)
            .take_while(|m| {
                budget += m.size;
                budget <= READ_AHEAD_BUDGET || m.uid == uid
            })
            .map(|m| m.uid)
            .collect();
        self.ahead = store
            .contents(self.mailbox.id, uids)
            .await
            .map_err(|e| format!("[SYS/TEMP] {e}"))?
            .into_iter()
            .collect();
        self.ahead
            .remove(&uid)
            .ok_or_else(|| "Message is gone".to_string())
    }
}

enum State {
    Authorization { user: Option<String> },
    Transaction(Box<Maildrop>),
}

pub struct Pop3Session {
    cfg: Arc<Pop3Config>,
    services: Arc<Services>,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    state: State,
    sasl: Option<Box<Exchange>>,
    /// Command lines, and the rest of a long one still to skip.
    lines: LineReader,
    errors: u32,
    /// Pipelined commands wait until the answers so far are written.
    paused: bool,
}

/// A command's success: a one-line `+OK text`, or a multi-line reply already written.
enum Answer {
    Line(String),
    Written,
}

type Reply = Result<Answer, String>;

fn line(text: impl Into<String>) -> Reply {
    Ok(Answer::Line(text.into()))
}

impl Pop3Session {
    pub fn new(cfg: Arc<Pop3Config>, services: Arc<Services>, conn: &ConnInfo) -> Pop3Session {
        Pop3Session {
            cfg,
            services,
            peer: conn.peer,
            tls: conn.tls.clone(),
            state: State::Authorization { user: None },
            sasl: None,
            lines: LineReader::default(),
            errors: 0,
            paused: false,
        }
    }

    fn login_allowed(&self) -> bool {
        self.tls.is_some() || (self.cfg.plaintext_on_loopback && self.peer.ip().is_loopback())
    }

    async fn process(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        loop {
            let flow = match self.lines.next(input, MAX_LINE) {
                None => return Flow::Continue,
                // An over-long line also ends a SASL exchange in progress.
                Some(Line::TooLong) => {
                    self.sasl = None;
                    self.error("line too long", out)
                }
                Some(Line::Complete(line)) => {
                    let line = line::text(&line);
                    match self.sasl.take() {
                        Some(exchange) => self.sasl_response(*exchange, line, out).await,
                        None => self.command(line, out).await,
                    }
                }
            };
            // A message being sent in pieces: the commands behind it wait.
            if flow != Flow::Continue || input.is_empty() || net::Session::has_more(self) {
                return flow;
            }
            // Many commands pipelined: what is answered is written first.
            if out.len() >= OUT_PIECE {
                self.paused = true;
                return flow;
            }
        }
    }

    fn error(&mut self, text: &str, out: &mut Vec<u8>) -> Flow {
        out.extend_from_slice(format!("-ERR {text}\r\n").as_bytes());
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            out.extend_from_slice(b"-ERR [SYS/PERM] Too many errors, closing\r\n");
            return Flow::Close;
        }
        Flow::Continue
    }

    async fn command(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        let cmd = match parse(line) {
            Ok(c) => c,
            Err(e) => return self.error(e, out),
        };
        match cmd {
            Command::Quit => self.quit(out).await,
            Command::Stls => match self.stls() {
                Ok(text) => {
                    out.extend_from_slice(format!("+OK {text}\r\n").as_bytes());
                    Flow::StartTls
                }
                Err(e) => self.error(&e, out),
            },
            Command::Auth { mechanism, initial } => {
                self.auth_start(&mechanism, initial.as_deref(), out).await
            }
            Command::Capa => {
                out.extend_from_slice(self.capabilities().as_bytes());
                Flow::Continue
            }
            other => match self.run(other, out).await {
                Ok(Answer::Line(text)) => {
                    out.extend_from_slice(format!("+OK {text}\r\n").as_bytes());
                    Flow::Continue
                }
                Ok(Answer::Written) => Flow::Continue,
                Err(e) => self.error(&e, out),
            },
        }
    }

    /// RFC 2449 §5: what this state offers, each really implemented.
    fn capabilities(&self) -> String {
        let mut caps = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        let sasl;
        if matches!(self.state, State::Authorization { .. }) {
            if self.login_allowed() {
                let binding = self
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.channel_binding.is_some());
                let names: Vec<&str> = Mechanism::offered(binding)
                    .filter(|m| *m != Mechanism::Login)
                    .map(|m| m.name())
                    .collect();
                sasl = format!("SASL {}", names.join(" "));
                caps.extend(["USER", sasl.as_str()]);
            }
            if self.tls.is_none() && self.cfg.starttls {
                caps.push("STLS");
            }
        }
        caps.push("IMPLEMENTATION Tern");
        format!(
            "+OK Capability list follows\r\n{}\r\n.\r\n",
            caps.join("\r\n")
        )
    }

    fn stls(&self) -> Result<&'static str, String> {
        if !matches!(self.state, State::Authorization { .. }) {
            return Err("STLS only before login".into());
        }
        if self.tls.is_some() || !self.cfg.starttls {
            return Err("TLS not available".into());
        }
        Ok("Begin TLS negotiation")
    }

    async fn run(&mut self, cmd: Command, out: &mut Vec<u8>) -> Reply {
        let allowed = self.login_allowed();
        let (ip, auth) = (self.peer.ip(), self.services.auth.clone());
        match (&mut self.state, cmd) {
            (State::Authorization { .. }, Command::User(_)) if !allowed => {
                Err("[AUTH] Plaintext authentication disallowed without TLS; use STLS".into())
            }
            (State::Authorization { user }, Command::User(name)) => {
                *user = Some(name);
                // The same answer for any name: no account enumeration (C-AU3).
                line("Send the password")
            }
            (State::Authorization { user }, Command::Pass(password)) => {
                let name = user.take().ok_or("USER first")?;
                let verdict = auth.check_password(ip, &name, &password).await;
                self.logged_in(verdict).await
            }
            (State::Authorization { .. }, _) => Err("Not logged in".into()),
            (State::Transaction(drop), cmd) => {
                hold(drop).await?;
                transaction(drop, cmd, &self.services.store, out).await
            }
        }
    }

    async fn logged_in(&mut self, verdict: Verdict) -> Reply {
        let account = match verdict {
            Verdict::Success(a) => a,
            Verdict::Denied { blocked: false } => return Err("[AUTH] Authentication failed".into()),
            Verdict::Denied { blocked: true } | Verdict::Blocked => {
                return Err("[SYS/TEMP] Too many authentication failures; try again later".into());
            }
            Verdict::TemporaryFailure => {
                return Err("[SYS/TEMP] Temporary authentication failure".into());
            }
        };
        let drop = self.open_maildrop(&account).await?;
        let count = drop.messages.len();
        let octets: u64 = drop.messages.iter().map(|m| m.size).sum();
        self.state = State::Transaction(Box::new(drop));
        line(format!("Logged in: {count} messages ({octets} octets)"))
    }

    async fn open_maildrop(&self, account: &AccountRecord) -> Result<Maildrop, String> {
        let temp = |e: store::StoreError| format!("[SYS/TEMP] {e}");
        let lock = MaildropLock::take(&self.services.store, account.id, self.cfg.idle_timeout)
            .await
            .map_err(temp)?
            .ok_or("[IN-USE] Maildrop already in use by another POP3 session")?;
        let mailbox = self
            .services
            .store
            .mailbox(account.id, "INBOX")
            .await
            .map_err(temp)?
            .ok_or("[SYS/PERM] No INBOX")?;
        let messages = self
            .services
            .store
            .messages(mailbox.id)
            .await
            .map_err(temp)?
            .into_iter()
            .map(|e| Msg {
                uid: e.uid,
                size: e.size,
                deleted: false,
            })
            .collect();
        Ok(Maildrop {
            mailbox,
            messages,
            ahead: Default::default(),
            sending: None,
            lock,
        })
    }

    async fn auth_start(
        &mut self,
        mechanism: &str,
        initial: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Flow {
        if !matches!(self.state, State::Authorization { .. }) {
            return self.error("Already logged in", out);
        }
        if !self.login_allowed() {
            return self.error(
                "[AUTH] Authentication disallowed without TLS; use STLS",
                out,
            );
        }
        let binding = self.tls.as_ref().and_then(|t| t.channel_binding.clone());
        let Some(mechanism) =
            Mechanism::parse(mechanism, binding.is_some()).filter(|m| *m != Mechanism::Login)
        else {
            return self.error("Unsupported mechanism", out);
        };
        // RFC 5034 §4: "=" is an empty initial response.
        let initial = match initial {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(t) => match B64.decode(t) {
                Ok(d) => Some(d),
                Err(_) => return self.error("Bad base64", out),
            },
        };
        let mut exchange = Exchange::new(mechanism, binding.as_deref());
        let step = exchange.respond(initial.as_deref());
        self.sasl_step(exchange, step, out).await
    }

    async fn sasl_response(
        &mut self,
        mut exchange: Exchange,
        line: &[u8],
        out: &mut Vec<u8>,
    ) -> Flow {
        if line == b"*" {
            return self.error("Authentication cancelled", out);
        }
        let Ok(data) = B64.decode(line) else {
            return self.error("Bad base64", out);
        };
        let step = exchange.respond(Some(&data));
        self.sasl_step(exchange, step, out).await
    }

    async fn sasl_step(
        &mut self,
        mut exchange: Exchange,
        step: auth::Step,
        out: &mut Vec<u8>,
    ) -> Flow {
        match self
            .services
            .auth
            .advance(self.peer.ip(), &mut exchange, step)
            .await
        {
            Progress::Challenge(data) => {
                out.extend_from_slice(format!("+ {}\r\n", B64.encode(data)).as_bytes());
                self.sasl = Some(Box::new(exchange));
                Flow::Continue
            }
            Progress::Done(verdict) => match self.logged_in(verdict).await {
                Ok(Answer::Line(text)) => {
                    out.extend_from_slice(format!("+OK {text}\r\n").as_bytes());
                    Flow::Continue
                }
                Ok(Answer::Written) => Flow::Continue,
                Err(e) => self.error(&e, out),
            },
            Progress::Malformed => self.error("Malformed SASL response", out),
        }
    }

    /// RFC 1939 §6: QUIT in TRANSACTION enters UPDATE and removes what DELE marked.
    async fn quit(&mut self, out: &mut Vec<u8>) -> Flow {
        if let State::Transaction(drop) = &mut self.state {
            if let Err(e) = hold(drop).await {
                out.extend_from_slice(format!("-ERR {e}; nothing deleted\r\n").as_bytes());
                return Flow::Close;
            }
            let gone: Vec<u32> = drop
                .messages
                .iter()
                .filter(|m| m.deleted)
                .map(|m| m.uid)
                .collect();
            if !gone.is_empty()
                && let Err(e) = self
                    .services
                    .store
                    .remove_messages(drop.mailbox.id, gone.clone())
                    .await
            {
                tracing::warn!(error = %e, "POP3 UPDATE failed");
                out.extend_from_slice(
                    b"-ERR [SYS/TEMP] Some deleted messages were not removed\r\n",
                );
                return Flow::Close;
            }
            // Given up before the reply: the client's next session may
            // begin as soon as it reads it.
            drop.lock.give_up().await;
            out.extend_from_slice(
                format!(
                    "+OK {} signing off ({} messages deleted)\r\n",
                    self.cfg.hostname,
                    gone.len()
                )
                .as_bytes(),
            );
        } else {
            out.extend_from_slice(format!("+OK {} signing off\r\n", self.cfg.hostname).as_bytes());
        }
        Flow::Close
    }
}

/// Keep the maildrop's lock (renewing its lease): a session whose lease
/// ran out and was taken by another may not go on.
async fn hold(drop: &mut Maildrop) -> Result<(), String> {
    match drop.lock.keep().await {
        Ok(true) => Ok(()),
        Ok(false) => Err("[IN-USE] The maildrop lock ran out and another session took it".into()),
        Err(e) => Err(format!("[SYS/TEMP] {e}")),
    }
}

/// The message `n` (1-based) if it exists and is not marked deleted.
fn message(drop: &Maildrop, n: u32) -> Result<Msg, String> {
    let m = n
        .checked_sub(1)
        .and_then(|i| drop.messages.get(i as usize))
        .ok_or("No such message")?;
    if m.deleted {
        return Err("Message is deleted".into());
    }
    Ok(*m)
}

/// UIDL: stable across sessions, from the same identity IMAP uses (UIDVALIDITY, UID).
fn unique_id(drop: &Maildrop, m: &Msg) -> String {
    format!("{:08x}{:08x}", drop.mailbox.uid_validity, m.uid)
}

async fn transaction(
    drop: &mut Maildrop,
    cmd: Command,
    store: &Arc<dyn Store>,
    out: &mut Vec<u8>,
) -> Reply {
    let live = |d: &Maildrop| {
        d.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.deleted)
            .map(|(i, m)| (i + 1, *m))
            .collect::<Vec<_>>()
    };
    match cmd {
        Command::Stat => {
            let l = live(drop);
            line(format!(
                "{} {}",
                l.len(),
                l.iter().map(|(_, m)| m.size).sum::<u64>()
            ))
        }
        Command::List(Some(n)) => line(format!("{n} {}", message(drop, n)?.size)),
        Command::Uidl(Some(n)) => line(format!("{n} {}", unique_id(drop, &message(drop, n)?))),
        Command::List(None) | Command::Uidl(None) => {
            let uidl = matches!(cmd, Command::Uidl(None));
            out.extend_from_slice(b"+OK\r\n");
            for (n, m) in live(drop) {
                let value = if uidl {
                    unique_id(drop, &m)
                } else {
                    m.size.to_string()
                };
                out.extend_from_slice(format!("{n} {value}\r\n").as_bytes());
            }
            out.extend_from_slice(b".\r\n");
            Ok(Answer::Written)
        }
        Command::Retr(n) | Command::Top(n, _) => {
            let m = message(drop, n)?;
            let mut stuffing = Stuffing::new(match cmd {
                Command::Top(_, lines) => Some(lines),
                _ => None,
            });
            if m.size <= STREAM_OVER {
                let bytes = drop.content(n, m.uid, store).await?;
                out.extend_from_slice(format!("+OK {} octets\r\n", m.size).as_bytes());
                stuffing.feed(&bytes, out);
                stuffing.finish(out);
                return Ok(Answer::Written);
            }
            // The first piece before the +OK, so that a message gone is an -ERR.
            let first = store
                .content_range(drop.mailbox.id, m.uid, 0, PIECE)
                .await
                .map_err(|e| format!("[SYS/TEMP] {e}"))?
                .filter(|b| !b.is_empty())
                .ok_or("Message is gone")?;
            out.extend_from_slice(format!("+OK {} octets\r\n", m.size).as_bytes());
            let done = stuffing.feed(&first, out);
            let next = first.len() as u64;
            if done || next >= m.size {
                stuffing.finish(out);
            } else {
                drop.sending = Some(Sending {
                    uid: m.uid,
                    next,
                    end: m.size,
                    stuffing,
                });
            }
            Ok(Answer::Written)
        }
        Command::Dele(n) => {
            message(drop, n)?;
            if let Some(m) = drop.messages.get_mut((n - 1) as usize) {
                m.deleted = true;
            }
            line(format!("Message {n} deleted"))
        }
        Command::Rset => {
            for m in &mut drop.messages {
                m.deleted = false;
            }
            line(format!("{} messages", drop.messages.len()))
        }
        Command::Noop => line("Nothing happened"),
        Command::User(_) | Command::Pass(_) => Err("Already logged in".into()),
        Command::Capa | Command::Stls | Command::Auth { .. } | Command::Quit => {
            Err("Not here".into())
        }
    }
}

/// The rest of a large message being sent, as much as fits in one part
/// of the reply; the connection is closed if the message vanished (another
/// client deleted it over IMAP) or cannot be read: after the +OK nothing
/// else can be said.
async fn send_more(drop: &mut Maildrop, store: &Arc<dyn Store>, out: &mut Vec<u8>) -> Flow {
    let Some(mut s) = drop.sending.take() else {
        return Flow::Continue;
    };
    while s.next < s.end {
        let want = (s.end - s.next).min(PIECE as u64) as usize;
        let piece = match store
            .content_range(drop.mailbox.id, s.uid, s.next, want)
            .await
        {
            Ok(Some(piece)) if piece.len() == want => piece,
            Ok(_) => {
                tracing::info!("a message vanished while it was being sent; closing");
                return Flow::Close;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading a message for RETR failed; closing");
                return Flow::Close;
            }
        };
        s.next = match s.stuffing.feed(&piece, out) {
            true => s.end,
            false => s.next + want as u64,
        };
        if s.next < s.end && out.len() >= OUT_PIECE {
            drop.sending = Some(s);
            return Flow::Continue;
        }
    }
    s.stuffing.finish(out);
    Flow::Continue
}

/// A message as a multi-line reply, fed a piece at a time: RFC 1939 §3
/// (lines starting with "." get another one, every line ends CRLF, CRLF "."
/// CRLF ends it: [`WireForm`]) and §7 (TOP: the header section, the blank
/// line, and so many body lines).
#[derive(Debug)]
struct Stuffing {
    form: WireForm,
    /// Octets of the current line, its CR aside.
    line_len: usize,
    in_header: bool,
    /// TOP: body lines still to send.
    lines_left: Option<u32>,
    done: bool,
}

impl Stuffing {
    fn new(top_lines: Option<u32>) -> Stuffing {
        Stuffing {
            form: WireForm::new(true),
            line_len: 0,
            in_header: true,
            lines_left: top_lines,
            done: false,
        }
    }

    /// Stuff `bytes` onto `out`; true once TOP has sent what it asked for.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        if self.done {
            return true;
        }
        let end = match self.lines_left {
            None => bytes.len(),
            Some(_) => self.top_end(bytes),
        };
        self.form.feed(&bytes[..end], out);
        self.done
    }

    /// How much of `bytes` TOP sends: up to the end of its last line.
    fn top_end(&mut self, bytes: &[u8]) -> usize {
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' => {
                    self.end_of_line();
                    if self.done {
                        return i + 1;
                    }
                }
                b'\r' => {}
                _ => self.line_len += 1,
            }
        }
        bytes.len()
    }

    fn end_of_line(&mut self) {
        let blank = self.line_len == 0;
        self.line_len = 0;
        if self.in_header {
            // The blank line ends the header section, and is sent with it.
            self.in_header = !blank;
            if !self.in_header && self.lines_left == Some(0) {
                self.done = true;
            }
            return;
        }
        if let Some(left) = &mut self.lines_left {
            *left -= 1;
            self.done = *left == 0;
        }
    }

    /// The end of the reply: a CRLF if the message did not end with one,
    /// then the terminating ".".
    fn finish(self, out: &mut Vec<u8>) {
        self.form.finish(out);
        out.extend_from_slice(b".\r\n");
    }
}

impl net::Session for Pop3Session {
    fn greeting(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("+OK {} Tern POP3 ready\r\n", self.cfg.hostname).as_bytes());
    }

    async fn receive(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        self.process(input, out).await
    }

    fn has_more(&self) -> bool {
        self.paused || matches!(&self.state, State::Transaction(drop) if drop.sending.is_some())
    }

    async fn resume(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        if std::mem::take(&mut self.paused) {
            return self.process(input, out).await;
        }
        let State::Transaction(drop) = &mut self.state else {
            return Flow::Continue;
        };
        let flow = send_more(drop, &self.services.store, out).await;
        if flow != Flow::Continue || self.has_more() || input.is_empty() {
            return flow;
        }
        self.process(input, out).await
    }

    fn tls_started(&mut self, info: TlsInfo) {
        self.tls = Some(info);
    }

    fn timeout(&self) -> Duration {
        self.cfg.idle_timeout
    }

    fn on_timeout(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-ERR Autologout; idle for too long\r\n");
    }

    fn on_shutdown(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"-ERR [SYS/TEMP] Server shutting down\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stuff `msg` fed in pieces of `n` octets, as RETR or TOP sends it.
    fn stuffed(msg: &[u8], top: Option<u32>, n: usize) -> Vec<u8> {
        let mut s = Stuffing::new(top);
        let mut out = Vec::new();
        for piece in msg.chunks(n) {
            if s.feed(piece, &mut out) {
                break;
            }
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn stuffing_and_top() {
        let msg = b"A: b\r\nC: d\r\n\r\nl1\r\n.l2\r\nl3\r\n";
        // Whatever the pieces, the same reply.
        for n in 1..=msg.len() {
            assert_eq!(
                stuffed(b"A: b\r\n\r\n.hidden\r\nx", None, n),
                b"A: b\r\n\r\n..hidden\r\nx\r\n.\r\n"
            );
            assert_eq!(stuffed(msg, Some(0), n), b"A: b\r\nC: d\r\n\r\n.\r\n");
            assert_eq!(
                stuffed(msg, Some(2), n),
                b"A: b\r\nC: d\r\n\r\nl1\r\n..l2\r\n.\r\n"
            );
            assert_eq!(
                stuffed(msg, Some(99), n),
                b"A: b\r\nC: d\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"
            );
            assert_eq!(
                stuffed(msg, None, n),
                b"A: b\r\nC: d\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n"
            );
        }
        // No header end: TOP sends it all; an empty message is an empty reply.
        assert_eq!(stuffed(b"A: b\r\n", Some(0), 3), b"A: b\r\n.\r\n");
        assert_eq!(stuffed(b"", None, 1), b"\r\n.\r\n");
    }
}
