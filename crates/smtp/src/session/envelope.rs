//! MAIL (RFC 5321 §4.1.1.2) and RCPT (§4.1.1.3): who sends, who receives, and the
//! relay decision (hardening.md C-RL1..C-RL7).

use delivery::{Recipient, Resolution};
use message::address::{parse_forward_path, parse_reverse_path};
use message::{ForwardPath, Mailbox, ReversePath};

use super::{SmtpSession, Transaction, is_submission, new_message_id};
use crate::command::Param;
use crate::error::SmtpError;
use crate::params::{Hold, MailParams, mail_params, rcpt_params};
use crate::reply::{Enhanced, Reply};

impl SmtpSession {
    pub(super) async fn mail(
        &mut self,
        path: &str,
        params: &[Param<'_>],
        more_pending: bool,
    ) -> Result<Reply, SmtpError> {
        if self.helo.is_none() {
            return Err(SmtpError::BadSequence("send HELO/EHLO first"));
        }
        if self.tx.is_some() {
            return Err(SmtpError::BadSequence("nested MAIL command"));
        }
        if is_submission(&self.cfg) && self.user.is_none() {
            // RFC 6409 §4.3 (C-RL3).
            return Err(SmtpError::AuthRequired);
        }
        let mut params = mail_params(params)?;
        self.check_queue_params(&mut params)?;
        let sender = parse_reverse_path(path, params.smtputf8).map_err(SmtpError::Address)?;
        // RFC 1870 §6.2: refuse at once what is declared too big.
        if params.size.is_some_and(|s| s > self.cfg.max_message_size) {
            return Err(SmtpError::MessageTooBig);
        }
        if is_submission(&self.cfg) && !self.owns(&sender) {
            return Err(SmtpError::SenderNotOwned);
        }
        // RFC 2920: a client that did not negotiate PIPELINING (HELO) and
        // sends its next command before our reply is not an MTA (C-SM5;
        // Postfix's reject_unauth_pipelining, postscreen's pipelining test).
        if more_pending && !self.helo.as_ref().is_some_and(|h| h.extended) {
            return Err(SmtpError::UnnegotiatedPipelining);
        }
        let assessment = self.mail_checks(&sender).await?;
        let id = new_message_id();
        tracing::info!(msg = %id, from = %escape(&sender.to_string()), "MAIL");
        self.tx = Some(Transaction {
            id,
            sender,
            params,
            recipients: Vec::new(),
            reports: false,
            assessment,
            chunks: None,
        });
        Ok(Reply::new(250, Enhanced(2, 1, 0), "Sender OK"))
    }

    /// FUTURERELEASE (RFC 4865), DELIVERBY (RFC 2852), MT-PRIORITY (RFC
    /// 6710): only where offered, within our limits.
    fn check_queue_params(&self, params: &mut MailParams) -> Result<(), SmtpError> {
        let now = self.now();
        if params.require_tls && !self.require_tls_offered() {
            return Err(SmtpError::UnsupportedParameter(
                "REQUIRETLS (TLS first)".into(),
            ));
        }
        match params.hold {
            Some(_) if !self.future_release_offered() => {
                return Err(SmtpError::UnsupportedParameter("HOLDFOR/HOLDUNTIL".into()));
            }
            // RFC 4865 §4: beyond the advertised limit is a 501.
            Some(Hold::For(s)) if s > self.cfg.max_hold.as_secs() as i64 => {
                return Err(SmtpError::BadParameter(
                    "HOLDFOR (longer than offered)".into(),
                ));
            }
            Some(Hold::Until(t)) if t - now > self.cfg.max_hold.as_secs() as i64 => {
                return Err(SmtpError::BadParameter(
                    "HOLDUNTIL (later than offered)".into(),
                ));
            }
            _ => {}
        }
        // RFC 2852 §4.1: a return deadline shorter than we offered is refused.
        if let Some(by) = params.by
            && by.returns
            && by.seconds < self.cfg.min_deliver_by.as_secs() as i64
        {
            return Err(SmtpError::BadParameter(format!(
                "BY (at least {} seconds with R)",
                self.cfg.min_deliver_by.as_secs()
            )));
        }
        // RFC 6710 §5: an unauthenticated client gets no more than normal priority.
        if self.user.is_none()
            && let Some(p) = params.priority.as_mut()
        {
            *p = (*p).min(0);
        }
        Ok(())
    }

    pub(super) async fn rcpt(
        &mut self,
        path: &str,
        params: &[Param<'_>],
    ) -> Result<Reply, SmtpError> {
        let Some(tx) = &self.tx else {
            return Err(SmtpError::BadSequence("need MAIL before RCPT"));
        };
        let params = rcpt_params(params)?;
        let forward = parse_forward_path(path, tx.params.smtputf8).map_err(SmtpError::Address)?;
        // RFC 5321 §4.5.3.1.8: past the limit, 452 and the client goes on next time (C-SM9).
        if tx.recipients.len() >= self.cfg.max_recipients {
            return Err(SmtpError::TooManyRecipients);
        }
        let (mailbox, resolution) = match forward {
            ForwardPath::Mailbox(m) => {
                let r = self.resolve(&m).await?;
                (m, r)
            }
            ForwardPath::Postmaster => self.postmaster().await?,
        };
        let mut report_address = false;
        let (local, remote) = match resolution {
            Resolution::Deliver { local, remote } => (local, remote),
            // Only an authenticated submission may send to other domains; on the MX port
            // no sender address and no address trick grants relaying (C-RL1, C-RL2, C-RL4).
            Resolution::NotLocal if is_submission(&self.cfg) && self.user.is_some() => {
                (vec![], vec![mailbox.to_string()])
            }
            Resolution::NotLocal => return Err(SmtpError::RelayDenied),
            // Refused now, so no bounce is ever sent for it (C-RL7).
            Resolution::Unknown => return Err(SmtpError::UnknownUser),
            Resolution::Loop => return Err(SmtpError::AliasLoop),
            Resolution::Reports => {
                report_address = true;
                (vec![], vec![])
            }
            Resolution::BadSrs(why) => {
                tracing::info!(to = %escape(&mailbox.to_string()), %why, "RCPT refused: SRS");
                return Err(SmtpError::BadSrs);
            }
        };
        let declared = self.tx.as_ref().and_then(|t| t.params.size).unwrap_or(0);
        if let Some(full) = self
            .services
            .mda
            .over_quota(&local, declared)
            .await
            .map_err(SmtpError::Store)?
        {
            return Err(SmtpError::MailboxFull(full));
        }
        self.rcpt_checks(&mailbox.to_string()).await?;
        tracing::info!(to = %escape(&mailbox.to_string()), local = local.len(), remote = remote.len(), "RCPT");
        let Some(tx) = &mut self.tx else {
            return Err(SmtpError::BadSequence("need MAIL before RCPT"));
        };
        tx.reports |= report_address;
        tx.recipients.push(Recipient {
            address: mailbox.to_string(),
            local,
            remote,
            notify: params.notify,
            orcpt: params.orcpt,
        });
        Ok(Reply::new(250, Enhanced(2, 1, 5), "Recipient OK"))
    }

    async fn resolve(&self, m: &Mailbox) -> Result<Resolution, SmtpError> {
        self.services.mda.resolve(m).await.map_err(SmtpError::Store)
    }

    /// RFC 5321 §4.1.1.3: `<Postmaster>` without a domain is postmaster at our host
    /// name, or at its parent domain (mx.a.test -> a.test), whichever we serve.
    async fn postmaster(&self) -> Result<(Mailbox, Resolution), SmtpError> {
        let host = self.cfg.hostname.as_str();
        let parent = host
            .split_once('.')
            .map(|(_, p)| p)
            .filter(|p| p.contains('.'));
        let mut last = None;
        for domain in std::iter::once(host).chain(parent) {
            let m = Mailbox::parse(&format!("postmaster@{domain}")).map_err(SmtpError::Address)?;
            let r = self.resolve(&m).await?;
            if matches!(r, Resolution::Deliver { .. }) {
                return Ok((m, r));
            }
            last = Some((m, r));
        }
        last.ok_or(SmtpError::UnknownUser)
    }

    /// Whether the authenticated user may use this address (RFC 6409 §8; C-RL6):
    /// their own, an alias that leads to them, or a sub-address of either.
    pub(super) fn owns(&self, sender: &ReversePath) -> bool {
        match sender {
            ReversePath::Null => false,
            ReversePath::Mailbox(m) => self.owns_mailbox(m),
        }
    }

    pub(super) fn owns_mailbox(&self, m: &Mailbox) -> bool {
        let base = m.without_detail('+').map(|b| b.key());
        let key = m.key();
        self.owned
            .iter()
            .any(|o| *o == key || Some(o) == base.as_ref())
    }
}

/// Client-supplied text for a log line.
pub(super) fn escape(s: &str) -> String {
    s.chars().take(300).flat_map(char::escape_default).collect()
}
