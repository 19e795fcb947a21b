//! Test-only helpers (conventions.md §6): the transcript format and runner
//! (`transcript`), a client connection with STARTTLS (`tcp`), and a real
//! `tern serve` with its own temporary data (`server`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod dns;
mod dnssec;
pub mod fixture;
pub mod memory;
pub mod postgres;
pub mod server;
pub mod tcp;
pub mod transcript;

pub use server::{TernServer, ephemeral_listeners};
pub use tcp::{Probe, TcpWire};
pub use transcript::{Transcript, Wire};

/// The base64 SASL PLAIN response for a user and password (RFC 4616).
pub fn sasl_plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Deliver one message over SMTP (blocking), waiting for the 354 before the data;
/// panics unless the server answers 250 at the end.
pub fn send_smtp(addr: std::net::SocketAddr, from: &str, to: &str, content: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(format!("EHLO x\r\nMAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes())
        .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("354 ") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before 354: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    s.write_all(format!("{content}\r\n.\r\nQUIT\r\n").as_bytes())
        .unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("250 2.0.0 Ok"), "{rest}");
}
