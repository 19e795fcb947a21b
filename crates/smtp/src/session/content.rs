//! DATA (RFC 5321 §4.1.1.4), BDAT (RFC 3030), and what happens at the end of a
//! message: loop check, submission fixes, the Received line, durable delivery.

use delivery::Envelope;
use message::header;
use message::trace::{ReceivedInfo, received, with_protocol};

use super::envelope::escape;
use super::{Mode, SmtpSession, Transaction, is_submission};
use crate::data::{DataLimits, DataReader};
use crate::error::SmtpError;
use crate::reply::{Enhanced, Reply};

impl SmtpSession {
    fn limits(&self) -> DataLimits {
        DataLimits {
            max_size: self.cfg.max_message_size,
            max_line: self.cfg.max_text_line,
            max_header: self.cfg.max_header_size,
        }
    }

    /// The transaction, if it is ready for its content.
    fn ready_for_content(&self) -> Result<&Transaction, SmtpError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or(SmtpError::BadSequence("need MAIL and RCPT first"))?;
        if tx.recipients.is_empty() {
            return Err(SmtpError::BadSequence("no valid recipients"));
        }
        Ok(tx)
    }

    pub(super) fn data(&mut self, more_pending: bool) -> Result<Reply, SmtpError> {
        let tx = self.ready_for_content()?;
        if tx.chunks.is_some() {
            // RFC 3030 §3: DATA and BDAT do not mix in one transaction.
            return Err(SmtpError::BadSequence("DATA after BDAT"));
        }
        // RFC 2920 §3.1: DATA ends a pipelined group; a client that sends the message
        // before our 354 is not speaking SMTP (C-SM5).
        if more_pending {
            return Err(SmtpError::ImproperPipelining);
        }
        self.mode = Mode::Data(DataReader::new(self.limits(), true));
        Ok(Reply::bare(354, "End data with <CR><LF>.<CR><LF>"))
    }

    /// `BDAT size [LAST]`: the chunk follows at once (RFC 3030 §2) and is answered
    /// once it is read. A refused chunk is still read, so the command stream stays in
    /// step; only a chunk larger than any message is refused at once, by closing (C-SM15).
    pub(super) fn bdat(&mut self, size: u64, last: bool) -> Result<(), SmtpError> {
        if size > self.cfg.max_message_size {
            return Err(SmtpError::ChunkTooBig);
        }
        let refused = self.ready_for_content().err();
        let limits = self.limits();
        if let (None, Some(tx)) = (&refused, &mut self.tx)
            && tx.chunks.is_none()
        {
            tx.chunks = Some(Ok(DataReader::new(limits, false)));
        }
        self.mode = Mode::Bdat {
            remaining: size,
            last,
            refused,
        };
        Ok(())
    }

    pub(super) fn bdat_bytes(&mut self, bytes: &[u8]) {
        if let Some(Transaction {
            chunks: Some(Ok(reader)),
            ..
        }) = &mut self.tx
        {
            reader.feed(bytes);
        }
    }

    /// The last byte of a chunk arrived.
    pub(super) async fn bdat_chunk_done(
        &mut self,
        last: bool,
        refused: Option<SmtpError>,
    ) -> Result<Reply, SmtpError> {
        if let Some(e) = refused {
            return Err(e);
        }
        let Some(tx) = &mut self.tx else {
            return Err(SmtpError::BadSequence("need MAIL and RCPT first"));
        };
        let received = match &tx.chunks {
            Some(Ok(reader)) => reader.size(),
            Some(Err(e)) => {
                let e = e.clone();
                if last {
                    self.tx = None;
                }
                return Err(e);
            }
            None => 0,
        };
        if !last {
            if received > self.cfg.max_message_size {
                tx.chunks = Some(Err(SmtpError::MessageTooBig));
                return Err(SmtpError::MessageTooBig);
            }
            return Ok(Reply::new(
                250,
                Enhanced(2, 0, 0),
                format!("{received} octets received"),
            ));
        }
        let result = match tx.chunks.take() {
            Some(Ok(reader)) => reader.finish(),
            Some(Err(e)) => Err(e),
            None => Err(SmtpError::EmptyMessage),
        };
        self.end_of_message(result).await
    }

    /// The whole message is here: check it, complete it, store it durably, answer.
    pub(super) async fn end_of_message(
        &mut self,
        content: Result<Vec<u8>, SmtpError>,
    ) -> Result<Reply, SmtpError> {
        let tx = self
            .tx
            .take()
            .ok_or(SmtpError::BadSequence("no transaction"))?;
        let body = content?;
        // RFC 5321 §6.3: too many Received lines means a loop (C-RL9).
        if header::fields_named(&body, "Received").len() > self.cfg.max_received {
            return Err(SmtpError::Loop);
        }
        let mut added = String::new();
        if is_submission(&self.cfg) {
            added = self.submission_fixes(&body)?;
        }
        let now = message::date::unix_now();
        let (results, body, junk) = self.authenticate_message(&tx, body).await?;
        if tx.reports {
            self.receive_report(&tx, &body, now).await?;
        }
        let helo = self.helo.as_ref();
        let info = ReceivedInfo {
            helo: helo.map(|h| h.name.as_str()).unwrap_or("unknown"),
            client_ip: self.client_ip(),
            by: &self.cfg.hostname,
            protocol: with_protocol(
                helo.is_some_and(|h| h.extended),
                self.tls.is_some(),
                self.user.is_some(),
                tx.params.smtputf8,
            ),
            tls: self
                .tls
                .as_ref()
                .map(|t| (t.version.as_str(), t.cipher.as_str())),
            id: &tx.id,
            for_rcpt: match tx.recipients.as_slice() {
                [only] => Some(only.address.as_str()),
                _ => None,
            },
            date: now,
        };
        let mut data = results.into_bytes();
        data.extend_from_slice(received(&info).as_bytes());
        if is_submission(&self.cfg) {
            data.extend_from_slice(self.dkim_signatures(&added, &body, now).await.as_bytes());
        }
        data.extend_from_slice(added.as_bytes());
        data.extend_from_slice(&body);
        let size = data.len();
        let envelope = Envelope {
            sender: tx.sender.to_string(),
            recipients: tx.recipients,
            envid: tx.params.envid.clone(),
            ret: tx.params.ret.clone(),
            smtputf8: tx.params.smtputf8,
            eight_bit: tx.params.eight_bit,
            junk,
            queue_options: queue_options(&tx.params, now),
        };
        let head = self
            .wants_delivered_report(&envelope)
            .then(|| data[..header::header_end(&data)].to_vec());
        // Design principle 2: the 250 goes out only after this returns (durable commit).
        let stored = self
            .services
            .mda
            .deliver(&envelope, data, now)
            .await
            .map_err(SmtpError::Store)?;
        if let Some(head) = head {
            self.report_delivered(&tx.id, &envelope, &head, now).await;
        }
        tracing::info!(
            msg = %tx.id,
            from = %escape(&envelope.sender),
            recipients = envelope.recipients.len(),
            local = stored.placed.len(),
            queued = stored.queue_id.is_some(),
            size,
            "message accepted"
        );
        Ok(Reply::new(
            250,
            Enhanced(2, 0, 0),
            format!("Ok: queued as {}", tx.id),
        ))
    }

    /// Whether a recipient that reaches a local mailbox asked to hear of
    /// its delivery (RFC 3461 §4.1 NOTIFY=SUCCESS), from a sender who can
    /// be told (never `<>`, RFC 5321 §6.1).
    fn wants_delivered_report(&self, envelope: &Envelope) -> bool {
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
    async fn report_delivered(&self, id: &str, envelope: &Envelope, head: &[u8], now: i64) {
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

    /// On the MX: DKIM, ARC and DMARC (design.md principle 3: a refusal is
    /// the answer to the data, never a bounce). Returns our
    /// Authentication-Results field, the message without forged claims of our
    /// authserv-id (RFC 8601 §5), and whether it goes to Junk.
    async fn authenticate_message(
        &self,
        tx: &Transaction,
        body: Vec<u8>,
    ) -> Result<(String, Vec<u8>, bool), SmtpError> {
        let (Some(verifier), Some(checks)) = (&self.services.verifier, &tx.checks) else {
            return Ok((String::new(), body, false));
        };
        let seal = match (
            self.cfg.arc_seal,
            &self.services.signer,
            forwarding_domain(tx),
        ) {
            (true, Some(signer), Some(domain)) => {
                signer.arc_key(domain, message::date::unix_now()).await
            }
            _ => None,
        };
        let verdict = verifier.message(checks, &body, seal).await;
        tracing::info!(
            msg = %tx.id,
            spf = ?checks.spf(),
            dmarc = ?verdict.dmarc.iter().map(|e| (e.from_domain.as_str(), e.result.as_str())).collect::<Vec<_>>(),
            action = ?verdict.action,
            "sender authentication"
        );
        self.record_evaluations(&verdict);
        let junk = match verdict.action {
            policy::verify::Action::Refuse(r) => return Err(SmtpError::Policy(r)),
            policy::verify::Action::Junk => true,
            policy::verify::Action::Accept => false,
        };
        let body = match policy::results::without_our_results(&body, &self.cfg.hostname) {
            std::borrow::Cow::Borrowed(_) => body,
            std::borrow::Cow::Owned(stripped) => stripped,
        };
        Ok((verdict.arc_set + &verdict.header, body, junk))
    }

    /// RFC 7489 §7.2: keep the evaluations that the From: domains want
    /// reported. In the background: the answer to the client does not wait.
    fn record_evaluations(&self, verdict: &policy::verify::Verdict) {
        if verdict.reports.is_empty() {
            return;
        }
        let now = message::date::unix_now();
        let rows: Vec<_> = verdict.reports.iter().map(|r| r.to_store(now)).collect();
        let store = self.services.mda.store().clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_evaluations(rows).await {
                tracing::warn!(error = %e, "DMARC: cannot record evaluations for reports");
            }
        });
    }

    /// A message to our DMARC report address: parse and keep the aggregate
    /// report. Refused (5.6.0) when it is not one and nobody else gets the
    /// message.
    async fn receive_report(
        &self,
        tx: &Transaction,
        body: &[u8],
        now: i64,
    ) -> Result<(), SmtpError> {
        let data = body.to_vec();
        let parsed = tokio::task::spawn_blocking(move || policy::feedback::parse(&data, now))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
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
        let (org, id, domain) = (
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
            "DMARC aggregate report received"
        );
        Ok(())
    }

    /// RFC 6376: DKIM-Signature fields for a submitted message, by the keys of
    /// its From: domain.
    async fn dkim_signatures(&self, added: &str, body: &[u8], now: i64) -> String {
        let Some(signer) = &self.services.signer else {
            return String::new();
        };
        let mut message = added.as_bytes().to_vec();
        message.extend_from_slice(body);
        let Some(domain) = policy::verify::from_domains(&message)
            .ok()
            .and_then(|d| d.into_iter().next())
        else {
            return String::new();
        };
        signer.sign(&domain, &message, now).await
    }

    /// RFC 6409 §8: the MSA checks From: against the login (C-RL6) and adds Date:
    /// and Message-ID: when missing. Returns the header lines to add.
    fn submission_fixes(&self, body: &[u8]) -> Result<String, SmtpError> {
        let fields = header::fields(body);
        let from: Vec<_> = fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("From"))
            .collect();
        if from.is_empty() {
            return Err(SmtpError::NoFrom);
        }
        for f in from {
            let addresses = header::addresses(f.value);
            if addresses.is_empty() || !addresses.iter().all(|a| self.owns_mailbox(a)) {
                return Err(SmtpError::FromNotOwned);
            }
        }
        let mut added = String::new();
        if !fields.iter().any(|f| f.name.eq_ignore_ascii_case("Date")) {
            added.push_str(&format!(
                "Date: {}\r\n",
                message::date::rfc5322(message::date::unix_now())
            ));
        }
        if !fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case("Message-ID"))
        {
            added.push_str(&format!(
                "Message-ID: <{}@{}>\r\n",
                super::new_message_id(),
                self.cfg.hostname
            ));
        }
        Ok(added)
    }
}

/// A recipient delivered here whose sender asked to hear of it: NOTIFY=SUCCESS
/// (RFC 3461 §4.1), or a DELIVERBY trace (RFC 2852 §4: `T`).
fn wants_success(envelope: &Envelope, r: &delivery::Recipient) -> bool {
    let trace = envelope.queue_options.deliver_by.is_some_and(|b| b.trace);
    !r.local.is_empty() && (trace || message::dsn::wants(r.notify.as_deref(), "SUCCESS"))
}

/// What MAIL asked of the queue, in absolute times.
fn queue_options(p: &crate::params::MailParams, now: i64) -> store::QueueOptions {
    use crate::params::Hold;
    store::QueueOptions {
        release_at: p.hold.map(|h| match h {
            Hold::For(s) => now + s,
            Hold::Until(t) => t,
        }),
        deliver_by: p.by.map(|b| store::DeliverBy {
            deadline: now + b.seconds,
            returns: b.returns,
            trace: b.trace,
        }),
        priority: p.priority.unwrap_or(0),
    }
}

/// The domain of the first recipient that an alias forwards elsewhere: it
/// seals the forwarded copy.
fn forwarding_domain(tx: &Transaction) -> Option<&str> {
    tx.recipients
        .iter()
        .find(|r| r.remote.iter().any(|t| t != &r.address))
        .and_then(|r| r.address.rsplit_once('@'))
        .map(|(_, d)| d)
}
