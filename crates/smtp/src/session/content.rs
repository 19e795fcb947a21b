//! DATA (RFC 5321 §4.1.1.4), BDAT (RFC 3030), and what happens at the end of a
//! message: loop check, submission fixes, the Received line, durable delivery.

use delivery::{Delivered, Envelope};
use message::header;
use message::spool::Spooled;
use message::trace::{ReceivedInfo, received, with_protocol};
use store::{HistoryEvent, HistoryKind, MessageKey};

use super::envelope::escape;
use super::{Mode, SmtpSession, Transaction, is_submission};
use crate::data::{DataLimits, DataReader, spool_error};
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
        self.mode = Mode::Data(DataReader::new(self.limits(), true, &self.services.spool));
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
            tx.chunks = Some(Ok(DataReader::new(limits, false, &self.services.spool)));
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

    /// The whole message is here: check it, complete it, store it durably,
    /// answer; a refusal goes into the delivery history.
    pub(super) async fn end_of_message(
        &mut self,
        content: Result<Spooled, SmtpError>,
    ) -> Result<Reply, SmtpError> {
        let tx = self
            .tx
            .take()
            .ok_or(SmtpError::BadSequence("no transaction"))?;
        let (id, sender) = (tx.id.clone(), tx.sender.to_string());
        let recipients: Vec<String> = tx.recipients.iter().map(|r| r.address.clone()).collect();
        let result = self.complete(tx, content).await;
        if let Err(e) = &result {
            let reply = e.reply().0.one_line();
            let events = recipients
                .iter()
                .map(|r| self.history_event(&id, &sender, HistoryKind::Refused, Some(r), &reply))
                .collect();
            self.services.mda.store().record_history(events);
        }
        result
    }

    /// One event of this session's transaction `id` for the delivery history.
    pub(super) fn history_event(
        &self,
        id: &str,
        sender: &str,
        kind: HistoryKind,
        recipient: Option<&str>,
        detail: &str,
    ) -> HistoryEvent {
        let key = MessageKey {
            message: Some(id.to_string()),
            queue_id: None,
        };
        let mut event = HistoryEvent::of(&key, self.now(), kind, recipient, detail);
        event.sender = Some(sender.to_string());
        event
    }

    async fn complete(
        &mut self,
        mut tx: Transaction,
        content: Result<Spooled, SmtpError>,
    ) -> Result<Reply, SmtpError> {
        let body = content?;
        // RFC 5321 §6.3: too many Received lines means a loop (C-RL9).
        if header::fields_named(body.header(), "Received").len() > self.cfg.max_received {
            return Err(SmtpError::Loop);
        }
        let mut added = String::new();
        if is_submission(&self.cfg) {
            added = self.submission_fixes(body.header())?;
        }
        let now = self.now();
        let assessed = self.assess_message(&mut tx, body).await?;
        let body = assessed.body;
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
        let auth_header = assessed.header.clone();
        let mut prefix = assessed.header.into_bytes();
        prefix.extend_from_slice(received(&info).as_bytes());
        if is_submission(&self.cfg) {
            prefix.extend_from_slice(self.dkim_signatures(&added, &body, now).await?.as_bytes());
        }
        prefix.extend_from_slice(added.as_bytes());
        // The body stays where it is (memory or spool file); our lines go
        // in front of it.
        let data = body.with_prefix(&prefix).map_err(spool_error)?;
        let size = data.len();
        let message_id = header::fields_named(data.header(), "Message-ID")
            .first()
            .and_then(|f| header::message_ids(f.value).into_iter().next());
        let accepted_detail = self.accepted_detail(size, &auth_header, assessed.spam.as_deref());
        let envelope = Envelope {
            sender: tx.sender.to_string(),
            recipients: tx.recipients,
            envid: tx.params.envid.clone(),
            ret: tx.params.ret.clone(),
            smtputf8: tx.params.smtputf8,
            eight_bit: tx.params.eight_bit,
            verdicts: assessed.verdicts,
            queue_options: queue_options(&tx.params, now),
            submitter: self.user.as_ref().map(|u| u.address.clone()),
            history: MessageKey {
                message: Some(tx.id.clone()),
                queue_id: None,
            },
        };
        let head = self
            .wants_delivered_report(&envelope)
            .then(|| data.header().to_vec());
        // Design principle 2: the 250 goes out only after this returns (durable commit).
        let delivered = self
            .services
            .mda
            .deliver(&envelope, data, now)
            .await
            .map_err(SmtpError::Store)?;
        let (placed, queued) = match delivered {
            Delivered::Accepted { placed, queue_id } => {
                self.last_queue_id = queue_id;
                (placed, queue_id.is_some())
            }
            Delivered::Refused(reason) => {
                tracing::info!(msg = %tx.id, from = %escape(&envelope.sender), "message refused by the recipients' filters");
                return Err(SmtpError::Refused(reason));
            }
        };
        if let Some(head) = head {
            self.report_delivered(&tx.id, &envelope, &head, now).await;
        }
        self.after_delivery(&envelope, &body).await;
        tracing::info!(
            msg = %tx.id,
            from = %escape(&envelope.sender),
            recipients = envelope.recipients.len(),
            local = placed,
            queued,
            size,
            "message accepted"
        );
        let mut accepted = self.history_event(
            &tx.id,
            &envelope.sender,
            HistoryKind::Accepted,
            None,
            &accepted_detail,
        );
        // The time it was received, as its other events of this moment
        // (filed, queued) have: a second may have passed since.
        accepted.at = now;
        accepted.message_id = message_id;
        accepted.recipient = Some(
            envelope
                .recipients
                .iter()
                .map(|r| r.address.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        );
        self.services.mda.store().record_history(vec![accepted]);
        let role = self.cfg.role.name();
        metrics::counter!("tern_smtp_messages_accepted_total", "role" => role).increment(1);
        metrics::counter!("tern_smtp_recipients_accepted_total", "role" => role)
            .increment(envelope.recipients.len() as u64);
        Ok(Reply::new(
            250,
            Enhanced(2, 0, 0),
            format!("Ok: queued as {}", tx.id),
        ))
    }

    /// What the history says of an accepted message: the client, TLS, the
    /// authenticated user, the size, the checks' Authentication-Results
    /// and the spam score.
    fn accepted_detail(&self, size: u64, auth_header: &str, spam: Option<&str>) -> String {
        let mut detail = format!(
            "{} from [{}] helo={}",
            self.cfg.role.name(),
            self.client_ip(),
            self.helo
                .as_ref()
                .map(|h| h.name.as_str())
                .unwrap_or("unknown")
        );
        if let Some(t) = &self.tls {
            detail += &format!(" tls={}", t.version);
        }
        if let Some(u) = &self.user {
            detail += &format!(" user={}", u.address);
        }
        detail += &format!(", {size} octets");
        for field in header::fields_named(auth_header.as_bytes(), "Authentication-Results") {
            let value = String::from_utf8_lossy(field.value);
            let folded: Vec<&str> = value.split_whitespace().collect();
            detail += &format!("; {}", folded.join(" "));
        }
        if let Some(spam) = spam {
            detail += &format!("; spam score {spam}");
        }
        detail
    }

    /// RFC 6376: DKIM-Signature fields for a submitted message, by the keys of
    /// its From: domain. The signer reads the message a block at a time
    /// (hardening.md C-FT9).
    async fn dkim_signatures(
        &self,
        added: &str,
        body: &Spooled,
        now: i64,
    ) -> Result<String, SmtpError> {
        let Some(signer) = &self.services.signer else {
            return Ok(String::new());
        };
        let mut header = added.as_bytes().to_vec();
        header.extend_from_slice(body.header());
        let Some(domain) = policy::verify::from_domains(&header)
            .ok()
            .and_then(|d| d.into_iter().next())
        else {
            return Ok(String::new());
        };
        signer
            .sign_content(&domain, added.as_bytes(), body, now)
            .await
            .map_err(spool_error)
    }

    /// RFC 6409 §8: the MSA checks From: against the login (C-RL6) and adds Date:
    /// and Message-ID: when missing. Returns the header lines to add.
    fn submission_fixes(&self, header_section: &[u8]) -> Result<String, SmtpError> {
        let fields = header::fields(header_section);
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
            added.push_str(&format!("Date: {}\r\n", message::date::rfc5322(self.now())));
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

/// What MAIL asked of the queue, in absolute times.
///
/// `now` is a whole second, up to a second before the real time, so a
/// HOLDFOR is counted from the next second: the hold lasts at least the
/// seconds the client gave (RFC 4865 §3), never up to one less.
pub(super) fn queue_options(p: &crate::params::MailParams, now: i64) -> store::QueueOptions {
    use crate::params::Hold;
    store::QueueOptions {
        release_at: p.hold.map(|h| match h {
            Hold::For(s) => now + 1 + s,
            Hold::Until(t) => t,
        }),
        deliver_by: p.by.map(|b| store::DeliverBy {
            deadline: now + b.seconds,
            returns: b.returns,
            trace: b.trace,
        }),
        priority: p.priority.unwrap_or(0),
        require_tls: p.require_tls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Hold, MailParams};

    /// The clock reads whole seconds: at 100 the real time may be 100.99,
    /// so a release at 103 would come after 2.01 seconds of HOLDFOR=3.
    #[test]
    fn a_hold_for_is_never_shorter_than_asked() {
        let held = |hold| MailParams {
            hold: Some(hold),
            ..Default::default()
        };
        let real_latest_now = 100.999_f64;
        let release = queue_options(&held(Hold::For(3)), 100).release_at.unwrap();
        assert!(release as f64 - real_latest_now >= 3.0, "{release}");
        // HOLDUNTIL names its second itself.
        assert_eq!(
            queue_options(&held(Hold::Until(5000)), 100).release_at,
            Some(5000)
        );
    }
}
