//! Uploaded blobs (RFC 8620 §6.1): what a client sends to the upload URL
//! before it refers to it (Email/import). Kept in memory for an hour
//! (§6.1: "at least 1 hour") or until the server restarts; each account
//! may hold at most [`PER_ACCOUNT`] octets of them at once, and all
//! accounts together [`TOTAL`] (memory stays bounded whoever uploads),
//! the oldest dropped first. An upload is only ever given to the account that sent
//! it. Ids are `U<n>`, never used twice by a process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use store::AccountId;

/// How long an upload is kept.
pub const KEEP: Duration = Duration::from_secs(3600);
/// The most octets of uploads one account holds at once.
pub const PER_ACCOUNT: u64 = 4 * crate::Limits::MAX_SIZE_UPLOAD;
/// The most octets of uploads the server holds at once.
pub const TOTAL: u64 = 5 * PER_ACCOUNT;

/// One uploaded blob.
#[derive(Debug, Clone)]
pub struct Upload {
    pub account: AccountId,
    pub data: Arc<Vec<u8>>,
    pub media_type: String,
    at: Instant,
}

/// The uploads of every account.
#[derive(Debug, Default)]
pub struct Uploads {
    next: AtomicU64,
    kept: std::sync::Mutex<HashMap<String, Upload>>,
}

impl Uploads {
    /// Keep `data` for `account`; its blob id.
    pub fn add(&self, account: AccountId, data: Vec<u8>, media_type: String) -> String {
        let id = format!("U{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let now = Instant::now();
        let Ok(mut kept) = self.kept.lock() else {
            return id;
        };
        kept.retain(|_, u| now.duration_since(u.at) < KEEP);
        let size = data.len() as u64;
        // The account's oldest first, then anyone's.
        for (mine, limit) in [(true, PER_ACCOUNT), (false, TOTAL)] {
            let counts = |u: &Upload| !mine || u.account == account;
            let mut held: u64 = kept
                .values()
                .filter(|u| counts(u))
                .map(|u| u.data.len() as u64)
                .sum();
            while held + size > limit {
                let oldest = kept
                    .iter()
                    .filter(|(_, u)| counts(u))
                    .min_by_key(|(_, u)| u.at)
                    .map(|(k, u)| (k.clone(), u.data.len() as u64));
                let Some((key, len)) = oldest else { break };
                kept.remove(&key);
                held -= len;
            }
        }
        kept.insert(
            id.clone(),
            Upload {
                account,
                data: Arc::new(data),
                media_type,
                at: now,
            },
        );
        id
    }

    /// An upload of `account`, if it is still kept.
    pub fn get(&self, account: AccountId, id: &str) -> Option<Upload> {
        let kept = self.kept.lock().ok()?;
        kept.get(id)
            .filter(|u| u.account == account && u.at.elapsed() < KEEP)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_belong_to_their_account_and_are_bounded() {
        let u = Uploads::default();
        let a = u.add(AccountId(1), b"hello".to_vec(), "text/plain".into());
        assert_eq!(u.get(AccountId(1), &a).unwrap().data.as_slice(), b"hello");
        assert!(
            u.get(AccountId(2), &a).is_none(),
            "another account cannot read it"
        );
        let big = vec![0u8; (PER_ACCOUNT / 2) as usize + 1];
        let b = u.add(AccountId(1), big.clone(), "application/octet-stream".into());
        let c = u.add(AccountId(1), big, "application/octet-stream".into());
        assert!(
            u.get(AccountId(1), &a).is_none(),
            "the oldest went to make room"
        );
        assert!(u.get(AccountId(1), &b).is_none());
        assert!(u.get(AccountId(1), &c).is_some());
        assert_ne!(b, c);
    }

    #[test]
    fn all_accounts_together_are_bounded() {
        let u = Uploads::default();
        let part = vec![0u8; (PER_ACCOUNT / 2) as usize];
        let first = u.add(AccountId(1), part.clone(), "x/y".into());
        for account in 2..=11 {
            u.add(AccountId(account), part.clone(), "x/y".into());
        }
        let held: usize = u.kept.lock().unwrap().values().map(|x| x.data.len()).sum();
        assert!(held as u64 <= TOTAL);
        assert!(
            u.get(AccountId(1), &first).is_none(),
            "the oldest of all went"
        );
    }
}
