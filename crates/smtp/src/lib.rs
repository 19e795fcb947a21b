//! SMTP: the server side of the MX (port 25) and the submission service
//! (587 with STARTTLS, 465 with implicit TLS).
//!
//! Layout, bottom up: `reply` (wire form of replies), `error` (every failure and
//! its one reply), `command` (the command grammar), `params` (ESMTP parameters),
//! `data` (DATA/BDAT content: dot-unstuffing, smuggling defence, limits),
//! `session` (the state machine, one module per command group), `server` (the
//! [`net::Protocol`] that makes sessions), `config`.

pub mod command;
pub mod config;
pub mod data;
pub mod error;
pub mod params;
pub mod reply;
mod server;
mod session;

pub use config::{Role, SmtpConfig};
pub use server::SmtpProtocol;
pub use session::{LocalSubmission, Parameters, Services, SmtpSession, Submitted};
