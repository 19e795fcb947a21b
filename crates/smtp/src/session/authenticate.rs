//! AUTH (RFC 4954): SASL over SMTP, submission only, TLS only (RFC 8314 §3).

use auth::{Exchange, Mechanism, Progress, Step, Verdict};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Mode, SmtpSession, is_submission};
use crate::error::SmtpError;
use crate::reply::{Enhanced, Reply};

impl SmtpSession {
    pub(super) async fn auth_start(
        &mut self,
        mechanism: &str,
        initial: Option<&str>,
    ) -> Result<Reply, SmtpError> {
        if !is_submission(&self.cfg) {
            // Not offered on the MX port (C-AU7).
            return Err(SmtpError::NotImplemented);
        }
        if self.tls.is_none() {
            // C-TLS5: refused before TLS without looking at the credentials.
            return Err(SmtpError::TlsRequired);
        }
        if self.user.is_some() {
            return Err(SmtpError::AlreadyAuthenticated);
        }
        if self.tx.is_some() {
            return Err(SmtpError::BadSequence("AUTH inside a mail transaction"));
        }
        if self.services.auth.is_blocked(self.client_ip()).await {
            return Err(SmtpError::AuthBlocked);
        }
        let binding = self.channel_binding();
        let mechanism =
            Mechanism::parse(mechanism, binding.is_some()).ok_or(SmtpError::UnknownMechanism)?;
        // RFC 4954 §4: "=" is an empty initial response.
        let initial = match initial {
            None => None,
            Some("=") => Some(Vec::new()),
            Some(text) => Some(B64.decode(text).map_err(|_| SmtpError::AuthMalformed)?),
        };
        let mut exchange = Exchange::new(mechanism, binding);
        let step = exchange.respond(initial.as_deref());
        self.auth_step(exchange, step).await
    }

    /// A client line during the exchange: base64, or "*" to cancel (RFC 4954 §4).
    pub(super) async fn auth_response(
        &mut self,
        mut exchange: Exchange,
        line: &[u8],
    ) -> Result<Reply, SmtpError> {
        if line == b"*" {
            return Err(SmtpError::AuthCancelled);
        }
        let data = B64.decode(line).map_err(|_| SmtpError::AuthMalformed)?;
        let step = exchange.respond(Some(&data));
        self.auth_step(exchange, step).await
    }

    /// Carry out one step of the exchange; a challenge keeps the session in AUTH mode.
    async fn auth_step(&mut self, mut exchange: Exchange, step: Step) -> Result<Reply, SmtpError> {
        match self
            .services
            .auth
            .advance(self.client_ip(), &mut exchange, step)
            .await
        {
            Progress::Challenge(data) => {
                self.mode = Mode::Auth(exchange);
                Ok(Reply::bare(334, B64.encode(data)))
            }
            Progress::Done(verdict) => self.auth_verdict(verdict).await,
            Progress::Malformed => Err(SmtpError::AuthMalformed),
        }
    }

    pub(super) async fn auth_verdict(&mut self, verdict: Verdict) -> Result<Reply, SmtpError> {
        match verdict {
            Verdict::Success(account) => {
                let mut owned = vec![account.address.clone()];
                owned.extend(
                    self.services
                        .mda
                        .store()
                        .aliases_targeting(&account.address)
                        .await
                        .map_err(SmtpError::Store)?,
                );
                self.owned = owned;
                self.user = Some(account);
                Ok(Reply::new(
                    235,
                    Enhanced(2, 7, 0),
                    "Authentication successful",
                ))
            }
            Verdict::Denied { blocked: false } => Err(SmtpError::AuthFailed),
            Verdict::Denied { blocked: true } | Verdict::Blocked => Err(SmtpError::AuthBlocked),
            Verdict::TemporaryFailure => Err(SmtpError::AuthTemporary),
        }
    }
}
