//! ManageSieve (RFC 5804): how Thunderbird, Roundcube, K-9 and sieve-connect
//! upload, check, list, activate and delete a user's Sieve scripts.
//!
//! Layout: `command` (the grammar: atoms, quoted strings, literals, read
//! incrementally and bounded), `session` (the state machine: capabilities,
//! STARTTLS, SASL, the script commands), `server` (the [`net::Protocol`]).

pub mod command;
mod server;
mod session;

pub use server::ManageSieveProtocol;
pub use session::{ManageSieveConfig, ManageSieveSession, Services};
