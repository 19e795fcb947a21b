//! Graceful stop (hardening.md C-FT11): stop accepting, let sessions in the
//! middle of something finish, close idle ones at once, and cut the rest at
//! the deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Accept nothing new; close each session as soon as it is idle.
    Draining,
    /// Close every session now.
    Stop,
}

/// Tells every listener and connection what phase the server is in, and counts
/// the open connections so the stop can wait for them.
#[derive(Clone)]
pub struct Shutdown {
    phase: watch::Sender<Phase>,
    open: Arc<(AtomicUsize, Notify)>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            phase: watch::channel(Phase::Running).0,
            open: Arc::new((AtomicUsize::new(0), Notify::new())),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// Count a connection as open until the returned guard drops.
    pub fn track(&self) -> OpenGuard {
        self.open.0.fetch_add(1, Ordering::SeqCst);
        OpenGuard {
            open: self.open.clone(),
        }
    }

    pub fn open_connections(&self) -> usize {
        self.open.0.load(Ordering::SeqCst)
    }

    /// Drain for up to `deadline`, then stop whatever is left; returns once every
    /// connection has closed (or after a last grace second).
    pub async fn stop(&self, deadline: Duration) {
        self.phase.send_replace(Phase::Draining);
        if tokio::time::timeout(deadline, self.wait_closed())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.open_connections(),
                "shutdown deadline reached, closing the remaining sessions"
            );
            self.phase.send_replace(Phase::Stop);
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wait_closed()).await;
        }
    }

    async fn wait_closed(&self) {
        loop {
            let notified = self.open.1.notified();
            if self.open_connections() == 0 {
                return;
            }
            notified.await;
        }
    }
}

pub struct OpenGuard {
    open: Arc<(AtomicUsize, Notify)>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open.0.fetch_sub(1, Ordering::SeqCst);
        self.open.1.notify_waiters();
    }
}
