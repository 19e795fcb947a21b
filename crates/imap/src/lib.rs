//! IMAP4rev2 (RFC 9051), with IMAP4rev1 (RFC 3501) clients still served, and
//! CONDSTORE/QRESYNC, IDLE, UIDPLUS, MOVE, LIST-EXTENDED, SPECIAL-USE, ESEARCH,
//! BINARY, LITERAL+, SASL-IR, ENABLE, ID, NAMESPACE, UNSELECT, SORT, ESORT,
//! THREAD (ORDEREDSUBJECT, REFERENCES), QUOTA, COMPRESS=DEFLATE, METADATA,
//! OBJECTID, SAVEDATE, PREVIEW, SEARCHRES, UTF8=ACCEPT, ACL with shared
//! mailboxes, LIST-MYRIGHTS.
//!
//! Layout, bottom up: `mutf7` (IMAP4rev1 mailbox names), `parse` (the command
//! grammar), `reader` (assembling commands with literals, under limits),
//! `response` (writing strings and status lines), `render` (ENVELOPE,
//! BODYSTRUCTURE, sections), `thread` (the RFC 5256 algorithms), `rights` (RFC 4314), `error`
//! (every failure and its response),
//! `session` (the state machine, one module per command group), `server`;
//! `client` reads another server's responses (for `tern import`).

pub mod client;
pub mod error;
pub mod mutf7;
pub mod parse;
pub mod reader;
pub mod render;
pub mod response;
pub mod rights;
mod server;
mod session;
pub mod thread;

pub use server::ImapProtocol;
pub use session::{ImapConfig, ImapSession, IndexCache, Services};
