//! POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), SASL AUTH (RFC 5034),
//! UIDL and TOP. APOP is not offered: it needs clear-text passwords on disk.
//!
//! Layout: `command` (the grammar), `session` (the state machine and the
//! maildrop), `lock` (the maildrop's exclusive-access lock, a store lease),
//! `server` (the [`net::Protocol`]).

pub mod command;
mod lock;
mod server;
mod session;

pub use server::Pop3Protocol;
pub use session::{Pop3Config, Pop3Session, Services};
