//! The SMTP server session: a state machine fed with bytes (design.md
//! principle 1). One module per group of commands: `hello` (HELO, EHLO,
//! STARTTLS, XCLIENT), `envelope` (MAIL, RCPT), `content` (DATA, BDAT and the
//! end of a message), `authenticate` (AUTH); `checks` asks the inbound check
//! pipeline at each stage, `reports` handles DMARC reports received and the
//! "delivered" DSNs; `local` takes a message submitted through another
//! protocol (JMAP) through the same steps.
//!
//! Which commands each state allows is decided in [`SmtpSession::command`];
//! every failure is an [`SmtpError`], turned into a reply in one place.

mod authenticate;
mod checks;
mod content;
mod envelope;
mod hello;
mod local;

pub use local::{LocalSubmission, Parameters, Submitted};
mod reports;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use delivery::Mda;
use net::line::{Line, LineReader};
use net::{ConnInfo, Flow, TlsInfo};
use store::{AccountRecord, HistoryKind};

use crate::command::{self, Command};
use crate::config::{Role, SmtpConfig};
use crate::data::DataReader;
use crate::error::SmtpError;
use crate::params::MailParams;
use crate::reply::{Enhanced, Reply};

/// RFC 4954 §4: a line carrying a SASL response may be up to 12288 octets.
const MAX_AUTH_LINE: usize = 12288;

/// Everything a session needs from the rest of the server.
pub struct Services {
    pub mda: Arc<Mda>,
    pub auth: Arc<auth::Authenticator>,
    /// The inbound check pipeline: sender authentication (when configured)
    /// and spam defence on the MX; sending limits on submission.
    pub checks: Arc<antispam::Checks>,
    /// DKIM signing of submitted mail (None: not signed).
    pub signer: Option<Arc<policy::sign::Signer>>,
    /// Where message content goes past 64 KiB while it is received.
    pub spool: message::spool::Spool,
}

/// The HELO/EHLO the client gave.
#[derive(Debug, Clone)]
struct Helo {
    name: String,
    extended: bool,
}

/// MAIL FROM seen: the transaction until the message is accepted or reset.
#[derive(Debug)]
struct Transaction {
    id: String,
    sender: message::ReversePath,
    params: MailParams,
    recipients: Vec<delivery::Recipient>,
    /// A recipient is our DMARC report address: the message is a report.
    reports: bool,
    /// What the check pipeline learned so far (MX).
    assessment: antispam::Assessment,
    /// BDAT chunks received so far; a failure sticks until the LAST chunk or RSET.
    chunks: Option<Result<DataReader, SmtpError>>,
}

/// What the next input bytes are.
enum Mode {
    Command,
    Data(DataReader),
    /// `remaining` bytes of a BDAT chunk still to come; `refused`: the chunk is read
    /// only to be answered with this error.
    Bdat {
        remaining: u64,
        last: bool,
        refused: Option<SmtpError>,
    },
    Auth(auth::Exchange),
}

pub struct SmtpSession {
    cfg: Arc<SmtpConfig>,
    services: Arc<Services>,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    helo: Option<Helo>,
    user: Option<AccountRecord>,
    /// Addresses the user may send as: their own and the aliases that lead to them.
    owned: Vec<String>,
    tx: Option<Transaction>,
    mode: Mode,
    /// Command lines, and the rest of a long one still to skip (C-SM6).
    lines: LineReader,
    errors: u32,
    /// The client as the check pipeline sees it (looked up at the first MAIL).
    client: Option<antispam::Client>,
    /// The queue entry of the last message accepted, if the queue took
    /// it (a submission from JMAP cancels a held one by it).
    last_queue_id: Option<i64>,
}

impl SmtpSession {
    pub fn new(cfg: Arc<SmtpConfig>, services: Arc<Services>, conn: &ConnInfo) -> SmtpSession {
        SmtpSession {
            cfg,
            services,
            peer: conn.peer,
            tls: conn.tls.clone(),
            helo: None,
            user: None,
            owned: Vec::new(),
            tx: None,
            mode: Mode::Command,
            lines: LineReader::default(),
            errors: 0,
            client: None,
            last_queue_id: None,
        }
    }

    /// Handle everything complete in `input`.
    async fn process(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        loop {
            let flow = match std::mem::replace(&mut self.mode, Mode::Command) {
                Mode::Data(mut reader) => match reader.feed(input) {
                    None => {
                        input.clear();
                        self.mode = Mode::Data(reader);
                        return Flow::Continue;
                    }
                    Some(n) => {
                        input.advance(n);
                        let result = self.end_of_message(reader.finish()).await;
                        self.respond(result, out).await
                    }
                },
                Mode::Bdat {
                    remaining,
                    last,
                    refused,
                } => {
                    let take = remaining.min(input.len() as u64) as usize;
                    self.bdat_bytes(&input[..take]);
                    input.advance(take);
                    let remaining = remaining - take as u64;
                    if remaining > 0 {
                        self.mode = Mode::Bdat {
                            remaining,
                            last,
                            refused,
                        };
                        return Flow::Continue;
                    }
                    let result = self.bdat_chunk_done(last, refused).await;
                    self.respond(result, out).await
                }
                mode @ (Mode::Command | Mode::Auth(_)) => {
                    let limit = if matches!(mode, Mode::Auth(_)) {
                        MAX_AUTH_LINE
                    } else {
                        self.cfg.max_command_line
                    };
                    let Some(line) = self.lines.next(input, limit) else {
                        self.mode = mode;
                        return Flow::Continue;
                    };
                    match command_line(line) {
                        // An over-long or malformed line also ends a SASL exchange in progress.
                        Err(e) => self.respond(Err(e), out).await,
                        Ok(line) => match mode {
                            Mode::Auth(exchange) => {
                                let result = self.auth_response(exchange, &line).await;
                                self.respond(result, out).await
                            }
                            _ => {
                                let more_pending = !input.is_empty();
                                self.command_line(&line, more_pending, out).await
                            }
                        },
                    }
                }
            };
            if flow != Flow::Continue {
                return flow;
            }
            // A zero-length BDAT chunk is complete without any input.
            let empty_chunk = matches!(self.mode, Mode::Bdat { remaining: 0, .. });
            if input.is_empty() && !empty_chunk {
                return Flow::Continue;
            }
        }
    }

    async fn command_line(&mut self, line: &[u8], more_pending: bool, out: &mut Vec<u8>) -> Flow {
        match command::parse(line) {
            Ok(Command::Quit) => {
                Reply::new(
                    221,
                    Enhanced(2, 0, 0),
                    format!("{} closing connection", self.cfg.hostname),
                )
                .write_to(out);
                Flow::Close
            }
            Ok(Command::Bdat { size, last }) => match self.bdat(size, last) {
                Ok(()) => Flow::Continue,
                Err(e) => self.respond(Err(e), out).await,
            },
            Ok(Command::StartTls) => match self.starttls() {
                Ok(reply) => {
                    reply.write_to(out);
                    Flow::StartTls
                }
                Err(e) => self.respond(Err(e), out).await,
            },
            Ok(cmd) => {
                let result = self.command(cmd, more_pending).await;
                self.respond(result, out).await
            }
            Err(e) => self.respond(Err(e), out).await,
        }
    }

    /// The state table: which command runs in which state.
    async fn command(&mut self, cmd: Command<'_>, more_pending: bool) -> Result<Reply, SmtpError> {
        match cmd {
            Command::Helo(name) => Ok(self.hello(name, false)),
            Command::Ehlo(name) => Ok(self.hello(name, true)),
            Command::Mail { path, params } => self.mail(path, &params, more_pending).await,
            Command::Rcpt { path, params } => {
                let result = self.rcpt(path, &params).await;
                if let (Err(e), Some(tx)) = (&result, &self.tx) {
                    let to = path.trim().trim_start_matches('<').trim_end_matches('>');
                    let reply = e.reply().0.one_line();
                    let event = self.history_event(
                        &tx.id,
                        &tx.sender.to_string(),
                        HistoryKind::Refused,
                        Some(to),
                        &reply,
                    );
                    self.services.mda.store().record_history(vec![event]);
                }
                result
            }
            Command::Data => self.data(more_pending),
            Command::Auth { mechanism, initial } => self.auth_start(mechanism, initial).await,
            Command::Xclient(attrs) => self.xclient(&attrs),
            Command::Rset => {
                self.tx = None;
                Ok(Reply::new(250, Enhanced(2, 0, 0), "Ok"))
            }
            Command::Noop => Ok(Reply::new(250, Enhanced(2, 0, 0), "Ok")),
            // RFC 5321 §3.5.3, §7.3: never confirm or deny an account (hardening.md C-RL11).
            Command::Vrfy => Ok(Reply::new(
                252,
                Enhanced(2, 5, 2),
                "Cannot VRFY user, but will accept message and attempt delivery",
            )),
            Command::Help => Ok(Reply::new(
                214,
                Enhanced(2, 0, 0),
                "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
            )),
            Command::Expn | Command::NotImplemented => Err(SmtpError::NotImplemented),
            Command::Http => Err(SmtpError::HttpRequest),
            // Handled by the caller: they act on the socket or answer later.
            Command::Quit | Command::StartTls | Command::Bdat { .. } => {
                Err(SmtpError::BadSequence("internal"))
            }
        }
    }

    /// Write the reply of one command; count errors (hardening.md C-SM17).
    async fn respond(&mut self, result: Result<Reply, SmtpError>, out: &mut Vec<u8>) -> Flow {
        let (reply, close) = match result {
            Ok(r) => (r, false),
            Err(e) => {
                tracing::info!(error = %e, "command refused");
                e.reply()
            }
        };
        if reply.is_error() {
            // By enhanced code (RFC 3463): why, in a bounded set of labels.
            let reason = match reply.enhanced {
                Some(crate::reply::Enhanced(a, b, c)) => format!("{a}.{b}.{c}"),
                None => reply.code.to_string(),
            };
            metrics::counter!(
                "tern_smtp_refused_total",
                "role" => self.cfg.role.name(),
                "reason" => reason
            )
            .increment(1);
        }
        if reply.is_error() && !close {
            self.errors += 1;
            if self.errors >= self.cfg.hard_error_limit {
                reply.write_to(out);
                SmtpError::TooManyErrors.reply().0.write_to(out);
                return Flow::Close;
            }
            if self.errors > self.cfg.soft_error_limit {
                tokio::time::sleep(self.cfg.error_delay).await;
            }
        }
        reply.write_to(out);
        if close { Flow::Close } else { Flow::Continue }
    }

    fn client_ip(&self) -> std::net::IpAddr {
        self.peer.ip()
    }

    /// Unix time, from the pipeline's clock (tests move it).
    fn now(&self) -> i64 {
        self.services.checks.clock().now()
    }

    /// The TLS connection's channel-binding data (SCRAM -PLUS), if any.
    fn channel_binding(&self) -> Option<&[u8]> {
        self.tls.as_ref()?.channel_binding.as_deref()
    }
}

impl SmtpSession {
    /// The pregreet test applies: the MX, a client not exempt and not
    /// known to have passed lately.
    fn pregreet(&self) -> Option<Duration> {
        match self.cfg.role {
            crate::config::Role::Mx => self.services.checks.pregreet_wait(self.client_ip()),
            crate::config::Role::Submission => None,
        }
    }
}

impl net::Session for SmtpSession {
    fn greeting(&mut self, out: &mut Vec<u8>) {
        // RFC 5321 §4.3.1, and "ESMTP" so that old clients try EHLO. With the
        // pregreet test, a first line of a multi-line greeting (§4.2: the
        // client must wait for the last one): postscreen's way.
        let text = format!("{} ESMTP Tern", self.cfg.hostname);
        match self.pregreet() {
            Some(_) => out.extend_from_slice(format!("220-{text}\r\n").as_bytes()),
            None => Reply::bare(220, text).write_to(out),
        }
    }

    fn pregreet_wait(&self) -> Option<Duration> {
        self.pregreet()
    }

    fn greeting_done(&mut self, out: &mut Vec<u8>) {
        self.services.checks.pregreet_passed(self.client_ip());
        Reply::bare(220, format!("{} ESMTP Tern", self.cfg.hostname)).write_to(out);
    }

    fn early_talker(&mut self, input: &[u8], out: &mut Vec<u8>) -> Flow {
        let said: String = String::from_utf8_lossy(&input[..input.len().min(60)])
            .chars()
            .flat_map(char::escape_default)
            .collect();
        tracing::info!(said = %said, "early talker refused (spoke before the greeting ended)");
        let (reply, _) = SmtpError::Policy(antispam::Objection::EarlyTalker).reply();
        reply.write_to(out);
        Flow::Close
    }

    async fn receive(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        self.process(input, out).await
    }

    fn tls_started(&mut self, info: TlsInfo) {
        // RFC 3207 §4.2: forget everything learned before the handshake (C-TLS4).
        self.tls = Some(info);
        self.helo = None;
        self.tx = None;
        self.user = None;
        self.owned.clear();
        self.mode = Mode::Command;
    }

    fn timeout(&self) -> Duration {
        match self.mode {
            Mode::Data(_) | Mode::Bdat { .. } => self.cfg.data_timeout,
            _ => self.cfg.command_timeout,
        }
    }

    fn on_timeout(&mut self, out: &mut Vec<u8>) {
        SmtpError::Timeout.reply().0.write_to(out);
    }

    fn on_shutdown(&mut self, out: &mut Vec<u8>) {
        SmtpError::ShuttingDown.reply().0.write_to(out);
    }

    fn is_idle(&self) -> bool {
        self.tx.is_none() && matches!(self.mode, Mode::Command)
    }
}

/// A command line without its CRLF (RFC 5321 §2.3.8: a bare LF ends no line).
fn command_line(line: Line) -> Result<Vec<u8>, SmtpError> {
    match line {
        Line::TooLong => Err(SmtpError::LineTooLong),
        Line::Complete(l) => match l.strip_suffix(b"\r\n") {
            Some(text) => Ok(text.to_vec()),
            None => Err(SmtpError::BareLineFeed),
        },
    }
}

/// A short random identifier for a message: in its Received line, the logs, the 250.
fn new_message_id() -> String {
    message::trace::unique_id()
}

fn is_submission(cfg: &SmtpConfig) -> bool {
    cfg.role == Role::Submission
}
