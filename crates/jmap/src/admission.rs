//! How many API requests and uploads of one account are under way
//! (RFC 8620 §2 `maxConcurrentRequests`, `maxConcurrentUpload`): the
//! session announces the limits, and a request past them is refused
//! with the `limit` request error before its body is read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use store::AccountId;

/// What is being done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Work {
    Request,
    Upload,
}

impl Work {
    /// The limit's name in the session (and in the `limit` error).
    pub fn limit_name(self) -> &'static str {
        match self {
            Work::Request => "maxConcurrentRequests",
            Work::Upload => "maxConcurrentUpload",
        }
    }
}

/// The counts under way, by account and kind.
#[derive(Debug, Default)]
pub struct InFlight(Arc<Mutex<HashMap<(AccountId, Work), u64>>>);

/// One admitted request: its count goes down when this is dropped.
#[derive(Debug)]
pub struct Admitted {
    counts: Arc<Mutex<HashMap<(AccountId, Work), u64>>>,
    key: (AccountId, Work),
}

impl InFlight {
    /// Count one more of `work` for `account`, if under `limit`.
    pub fn admit(&self, account: AccountId, work: Work, limit: u64) -> Option<Admitted> {
        let mut counts = self.0.lock().ok()?;
        let n = counts.entry((account, work)).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Admitted {
            counts: self.0.clone(),
            key: (account, work),
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(n) = counts.get_mut(&self.key)
        {
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
    fn counted_per_account_and_kind_until_dropped() {
        let f = InFlight::default();
        let a = f.admit(AccountId(1), Work::Upload, 2).unwrap();
        let _b = f.admit(AccountId(1), Work::Upload, 2).unwrap();
        assert!(f.admit(AccountId(1), Work::Upload, 2).is_none());
        assert!(
            f.admit(AccountId(2), Work::Upload, 2).is_some(),
            "another account"
        );
        assert!(
            f.admit(AccountId(1), Work::Request, 2).is_some(),
            "another kind"
        );
        drop(a);
        assert!(f.admit(AccountId(1), Work::Upload, 2).is_some());
    }
}
