//! IDLE (RFC 2177, RFC 9051 §6.3.13): push changes of the selected mailbox as
//! they are committed, until the client says DONE.

use net::Flow;
use tokio::sync::broadcast::error::RecvError;

use super::{ImapSession, Mode, SessionState};
use crate::error::ImapError;
use crate::response;

impl ImapSession {
    pub(super) async fn idle_start(&mut self, tag: String, out: &mut Vec<u8>) -> Flow {
        if let Err(e) = self.sync(out, true).await {
            return self.fail(&tag, e, out);
        }
        response::untagged_continuation(out, "idling");
        self.mode = Mode::Idle { tag };
        self.idling = Some(net::Gauged::new(metrics::gauge!("tern_imap_idle")));
        Flow::Continue
    }

    pub(super) async fn idle_done(&mut self, tag: String, line: &[u8], out: &mut Vec<u8>) -> Flow {
        self.idling = None;
        if line.eq_ignore_ascii_case(b"DONE") {
            response::tagged(out, &tag, "OK", "IDLE terminated");
            Flow::Continue
        } else {
            self.fail(&tag, ImapError::Syntax("expected DONE".into()), out)
        }
    }

    /// Resolves when there is something to tell without being asked: a
    /// change of the selected mailbox in IDLE (or at any time when NOTIFY
    /// asked for it), or, with NOTIFY, news of other mailboxes.
    pub(super) async fn wait_for_change(&mut self) {
        let selected = match &self.state {
            SessionState::Selected(_, s) => Some(s.mailbox.id),
            _ => None,
        };
        let idle = matches!(self.mode, Mode::Idle { .. });
        let selected_now = selected.is_some() && (idle || self.notify_selected_now());
        if self.notify.is_some() && !matches!(self.mode, Mode::Authenticate { .. }) {
            // Content of the selected mailbox waits unless it may be told now.
            let watch_selected = if selected_now { selected } else { None };
            loop {
                if self.wait_for_notify(watch_selected).await {
                    if selected_now {
                        self.selected_dirty = true;
                        return;
                    }
                    continue;
                }
                return;
            }
        }
        let Some(selected) = selected.filter(|_| idle) else {
            return std::future::pending().await;
        };
        let Some(changes) = self.changes.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match changes.recv().await {
                Ok(id) if id == selected || id == store::feed::EVERY_MAILBOX => {
                    self.selected_dirty = true;
                    return;
                }
                Ok(_) => {}
                // Missed announcements: look at the store to be sure.
                Err(RecvError::Lagged(_)) => {
                    self.selected_dirty = true;
                    return;
                }
                Err(RecvError::Closed) => return std::future::pending().await,
            }
        }
    }

    pub(super) async fn idle_update(&mut self, out: &mut Vec<u8>) -> Flow {
        if std::mem::take(&mut self.selected_dirty) {
            let before = self
                .selected()
                .ok()
                .and_then(|s| s.messages.last().map(|k| k.uid))
                .unwrap_or(0);
            if let Err(e) = self.sync(out, true).await {
                tracing::warn!(error = %e, "IDLE update failed");
            }
            self.notify_new_messages(before, out).await;
        }
        self.notify_pending(out).await;
        Flow::Continue
    }
}
