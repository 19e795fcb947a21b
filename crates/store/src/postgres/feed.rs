//! The change feed across nodes (`crate::feed`): a change's transaction
//! sends `NOTIFY tern_mailboxes` with the ids it touched, which PostgreSQL
//! delivers at commit (never for a transaction rolled back); every node
//! keeps one connection that LISTENs and republishes each id on its own
//! `ChangeFeed`, the committing node included. So a watcher on any node
//! hears every change, after its commit.
//!
//! When that connection breaks, the relay reconnects (after a second) and
//! tells its watchers they may have missed notices (`ChangeFeed::resync`):
//! they read what they watch again. A notice is only a wake-up, so nothing
//! is lost, only noticed late.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Config, Socket};

use super::{Prepared, pg};
use crate::error::{Result, StoreError};
use crate::feed::ChangeFeed;
use crate::types::MailboxId;

/// The notification channel.
const CHANNEL: &str = "tern_mailboxes";
/// Ids per notification: a payload stays far below PostgreSQL's 8,000 octets.
const IDS_PER_NOTICE: usize = 400;
/// Wait before reconnecting a broken relay, and between checks that the
/// store still exists when nothing is heard.
const PAUSE: Duration = Duration::from_secs(1);

/// Queue the notices for `mailboxes` in the transaction that changes them.
pub(super) async fn notify(
    tx: &deadpool_postgres::Transaction<'_>,
    mailboxes: &[MailboxId],
) -> Result<()> {
    for ids in mailboxes.chunks(IDS_PER_NOTICE) {
        let payload: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        tx.execute_p("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload.join(" ")])
            .await
            .map_err(pg)?;
    }
    Ok(())
}

/// The ids in a notification's payload (others' garbage ignored).
fn ids(payload: &str) -> impl Iterator<Item = MailboxId> + '_ {
    payload
        .split(' ')
        .filter_map(|id| id.parse().ok())
        .map(MailboxId)
}

/// Relay notifications into `feed` until the store holding it is gone;
/// resolves once the relay listens (so no commit after it is missed).
pub(super) async fn start_relay<T>(config: Config, tls: T, feed: &Arc<ChangeFeed>) -> Result<()>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send + Sync,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let feed = Arc::downgrade(feed);
    let (ready, listening) = oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready);
        while feed.strong_count() > 0 {
            if let Err(e) = relay(&config, tls.clone(), &feed, &mut ready).await {
                match ready.take() {
                    Some(first) => return drop(first.send(Err(e))),
                    None => {
                        tracing::warn!(error = %e, "store: change feed relay cannot reach the database")
                    }
                }
            }
            tokio::time::sleep(PAUSE).await;
        }
    });
    listening
        .await
        .unwrap_or_else(|_| Err(StoreError::Io("change feed relay ended".into())))
}

/// Told once, when the relay first listens (or fails to).
type Ready = Option<oneshot::Sender<Result<()>>>;

/// One connection's life: LISTEN, republish, return when it breaks.
async fn relay<T>(config: &Config, tls: T, feed: &Weak<ChangeFeed>, ready: &mut Ready) -> Result<()>
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + Sync + 'static,
    T::TlsConnect: Send + Sync,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await.map_err(pg)?;
    let (tx, mut heard) = mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "store: change feed connection failed");
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(pg)?;
    match ready.take() {
        Some(first) => drop(first.send(Ok(()))),
        None => {
            if let Some(feed) = feed.upgrade() {
                feed.resync();
            }
        }
    }
    loop {
        let payload = tokio::select! {
            p = heard.recv() => p,
            _ = tokio::time::sleep(PAUSE) => {
                if feed.strong_count() == 0 {
                    break;
                }
                continue;
            }
        };
        let (Some(payload), Some(feed)) = (payload, feed.upgrade()) else {
            break;
        };
        feed.publish(ids(&payload));
    }
    drop(client);
    pump.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::PostgresStore;
    use super::super::pg_server::Postgres;
    use super::*;
    use crate::mailbox::MailboxStore;

    /// What arrives within `wait`.
    async fn heard(
        rx: &mut tokio::sync::broadcast::Receiver<MailboxId>,
        wait: Duration,
    ) -> Vec<MailboxId> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok(id)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            got.push(id);
        }
        got
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_on_one_node_wakes_watchers_on_every_node() {
        let server = Postgres::start();
        let a = PostgresStore::connect(&server.url()).await.unwrap();
        let b = PostgresStore::connect(&server.url()).await.unwrap();
        // Each relay listens before `connect` returns.
        let (mut on_a, mut on_b) = (a.watch(), b.watch());

        let mut client = a.client().await.unwrap();
        let tx = client.transaction().await.unwrap();
        notify(&tx, &[MailboxId(5), MailboxId(6)]).await.unwrap();
        assert!(
            heard(&mut on_b, Duration::from_millis(200))
                .await
                .is_empty(),
            "not before the commit"
        );
        let committed = std::time::Instant::now();
        tx.commit().await.unwrap();
        // Within 100 ms of the commit, on the other node (the bound).
        let first = tokio::time::timeout(Duration::from_millis(100), on_b.recv()).await;
        let latency = committed.elapsed();
        assert_eq!(first.unwrap().unwrap(), MailboxId(5), "after {latency:?}");
        assert_eq!(
            heard(&mut on_b, Duration::from_millis(100)).await,
            vec![MailboxId(6)]
        );
        assert_eq!(
            heard(&mut on_a, Duration::from_millis(100)).await,
            vec![MailboxId(5), MailboxId(6)]
        );
        eprintln!("feed: commit on one node heard on the other after {latency:?}");

        // A transaction rolled back tells nobody.
        let tx = client.transaction().await.unwrap();
        notify(&tx, &[MailboxId(9)]).await.unwrap();
        drop(tx);
        assert!(
            heard(&mut on_b, Duration::from_millis(200))
                .await
                .is_empty()
        );

        // A real change: an account removed on one node; the other hears
        // every one of its mailboxes.
        use crate::directory::DirectoryStore;
        a.add_domain("a.test").await.unwrap();
        let alice = a
            .add_account(
                "alice@a.test",
                crate::Credentials {
                    password_hash: "h".into(),
                    scram_sha256: "s".into(),
                },
            )
            .await
            .unwrap();
        let boxes: Vec<i64> = client
            .query_p(
                "SELECT id FROM mailboxes WHERE account_id = $1 ORDER BY id",
                &[&alice.id.0],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        a.remove_account("alice@a.test").await.unwrap();
        let mut told: Vec<i64> = heard(&mut on_b, Duration::from_millis(300))
            .await
            .iter()
            .map(|m| m.0)
            .collect();
        told.sort_unstable();
        assert_eq!(told, boxes);

        // The database goes away and comes back: each watcher is told it
        // may have missed something, and hears changes again.
        drop(client);
        server.kill();
        server.restart();
        let told = tokio::time::timeout(Duration::from_secs(10), on_b.recv())
            .await
            .unwrap();
        assert_eq!(told.unwrap(), crate::feed::EVERY_MAILBOX);
        let mut client = b.client().await.unwrap();
        let tx = client.transaction().await.unwrap();
        notify(&tx, &[MailboxId(11)]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            heard(&mut on_b, Duration::from_millis(500)).await,
            vec![MailboxId(11)]
        );
    }

    #[test]
    fn payloads_are_ids_separated_by_spaces() {
        let got: Vec<MailboxId> = ids("3 17 x 42").collect();
        assert_eq!(got, vec![MailboxId(3), MailboxId(17), MailboxId(42)]);
    }
}
