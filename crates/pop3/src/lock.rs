//! The maildrop's exclusive-access lock (RFC 1939 §3: "the POP3 server
//! then acquires an exclusive-access lock on the maildrop"), held as a
//! store lease (`store::leases`), so it excludes a second session on any
//! node sharing the store. The lease runs a little longer than the idle
//! timeout and is renewed as commands come; given up when the session
//! ends, and, if its node dies, free once it runs out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use store::{AccountId, Store, StoreError};

/// Beyond the idle timeout, how long a lease outlives a session's last command.
const MARGIN: i64 = 60;

pub struct MaildropLock {
    store: Arc<dyn Store>,
    name: String,
    holder: String,
    /// The lease's length, and when it runs out.
    length: i64,
    until: i64,
}

impl std::fmt::Debug for MaildropLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaildropLock")
            .field("name", &self.name)
            .field("holder", &self.holder)
            .field("until", &self.until)
            .finish()
    }
}

impl MaildropLock {
    /// The lock on `account`'s maildrop, unless another session holds it.
    pub async fn take(
        store: &Arc<dyn Store>,
        account: AccountId,
        idle_timeout: Duration,
    ) -> Result<Option<MaildropLock>, StoreError> {
        static SESSIONS: AtomicU64 = AtomicU64::new(0);
        let holder = format!(
            "{}/pop3/{}",
            store::this_node(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        );
        let length = idle_timeout.as_secs() as i64 + MARGIN;
        let now = message::date::unix_now();
        let name = format!("pop3:{account}");
        if !store.take_lease(&name, &holder, now, now + length).await? {
            return Ok(None);
        }
        Ok(Some(MaildropLock {
            store: store.clone(),
            name,
            holder,
            length,
            until: now + length,
        }))
    }

    /// Renew the lease once half of it is gone; false when it was lost
    /// (it ran out and another session took it).
    pub async fn keep(&mut self) -> Result<bool, StoreError> {
        let now = message::date::unix_now();
        if self.until - now > self.length / 2 {
            return Ok(true);
        }
        let until = now + self.length;
        let kept = self
            .store
            .take_lease(&self.name, &self.holder, now, until)
            .await?;
        self.until = until;
        Ok(kept)
    }

    /// Give the lock up now (at QUIT); a lock dropped without it is given
    /// up in the background.
    pub async fn give_up(&mut self) {
        let holder = std::mem::take(&mut self.holder);
        if let Err(e) = self.store.drop_lease(&self.name, &holder).await {
            tracing::warn!(error = %e, lease = %self.name, "POP3: maildrop lock not given up; it runs out");
        }
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        if self.holder.is_empty() {
            return;
        }
        let (store, name, holder) = (
            self.store.clone(),
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.holder),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.drop_lease(&name, &holder).await {
                    tracing::warn!(error = %e, lease = %name, "POP3: maildrop lock not given up; it runs out");
                }
            });
        }
    }
}
