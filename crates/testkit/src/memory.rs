//! A transcript wire without a socket: bytes go straight into a protocol
//! session's state machine (conventions.md §1: the fast half of each transcript).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use net::{ConnInfo, Flow, Session, TlsInfo};
use store::Store;

use crate::fixture::inbox_count;
use crate::transcript::Wire;

pub struct MemoryWire<S: Session> {
    session: S,
    input: BytesMut,
    output: VecDeque<u8>,
    closed: bool,
    tls_pending: bool,
    store: Arc<dyn Store>,
}

/// The TLS parameters an in-memory STARTTLS pretends to have negotiated.
pub fn fake_tls() -> TlsInfo {
    TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_256_GCM_SHA384".into(),
        channel_binding: Some(vec![0x42; 32]),
    }
}

/// A connection from 127.0.0.1, with TLS from the start when `implicit_tls`.
pub fn conn_info(implicit_tls: bool) -> ConnInfo {
    ConnInfo {
        id: 1,
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        local: SocketAddr::from(([127, 0, 0, 1], 25)),
        tls: implicit_tls.then(fake_tls),
    }
}

impl<S: Session> MemoryWire<S> {
    pub fn new(mut session: S, store: Arc<dyn Store>) -> MemoryWire<S> {
        let mut greeting = Vec::new();
        session.greeting(&mut greeting);
        MemoryWire {
            session,
            input: BytesMut::new(),
            output: greeting.into_iter().collect(),
            closed: false,
            tls_pending: false,
            store,
        }
    }
}

impl<S: Session> Wire for MemoryWire<S> {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.closed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "closed",
            ));
        }
        self.input.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut flow = self.session.receive(&mut self.input, &mut out).await;
        // As the driver does: an answer made in pieces is made to its end.
        while flow == Flow::Continue && self.session.has_more() {
            flow = self.session.resume(&mut self.input, &mut out).await;
        }
        self.output.extend(out);
        match flow {
            Flow::Continue => {}
            Flow::Close => self.closed = true,
            Flow::StartTls => {
                // As the driver does (C-TLS1): what followed the command is dropped.
                self.input.clear();
                self.tls_pending = true;
            }
            // A transcript is plain text: it ends where compression starts
            // (compressed sessions are tested on real sockets).
            Flow::Compress => self.closed = true,
        }
        Ok(())
    }

    async fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let bytes: Vec<u8> = self.output.iter().copied().collect();
        match bytes.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                self.output.drain(..i + 2);
                Ok(Some(String::from_utf8_lossy(&bytes[..i]).into_owned()))
            }
            None if self.closed => Ok(None),
            None => Err(std::io::Error::other(format!(
                "no reply; pending output {:?}",
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }

    async fn starttls(&mut self) -> std::io::Result<()> {
        if !std::mem::take(&mut self.tls_pending) {
            return Err(std::io::Error::other("the session did not ask for TLS"));
        }
        self.session.tls_started(fake_tls());
        // What the session says unprompted right after the handshake
        // (ManageSieve's capabilities, RFC 5804 §2.2), as the driver would.
        if tokio::time::timeout(std::time::Duration::ZERO, self.session.wait_event())
            .await
            .is_ok()
        {
            let mut out = Vec::new();
            self.session.on_event(&mut out).await;
            self.output.extend(out);
        }
        Ok(())
    }

    async fn inbox_count(&mut self, address: &str) -> Result<usize, String> {
        inbox_count(&self.store, address).await
    }

    async fn queue_count(&mut self) -> Result<usize, String> {
        self.store
            .queue_list()
            .await
            .map(|q| q.len())
            .map_err(|e| e.to_string())
    }
}
