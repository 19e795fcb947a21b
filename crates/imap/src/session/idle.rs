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
        Flow::Continue
    }

    pub(super) async fn idle_done(&mut self, tag: String, line: &[u8], out: &mut Vec<u8>) -> Flow {
        if line.eq_ignore_ascii_case(b"DONE") {
            response::tagged(out, &tag, "OK", "IDLE terminated");
            Flow::Continue
        } else {
            self.fail(&tag, ImapError::Syntax("expected DONE".into()), out)
        }
    }

    /// Resolves when the selected mailbox changed while the session is in IDLE.
    pub(super) async fn wait_for_change(&mut self) {
        let selected = match (&self.mode, &self.state) {
            (Mode::Idle { .. }, SessionState::Selected(_, s)) => s.mailbox.id,
            _ => return std::future::pending().await,
        };
        let Some(changes) = self.changes.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match changes.recv().await {
                Ok(id) if id == selected => return,
                Ok(_) => {}
                // Missed announcements: look at the store to be sure.
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => return std::future::pending().await,
            }
        }
    }

    pub(super) async fn idle_update(&mut self, out: &mut Vec<u8>) -> Flow {
        if let Err(e) = self.sync(out, true).await {
            tracing::warn!(error = %e, "IDLE update failed");
        }
        Flow::Continue
    }
}
