//! Queued recipients of our own domains (held mail, RFC 4865) go into their
//! mailboxes through the MDA, as the MX would have put them.

use super::*;

impl Runner {
    /// Whether a domain is one of ours (its mail was queued only because
    /// it was held, RFC 4865).
    pub(super) async fn is_local_domain(&self, domain: &str) -> bool {
        matches!(
            self.store.lookup_address(&format!("@{domain}")).await,
            Ok(store::AddressKind::Unknown
                | store::AddressKind::Alias(_)
                | store::AddressKind::Account(_))
        )
    }

    /// Deliver queued recipients of our own domains into their mailboxes,
    /// as the MX would have at once (aliases resolved again now).
    pub(super) async fn deliver_local(
        &self,
        job: &QueueJob,
        rcpts: &[QueuedRecipient],
        content: &message::spool::Spooled,
    ) -> DomainRun {
        let mut run = DomainRun::new();
        let mut recipients = Vec::new();
        let mut taken = Vec::new();
        for r in rcpts {
            let resolved = match message::Mailbox::parse(&r.address) {
                Ok(m) => self.mda.resolve(&m).await,
                Err(_) => Ok(delivery::Resolution::Unknown),
            };
            let resolved = match resolved {
                Ok(delivery::Resolution::Deliver { local, .. })
                    if matches!(
                        self.mda.over_quota(&local, content.len()).await,
                        Ok(Some(_))
                    ) =>
                {
                    // RFC 3463 X.2.2: kept in the queue until there is room.
                    let why = format!("{}: mailbox full", r.address);
                    let reply = crate::client::local_reply(452, "4.2.2", &why);
                    run.results
                        .push((r.clone(), RcptResult::Temporary(reply), None));
                    continue;
                }
                other => other,
            };
            match resolved {
                Ok(delivery::Resolution::Deliver { local, remote }) => {
                    recipients.push(delivery::Recipient {
                        address: r.address.clone(),
                        local,
                        remote,
                        notify: r.notify.clone(),
                        orcpt: r.orcpt.clone(),
                    });
                    taken.push(r.clone());
                }
                Ok(other) => {
                    let why = format!("{} cannot receive mail here now ({other:?})", r.address);
                    let reply = crate::client::local_reply(550, "5.1.1", &why);
                    run.results
                        .push((r.clone(), RcptResult::Permanent(reply), None));
                }
                Err(e) => {
                    let reply = crate::client::local_reply(451, "4.3.0", &e.to_string());
                    run.results
                        .push((r.clone(), RcptResult::Temporary(reply), None));
                }
            }
        }
        if recipients.is_empty() {
            return run;
        }
        let envelope = delivery::Envelope {
            sender: job.sender.clone(),
            recipients,
            envid: job.envid.clone(),
            ret: job.ret.clone(),
            smtputf8: job.smtputf8,
            eight_bit: job.eight_bit,
            verdicts: Vec::new(),
            submitter: None,
            history: store::MessageKey {
                message: None,
                queue_id: Some(job.id),
            },
            queue_options: store::QueueOptions {
                priority: job.options.priority,
                require_tls: job.options.require_tls,
                ..Default::default()
            },
        };
        let result = match self.mda.deliver(&envelope, content.clone(), now()).await {
            Ok(delivery::Delivered::Accepted { .. }) => RcptResult::Delivered(
                crate::client::local_reply(250, "2.0.0", "delivered to the mailbox"),
            ),
            // RFC 5429 §2.1: the recipient's filter refused it; the sender hears why.
            Ok(delivery::Delivered::Refused(reason)) => {
                RcptResult::Permanent(crate::client::local_reply(550, "5.7.1", &reason))
            }
            Err(e) => {
                RcptResult::Temporary(crate::client::local_reply(451, "4.3.0", &e.to_string()))
            }
        };
        run.attempts.push(Attempt {
            at: now(),
            recipients: join(&taken),
            mx: None,
            ip: None,
            tls: None,
            reply: format!("local delivery: {}", result.reply().one_line()),
        });
        for r in taken {
            if matches!(result, RcptResult::Delivered(_)) && wants_success(job, &r) {
                run.delivered.push(r.address.clone());
            }
            run.results.push((r, result.clone(), None));
        }
        run
    }
}
