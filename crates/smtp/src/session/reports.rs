//! Mail about mail: DMARC aggregate reports sent to our report address
//! (parsed and kept, RFC 7489 §7.2), and the "delivered" reports of RFC
//! 3461 §5.2.2 for local recipients that asked NOTIFY=SUCCESS.

use delivery::Envelope;

use super::envelope::escape;
use super::{SmtpSession, Transaction};
use crate::error::SmtpError;

impl SmtpSession {
    /// A message to our DMARC report address: parse and keep the aggregate
    /// report. Refused (5.6.0) when it is not one and nobody else gets the
    /// message. It is parsed whole, so one larger than
    /// [`policy::feedback::MAX_MESSAGE`] is not read (hardening.md C-FT9:
    /// many sessions sending the largest message to the report address
    /// would each hold it).
    pub(super) async fn receive_report(
        &self,
        tx: &Transaction,
        body: &message::spool::Spooled,
        now: i64,
    ) -> Result<(), SmtpError> {
        let parsed = if body.len() > policy::feedback::MAX_MESSAGE {
            Err(format!(
                "a report message is at most {} MiB",
                policy::feedback::MAX_MESSAGE >> 20
            ))
        } else {
            let body = body.clone();
            tokio::task::spawn_blocking(move || {
                let whole = body.read_all().map_err(|e| format!("spool: {e}"))?;
                policy::feedback::parse(&whole, now)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        };
        let others = tx
            .recipients
            .iter()
            .any(|r| !r.local.is_empty() || !r.remote.is_empty());
        let report = match parsed {
            Ok(report) => report,
            Err(why) if !others => return Err(SmtpError::NotAReport(why)),
            Err(why) => {
                tracing::info!(msg = %tx.id, %why, "not a DMARC report; delivered to the other recipients");
                return Ok(());
            }
        };
        let (kind, org, id, domain) = (
            report.kind,
            report.org.clone(),
            report.report_id.clone(),
            report.domain.clone(),
        );
        let added = self
            .services
            .mda
            .store()
            .add_received_report(report)
            .await
            .map_err(SmtpError::Store)?;
        tracing::info!(
            msg = %tx.id,
            org = %escape(&org),
            report_id = %escape(&id),
            domain = %escape(&domain),
            kept = ?added,
            kind = kind.as_str(),
            "report received"
        );
        Ok(())
    }

    /// Whether a recipient that reaches a local mailbox asked to hear of
    /// its delivery (RFC 3461 §4.1 NOTIFY=SUCCESS), from a sender who can
    /// be told (never `<>`, RFC 5321 §6.1).
    pub(super) fn wants_delivered_report(&self, envelope: &Envelope) -> bool {
        !envelope.sender.is_empty()
            && envelope.queue_options.release_at.is_none()
            && envelope
                .recipients
                .iter()
                .any(|r| wants_success(envelope, r))
    }

    /// RFC 3461 §5.2.2, RFC 3464: the "delivered" report for those
    /// recipients, headers only (§4.3), from MAILER-DAEMON, DKIM-signed.
    /// The message is already stored: a failure here is only logged.
    pub(super) async fn report_delivered(
        &self,
        id: &str,
        envelope: &Envelope,
        head: &[u8],
        now: i64,
    ) {
        use message::dsn::{Action, Recipient, Report, Reported};
        let recipients: Vec<Reported<'_>> = envelope
            .recipients
            .iter()
            .filter(|r| wants_success(envelope, r))
            .map(|r| Reported {
                recipient: Recipient {
                    address: &r.address,
                    orcpt: r.orcpt.as_deref(),
                    status: "2.0.0",
                    reply: "delivered to the mailbox",
                    remote_mta: None,
                },
                action: Action::Delivered,
            })
            .collect();
        let host = &self.cfg.hostname;
        let report = Report {
            reporting_mta: host,
            sender: &envelope.sender,
            envid: envelope.envid.as_deref(),
            ret: Some("HDRS"),
            arrival: now,
            now,
            message_id: format!("dsn.{}@{host}", super::new_message_id()),
            retry_until: None,
            recipients,
            original: head,
        };
        let mut bytes = report.build();
        if let Some(signer) = &self.services.signer {
            let signatures = signer.sign(host, &bytes, now).await;
            bytes.splice(0..0, signatures.into_bytes());
        }
        let to = [envelope.sender.clone()];
        match self
            .services
            .mda
            .deliver_generated("", &to, bytes, now)
            .await
        {
            Ok(_) => {
                tracing::info!(msg = %id, to = %escape(&envelope.sender), "delivered report sent")
            }
            Err(e) => tracing::warn!(msg = %id, error = %e, "delivered report: cannot store"),
        }
    }
}

/// A recipient delivered here whose sender asked to hear of it: NOTIFY=SUCCESS
/// (RFC 3461 §4.1), or a DELIVERBY trace (RFC 2852 §4: `T`).
fn wants_success(envelope: &Envelope, r: &delivery::Recipient) -> bool {
    let trace = envelope.queue_options.deliver_by.is_some_and(|b| b.trace);
    !r.local.is_empty() && (trace || message::dsn::wants(r.notify.as_deref(), "SUCCESS"))
}
