//! Time, injected (design principle 5): every rule that depends on the time
//! of day (greylisting windows, rate limits, report periods, retry
//! schedules, SRS ages) asks a [`Clock`] handed down from the top, never
//! the system directly, so that tests move time instead of sleeping.
//!
//! [`SystemClock`] is the real one; [`ManualClock`] starts where it is told
//! and moves only when a test advances it. Unix seconds, as everything
//! durable in Tern stores time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock for tests: it shows what it was set to until moved.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(unix: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(unix)))
    }

    /// Move forward (or back, with a negative number) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn set(&self, unix: i64) {
        self.0.store(unix, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The clock the server runs on.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_moves_only_when_told() {
        let c = ManualClock::at(1000);
        let shared: Arc<dyn Clock> = Arc::new(c.clone());
        assert_eq!(shared.now(), 1000);
        c.advance(300);
        assert_eq!(shared.now(), 1300);
        c.set(5);
        assert_eq!(shared.now(), 5);
        assert!(SystemClock.now() > 1_700_000_000);
    }
}
