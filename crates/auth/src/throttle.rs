//! Brute-force defence shared by every protocol (hardening.md C-AU1, C-AU2).
//!
//! - Per client IP: after `ip_max_failures` failures within `ip_window`, the IP is
//!   blocked for `ip_block` (the protocols then answer "try later" and close).
//! - Per account: past `account_soft_limit` failures within `account_window`,
//!   attempts on that account from IPs that have not logged in to it before are
//!   slowed down progressively (up to `MAX_ACCOUNT_DELAY`). The account is never
//!   locked: its owner, from a known IP or with patience, still gets in.
//!
//! Time is passed in, so tests drive it without sleeping. Both maps are bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The most entries either map holds; past it, expired entries are dropped, then the oldest.
const MAX_ENTRIES: usize = 100_000;
const MAX_ACCOUNT_DELAY: Duration = Duration::from_secs(30);
/// How many IPs per account are remembered as having logged in successfully.
const KNOWN_IPS: usize = 16;

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

#[derive(Debug)]
struct IpState {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
struct AccountState {
    window_start: Instant,
    failures: u32,
    known_ips: Vec<IpAddr>,
}

#[derive(Debug, Default)]
pub struct Throttle {
    config: ThrottleConfig,
    ips: HashMap<IpAddr, IpState>,
    accounts: HashMap<String, AccountState>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            ips: HashMap::new(),
            accounts: HashMap::new(),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Whether this IP may not try at all right now.
    pub fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.ips
            .get(&ip)
            .and_then(|s| s.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Extra wait before checking a password for `account` from `ip`.
    pub fn account_delay(&self, ip: IpAddr, account: &str, now: Instant) -> Duration {
        let Some(s) = self.accounts.get(account) else {
            return Duration::ZERO;
        };
        if now.duration_since(s.window_start) > self.config.account_window
            || s.known_ips.contains(&ip)
        {
            return Duration::ZERO;
        }
        let over = s.failures.saturating_sub(self.config.account_soft_limit);
        if over == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(250u64.saturating_mul(1 << over.min(8))).min(MAX_ACCOUNT_DELAY)
    }

    /// Count a failed attempt. Returns true when the IP is now blocked.
    pub fn record_failure(&mut self, ip: IpAddr, account: &str, now: Instant) -> bool {
        self.prune(now);
        let cfg = &self.config;
        let s = self.ips.entry(ip).or_insert(IpState {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if now.duration_since(s.window_start) > cfg.ip_window {
            *s = IpState {
                window_start: now,
                failures: 0,
                blocked_until: None,
            };
        }
        s.failures += 1;
        if s.failures >= cfg.ip_max_failures {
            s.blocked_until = Some(now + cfg.ip_block);
        }
        let blocked = s.blocked_until.is_some();
        let a = self
            .accounts
            .entry(account.to_string())
            .or_insert(AccountState {
                window_start: now,
                failures: 0,
                known_ips: Vec::new(),
            });
        if now.duration_since(a.window_start) > cfg.account_window {
            a.window_start = now;
            a.failures = 0;
        }
        a.failures += 1;
        blocked
    }

    /// Remember a successful login: the IP's failures are forgiven, and it becomes a
    /// known IP of the account.
    pub fn record_success(&mut self, ip: IpAddr, account: &str, now: Instant) {
        self.prune(now);
        self.ips.remove(&ip);
        let a = self
            .accounts
            .entry(account.to_string())
            .or_insert(AccountState {
                window_start: now,
                failures: 0,
                known_ips: Vec::new(),
            });
        if !a.known_ips.contains(&ip) {
            if a.known_ips.len() >= KNOWN_IPS {
                a.known_ips.remove(0);
            }
            a.known_ips.push(ip);
        }
    }

    fn prune(&mut self, now: Instant) {
        if self.ips.len() >= MAX_ENTRIES {
            let cfg = &self.config;
            self.ips.retain(|_, s| {
                s.blocked_until.is_some_and(|u| now < u)
                    || now.duration_since(s.window_start) <= cfg.ip_window
            });
            if self.ips.len() >= MAX_ENTRIES {
                self.ips.clear();
            }
        }
        if self.accounts.len() >= MAX_ENTRIES {
            let window = self.config.account_window;
            self.accounts.retain(|_, s| {
                !s.known_ips.is_empty() || now.duration_since(s.window_start) <= window
            });
            if self.accounts.len() >= MAX_ENTRIES {
                self.accounts.retain(|_, s| !s.known_ips.is_empty());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn ip_is_blocked_after_the_limit_then_released() {
        let mut t = Throttle::new(ThrottleConfig {
            ip_max_failures: 3,
            ..Default::default()
        });
        let now = Instant::now();
        assert!(!t.record_failure(ip(1), "a@x", now));
        assert!(!t.record_failure(ip(1), "a@x", now));
        assert!(t.record_failure(ip(1), "a@x", now));
        assert!(t.is_blocked(ip(1), now));
        assert!(!t.is_blocked(ip(2), now), "other clients are unaffected");
        assert!(!t.is_blocked(ip(1), now + Duration::from_secs(901)));
    }

    /// C-AU2: many IPs guessing one account slow down, the owner's known IP does not.
    #[test]
    fn distributed_guessing_slows_strangers_not_the_owner() {
        let mut t = Throttle::new(ThrottleConfig::default());
        let now = Instant::now();
        t.record_success(ip(200), "a@x", now);
        for i in 0..50u8 {
            t.record_failure(ip(i), "a@x", now);
        }
        assert!(t.account_delay(ip(99), "a@x", now) >= Duration::from_secs(1));
        assert!(t.account_delay(ip(99), "a@x", now) <= MAX_ACCOUNT_DELAY);
        assert_eq!(t.account_delay(ip(200), "a@x", now), Duration::ZERO);
        assert_eq!(t.account_delay(ip(99), "b@x", now), Duration::ZERO);
    }

    #[test]
    fn success_forgives_the_ip() {
        let mut t = Throttle::new(ThrottleConfig {
            ip_max_failures: 2,
            ..Default::default()
        });
        let now = Instant::now();
        t.record_failure(ip(1), "a@x", now);
        t.record_success(ip(1), "a@x", now);
        assert!(!t.record_failure(ip(1), "a@x", now));
    }
}
