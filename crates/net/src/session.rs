//! The contract between a protocol and the network: a session is a state
//! machine that owns no socket (design.md principle 1). Bytes go in, replies
//! come out; the driver (`driver.rs`) does the I/O around it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;

/// What the driver does after a call into the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Write the output, discard every byte the client sent after the command
    /// (hardening.md C-TLS1..C-TLS3), then run the TLS handshake.
    StartTls,
    /// Write the output, then close the connection.
    Close,
    /// Write the output, then compress both directions (RFC 4978); the
    /// input left unread is already compressed.
    Compress,
}

/// The negotiated TLS parameters, for Received headers and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// The IANA name of the cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// RFC 9266 `tls-exporter` channel-binding data, on TLS 1.3 only (SCRAM
    /// -PLUS). Not secret, but not for logs either.
    pub channel_binding: Option<Vec<u8>>,
}

/// One accepted connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Unique within the process; on every log line of the connection.
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Set from the start on implicit-TLS listeners.
    pub tls: Option<TlsInfo>,
}

pub trait Session: Send + 'static {
    /// What the server says first (SMTP 220, IMAP `* OK`, POP3 `+OK`).
    fn greeting(&mut self, out: &mut Vec<u8>);

    /// Consume what can be consumed of `input` (leave an incomplete command there),
    /// append the replies to `out`. The session keeps `input` bounded: a line longer
    /// than its limit is consumed and answered with an error, never kept growing.
    fn receive(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> impl Future<Output = Flow> + Send;

    /// The session has more to write before it reads again: a long answer
    /// (an IMAP FETCH of many or large messages) is produced a piece at a
    /// time, each piece written before the next is made, so a client that
    /// reads slowly or not at all holds one piece of memory, not the whole
    /// answer (backpressure, hardening.md C-SL2).
    fn has_more(&self) -> bool {
        false
    }

    /// Append the next piece of the answer to `out`; once it is finished,
    /// go on with the commands the client pipelined behind it in `input`.
    fn resume(
        &mut self,
        _input: &mut BytesMut,
        _out: &mut Vec<u8>,
    ) -> impl Future<Output = Flow> + Send {
        async { Flow::Continue }
    }

    /// Postscreen's pregreet test: when Some, the greeting just written is
    /// only its first part, and the driver waits this long for the client to
    /// stay silent before asking for the rest ([`Session::greeting_done`]).
    /// A client that speaks first is an early talker
    /// ([`Session::early_talker`]).
    fn pregreet_wait(&self) -> Option<Duration> {
        None
    }

    /// The client stayed silent through the wait: finish the greeting.
    fn greeting_done(&mut self, _out: &mut Vec<u8>) {}

    /// The client sent these bytes before the greeting ended: answer (the
    /// driver closes when the flow says so).
    fn early_talker(&mut self, _input: &[u8], _out: &mut Vec<u8>) -> Flow {
        Flow::Continue
    }

    /// The TLS handshake after [`Flow::StartTls`] succeeded.
    fn tls_started(&mut self, info: TlsInfo);

    /// How long to wait for the client's next bytes in the current state.
    fn timeout(&self) -> Duration;

    /// The client was silent for [`Session::timeout`]: say goodbye (the driver closes).
    fn on_timeout(&mut self, out: &mut Vec<u8>);

    /// The server is stopping: say goodbye (the driver closes).
    fn on_shutdown(&mut self, out: &mut Vec<u8>);

    /// Whether the session is between transactions, so that a stopping server may
    /// close it now without cutting a client off in the middle of something.
    fn is_idle(&self) -> bool {
        true
    }

    /// Resolves when the session has something to say unprompted (IMAP IDLE).
    fn wait_event(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// Write what [`Session::wait_event`] announced.
    fn on_event(&mut self, _out: &mut Vec<u8>) -> impl Future<Output = Flow> + Send {
        async { Flow::Continue }
    }
}

/// A protocol served on a listener: makes one session per connection.
pub trait Protocol: Send + Sync + 'static {
    type Session: Session;

    /// For logs: `smtp`, `submission`, `imap`...
    fn name(&self) -> &'static str;

    fn new_session(&self, conn: &ConnInfo) -> Self::Session;

    /// Sent to a connection refused by the connection limits, before closing it
    /// (the protocol's "try later": SMTP 421, IMAP `* BYE`, POP3 `-ERR`).
    fn busy_reply(&self) -> &'static [u8];

    /// ALPN protocol ids this service answers to on TLS (hardening.md C-TLS10).
    fn alpn(&self) -> &'static [&'static [u8]] {
        &[]
    }
}
