//! JMAP EmailSubmission's way out (RFC 8621 §7): the submission port's
//! own session steps (`smtp::SmtpSession::submit_as`), so a message sent
//! through JMAP meets the same checks, limits, signing and queue as one
//! sent over SMTP AUTH; each refusal becomes the SetError type of §7.5.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use jmap::submission::{Envelope, Refusal, Sent, Submitter};
use smtp::error::SmtpError;
use smtp::{LocalSubmission, SmtpConfig, SmtpSession};
use store::AccountRecord;

pub struct SmtpSubmitter {
    pub config: Arc<SmtpConfig>,
    pub services: Arc<smtp::Services>,
}

/// The SMTP reply's text, as a client would read it.
fn said(e: &SmtpError) -> String {
    e.reply().0.one_line()
}

fn refusal(e: SmtpError) -> Refusal {
    let text = said(&e);
    match e {
        SmtpError::SenderNotOwned => Refusal::MailFrom(text),
        SmtpError::FromNotOwned | SmtpError::NoFrom => Refusal::From(text),
        SmtpError::Policy(_) => Refusal::ToSend(text),
        SmtpError::MessageTooBig | SmtpError::HeaderTooBig => Refusal::TooLarge(text),
        SmtpError::UnsupportedParameter(_) | SmtpError::BadParameter(_) => Refusal::Parameter(text),
        _ => Refusal::Other(text),
    }
}

impl Submitter for SmtpSubmitter {
    fn submit(
        &self,
        account: &AccountRecord,
        client: IpAddr,
        envelope: &Envelope,
        message: message::spool::Spooled,
    ) -> Pin<Box<dyn Future<Output = Result<Sent, Refusal>> + Send + '_>> {
        let submission = LocalSubmission {
            sender: envelope.mail_from.0.clone(),
            sender_params: envelope.mail_from.1.clone(),
            recipients: envelope.rcpt_to.clone(),
            message,
            client,
        };
        let account = account.clone();
        Box::pin(async move {
            let all: Vec<String> = submission
                .recipients
                .iter()
                .map(|(r, _)| r.clone())
                .collect();
            match SmtpSession::submit_as(
                self.config.clone(),
                self.services.clone(),
                account,
                submission,
            )
            .await
            {
                Ok(done) => Ok(Sent {
                    smtp_id: done.id,
                    queue_id: done.queue_id,
                    release_at: done.release_at,
                    refused: done
                        .refused
                        .iter()
                        .map(|(r, e)| (r.clone(), said(e)))
                        .collect(),
                }),
                // Every recipient refused at RCPT: the last one's reason.
                Err(
                    e @ (SmtpError::UnknownUser
                    | SmtpError::RelayDenied
                    | SmtpError::MailboxFull(_)
                    | SmtpError::AliasLoop
                    | SmtpError::TooManyRecipients
                    | SmtpError::Address(_)),
                ) => Err(Refusal::Recipients(all, said(&e))),
                Err(e) => Err(refusal(e)),
            }
        })
    }

    fn spool(&self) -> &message::spool::Spool {
        &self.services.spool
    }

    fn extensions(&self, account: &AccountRecord) -> Vec<(String, Vec<String>)> {
        SmtpSession::submission_extensions(self.config.clone(), self.services.clone(), account)
    }
}
