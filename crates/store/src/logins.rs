//! Failed logins, counted where every node sees them (hardening.md C-AU1,
//! C-AU2): per client address (an address that failed too often is
//! blocked for a while) and per account (guessing spread over many
//! addresses slows down), and the addresses each account has logged in
//! from (its owner is never slowed down from those).
//!
//! The policy (limits, windows, delays) is the caller's (`auth::throttle`);
//! the store keeps the counts and moves a window forward in the same
//! statement that counts, so two nodes counting at once both count. A
//! window is fixed: it starts at the first failure and lasts `window`
//! seconds; the first failure after it starts a new one.

use crate::error::Result;

/// How long failures count, how many an address may have, and for how
/// long it is blocked when it reaches them. Seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginWindows {
    pub client_window: i64,
    pub client_limit: u32,
    pub client_block: i64,
    pub account_window: i64,
}

/// What a new attempt from a client address on an account faces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginStanding {
    /// The address may not try until then (Unix seconds), if set.
    pub blocked_until: Option<i64>,
    /// The address's failures in its current window.
    pub client_failures: u32,
    /// The account's failures in its current window.
    pub account_failures: u32,
    /// Whether the account has logged in from this address.
    pub known_client: bool,
}

impl LoginStanding {
    /// Whether the address is blocked at `now`.
    pub fn blocked(&self, now: i64) -> bool {
        self.blocked_until.is_some_and(|until| now < until)
    }
}

/// The addresses remembered per account as having logged in to it (the
/// newest ones).
pub const KNOWN_CLIENTS: usize = 16;

#[async_trait::async_trait]
pub trait LoginStore: Send + Sync {
    /// What an attempt from `client` on `account` faces at `now`.
    async fn login_standing(
        &self,
        client: &str,
        account: &str,
        now: i64,
        windows: &LoginWindows,
    ) -> Result<LoginStanding>;
    /// Count one failed login of `account` from `client` at `now`, each in
    /// its window; the address is blocked for `client_block` when this
    /// failure reaches `client_limit`. The standing after it.
    async fn login_failed(
        &self,
        client: &str,
        account: &str,
        now: i64,
        windows: &LoginWindows,
    ) -> Result<LoginStanding>;
    /// A login succeeded: the address's failures are forgiven, and it is
    /// one of the account's known addresses (the newest [`KNOWN_CLIENTS`]).
    async fn login_succeeded(&self, client: &str, account: &str, now: i64) -> Result<()>;
    /// Forget failures whose window and block are over at `now`; how many.
    async fn expire_login_failures(&self, now: i64, windows: &LoginWindows) -> Result<u64>;
}

/// One failure row as the backends read it: (window start, failures,
/// blocked until).
pub(crate) type FailureRow = (i64, i64, Option<i64>);

/// The standing from the rows of the address and the account: failures
/// of a window that is over count as none (the next failure starts a new
/// window), as does a block that ran out.
pub(crate) fn standing(
    client: Option<FailureRow>,
    account: Option<FailureRow>,
    known_client: bool,
    now: i64,
    windows: &LoginWindows,
) -> LoginStanding {
    let current = |row: Option<FailureRow>, window: i64| {
        row.filter(|(start, _, _)| now - start <= window)
            .map(|(_, failures, _)| u32::try_from(failures).unwrap_or(u32::MAX))
            .unwrap_or(0)
    };
    LoginStanding {
        blocked_until: client
            .and_then(|(_, _, until)| until)
            .filter(|until| now < *until),
        client_failures: current(client, windows.client_window),
        account_failures: current(account, windows.account_window),
        known_client,
    }
}

/// The two scopes a failure is counted in (`login_failures.scope`).
pub(crate) const CLIENT: &str = "client";
pub(crate) const ACCOUNT: &str = "account";
