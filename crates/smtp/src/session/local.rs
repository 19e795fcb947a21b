//! Submission from another protocol: a user logged in there (JMAP
//! EmailSubmission, RFC 8621 §7) hands over a message and its envelope,
//! and they go through this session's own MAIL, RCPT and end-of-message
//! steps as if an SMTP client on the submission port had sent them: the
//! same sender and From: checks, Date/Message-ID fixes, sending limits,
//! quota, DKIM signature, durable delivery and history, and the same
//! refusals. Nothing is parsed from text: the steps are called directly.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use auth::Verdict;
use message::spool::Spooled;
use store::AccountRecord;

use super::{Helo, Services, SmtpSession};
use crate::config::{Role, SmtpConfig};
use crate::error::SmtpError;

/// What is handed over.
#[derive(Debug, Clone)]
pub struct LocalSubmission {
    /// The envelope sender (an address the user may send as).
    pub sender: String,
    pub recipients: Vec<String>,
    /// The message, CRLF line endings, without dot-stuffing.
    pub message: Vec<u8>,
    /// Where the user is (their sending limits and the log see it).
    pub client: IpAddr,
}

/// The outcome of a message taken.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The id of "queued as", in the history and logs.
    pub id: String,
    /// Recipients refused at RCPT, with why; the others were taken.
    pub refused: Vec<(String, SmtpError)>,
}

impl SmtpSession {
    /// Submit as `account` (already authenticated by the caller): why the
    /// step that refused the whole message did, if one did (its SMTP reply
    /// is `SmtpError::reply`).
    pub async fn submit_as(
        cfg: Arc<SmtpConfig>,
        services: Arc<Services>,
        account: AccountRecord,
        submission: LocalSubmission,
    ) -> Result<Submitted, SmtpError> {
        if cfg.role != Role::Submission {
            return Err(SmtpError::RelayDenied);
        }
        if submission.message.len() as u64 > cfg.max_message_size {
            return Err(SmtpError::MessageTooBig);
        }
        let conn = net::ConnInfo {
            id: 0,
            peer: SocketAddr::new(submission.client, 0),
            local: SocketAddr::new(submission.client, 0),
            tls: None,
        };
        let mut session = SmtpSession::new(cfg, services, &conn);
        session.helo = Some(Helo {
            name: "localhost".into(),
            extended: true,
        });
        session.auth_verdict(Verdict::Success(account)).await?;
        session
            .mail(&format!("<{}>", submission.sender), &[], false)
            .await?;
        let mut refused = Vec::new();
        for r in &submission.recipients {
            if let Err(e) = session.rcpt(&format!("<{r}>"), &[]).await {
                refused.push((r.clone(), e));
            }
        }
        if refused.len() == submission.recipients.len() {
            return Err(refused
                .pop()
                .map(|(_, e)| e)
                .unwrap_or(SmtpError::BadSequence("no valid recipients")));
        }
        let id = session
            .tx
            .as_ref()
            .map(|t| t.id.clone())
            .unwrap_or_default();
        session
            .end_of_message(Ok(Spooled::from_vec(submission.message)))
            .await?;
        Ok(Submitted { id, refused })
    }
}
