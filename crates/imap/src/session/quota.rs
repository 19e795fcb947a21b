//! QUOTA (RFC 9208): one quota root per account, named "", with the
//! STORAGE (units of 1024 octets) and MESSAGE resources the administrator
//! sets (`tern account quota`). Clients may read it, not change it
//! (QUOTASET is not offered). APPEND and COPY that would pass a limit
//! answer `NO [OVERQUOTA]` (§4.3).

use store::QuotaUsage;

use super::{ImapSession, Outcome};
use crate::error::ImapError;
use crate::response;

/// The one quota root of every account.
const ROOT: &str = "";

impl ImapSession {
    async fn usage(&self) -> Result<QuotaUsage, ImapError> {
        Ok(self.store().quota(self.account_id()?).await?)
    }

    /// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`: the resources
    /// that have a limit (RFC 9208 §5.1).
    fn quota_line(usage: &QuotaUsage, out: &mut Vec<u8>) {
        let mut resources = Vec::new();
        if let Some(limit) = usage.quota.storage {
            resources.push(format!(
                "STORAGE {} {}",
                usage.storage.div_ceil(1024),
                limit / 1024
            ));
        }
        if let Some(limit) = usage.quota.messages {
            resources.push(format!("MESSAGE {} {limit}", usage.messages));
        }
        response::untagged(out, &format!("QUOTA \"{ROOT}\" ({})", resources.join(" ")));
    }

    pub(super) async fn get_quota(&mut self, root: &str, out: &mut Vec<u8>) -> Outcome {
        if root != ROOT {
            return Err(ImapError::NoSuchQuotaRoot);
        }
        Self::quota_line(&self.usage().await?, out);
        Ok("GETQUOTA completed".into())
    }

    /// `* QUOTAROOT mailbox ""` and the root's QUOTA (RFC 9208 §4.1.2).
    pub(super) async fn get_quota_root(&mut self, raw: &str, out: &mut Vec<u8>) -> Outcome {
        let mailbox = self.find_mailbox(raw).await?;
        let mut line = b"* QUOTAROOT ".to_vec();
        response::astring(
            &mut line,
            &self.display_name(&mailbox.name),
            self.utf8_names(),
        );
        if mailbox.account != self.account_id()? {
            // Another's mailbox counts against their quota, not one of ours.
            line.extend_from_slice(b"\r\n");
            out.extend_from_slice(&line);
            return Ok("GETQUOTAROOT completed".into());
        }
        line.extend_from_slice(format!(" \"{ROOT}\"\r\n").as_bytes());
        out.extend_from_slice(&line);
        Self::quota_line(&self.usage().await?, out);
        Ok("GETQUOTAROOT completed".into())
    }

    /// Refuse what would put the account over a limit: `octets` more in
    /// `count` more messages.
    /// The owner's quota counts, in a mailbox shared with this user too.
    pub(super) async fn check_quota(
        &self,
        account: store::AccountId,
        octets: u64,
        count: u64,
    ) -> Result<(), ImapError> {
        if self.store().quota_limits(account).await? == store::Quota::default() {
            return Ok(());
        }
        if self
            .store()
            .quota(account)
            .await?
            .exceeded_by(octets, count)
        {
            return Err(ImapError::OverQuota);
        }
        Ok(())
    }
}
