//! The session's side of the inbound check pipeline (`antispam::Checks`):
//! what to ask at MAIL, RCPT and the end of DATA, and what to do with the
//! answers. An objection becomes [`SmtpError::Policy`], whose reply the one
//! error mapping gives.

use antispam::{Assessment, Client};
use delivery::Envelope;
use message::ReversePath;
use message::spool::Spooled;

use super::envelope::escape;
use super::{SmtpSession, Transaction, is_submission};
use crate::error::SmtpError;

/// What the end of DATA decided for the message the MX takes.
pub(super) struct Assessed {
    /// Our Authentication-Results (and ARC set), to put on top.
    pub header: String,
    /// The message, with forged claims of our authserv-id removed.
    pub body: Spooled,
    /// Per local account: Junk or not, and its X-Spam-Status field.
    pub verdicts: Vec<delivery::Verdict>,
    /// The spam score and the rules that made it, for the delivery history.
    pub spam: Option<String>,
}

impl SmtpSession {
    /// The client as the pipeline sees it, looked up once per connection.
    async fn client(&mut self) -> Client {
        if let Some(c) = &self.client {
            return c.clone();
        }
        let c = self.services.checks.client(self.client_ip()).await;
        if !c.listed.is_empty() || !c.allowed.is_empty() {
            tracing::info!(
                listed = ?c.listed.iter().map(|l| l.zone.as_str()).collect::<Vec<_>>(),
                allowed = ?c.allowed,
                "DNS lists"
            );
        }
        self.client = Some(c.clone());
        c
    }

    /// MAIL: on the MX, iprev, SPF and the session's signals; on
    /// submission, the user's hourly limits.
    pub(super) async fn mail_checks(
        &mut self,
        sender: &ReversePath,
    ) -> Result<Assessment, SmtpError> {
        if is_submission(&self.cfg) {
            if let Some(user) = &self.user {
                self.services
                    .checks
                    .sending_allowed(&user.address, 0)
                    .await
                    .map_err(SmtpError::Policy)?;
            }
            return Ok(Assessment::default());
        }
        let client = self.client().await;
        let helo = self
            .helo
            .as_ref()
            .map(|h| h.name.clone())
            .unwrap_or_default();
        self.services
            .checks
            .mail(&client, &helo, &sender.to_string())
            .await
            .map_err(SmtpError::Policy)
    }

    /// RCPT of a recipient we take: on the MX, block lists and
    /// greylisting; on submission, the recipients limit.
    pub(super) async fn rcpt_checks(&mut self, recipient: &str) -> Result<(), SmtpError> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        let (sender, count) = (tx.sender.to_string(), tx.recipients.len() as u64);
        if is_submission(&self.cfg) {
            if let Some(user) = &self.user {
                self.services
                    .checks
                    .sending_allowed(&user.address, count + 1)
                    .await
                    .map_err(SmtpError::Policy)?;
            }
            return Ok(());
        }
        let client = self.client().await;
        self.services
            .checks
            .rcpt(&client, &sender, recipient)
            .await
            .map_err(|o| {
                tracing::info!(to = %escape(recipient), objection = %o, "RCPT deferred or refused by the checks");
                SmtpError::Policy(o)
            })
    }

    /// The end of DATA on the MX: sender authentication of the message,
    /// content, score (design.md principle 3: a refusal is the answer to
    /// the data, never a bounce).
    pub(super) async fn assess_message(
        &self,
        tx: &mut Transaction,
        body: Spooled,
    ) -> Result<Assessed, SmtpError> {
        let accounts: Vec<store::AccountId> = tx
            .recipients
            .iter()
            .flat_map(|r| r.local.iter().map(|t| t.account))
            .collect();
        if is_submission(&self.cfg) {
            return Ok(Assessed {
                header: String::new(),
                body,
                verdicts: Vec::new(),
                spam: None,
            });
        }
        let seal = match (self.cfg.arc_seal, &self.services.signer) {
            (true, Some(signer)) => match self.services.mda.forwarding_domain(&tx.recipients).await
            {
                Some(domain) => signer.arc_key(&domain, self.now()).await,
                None => None,
            },
            _ => None,
        };
        let verdict = self
            .services
            .checks
            .data(
                &mut tx.assessment,
                &body,
                &tx.sender.to_string(),
                seal,
                &accounts,
            )
            .await;
        let verdict = match verdict {
            Ok(v) => v,
            Err(o) => {
                tracing::info!(msg = %tx.id, objection = %o, "message refused by the checks");
                return Err(SmtpError::Policy(o));
            }
        };
        tracing::info!(
            msg = %tx.id,
            spf = ?tx.assessment.sender.as_ref().map(|s| s.spf().result),
            dmarc = ?verdict.dmarc.iter().map(|e| (e.from_domain.as_str(), e.result.as_str())).collect::<Vec<_>>(),
            score = format!("{:.1}", verdict.score),
            rules = %antispam::score::rule_list(&verdict.hits),
            junk = verdict.accounts.iter().filter(|a| a.junk).count(),
            "checks"
        );
        // Fields claiming to be our own results go (RFC 8601 §5); the body
        // after the header section stays where it is.
        let body = match policy::results::without_our_results(body.header(), &self.cfg.hostname) {
            std::borrow::Cow::Borrowed(_) => body,
            std::borrow::Cow::Owned(stripped) => body
                .skip(body.header().len())
                .with_prefix(&stripped)
                .map_err(crate::data::spool_error)?,
        };
        let spam = format!(
            "{:.1} ({})",
            verdict.score,
            antispam::score::rule_list(&verdict.hits)
        );
        Ok(Assessed {
            header: verdict.auth_header,
            spam: Some(spam),
            body,
            verdicts: verdict
                .accounts
                .into_iter()
                .map(|a| delivery::Verdict {
                    account: a.account,
                    junk: a.junk,
                    field: a.field,
                    spam: Some(delivery::SpamLevel {
                        level: a.level,
                        percent: a.percent,
                    }),
                })
                .collect(),
        })
    }

    /// After a message is stored. Submission: count it for the user, and
    /// when the user's sending now looks like a stolen password, tell the
    /// administrator (the account is held by then). MX: a delivery report
    /// from `<>` counts as a bounce for the local accounts it reaches.
    pub(super) async fn after_delivery(&self, envelope: &Envelope, body: &Spooled) {
        let checks = &self.services.checks;
        if let (true, Some(user)) = (is_submission(&self.cfg), &self.user) {
            let mut domains: Vec<String> = envelope
                .recipients
                .iter()
                .filter_map(|r| {
                    r.address
                        .rsplit_once('@')
                        .map(|(_, d)| d.to_ascii_lowercase())
                })
                .collect();
            domains.sort();
            domains.dedup();
            let count = envelope.recipients.len() as u64;
            // Scored on its beginning, as the MX scores (C-FT9).
            let view = body
                .view(antispam::pipeline::CONTENT_VIEW)
                .unwrap_or_else(|_| bytes::Bytes::copy_from_slice(body.head()));
            if let Some(reason) = checks.submitted(&user.address, domains, count, &view).await {
                self.notify_hold(&user.address, &reason).await;
            }
            return;
        }
        if envelope.sender.is_empty() && is_delivery_report(body.header()) {
            let now = self.now();
            for target in envelope.recipients.iter().flat_map(|r| &r.local) {
                if let Err(e) = self
                    .services
                    .mda
                    .store()
                    .record_bounce(&target.address, now)
                    .await
                {
                    tracing::warn!(error = %e, "cannot count a bounce");
                }
            }
        }
    }

    /// The administrator hears of a hold: postmaster of the user's domain.
    async fn notify_hold(&self, account: &str, reason: &antispam::limits::HoldReason) {
        let domain = account.rsplit_once('@').map_or("", |(_, d)| d);
        let to = format!("postmaster@{domain}");
        let now = self.now();
        let notice = antispam::limits::hold_notice(&self.cfg.hostname, &to, account, reason, now);
        match self
            .services
            .mda
            .deliver_generated("", std::slice::from_ref(&to), notice, now)
            .await
        {
            Ok(_) => tracing::warn!(%account, %to, %reason, "hold notice sent"),
            Err(e) => tracing::warn!(%account, error = %e, "hold notice: cannot store"),
        }
    }
}

/// RFC 3464 §2: `multipart/report; report-type=delivery-status`.
fn is_delivery_report(body: &[u8]) -> bool {
    message::header::fields_named(body, "Content-Type")
        .first()
        .is_some_and(|f| {
            let v = f.unfolded().to_ascii_lowercase();
            v.contains("multipart/report") && v.contains("delivery-status")
        })
}
