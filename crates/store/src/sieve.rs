//! What Sieve keeps (RFC 5228, RFC 5804): each account's scripts, at most
//! one of them active, and the ids a script tracks: duplicates (RFC 7352)
//! and the senders a vacation response went to (RFC 5230 §4.2), each until
//! it expires.
//!
//! A contract of its own: the [`crate::Store`] trait requires it, and every
//! backend implements both.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::types::AccountId;

/// The script JMAP's VacationResponse (RFC 8621 §8) is kept as: it runs at
/// delivery after the active script, so the vacation logic is Sieve's
/// (RFC 5230: once per sender per period, never to lists or robots).
pub const VACATION_SCRIPT: &str = "jmap-vacation";

/// One script as ManageSieve LISTSCRIPTS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScriptInfo {
    pub name: String,
    pub active: bool,
    /// Octets.
    pub size: u64,
}

#[async_trait::async_trait]
pub trait SieveStore: Send + Sync {
    /// The account's scripts, by name.
    async fn sieve_list(&self, account: AccountId) -> Result<Vec<SieveScriptInfo>>;
    async fn sieve_get(&self, account: AccountId, name: &str) -> Result<Option<String>>;
    /// The active script's name and text.
    async fn sieve_active(&self, account: AccountId) -> Result<Option<(String, String)>>;
    /// What runs at final delivery, in order: the active script, then the
    /// [`VACATION_SCRIPT`] if there is one and it is not the active one.
    async fn sieve_delivery(&self, account: AccountId) -> Result<Vec<(String, String)>>;
    /// Add a script or replace its text (an active script stays active).
    async fn sieve_put(&self, account: AccountId, name: &str, text: &str) -> Result<()>;
    /// Make `name` the active script, or (None) leave none active.
    /// NotFound when there is no such script.
    async fn sieve_activate(&self, account: AccountId, name: Option<&str>) -> Result<()>;
    /// NotFound; InUse for the active script (RFC 5804 §2.10).
    async fn sieve_delete(&self, account: AccountId, name: &str) -> Result<()>;
    /// NotFound for `from`; Duplicate when `to` exists (RFC 5804 §2.11.1).
    async fn sieve_rename(&self, account: AccountId, from: &str, to: &str) -> Result<()>;
    /// A tracked id that has not expired at `now`.
    async fn sieve_seen(&self, account: AccountId, id: &str, now: i64) -> Result<bool>;
    /// Record ids until their expiry (a later expiry replaces an earlier).
    async fn sieve_track(
        &self,
        account: AccountId,
        ids: Vec<(String, i64)>,
        now: i64,
    ) -> Result<()>;
    /// Record `id` unless it is tracked and not expired: true when it was
    /// recorded now (a vacation response may go out).
    async fn sieve_track_once(
        &self,
        account: AccountId,
        id: &str,
        expires: i64,
        now: i64,
    ) -> Result<bool>;
}

/// How long an account's active script, as read, is used without asking again.
pub(crate) const ACTIVE_FOR: Duration = Duration::from_secs(2);
/// Accounts whose answer is kept (past it the memory starts over).
const ACTIVE_ENTRIES: usize = 100_000;

/// The scripts of an account that run at delivery: (name, text, active).
pub(crate) type Active = Vec<(String, String, bool)>;

/// Active scripts by account, with when they were read.
#[derive(Default)]
pub(crate) struct ActiveScripts {
    map: Mutex<HashMap<AccountId, (Instant, Active)>>,
}

impl ActiveScripts {
    pub(crate) fn get(&self, account: AccountId) -> Option<Active> {
        let map = self.map.lock().ok()?;
        map.get(&account)
            .filter(|(at, _)| at.elapsed() < ACTIVE_FOR)
            .map(|(_, a)| a.clone())
    }

    pub(crate) fn put(&self, account: AccountId, active: Active) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= ACTIVE_ENTRIES {
                map.clear();
            }
            map.insert(account, (Instant::now(), active));
        }
    }

    pub(crate) fn forget(&self, account: AccountId) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&account);
        }
    }
}

/// The active one of an account's delivery scripts (name, text).
pub(crate) fn active_of(scripts: Active) -> Option<(String, String)> {
    scripts
        .into_iter()
        .find(|(_, _, active)| *active)
        .map(|(name, text, _)| (name, text))
}

/// The delivery scripts in the order they run (the active one first).
pub(crate) fn in_delivery_order(scripts: Active) -> Vec<(String, String)> {
    scripts
        .into_iter()
        .map(|(name, text, _)| (name, text))
        .collect()
}
