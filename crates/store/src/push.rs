//! JMAP push subscriptions (RFC 8620 §7.2): where a user's device wants
//! to be told of changes, by an HTTPS POST the server makes. A
//! subscription is pushed to only once the device has proved it receives
//! what is sent there (the verification code), and only until it expires.

use crate::error::Result;
use crate::types::AccountId;

/// One push subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// Assigned by the store (0 when adding).
    pub id: i64,
    pub account: AccountId,
    pub device_client_id: String,
    /// The https URL posted to.
    pub url: String,
    /// Web Push message encryption keys (RFC 8291): the device's P-256
    /// public key and authentication secret, base64url as given; None:
    /// the body is sent in clear (over TLS).
    pub keys: Option<(String, String)>,
    /// The code sent in the PushVerification object.
    pub verification_code: String,
    /// The device gave the code back: changes are pushed.
    pub verified: bool,
    /// Unix seconds.
    pub expires: i64,
    /// The data types to tell of; None: every type.
    pub types: Option<Vec<String>>,
}

#[async_trait::async_trait]
pub trait PushStore: Send + Sync {
    /// Keep a subscription; its id.
    async fn add_push_subscription(&self, subscription: PushSubscription) -> Result<i64>;
    /// The account's subscriptions, oldest first.
    async fn push_subscriptions(&self, account: AccountId) -> Result<Vec<PushSubscription>>;
    /// Every verified subscription not expired at `now`, of every account.
    async fn active_push_subscriptions(&self, now: i64) -> Result<Vec<PushSubscription>>;
    /// Write what may change of one (verified, expires, types); whether
    /// the account has it.
    async fn update_push_subscription(&self, subscription: &PushSubscription) -> Result<bool>;
    /// Forget one of the account's; whether it was there.
    async fn remove_push_subscription(&self, account: AccountId, id: i64) -> Result<bool>;
    /// Forget those expired at `now`; how many.
    async fn remove_expired_push_subscriptions(&self, now: i64) -> Result<usize>;
}

/// The types as a backend keeps them: names without spaces (RFC 8620 §1.2
/// data types), joined by one.
pub(crate) fn types_text(types: &Option<Vec<String>>) -> Option<String> {
    types.as_ref().map(|t| t.join(" "))
}

/// The types back from what a backend kept.
pub(crate) fn types_of(text: Option<String>) -> Option<Vec<String>> {
    text.map(|t| t.split_whitespace().map(str::to_string).collect())
}
