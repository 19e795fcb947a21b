//! Message format: RFC 5321 addresses, the RFC 5322 header section read
//! strictly, dates, and the trace fields Tern adds (Received, Return-Path,
//! Delivered-To).
//!
//! Layout: `address` (mailboxes, paths, domains), `header` (field splitting,
//! address lists), `date` (RFC 5322 dates, civil calendar), `trace`, `mime`
//! (the MIME tree with byte ranges, decoders), `outline` (the same tree
//! from a message read as a stream), `envelope` (IMAP ENVELOPE fields),
//! `xtext` (the RFC 3461 encoding of ESMTP parameters), `seven_bit` (8-bit
//! content to quoted-printable or base64 for servers without 8BITMIME).
//! `mbox` (RFC 4155 files, one message at a time),
//! `compose` (header fields and text bodies of the messages Tern writes,
//! folded within RFC 5322's line limits),
//! `dsn` (delivery status notifications, RFC 3464), `mdn` (disposition
//! notifications, RFC 8098, for Sieve rejections), `subject` (RFC 5256 base
//! subjects), `index` (what the search index keeps of a message), `xml`
//! (text in the XML documents Tern writes). Pure: no I/O of its own (`mbox`
//! reads the reader it is given).

pub mod address;
pub mod compose;
pub mod crlf;
pub mod date;
pub mod dsn;
pub mod envelope;
pub mod header;
pub mod index;
pub mod mbox;
pub mod mdn;
pub mod mime;
pub mod outline;
pub mod parsed;
pub mod seven_bit;
pub mod spool;
pub mod subject;
pub mod trace;
pub mod wire;
pub mod xml;
pub mod xtext;

pub use address::{AddressError, Domain, ForwardPath, Mailbox, ReversePath};
