//! What the filters send once the message is stored: vacation responses
//! (RFC 5230, at most one per sender and period: the store checks and
//! records it), `mailto` notifications (RFC 5436), rejection reports
//! (RFC 5429 §2.1.1, never to `<>`); the duplicate ids to remember
//! (RFC 7352), the redirects to count against the account's sending.
//!
//! Each goes out on its own, from the null reverse-path (RFC 3834 §3.3,
//! RFC 5230 §5, RFC 5436 §2.7): a failure is logged and does not touch the
//! delivery already made.

use sieve::Action;

use crate::filter::Run;
use crate::{Envelope, Mda};

impl Mda {
    /// `head`: the original's header section (rejection reports quote it).
    pub(crate) async fn after_commit(
        &self,
        envelope: &Envelope,
        head: &[u8],
        runs: &[Run],
        now: i64,
    ) {
        for run in runs {
            let Some(outcome) = &run.outcome else {
                continue;
            };
            let who = &run.target.address;
            if let Some(e) = &outcome.error {
                tracing::warn!(account = %who, error = %e, "sieve: runtime error, the message is kept");
            }
            tracing::info!(
                account = %who,
                actions = %outcome.actions.iter().map(Action::describe).collect::<Vec<_>>().join("; "),
                "sieve"
            );
            if !outcome.track.is_empty() {
                let ids = outcome
                    .track
                    .iter()
                    .map(|t| (t.id.clone(), t.expires))
                    .collect();
                if let Err(e) = self.store.sieve_track(run.target.account, ids, now).await {
                    tracing::warn!(account = %who, error = %e, "sieve: cannot record duplicate ids");
                }
            }
            let mut redirected = Vec::new();
            for action in &outcome.actions {
                match action {
                    Action::Vacation(v) => self.send_vacation(run, v, now).await,
                    Action::Notify(n) => {
                        let id = message::trace::message_id("notify", &self.config.hostname);
                        let bytes = sieve::respond::notification(n, now, &id);
                        self.send(who, "notification", &n.to, bytes, now).await;
                    }
                    Action::Reject { reason, .. } if !envelope.sender.is_empty() => {
                        self.send_rejection(run, envelope, head, reason, now).await;
                    }
                    Action::Redirect { address, .. } => redirected.push(address.clone()),
                    _ => {}
                }
            }
            if !redirected.is_empty() {
                self.count_redirects(who, redirected, now).await;
            }
        }
    }

    async fn send_vacation(&self, run: &Run, v: &sieve::VacationReply, now: i64) {
        let expires = now + v.period as i64;
        match self
            .store
            .sieve_track_once(run.target.account, &v.tracking, expires, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(account = %run.target.address, to = %v.to, "vacation: already answered in this period");
                return;
            }
            Err(e) => {
                tracing::warn!(account = %run.target.address, error = %e, "vacation: cannot check earlier responses");
                return;
            }
        }
        let id = message::trace::message_id("vacation", &self.config.hostname);
        let bytes = sieve::respond::vacation(v, now, &id);
        self.send(
            &run.target.address,
            "vacation response",
            std::slice::from_ref(&v.to),
            bytes,
            now,
        )
        .await;
    }

    async fn send_rejection(
        &self,
        run: &Run,
        envelope: &Envelope,
        original: &[u8],
        reason: &str,
        now: i64,
    ) {
        let report = message::mdn::Rejection {
            host: &self.config.hostname,
            to: &envelope.sender,
            recipient: &run.rcpt,
            reason,
            now,
            message_id: message::trace::message_id("mdn", &self.config.hostname),
            original,
        };
        self.send(
            &run.target.address,
            "rejection report",
            std::slice::from_ref(&envelope.sender),
            report.build(),
            now,
        )
        .await;
    }

    async fn send(&self, account: &str, what: &str, to: &[String], bytes: Vec<u8>, now: i64) {
        let bytes = self.signed(bytes, now).await;
        match self.deliver_generated("", to, bytes, now).await {
            Ok(n) => {
                tracing::info!(%account, to = %to.join(","), recipients = n, "sieve: {what} sent")
            }
            Err(e) => tracing::warn!(%account, error = %e, "sieve: cannot send the {what}"),
        }
    }

    /// DKIM signatures of the From: domain on top (RFC 6376), when we hold
    /// its keys: a response from alice@a.test passes DMARC for a.test.
    async fn signed(&self, bytes: Vec<u8>, now: i64) -> Vec<u8> {
        let Some(signer) = &self.config.signer else {
            return bytes;
        };
        let Some(domain) = policy::verify::from_domains(&bytes)
            .ok()
            .and_then(|d| d.into_iter().next())
        else {
            return bytes;
        };
        let mut out = signer.sign(&domain, &bytes, now).await.into_bytes();
        out.extend_from_slice(&bytes);
        out
    }

    /// Redirected mail is mail the account sent (the hourly limits see it).
    async fn count_redirects(&self, account: &str, to: Vec<String>, now: i64) {
        let mut domains: Vec<String> = to
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
            .collect();
        domains.sort();
        domains.dedup();
        let sent = store::antispam::Sent {
            account: account.to_string(),
            now,
            recipients: to.len() as u64,
            domains,
            spam: false,
        };
        if let Err(e) = self.store.record_sent(sent).await {
            tracing::warn!(%account, error = %e, "sieve: cannot count redirects");
        }
    }
}
