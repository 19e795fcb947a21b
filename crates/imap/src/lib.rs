//! IMAP4rev2 (RFC 9051), with IMAP4rev1 (RFC 3501) clients still served.
//!
//! Layout, bottom up: `mutf7` (IMAP4rev1 mailbox names), `parse` (the command
//! grammar), `reader` (assembling commands with literals, under limits),
//! `response` (writing strings and status lines), `error` (every failure and its
//! response).

pub mod error;
pub mod mutf7;
pub mod parse;
pub mod reader;
pub mod response;
