//! Greylisting (RFC 6647): the first attempt of an unknown (client network,
//! sender, recipient) triplet is deferred; a retry after the delay and
//! within the window passes, and the triplet then passes directly for the
//! lifetime. A client network that passed several triplets is trusted
//! without greylisting (RFC 6647 §4.3's auto-allowlisting): real mail
//! servers retry, most spamware does not.
//!
//! Networks, not addresses (§4.2): a /24 for IPv4 and a /64 for IPv6, since
//! large senders retry from another address of the same pool. If the store
//! cannot answer, mail passes (§4.4: greylisting must not stop mail).

use std::net::IpAddr;
use std::sync::Arc;

use clock::Clock;
use store::Store;
use store::antispam::GreylistEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreylistConfig {
    /// Retries before this are deferred again (`greylist_delay`, 5 minutes).
    pub delay: i64,
    /// A retry after this is a first attempt again (12 hours).
    pub window: i64,
    /// A triplet that passed passes for this long after it was last seen (35 days).
    pub lifetime: i64,
    /// Triplets a client network must have passed to skip greylisting.
    pub trust_after: u32,
}

impl Default for GreylistConfig {
    fn default() -> Self {
        GreylistConfig {
            delay: 300,
            window: 12 * 3600,
            lifetime: 35 * 86_400,
            trust_after: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Pass,
    /// Try again in this many seconds.
    Defer(i64),
}

pub struct Greylist {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cfg: GreylistConfig,
}

/// The client network of RFC 6647 §4.2 (`192.0.2.0/24`, `2001:db8::/64`).
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

impl Greylist {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cfg: GreylistConfig) -> Greylist {
        Greylist { store, clock, cfg }
    }

    /// RFC 6647 §2: the decision for one recipient of one transaction.
    pub async fn check(&self, ip: IpAddr, sender: &str, recipient: &str) -> Answer {
        match self.decide(ip, sender, recipient).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "greylisting: store unavailable; letting mail through");
                Answer::Pass
            }
        }
    }

    async fn decide(&self, ip: IpAddr, sender: &str, recipient: &str) -> store::Result<Answer> {
        let now = self.clock.now();
        let net = network(ip);
        let (passes, last_pass) = self.store.greylist_client(&net).await?;
        if passes >= self.cfg.trust_after && now - last_pass <= self.cfg.lifetime {
            return Ok(Answer::Pass);
        }
        let sender = if sender.is_empty() { "<>" } else { sender };
        let key = format!(
            "{net}|{}|{}",
            sender.to_ascii_lowercase(),
            recipient.to_ascii_lowercase()
        );
        let entry = self.store.greylist_entry(&key).await?;
        let (answer, entry) = match entry {
            Some(e) if e.passed_at.is_some() && now - e.last_seen <= self.cfg.lifetime => (
                Answer::Pass,
                GreylistEntry {
                    last_seen: now,
                    attempts: e.attempts.saturating_add(1),
                    ..e
                },
            ),
            Some(e) if e.passed_at.is_none() && now - e.first_seen < self.cfg.delay => (
                Answer::Defer(self.cfg.delay - (now - e.first_seen)),
                GreylistEntry {
                    last_seen: now,
                    attempts: e.attempts.saturating_add(1),
                    ..e
                },
            ),
            Some(e) if e.passed_at.is_none() && now - e.first_seen <= self.cfg.window => {
                self.store.greylist_client_passed(&net, now).await?;
                (
                    Answer::Pass,
                    GreylistEntry {
                        last_seen: now,
                        passed_at: Some(now),
                        attempts: e.attempts.saturating_add(1),
                        ..e
                    },
                )
            }
            // Unknown, expired, or retried after the window: a first attempt.
            _ => (
                Answer::Defer(self.cfg.delay),
                GreylistEntry {
                    key,
                    first_seen: now,
                    last_seen: now,
                    passed_at: None,
                    attempts: 1,
                },
            ),
        };
        self.store.greylist_put(entry).await?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clock::ManualClock;

    #[test]
    fn networks() {
        assert_eq!(network("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            network("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }

    /// The whole RFC 6647 life of a triplet, time moved by hand.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn triplet_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&store::Backend::Sqlite(dir.path().into())).unwrap();
        let clock = ManualClock::at(1_000_000);
        let g = Greylist::new(store, Arc::new(clock.clone()), GreylistConfig::default());
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let check = || g.check(ip, "s@far.test", "u@a.test");
        assert_eq!(check().await, Answer::Defer(300), "first attempt");
        clock.advance(60);
        assert_eq!(check().await, Answer::Defer(240), "too soon");
        clock.advance(300);
        assert_eq!(check().await, Answer::Pass, "retried after the delay");
        // Another address of the same /24, days later: the triplet passes.
        clock.advance(10 * 86_400);
        assert_eq!(
            g.check("192.0.2.99".parse().unwrap(), "s@far.test", "u@a.test")
                .await,
            Answer::Pass
        );
        // A new triplet retried only after the 12 h window starts over.
        assert_eq!(
            g.check(ip, "t@far.test", "u@a.test").await,
            Answer::Defer(300)
        );
        clock.advance(13 * 3600);
        assert_eq!(
            g.check(ip, "t@far.test", "u@a.test").await,
            Answer::Defer(300)
        );
        clock.advance(400);
        assert_eq!(g.check(ip, "t@far.test", "u@a.test").await, Answer::Pass);
        // Two passed so far; a third trusts the network for everything.
        assert_eq!(
            g.check(ip, "v@far.test", "u@a.test").await,
            Answer::Defer(300)
        );
        clock.advance(400);
        assert_eq!(g.check(ip, "v@far.test", "u@a.test").await, Answer::Pass);
        assert_eq!(
            g.check(ip, "new@elsewhere.test", "w@a.test").await,
            Answer::Pass
        );
        // A triplet not seen for longer than its lifetime starts over.
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            g.check(other, "s@far.test", "u@a.test").await,
            Answer::Defer(300)
        );
        clock.advance(400);
        assert_eq!(g.check(other, "s@far.test", "u@a.test").await, Answer::Pass);
        clock.advance(36 * 86_400);
        assert_eq!(
            g.check(other, "s@far.test", "u@a.test").await,
            Answer::Defer(300)
        );
    }
}
