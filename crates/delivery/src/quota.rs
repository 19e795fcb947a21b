//! Quotas at the door (RFC 9208 §1; RFC 3463 X.2.2 "mailbox full"): a
//! recipient whose account is over its quota is refused for now, so the
//! sender's server keeps the message and tries again later.

use store::StoreError;

use crate::{LocalTarget, Mda};

impl Mda {
    /// The first of `targets` whose account cannot take `size` more octets
    /// and one more message. Accounts without limits cost one row read.
    pub async fn over_quota(
        &self,
        targets: &[LocalTarget],
        size: u64,
    ) -> Result<Option<String>, StoreError> {
        for t in targets {
            let limits = self.store.quota_limits(t.account).await?;
            if limits == store::Quota::default() {
                continue;
            }
            if self.store.quota(t.account).await?.exceeded_by(size, 1) {
                return Ok(Some(t.address.clone()));
            }
        }
        Ok(None)
    }
}
