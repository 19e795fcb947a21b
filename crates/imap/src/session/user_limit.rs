//! At most N sessions of one user from one client address (hardening.md C-IM8;
//! Dovecot's mail_max_userip_connections). A login past it gets `NO [LIMIT]`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use store::AccountId;

#[derive(Debug, Default)]
pub struct UserIpLimiter {
    counts: Mutex<HashMap<(AccountId, IpAddr), usize>>,
}

/// Holds one session's place; frees it on drop.
#[derive(Debug)]
pub struct UserIpPermit {
    limiter: Arc<UserIpLimiter>,
    key: (AccountId, IpAddr),
}

impl UserIpLimiter {
    pub fn try_acquire(
        self: &Arc<Self>,
        account: AccountId,
        ip: IpAddr,
        max: usize,
    ) -> Option<UserIpPermit> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry((account, ip)).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(UserIpPermit {
            limiter: self.clone(),
            key: (account, ip),
        })
    }
}

impl Drop for UserIpPermit {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_per_user_and_ip() {
        let l = Arc::new(UserIpLimiter::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = l.try_acquire(AccountId(1), ip, 2).unwrap();
        let _b = l.try_acquire(AccountId(1), ip, 2).unwrap();
        assert!(l.try_acquire(AccountId(1), ip, 2).is_none());
        assert!(l.try_acquire(AccountId(2), ip, 2).is_some(), "another user");
        assert!(
            l.try_acquire(AccountId(1), "10.0.0.2".parse().unwrap(), 2)
                .is_some(),
            "another address"
        );
        drop(a);
        assert!(l.try_acquire(AccountId(1), ip, 2).is_some());
    }
}
