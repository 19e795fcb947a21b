//! Test-only helpers (conventions.md §6): the transcript format and runner
//! (`transcript`), a client connection with STARTTLS (`tcp`), and a real
//! `tern serve` with its own temporary data (`server`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fixture;
pub mod memory;
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
