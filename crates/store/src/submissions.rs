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
    pub send_at: i64,
}

#[async_trait::async_trait]
pub trait SubmissionStore: Send + Sync {
    /// Keep a submission (durably); its id.
    async fn add_submission(&self, submission: Submission) -> Result<i64>;
    /// The account's submissions, newest first.
    async fn submissions(&self, account: AccountId) -> Result<Vec<Submission>>;
    /// Forget one of the account's submissions; whether it was there.
    async fn remove_submission(&self, account: AccountId, id: i64) -> Result<bool>;
}
