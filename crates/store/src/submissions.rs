//! What JMAP's EmailSubmission objects (RFC 8621 §7) are made of: each
//! message a user submitted through JMAP, with the SMTP id that links it
//! to the delivery history (where its delivery status comes from). The
//! envelope is opaque here (serialized by the jmap crate).

use crate::error::Result;
use crate::types::AccountId;

/// One submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Assigned by the store (0 when adding).
    pub id: i64,
    pub account: AccountId,
    pub smtp_id: String,
    pub email_id: i64,
    pub thread_id: i64,
    pub identity: String,
    pub envelope: String,
    /// When it is (or was) released for delivery: its creation, or the
    /// release time of a held message (FUTURERELEASE).
    pub send_at: i64,
    /// The queue entry of a held message (what canceling removes).
    pub queue_id: Option<i64>,
    pub canceled: bool,
}

#[async_trait::async_trait]
pub trait SubmissionStore: Send + Sync {
    /// Keep a submission (durably); its id.
    async fn add_submission(&self, submission: Submission) -> Result<i64>;
    /// The account's submissions, newest first.
    async fn submissions(&self, account: AccountId) -> Result<Vec<Submission>>;
    /// Forget one of the account's submissions; whether it was there.
    async fn remove_submission(&self, account: AccountId, id: i64) -> Result<bool>;
    /// Cancel a held submission before its release (RFC 8621 §7 undo):
    /// in one transaction its queue entry is removed, if it was not
    /// released (`send_at` after `now`) and no delivery of it was tried
    /// or is under way, and the submission marked canceled. Whether it was.
    async fn cancel_submission(&self, account: AccountId, id: i64, now: i64) -> Result<bool>;
}
