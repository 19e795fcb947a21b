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
use crate::command::Param;
use crate::config::{Role, SmtpConfig};
use crate::error::SmtpError;

/// ESMTP parameters of MAIL or RCPT (RFC 5321 §4.1.2 esmtp-param):
/// keyword and value, as a client would write them (`HOLDFOR`, `300`).
pub type Parameters = Vec<(String, Option<String>)>;

/// What is handed over.
#[derive(Debug, Clone)]
pub struct LocalSubmission {
    /// The envelope sender (an address the user may send as).
    pub sender: String,
    /// MAIL parameters (FUTURERELEASE's HOLDFOR/HOLDUNTIL, DSN's RET…),
    /// checked as the submission port checks them.
    pub sender_params: Parameters,
    /// Each recipient with its RCPT parameters (DSN's NOTIFY, ORCPT).
    pub recipients: Vec<(String, Parameters)>,
    /// The message, CRLF line endings, without dot-stuffing, spooled (a
    /// large one is not held in memory).
    pub message: Spooled,
    /// Where the user is (their sending limits and the log see it).
    pub client: IpAddr,
}

/// The outcome of a message taken.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The id of "queued as", in the history and logs.
    pub id: String,
    /// The queue entry holding it, if the queue took it.
    pub queue_id: Option<i64>,
    /// When a held message is released (FUTURERELEASE), Unix seconds.
    pub release_at: Option<i64>,
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
        if submission.message.len() > cfg.max_message_size {
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
            .mail(
                &format!("<{}>", submission.sender),
                &params(&submission.sender_params),
                false,
            )
            .await?;
        let release_at = session
            .tx
            .as_ref()
            .and_then(|t| super::content::queue_options(&t.params, session.now()).release_at);
        let mut refused = Vec::new();
        for (r, p) in &submission.recipients {
            if let Err(e) = session.rcpt(&format!("<{r}>"), &params(p)).await {
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
        session.end_of_message(Ok(submission.message)).await?;
        Ok(Submitted {
            id,
            queue_id: session.last_queue_id,
            release_at,
            refused,
        })
    }

    /// The service extensions a submission session offers `account` once
    /// authenticated (its EHLO keywords with their arguments), those whose
    /// parameters an envelope can carry (RFC 8621 §7 `submissionExtensions`).
    pub fn submission_extensions(
        cfg: Arc<SmtpConfig>,
        services: Arc<Services>,
        account: &AccountRecord,
    ) -> Vec<(String, Vec<String>)> {
        const CARRIED: [&str; 6] = [
            "SIZE",
            "DSN",
            "DELIVERBY",
            "MT-PRIORITY",
            "FUTURERELEASE",
            "SMTPUTF8",
        ];
        let local = SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), 0);
        let conn = net::ConnInfo {
            id: 0,
            peer: local,
            local,
            tls: None,
        };
        let mut session = SmtpSession::new(cfg, services, &conn);
        session.user = Some(account.clone());
        session
            .hello("localhost", true)
            .lines
            .iter()
            .skip(1)
            .filter_map(|line| {
                let mut words = line.split_whitespace().map(str::to_string);
                let name = words.next()?;
                CARRIED
                    .contains(&name.as_str())
                    .then(|| (name, words.collect()))
            })
            .collect()
    }
}

/// Parameters as the session's steps take them.
fn params(given: &Parameters) -> Vec<Param<'_>> {
    given
        .iter()
        .map(|(k, v)| Param {
            keyword: k.to_ascii_uppercase(),
            value: v.as_deref(),
        })
        .collect()
}
