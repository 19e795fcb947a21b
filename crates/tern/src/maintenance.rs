//! What `tern serve` tidies every hour: delivery history older than
//! `[history] keep`, each account's change log beyond its newest
//! [`CHANGES_KEPT`] rows, greylisting triplets past their lifetime, failed
//! logins that no longer count. With several nodes on one database it runs
//! once an hour across them all: on the node that takes the hour's lease
//! (`store::leases`); if that node dies, another takes the next hour.

use std::sync::Arc;
use std::time::Duration;

use store::Store;

/// How many of its newest changes each account's change log keeps (JMAP
/// `/changes`; a client further behind syncs again).
const CHANGES_KEPT: usize = 10_000;
/// How often each node wakes to see whether the hour's tidying is its.
const EVERY: Duration = Duration::from_secs(3600);
/// How long the lease holds: a little less than an hour, so the node that
/// ran this hour may run the next.
const LEASE: i64 = 3000;

pub struct Maintenance {
    pub store: Arc<dyn Store>,
    pub auth: Arc<auth::Authenticator>,
    /// How long delivery history is kept.
    pub history_keep: Duration,
    /// How long a greylisting triplet lives after it was last seen.
    pub greylist_lifetime: Duration,
}

impl Maintenance {
    pub async fn run(self) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            let now = clock::system().now();
            match self
                .store
                .take_lease("maintenance", store::this_node(), now, now + LEASE)
                .await
            {
                Ok(true) => self.once(now).await,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "maintenance: cannot take the lease"),
            }
        }
    }

    /// One hour's tidying, each part on its own (one failing does not stop
    /// the others).
    pub async fn once(&self, now: i64) {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let history_before = now.saturating_sub(secs(self.history_keep));
        report(
            "history: expired old events",
            self.store.expire_history(history_before).await,
        );
        report(
            "change log: pruned old changes",
            self.store.prune_changes(CHANGES_KEPT).await,
        );
        let greylist_before = now.saturating_sub(secs(self.greylist_lifetime));
        report(
            "greylisting: forgot old triplets",
            self.store.greylist_expire(greylist_before).await,
        );
        report(
            "authentication: forgot old failures",
            self.auth.expire_failures().await,
        );
    }
}

fn report<N: TryInto<u64>>(what: &str, outcome: store::Result<N>) {
    match outcome.map(|n| n.try_into().unwrap_or(u64::MAX)) {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, "{what}"),
        Err(e) => tracing::warn!(error = %e, "{what}: failed"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use store::antispam::GreylistEntry;

    const DAY: i64 = 86_400;

    /// One hour's tidying forgets what is past its time and keeps the rest:
    /// greylisting triplets past their lifetime, failed logins whose window
    /// is over; and the hour's lease is one node's.
    #[tokio::test]
    async fn an_hour_forgets_what_is_past_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&store::Backend::Sqlite(dir.path().into())).unwrap();
        let now = 2_000_000_000;
        for (key, last_seen) in [("old", now - 36 * DAY), ("recent", now - DAY)] {
            let entry = GreylistEntry {
                key: key.into(),
                first_seen: last_seen - 600,
                last_seen,
                passed_at: Some(last_seen - 300),
                attempts: 2,
            };
            store.greylist_put(entry).await.unwrap();
        }
        let config = auth::ThrottleConfig::default();
        let windows = config.windows();
        store
            .login_failed("10.0.0.1", "a@x", now - 2 * 3600, &windows)
            .await
            .unwrap();
        let clock = Arc::new(clock::ManualClock::at(now));
        let auth = auth::Authenticator::new(store.clone(), config).with_clock(clock);
        let maintenance = Maintenance {
            store: store.clone(),
            auth: Arc::new(auth),
            history_keep: Duration::from_secs(30 * DAY as u64),
            greylist_lifetime: Duration::from_secs(35 * DAY as u64),
        };
        maintenance.once(now).await;
        let kept: Vec<String> = store
            .greylist_list(10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(kept, vec!["recent".to_string()]);
        assert_eq!(store.expire_login_failures(now, &windows).await.unwrap(), 0);
        // Another node's hour: this one may not take it.
        assert!(
            store
                .take_lease("maintenance", "other-node", now, now + LEASE)
                .await
                .unwrap()
        );
        assert!(
            !store
                .take_lease(
                    "maintenance",
                    store::this_node(),
                    now + 60,
                    now + 60 + LEASE
                )
                .await
                .unwrap()
        );
    }
}
