//! Tern's SMTP client (RFC 5321 §3, §4): one connection to one MX address,
//! EHLO with HELO fallback, opportunistic STARTTLS (RFC 3207), PIPELINING
//! (RFC 2920), SIZE (RFC 1870), 8BITMIME, SMTPUTF8 (RFC 6531), CHUNKING
//! (RFC 3030), DSN parameters (RFC 3461).
//!
//! The data leaves with CRLF line endings only and dot-stuffed, or in BDAT
//! chunks (hardening.md C-SM4). Replies are read by the bounded `ReplyReader`
//! (C-OB1, C-OB2); whatever the server sent before the TLS handshake is
//! dropped (C-TLS6). Timeouts are those of RFC 5321 §4.5.3.2 (C-OB5).

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use message::spool::Spooled;
use message::wire::WireForm;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::reply::{Reply, ReplyError, ReplyReader};

/// RFC 5321 §4.5.3.2 client timeouts.
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    /// §4.5.3.2.1: the 220 greeting, 5 minutes.
    pub greeting: Duration,
    /// §4.5.3.2.2-3: MAIL and RCPT (and EHLO, STARTTLS), 5 minutes.
    pub command: Duration,
    /// §4.5.3.2.4: the 354 after DATA, 2 minutes.
    pub data_init: Duration,
    /// §4.5.3.2.5: each block of data, 3 minutes.
    pub data_block: Duration,
    /// §4.5.3.2.6: the reply after the final dot, 10 minutes.
    pub data_final: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(60 * m);
        Timeouts {
            connect: Duration::from_secs(30),
            greeting: min(5),
            command: min(5),
            data_init: min(2),
            data_block: min(3),
            data_final: min(10),
        }
    }
}

#[derive(Clone)]
pub struct ClientSettings {
    /// Our name in EHLO.
    pub helo_name: String,
    pub timeouts: Timeouts,
    /// Local address for outgoing connections (`[outbound] source`).
    pub source: Option<IpAddr>,
    pub tls: Arc<rustls::ClientConfig>,
}

/// What the server offered in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub pipelining: bool,
    pub size: Option<u64>,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub chunking: bool,
    pub dsn: bool,
    pub starttls: bool,
    pub auth: Vec<String>,
    /// RFC 2852.
    pub deliver_by: bool,
    /// RFC 6710.
    pub mt_priority: bool,
    /// RFC 9422 `LIMITS RCPTMAX=`: recipients per transaction.
    pub rcpt_max: Option<usize>,
    /// RFC 8689.
    pub require_tls: bool,
}

impl Extensions {
    /// Parse an EHLO reply's lines after the first (RFC 5321 §4.1.1.1).
    pub fn parse(reply: &Reply) -> Extensions {
        let mut e = Extensions::default();
        for line in reply.text.lines().skip(1) {
            let mut words = line.split_whitespace();
            let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => e.pipelining = true,
                "SIZE" => e.size = words.next().and_then(|v| v.parse().ok()).filter(|&v| v > 0),
                "8BITMIME" => e.eight_bit = true,
                "SMTPUTF8" => e.smtputf8 = true,
                "CHUNKING" => e.chunking = true,
                "DSN" => e.dsn = true,
                "STARTTLS" => e.starttls = true,
                "AUTH" => e.auth = words.map(|w| w.to_ascii_uppercase()).collect(),
                "DELIVERBY" => e.deliver_by = true,
                "MT-PRIORITY" => e.mt_priority = true,
                "REQUIRETLS" => e.require_tls = true,
                "LIMITS" => {
                    e.rcpt_max = words
                        .filter_map(|w| w.split_once('='))
                        .find(|(k, _)| k.eq_ignore_ascii_case("RCPTMAX"))
                        .and_then(|(_, v)| v.parse().ok())
                        .filter(|&n| n > 0)
                }
                _ => {}
            }
        }
        e
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("timeout waiting for {0}")]
    Timeout(&'static str),
    /// The server answered an error to the whole transaction (greeting, EHLO,
    /// MAIL, DATA...).
    #[error("{stage}: {}", .reply.one_line())]
    Reply { reply: Reply, stage: &'static str },
    #[error("{0}")]
    Protocol(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// TLS was required (MTA-STS) and the server did not offer or refused it.
    #[error("TLS required: {0}")]
    TlsRequired(String),
}

/// How a connection does TLS.
#[derive(Clone, Copy)]
pub enum TlsUse<'a> {
    /// None (a retry after an opportunistic handshake failed).
    Off,
    /// STARTTLS when offered, any certificate (`ClientSettings::tls`).
    Opportunistic,
    /// STARTTLS required and the certificate checked by this config for the
    /// MX host's name (RFC 8461 §4.2).
    Verified(&'a Arc<rustls::ClientConfig>),
}

impl ClientError {
    /// Only an explicit 5xx from the server is permanent; everything else is retried.
    pub fn permanent_reply(&self) -> Option<&Reply> {
        match self {
            ClientError::Reply { reply, .. } if reply.is_permanent() => Some(reply),
            _ => None,
        }
    }
}

impl From<ReplyError> for ClientError {
    fn from(e: ReplyError) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

/// One recipient of an outgoing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecipient {
    pub address: String,
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

/// The envelope of an outgoing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEnvelope {
    /// Empty for the null reverse-path (bounces).
    pub sender: String,
    pub recipients: Vec<OutRecipient>,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub smtputf8: bool,
    /// RFC 2852: seconds left (may be negative with N), R, T.
    pub by: Option<(i64, bool, bool)>,
    /// RFC 6710, passed on when not 0.
    pub priority: i8,
    /// RFC 8689: REQUIRETLS, passed on (and required of the next server).
    pub require_tls: bool,
}

/// What the server said about one recipient, in the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    Delivered(Reply),
    Temporary(Reply),
    Permanent(Reply),
}

impl RcptResult {
    pub fn reply(&self) -> &Reply {
        match self {
            RcptResult::Delivered(r) | RcptResult::Temporary(r) | RcptResult::Permanent(r) => r,
        }
    }
}

/// A reply we make up for a decision taken before sending (e.g. no SMTPUTF8).
pub fn local_reply(code: u16, enhanced: &str, text: &str) -> Reply {
    Reply {
        code,
        enhanced: Some(enhanced.into()),
        text: text.into(),
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// An open SMTP session with one server.
pub struct Session {
    stream: Stream,
    reader: ReplyReader,
    pub ext: Extensions,
    /// TLS version and cipher, once STARTTLS succeeded.
    pub tls: Option<String>,
    pub ip: IpAddr,
    pub mx: String,
    /// The name the server gave in its greeting (RFC 5321 §4.3.1).
    pub greeting_name: String,
    timeouts: Timeouts,
}

impl Session {
    /// Connect, read the greeting, EHLO (HELO if refused), and STARTTLS as
    /// `tls` says.
    pub async fn open(
        mx: &str,
        ip: IpAddr,
        port: u16,
        settings: &ClientSettings,
        tls: TlsUse<'_>,
    ) -> Result<Session, ClientError> {
        let t = &settings.timeouts;
        let tcp = tokio::time::timeout(
            t.connect,
            connect(SocketAddr::new(ip, port), settings.source),
        )
        .await
        .map_err(|_| ClientError::Timeout("the connection"))?
        .map_err(|e| ClientError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let mut s = Session {
            stream: Stream::Plain(tcp),
            reader: ReplyReader::default(),
            ext: Extensions::default(),
            tls: None,
            ip,
            mx: mx.to_string(),
            greeting_name: String::new(),
            timeouts: t.clone(),
        };
        let greeting = s.read(t.greeting, "the greeting").await?;
        if greeting.code != 220 {
            return Err(ClientError::Reply {
                reply: greeting,
                stage: "greeting",
            });
        }
        s.greeting_name = greeting
            .text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        s.hello(&settings.helo_name).await?;
        match tls {
            TlsUse::Off => {}
            TlsUse::Opportunistic if s.ext.starttls => {
                s.starttls(settings, &settings.tls, false).await?;
            }
            TlsUse::Opportunistic => {}
            TlsUse::Verified(_) if !s.ext.starttls => {
                return Err(ClientError::TlsRequired("STARTTLS is not offered".into()));
            }
            TlsUse::Verified(config) => s.starttls(settings, config, true).await?,
        }
        Ok(s)
    }

    async fn read(&mut self, timeout: Duration, what: &'static str) -> Result<Reply, ClientError> {
        match tokio::time::timeout(timeout, self.reader.read(&mut self.stream)).await {
            Err(_) => Err(ClientError::Timeout(what)),
            Ok(r) => Ok(r?),
        }
    }

    async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), ClientError> {
        let io = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(timeout, io).await {
            Err(_) => Err(ClientError::Timeout("sending")),
            Ok(r) => r.map_err(|e| ClientError::Protocol(format!("write failed: {e}"))),
        }
    }

    async fn command(&mut self, line: &str, what: &'static str) -> Result<Reply, ClientError> {
        self.write(format!("{line}\r\n").as_bytes(), self.timeouts.command)
            .await?;
        self.read(self.timeouts.command, what).await
    }

    /// EHLO; a server that refuses it gets HELO and no extensions (RFC 5321 §3.2).
    async fn hello(&mut self, name: &str) -> Result<(), ClientError> {
        let r = self
            .command(&format!("EHLO {name}"), "the EHLO reply")
            .await?;
        if r.code == 250 {
            self.ext = Extensions::parse(&r);
            return Ok(());
        }
        let r = self
            .command(&format!("HELO {name}"), "the HELO reply")
            .await?;
        if r.code != 250 {
            return Err(ClientError::Reply {
                reply: r,
                stage: "HELO",
            });
        }
        self.ext = Extensions::default();
        Ok(())
    }

    /// STARTTLS with `config`; `required`: a refusal is an error (else the
    /// session goes on in plaintext, RFC 3207 §4.1).
    async fn starttls(
        &mut self,
        settings: &ClientSettings,
        config: &Arc<rustls::ClientConfig>,
        required: bool,
    ) -> Result<(), ClientError> {
        let r = self.command("STARTTLS", "the STARTTLS reply").await?;
        if r.code != 220 && required {
            return Err(ClientError::TlsRequired(format!(
                "STARTTLS refused: {}",
                r.one_line()
            )));
        }
        if r.code != 220 {
            // Opportunistic TLS: go on in plaintext (RFC 3207 §4.1).
            tracing::info!(mx = %self.mx, reply = %r.one_line(), "STARTTLS refused; continuing without TLS");
            return Ok(());
        }
        // C-TLS6: nothing the server sent before the handshake is trusted.
        let dropped = self.reader.discard();
        if dropped > 0 {
            tracing::warn!(mx = %self.mx, bytes = dropped, "server sent data before the TLS handshake; discarded");
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ClientError::Tls("not a plain connection".into()));
        };
        let name = rustls::pki_types::ServerName::try_from(self.mx.clone())
            .unwrap_or_else(|_| rustls::pki_types::ServerName::IpAddress(self.ip.into()));
        let connector = TlsConnector::from(config.clone());
        let tls = tokio::time::timeout(self.timeouts.command, connector.connect(name, tcp))
            .await
            .map_err(|_| ClientError::Timeout("the TLS handshake"))?
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let info = net::tls::info(tls.get_ref().1);
        let checked = if required {
            ", certificate verified"
        } else {
            ""
        };
        self.tls = Some(format!("{} {}{checked}", info.version, info.cipher));
        self.stream = Stream::Tls(Box::new(tls));
        // RFC 3207 §4.2: forget what the server said before; ask again.
        self.hello(&settings.helo_name).await
    }

    /// One mail transaction. Recipient-level answers come back per recipient; a
    /// failure of the whole transaction is an error.
    /// The message is read from `data` a piece at a time as it goes out
    /// (hardening.md C-FT9): first one pass to learn whether it is 8-bit
    /// and, for BDAT, its size on the wire; then the pieces.
    pub async fn send(
        &mut self,
        env: &OutEnvelope,
        data: &Spooled,
    ) -> Result<Vec<RcptResult>, ClientError> {
        let all = |r: Reply, permanent: bool| -> Vec<RcptResult> {
            env.recipients
                .iter()
                .map(|_| {
                    if permanent {
                        RcptResult::Permanent(r.clone())
                    } else {
                        RcptResult::Temporary(r.clone())
                    }
                })
                .collect()
        };
        // RFC 8689 §4.2.1: REQUIRETLS goes only over TLS, to a server that
        // offers it (the runner has checked the TLS was authenticated).
        if env.require_tls && (self.tls.is_none() || !self.ext.require_tls) {
            return Ok(all(
                local_reply(
                    550,
                    "5.7.30",
                    "REQUIRETLS: the next server does not offer REQUIRETLS over TLS",
                ),
                true,
            ));
        }
        // RFC 6531 §3.4: a message that needs SMTPUTF8 cannot go to a server
        // without it. (Declared but not needed: it goes without the parameter.)
        if needs_smtputf8(env, data.header()) && !self.ext.smtputf8 {
            return Ok(all(
                local_reply(553, "5.6.7", "the next server does not support SMTPUTF8"),
                true,
            ));
        }
        // RFC 6152 §3: 8-bit data only to a server that announced 8BITMIME. The
        // runner converts what it can (message::seven_bit); what is left has
        // 8-bit header fields, which only SMTPUTF8 could carry.
        let survey = survey(data).map_err(spool_error)?;
        let eight_bit = survey.eight_bit;
        if eight_bit && !self.ext.eight_bit {
            return Ok(all(
                local_reply(
                    554,
                    "5.6.3",
                    "8-bit message and the next server does not accept 8BITMIME",
                ),
                true,
            ));
        }
        // RFC 1870 §6: do not send what the server said it would refuse.
        if self.ext.size.is_some_and(|max| data.len() > max) {
            return Ok(all(
                local_reply(552, "5.3.4", "message larger than the next server accepts"),
                true,
            ));
        }
        let mut commands = vec![self.mail_command(env, data.len(), eight_bit)];
        commands.extend(env.recipients.iter().map(|r| self.rcpt_command(r)));
        let mut replies = Vec::new();
        let mut data_reply = None;
        if self.ext.pipelining {
            // RFC 2920 §3.1: MAIL, the RCPTs and DATA in one group (BDAT waits:
            // the content should not go out before a recipient was accepted).
            let with_data = !self.ext.chunking;
            let mut batch: String = commands.iter().map(|c| format!("{c}\r\n")).collect();
            if with_data {
                batch.push_str("DATA\r\n");
            }
            self.write(batch.as_bytes(), self.timeouts.command).await?;
            for _ in &commands {
                replies.push(
                    self.read(self.timeouts.command, "a MAIL or RCPT reply")
                        .await?,
                );
            }
            if with_data {
                data_reply = Some(
                    self.read(self.timeouts.data_init, "the 354 after DATA")
                        .await?,
                );
            }
        } else {
            for c in &commands {
                let r = self.command(c, "a MAIL or RCPT reply").await?;
                let stop = replies.is_empty() && !r.is_positive();
                replies.push(r);
                if stop {
                    break;
                }
            }
        }
        let mail = replies.remove(0);
        if !mail.is_positive() {
            self.abandon(data_reply).await;
            return Err(ClientError::Reply {
                reply: mail,
                stage: "MAIL",
            });
        }
        let mut results: Vec<Option<RcptResult>> = replies
            .into_iter()
            .map(|r| match r.code {
                200..=299 => None,
                500.. => Some(RcptResult::Permanent(r)),
                _ => Some(RcptResult::Temporary(r)),
            })
            .collect();
        if results.iter().all(Option::is_some) {
            self.abandon(data_reply).await;
            return Ok(results.into_iter().flatten().collect());
        }
        let final_reply = self.content(data, survey.wire_len, data_reply).await?;
        let outcome = |r: &Reply| match r.code {
            200..=299 => RcptResult::Delivered(r.clone()),
            500.. => RcptResult::Permanent(r.clone()),
            _ => RcptResult::Temporary(r.clone()),
        };
        for slot in &mut results {
            if slot.is_none() {
                *slot = Some(outcome(&final_reply));
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    fn mail_command(&self, env: &OutEnvelope, size: u64, eight_bit: bool) -> String {
        let mut c = format!("MAIL FROM:<{}>", env.sender);
        if self.ext.size.is_some() {
            c.push_str(&format!(" SIZE={size}"));
        }
        if eight_bit && self.ext.eight_bit {
            c.push_str(" BODY=8BITMIME");
        }
        if env.smtputf8 && self.ext.smtputf8 {
            c.push_str(" SMTPUTF8");
        }
        // RFC 2852 §4.1.1: the time left, to a server that knows DELIVERBY.
        if let (Some((seconds, returns, trace)), true) = (env.by, self.ext.deliver_by)
            && (seconds > 0 || !returns)
        {
            let mode = if returns { "R" } else { "N" };
            let t = if trace { "T" } else { "" };
            c.push_str(&format!(" BY={seconds};{mode}{t}"));
        }
        if env.require_tls {
            c.push_str(" REQUIRETLS");
        }
        if env.priority != 0 && self.ext.mt_priority {
            c.push_str(&format!(" MT-PRIORITY={}", env.priority));
        }
        if self.ext.dsn {
            if let Some(ret) = &env.ret {
                c.push_str(&format!(" RET={ret}"));
            }
            if let Some(envid) = &env.envid {
                c.push_str(&format!(" ENVID={envid}"));
            }
        }
        c
    }

    fn rcpt_command(&self, r: &OutRecipient) -> String {
        let mut c = format!("RCPT TO:<{}>", r.address);
        if self.ext.dsn {
            if let Some(n) = &r.notify {
                c.push_str(&format!(" NOTIFY={n}"));
            }
            if let Some(o) = &r.orcpt {
                c.push_str(&format!(" ORCPT={o}"));
            }
        }
        c
    }

    /// End a transaction that will not carry the message. A pipelined DATA that
    /// got 354 anyway gets an empty message (RFC 2920 §3.1); then RSET.
    async fn abandon(&mut self, data_reply: Option<Reply>) {
        if data_reply.is_some_and(|r| r.code == 354) {
            let _ = self.command(".", "the reply after an empty message").await;
        }
        self.reset().await;
    }

    /// The message: BDAT when CHUNKING is offered (`wire_len`: its size on
    /// the wire), else DATA with dot-stuffing (`data_reply`: the answer to
    /// a DATA already sent in a pipelined group).
    async fn content(
        &mut self,
        data: &Spooled,
        wire_len: u64,
        data_reply: Option<Reply>,
    ) -> Result<Reply, ClientError> {
        if self.ext.chunking {
            let command = format!("BDAT {wire_len} LAST\r\n");
            self.write_message(command.as_bytes(), data, false).await?;
            return self
                .read(self.timeouts.data_final, "the reply after BDAT")
                .await;
        }
        let r = match data_reply {
            Some(r) => r,
            None => self.command("DATA", "the 354 after DATA").await?,
        };
        if r.code != 354 {
            if r.is_positive() {
                return Err(ClientError::Protocol(format!(
                    "DATA answered {} instead of 354",
                    r.one_line()
                )));
            }
            // Refused: that is the answer for the accepted recipients.
            self.reset().await;
            return Ok(r);
        }
        self.write_message(b"", data, true).await?;
        self.read(self.timeouts.data_final, "the reply after the data")
            .await
    }

    /// `before`, then the message in its wire form, a piece at a time
    /// (each piece within the data block timeout); with `stuff`, DATA's
    /// dot-stuffing and the final ".".
    async fn write_message(
        &mut self,
        before: &[u8],
        data: &Spooled,
        stuff: bool,
    ) -> Result<(), ClientError> {
        let mut form = WireForm::new(stuff);
        let mut piece = vec![0; PIECE];
        let mut out = before.to_vec();
        let mut at = 0;
        loop {
            let n = data.read_at(at, &mut piece).map_err(spool_error)?;
            if n == 0 {
                break;
            }
            at += n as u64;
            form.feed(&piece[..n], &mut out);
            self.write(&out, self.timeouts.data_block).await?;
            out.clear();
        }
        form.finish(&mut out);
        if stuff {
            out.extend_from_slice(b".\r\n");
        }
        self.write(&out, self.timeouts.data_block).await
    }

    /// RSET between transactions (RFC 5321 §4.1.1.5); false if the session is no
    /// longer usable.
    pub async fn reset(&mut self) -> bool {
        matches!(self.command("RSET", "the RSET reply").await, Ok(r) if r.code == 250)
    }

    /// AUTH PLAIN (RFC 4954, RFC 4616) to a smarthost; only over TLS, so a
    /// password never crosses the network in the clear.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Result<(), ClientError> {
        if self.tls.is_none() {
            return Err(ClientError::Protocol(
                "the relay offers no TLS; not sending the password in the clear".into(),
            ));
        }
        if !self.ext.auth.iter().any(|m| m == "PLAIN") {
            return Err(ClientError::Protocol(
                "the relay does not offer AUTH PLAIN".into(),
            ));
        }
        use base64::Engine;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        let r = self
            .command(&format!("AUTH PLAIN {token}"), "the AUTH reply")
            .await?;
        if r.code != 235 {
            return Err(ClientError::Reply {
                reply: r,
                stage: "AUTH",
            });
        }
        Ok(())
    }

    pub async fn quit(mut self) {
        let _ = self.command("QUIT", "the QUIT reply").await;
        let _ = self.stream.shutdown().await;
    }
}

/// RFC 6531 §3.2: whether a message declared SMTPUTF8 really needs it: a
/// non-ASCII address in the envelope, or non-ASCII in the header section.
fn needs_smtputf8(env: &OutEnvelope, header: &[u8]) -> bool {
    env.smtputf8
        && (!env.sender.is_ascii()
            || env.recipients.iter().any(|r| !r.address.is_ascii())
            || !header.is_ascii())
}

async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source.filter(|s| s.is_ipv4() == addr.is_ipv4()) {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    socket.connect(addr).await
}

/// What goes on the wire is read this many octets at a time.
const PIECE: usize = 64 * 1024;

fn spool_error(e: std::io::Error) -> ClientError {
    ClientError::Protocol(format!("cannot read the queued message: {e}"))
}

/// What the client must know before sending a message: whether it holds
/// 8-bit octets, and its size in wire form (BDAT's count).
struct Survey {
    eight_bit: bool,
    wire_len: u64,
}

fn survey(data: &Spooled) -> std::io::Result<Survey> {
    let mut form = WireForm::new(false);
    let (mut eight_bit, mut wire_len) = (false, 0u64);
    let mut out = Vec::with_capacity(PIECE + PIECE / 8);
    let mut count = |out: &mut Vec<u8>| {
        wire_len += out.len() as u64;
        out.clear();
    };
    data.chunks(|chunk| {
        eight_bit |= chunk.iter().any(|b| *b >= 0x80);
        form.feed(chunk, &mut out);
        count(&mut out);
    })?;
    form.finish(&mut out);
    count(&mut out);
    Ok(Survey {
        eight_bit,
        wire_len,
    })
}

/// The whole message in wire form (tests, small messages).
pub fn wire_form(data: &[u8], stuff: bool) -> Vec<u8> {
    message::wire::wire_form(data, stuff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C-SM4: lone CR and LF never leave; dots are stuffed; the end is CRLF.
    #[test]
    fn wire_form_is_clean() {
        assert_eq!(
            wire_form(b"a\r\n.b\n.\n\rc", true),
            b"a\r\n..b\r\n..\r\n\r\nc\r\n"
        );
        assert_eq!(wire_form(b"x\n.\ny", false), b"x\r\n.\r\ny\r\n");
        let smuggle = wire_form(b"Subject: x\r\n\r\nbody\n.\nMAIL FROM:<e@x>\r\n", true);
        assert!(!smuggle.windows(3).any(|w| w == b"\n.\n"));
        assert!(
            smuggle
                .windows(2)
                .enumerate()
                .all(|(i, w)| w[1] != b'\n' || w[0] == b'\r' || i == 0)
        );
    }

    #[test]
    fn the_survey_counts_the_wire_form() {
        let data = b"a\r\n.b\n.\n\rc\r\r\n\n.x\r";
        let s = survey(&Spooled::from_vec(data.to_vec())).unwrap();
        assert_eq!(s.wire_len, wire_form(data, false).len() as u64);
        assert!(!s.eight_bit);
        assert!(
            survey(&Spooled::from_vec(vec![b'a', 0xC3, 0xA9]))
                .unwrap()
                .eight_bit
        );
    }

    #[test]
    fn extensions() {
        let r = Reply { code: 250, enhanced: None, text: "mx Hello\nPIPELINING\nSIZE 1000\n8BITMIME\nSMTPUTF8\nCHUNKING\nDSN\nSTARTTLS\nAUTH PLAIN LOGIN\nLIMITS MAILMAX=10 RCPTMAX=50\nDELIVERBY 60\nMT-PRIORITY MIXER".into() };
        let e = Extensions::parse(&r);
        assert!(e.pipelining && e.eight_bit && e.smtputf8 && e.chunking && e.dsn && e.starttls);
        assert!(e.deliver_by && e.mt_priority);
        assert_eq!(e.rcpt_max, Some(50));
        assert_eq!(e.size, Some(1000));
        assert_eq!(e.auth, ["PLAIN", "LOGIN"]);
    }
}
