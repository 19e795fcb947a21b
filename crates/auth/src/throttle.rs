//! Brute-force defence shared by every protocol and every node
//! (hardening.md C-AU1, C-AU2). The counts live in the store
//! (`store::logins`), so guesses spread over several nodes count as one.
//!
//! - Per client IP: after `ip_max_failures` failures within `ip_window`, the IP is
//!   blocked for `ip_block` (the protocols then answer "try later" and close).
//! - Per account: past `account_soft_limit` failures within `account_window`,
//!   attempts on that account from IPs that have not logged in to it before are
//!   slowed down progressively (up to `MAX_ACCOUNT_DELAY`). The account is never
//!   locked: its owner, from a known IP or with patience, still gets in.

use std::time::Duration;

use store::{LoginStanding, LoginWindows};

const MAX_ACCOUNT_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Delay before answering a failed attempt (Dovecot's auth_failure_delay).
    pub failure_delay: Duration,
    pub ip_max_failures: u32,
    pub ip_window: Duration,
    pub ip_block: Duration,
    pub account_soft_limit: u32,
    pub account_window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            failure_delay: Duration::from_secs(2),
            ip_max_failures: 10,
            ip_window: Duration::from_secs(600),
            ip_block: Duration::from_secs(900),
            account_soft_limit: 20,
            account_window: Duration::from_secs(3600),
        }
    }
}

impl ThrottleConfig {
    /// The windows and limit the store counts failures in.
    pub fn windows(&self) -> LoginWindows {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        LoginWindows {
            client_window: secs(self.ip_window),
            client_limit: self.ip_max_failures.max(1),
            client_block: secs(self.ip_block),
            account_window: secs(self.account_window),
        }
    }

    /// Extra wait before checking a password, for an attempt that faces
    /// `standing`: none from a known IP or below the soft limit, then
    /// doubling per failure past it.
    pub fn account_delay(&self, standing: &LoginStanding) -> Duration {
        if standing.known_client {
            return Duration::ZERO;
        }
        let over = standing
            .account_failures
            .saturating_sub(self.account_soft_limit);
        if over == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(250u64.saturating_mul(1 << over.min(8))).min(MAX_ACCOUNT_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facing(account_failures: u32, known_client: bool) -> LoginStanding {
        LoginStanding {
            account_failures,
            known_client,
            ..Default::default()
        }
    }

    /// C-AU2: many IPs guessing one account slow down, the owner's known IP does not.
    #[test]
    fn distributed_guessing_slows_strangers_not_the_owner() {
        let t = ThrottleConfig::default();
        assert_eq!(t.account_delay(&facing(20, false)), Duration::ZERO);
        assert_eq!(
            t.account_delay(&facing(21, false)),
            Duration::from_millis(500)
        );
        assert!(t.account_delay(&facing(50, false)) >= Duration::from_secs(1));
        assert_eq!(t.account_delay(&facing(1000, false)), MAX_ACCOUNT_DELAY);
        assert_eq!(t.account_delay(&facing(50, true)), Duration::ZERO);
    }

    #[test]
    fn windows_in_seconds() {
        let w = ThrottleConfig::default().windows();
        assert_eq!(
            (
                w.client_window,
                w.client_limit,
                w.client_block,
                w.account_window
            ),
            (600, 10, 900, 3600)
        );
    }
}
