//! Sieve, the mail filtering language (RFC 5228), as Tern runs it at final
//! delivery: users' own rules for sorting, flagging, forwarding, refusing
//! and answering mail.
//!
//! Layout: `lexer` → `grammar` (the generic syntax of RFC 5228 §8) →
//! `compile` (every command, test and argument checked; errors with line
//! and column) → `ir` (the checked [`Script`]). `interp` runs a script on
//! a [`Mail`](mail::Mail) with a [`Context`] and a [`Host`] and gives back
//! an [`Outcome`]: actions, never performed here. `compare` holds the
//! comparators and match types, `date` the date parts, `vacation` and
//! `mailto` the rules of the responses and notifications, `respond` the
//! messages they send.
//!
//! The extensions are in [`EXTENSIONS`]; ManageSieve advertises exactly
//! that list.

pub mod action;
pub mod compare;
pub mod compile;
pub mod date;
pub mod error;
pub mod grammar;
mod interp;
pub mod ir;
pub mod lexer;
pub mod mail;
pub mod mailto;
pub mod respond;
pub mod vacation;

pub use action::{
    Action, Content, Context, Host, Limits, Notification, Outcome, SpamLevel, Tracked,
    VacationReply,
};
pub use compile::{EXTENSIONS, compile};
pub use error::{Position, SyntaxError};
pub use interp::run;
pub use ir::Script;
