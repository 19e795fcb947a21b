//! Delivery status notifications about queued mail (RFC 3464, RFC 3461):
//! failures when a message leaves the queue, delays, "relayed" and
//! "delivered" successes; never to the null sender (RFC 5321 §6.1).

use super::*;

/// A bounce returns the whole message up to this size; a longer one comes
/// back as its header section alone, unless its sender asked RET=FULL
/// (RFC 3461 §4.3 leaves the choice to the MTA when RET is absent; the
/// queue hands over only this much of it, hardening.md C-FT9).
pub(super) const RETURN_LIMIT: u64 = 1024 * 1024;

/// A queued recipient as a report shows it.
pub(super) fn final_recipient(r: &QueuedRecipient, o: &RecipientOutcome) -> FinalRecipient {
    FinalRecipient {
        address: r.address.clone(),
        orcpt: r.orcpt.clone(),
        notify: r.notify.clone(),
        delivered: o.state == RecipientState::Delivered,
        status: o.status.clone(),
        reply: o.reply.clone(),
        remote_mta: o.remote_mta.clone(),
    }
}

/// The message a report is about.
pub(super) struct About<'a> {
    queue_id: i64,
    sender: &'a str,
    envid: Option<&'a str>,
    ret: Option<&'a str>,
    arrival: i64,
    original: &'a [u8],
}

/// What a report says of a recipient whose delivery ended (or was delayed).
pub(super) fn dsn_recipient(r: &FinalRecipient) -> dsn::Recipient<'_> {
    dsn::Recipient {
        address: &r.address,
        orcpt: r.orcpt.as_deref(),
        status: &r.status,
        reply: &r.reply,
        remote_mta: r.remote_mta.as_deref(),
    }
}

impl Runner {
    /// The deferred recipients whose sender should now hear of the delay (once,
    /// after `delay_warning`; RFC 3461 §4.1 NOTIFY=DELAY, or no NOTIFY); they are
    /// marked warned.
    pub(super) fn delay_warnings(
        &self,
        job: &QueueJob,
        settled: &mut [(QueuedRecipient, RecipientOutcome)],
    ) -> Vec<FinalRecipient> {
        // RFC 2852 §4.2: an N deadline that passed is told like a delay.
        let by_passed = job
            .options
            .deliver_by
            .is_some_and(|b| !b.returns && now() > b.deadline);
        let late = self
            .cfg
            .delay_warning
            .is_some_and(|after| now() - queued_since(job) >= after.as_secs() as i64);
        if !late && !by_passed {
            return Vec::new();
        }
        let mut warn = Vec::new();
        for (r, o) in settled.iter_mut() {
            let wanted =
                by_passed || r.notify.is_none() || dsn::wants(r.notify.as_deref(), "DELAY");
            if matches!(o.state, RecipientState::Deferred(_)) && !r.warned && wanted {
                if by_passed {
                    o.status = "4.4.7".into();
                }
                o.warned = true;
                warn.push(final_recipient(r, o));
            }
        }
        warn
    }

    /// RFC 3464 failure report to the sender.
    pub(super) async fn report_failures(&self, done: FinishedMessage) {
        let failed: Vec<Reported<'_>> = done
            .recipients
            .iter()
            .filter(|r| !r.delivered && dsn::wants(r.notify.as_deref(), "FAILURE"))
            .map(|r| Reported {
                recipient: dsn_recipient(r),
                action: Action::Failed,
            })
            .collect();
        // Failures count against a local sender's account (the
        // compromised-account hold watches bounces).
        if !failed.is_empty()
            && let Ok(store::AddressKind::Account(_)) =
                self.store.lookup_address(&done.sender).await
            && let Err(e) = self.store.record_bounce(&done.sender, now()).await
        {
            tracing::warn!(error = %e, "cannot count a bounce");
        }
        // RFC 3461 §4.3: without RET the MTA chooses what a bounce
        // returns; a message longer than RETURN_LIMIT came out of the
        // queue cut, and its header section goes back alone.
        let cut = (done.content.len() as u64) < done.size;
        let about = About {
            queue_id: done.id,
            sender: &done.sender,
            envid: done.envid.as_deref(),
            ret: if cut {
                Some("HDRS")
            } else {
                done.ret.as_deref()
            },
            arrival: done.created,
            original: &done.content,
        };
        self.report(about, failed, None).await;
    }

    /// "relayed" (RFC 3461 §5.2.2.1: NOTIFY=SUCCESS the next hop could not carry on)
    /// or "delayed" reports about some recipients of a queued message; headers only.
    pub(super) async fn report_progress(
        &self,
        job: &QueueJob,
        content: &[u8],
        recipients: &[FinalRecipient],
        action: Action,
    ) {
        let about = About {
            queue_id: job.id,
            sender: &job.sender,
            envid: job.envid.as_deref(),
            ret: Some("HDRS"),
            arrival: job.created,
            original: content,
        };
        let retry_until =
            (action == Action::Delayed).then(|| job.created + self.cfg.max_age.as_secs() as i64);
        let reported = recipients
            .iter()
            .map(|r| Reported {
                recipient: dsn_recipient(r),
                action,
            })
            .collect();
        self.report(about, reported, retry_until).await;
    }

    /// Build and send a report; never to `<>` (RFC 5321 §6.1, hardening.md C-RL8).
    pub(super) async fn report(
        &self,
        about: About<'_>,
        recipients: Vec<Reported<'_>>,
        retry_until: Option<i64>,
    ) {
        if recipients.is_empty() {
            return;
        }
        if about.sender.is_empty() {
            tracing::warn!(
                queue = about.queue_id,
                "message from <>: no delivery status notification (RFC 5321 §6.1)"
            );
            return;
        }
        let actions: Vec<&str> = recipients.iter().map(|r| r.action.word()).collect();
        let key = store::MessageKey {
            message: None,
            queue_id: Some(about.queue_id),
        };
        let detail = format!(
            "delivery status notification to the sender ({})",
            actions.join(", ")
        );
        let event = store::HistoryEvent::of(
            &key,
            now(),
            store::HistoryKind::Bounced,
            Some(about.sender),
            detail,
        );
        let report = Report {
            reporting_mta: &self.cfg.hostname,
            sender: about.sender,
            envid: about.envid,
            ret: about.ret,
            arrival: about.arrival,
            now: now(),
            message_id: self.message_id(),
            retry_until,
            recipients,
            original: about.original,
        };
        self.send_report(about.sender, report.build()).await;
        self.store.record_history(vec![event]);
    }

    pub(super) fn message_id(&self) -> String {
        message::trace::message_id("dsn", &self.cfg.hostname)
    }

    /// Deliver a report from `<>`: locally if the sender is ours, else through the queue.
    pub(super) async fn send_report(&self, to: &str, mut bytes: Vec<u8>) {
        if let Some(signer) = &self.signer {
            let signatures = signer.sign(&self.cfg.hostname, &bytes, now()).await;
            bytes.splice(0..0, signatures.into_bytes());
        }
        match self
            .mda
            .deliver_generated("", &[to.to_string()], bytes, now())
            .await
        {
            Ok(0) => {}
            Ok(_) => tracing::info!(to = %to, "delivery status notification sent"),
            Err(e) => tracing::warn!(to = %to, error = %e, "report: cannot store"),
        }
    }
}
