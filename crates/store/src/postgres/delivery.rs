//! A message arriving, in PostgreSQL (see `crate::delivery`): its content,
//! its search index and every local copy in one transaction, the mailboxes
//! taken in id order and published at commit; messages arriving together
//! share the transaction ([`Batcher`]).

use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool, Transaction};
use message::index::MessageIndex;
use tokio::sync::{mpsc, oneshot};

use super::Prepared;
use super::feed::notify;
use super::mailbox::{create, insert_entry, lock, mailbox_by_name};
use super::{PostgresStore, blobs, pg, search};
use crate::delivery::DeliveryStore;
use crate::error::{Result, StoreError};
use crate::types::*;

/// The mailbox a delivery goes to; INBOX when the asked one does not exist.
async fn folder_mailbox(
    c: &impl GenericClient,
    account: AccountId,
    folder: &Folder,
) -> Result<MailboxId> {
    let found = match folder {
        Folder::Inbox => None,
        Folder::SpecialUse(s) => c
            .query_opt_p(
                "SELECT id FROM mailboxes WHERE account_id = $1 AND special_use = $2",
                &[&account.0, s],
            )
            .await
            .map_err(pg)?
            .map(|r| MailboxId(r.get(0))),
        Folder::Named(n) => mailbox_by_name(c, account, n).await?.map(|m| m.id),
        Folder::Create(n) => Some(match mailbox_by_name(c, account, n).await? {
            Some(m) => m.id,
            None => create(c, account, n).await?.id,
        }),
    };
    if let Some(id) = found {
        return Ok(id);
    }
    mailbox_by_name(c, account, "INBOX")
        .await?
        .map(|m| m.id)
        .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account}")))
}

/// One caller's messages, waiting for a transaction.
struct Job {
    messages: Vec<NewMessage>,
    indexes: Vec<Option<MessageIndex>>,
    done: oneshot::Sender<Result<Vec<Stored>>>,
}

/// Messages arriving at once share a transaction (group commit): one
/// WAL flush and one NOTIFY for all of them instead of one each, which is
/// what bounds a node's ingest on PostgreSQL (`scripts/bench-nodes`).
/// [`WORKERS`] transactions run at a time; each takes every job waiting,
/// up to [`MAX_JOBS`]. A job that fails is rolled back to its savepoint
/// alone; the others commit.
pub(super) struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
}

/// Transactions of deliveries in flight at once on a node.
const WORKERS: usize = 4;
/// Jobs in one transaction at most.
const MAX_JOBS: usize = 64;
/// Attempts of a batch that hit a deadlock or serialization failure (the
/// whole transaction was rolled back: safe to run again).
const ATTEMPTS: usize = 3;

impl Batcher {
    pub(super) fn start(pool: Pool) -> Batcher {
        let (jobs, waiting) = mpsc::unbounded_channel();
        let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
        for _ in 0..WORKERS {
            tokio::spawn(work(pool.clone(), waiting.clone()));
        }
        Batcher { jobs }
    }
}

/// Take the waiting jobs, run them in one transaction, answer each; until
/// the store is gone.
async fn work(pool: Pool, waiting: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let batch = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_JOBS {
                match waiting.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let mut outcome = Err(StoreError::Busy);
        for _ in 0..ATTEMPTS {
            outcome = run_batch(&pool, &batch).await;
            if !matches!(outcome, Err(StoreError::Busy)) {
                break;
            }
        }
        match outcome {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.done.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "store: deliveries not committed");
                for job in batch {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One transaction for the batch. First, without locking any mailbox,
/// each job's target mailboxes found (or created) and its contents and
/// index written; then every target of the batch locked at once, in id
/// order (batches never wait on each other in a cycle), and each job's
/// entries and queue rows written; then one COMMIT. The mailbox locks are
/// held for the short second part only. Each step of a job runs under a
/// savepoint: a job that fails is undone alone (its contents deleted if
/// it fails in the second part). Each job's result; Err when nothing
/// committed.
async fn run_batch(pool: &Pool, batch: &[Job]) -> Result<Vec<Result<Vec<Stored>>>> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| StoreError::Io(format!("database connection: {e}")))?;
    let tx = client.transaction().await.map_err(pg)?;
    let mut prepared = Vec::with_capacity(batch.len());
    for job in batch {
        prepared.push(in_savepoint(&tx, prepare_job(&tx, job)).await?);
    }
    let mut all: Vec<MailboxId> = prepared
        .iter()
        .flatten()
        .flat_map(|p| p.targets.iter().flatten().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    lock(&tx, &all).await?;
    let mut results = Vec::with_capacity(batch.len());
    for (job, prepared) in batch.iter().zip(prepared) {
        results.push(match prepared {
            Ok(p) => match in_savepoint(&tx, place_job(&tx, job, &p)).await? {
                Ok(stored) => Ok(stored),
                Err(e) => {
                    blobs::collect(&tx, &p.blobs).await?;
                    Err(e)
                }
            },
            Err(e) => Err(e),
        });
    }
    let mut placed: Vec<MailboxId> = results
        .iter()
        .flatten()
        .flatten()
        .flat_map(|s| s.placed.iter().map(|p| p.0))
        .collect();
    placed.sort_unstable();
    placed.dedup();
    notify(&tx, &placed).await?;
    tx.commit().await.map_err(pg)?;
    Ok(results)
}

/// Run `step` under a savepoint: its error rolls back only what it did
/// (the outer Err: the transaction itself is lost).
async fn in_savepoint<T>(
    tx: &Transaction<'_>,
    step: impl std::future::Future<Output = Result<T>>,
) -> Result<Result<T>> {
    tx.batch_execute("SAVEPOINT job").await.map_err(pg)?;
    match step.await {
        Ok(value) => {
            tx.batch_execute("RELEASE SAVEPOINT job")
                .await
                .map_err(pg)?;
            Ok(Ok(value))
        }
        // A deadlock or lost connection: the whole batch is retried or fails.
        Err(StoreError::Busy) => Err(StoreError::Busy),
        Err(e) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
                .await
                .map_err(pg)?;
            Ok(Err(e))
        }
    }
}

/// What a job wrote before the mailboxes are locked: each message's
/// content id and target mailboxes (in the order of its deliveries).
struct Written {
    blobs: Vec<i64>,
    targets: Vec<Vec<MailboxId>>,
}

async fn prepare_job(c: &impl GenericClient, job: &Job) -> Result<Written> {
    let mut prepared = Written {
        blobs: Vec::with_capacity(job.messages.len()),
        targets: Vec::with_capacity(job.messages.len()),
    };
    for (msg, index) in job.messages.iter().zip(&job.indexes) {
        let mut targets = Vec::with_capacity(msg.deliveries.len());
        for d in &msg.deliveries {
            targets.push(folder_mailbox(c, d.account, &d.folder).await?);
        }
        let blob = blobs::insert(c, &msg.data).await?;
        if let Some(i) = index {
            search::insert(c, blob, i).await?;
        }
        prepared.blobs.push(blob);
        prepared.targets.push(targets);
    }
    Ok(prepared)
}

/// A job's entries in its (locked) mailboxes and its queue rows.
async fn place_job(c: &impl GenericClient, job: &Job, prepared: &Written) -> Result<Vec<Stored>> {
    let mut stored = Vec::with_capacity(job.messages.len());
    for ((msg, blob), targets) in job
        .messages
        .iter()
        .zip(&prepared.blobs)
        .zip(&prepared.targets)
    {
        let mut placed = Vec::with_capacity(targets.len());
        for (d, mailbox) in msg.deliveries.iter().zip(targets) {
            let size = d.prefix.len() as u64 + msg.data.len();
            let uid = insert_entry(
                c,
                *mailbox,
                *blob,
                &d.prefix,
                size,
                msg.received_at,
                &d.flags,
            )
            .await?;
            placed.push((*mailbox, uid));
        }
        let queue_id = match &msg.queue {
            Some(q) => Some(super::queue::insert(c, *blob, q, msg.received_at).await?),
            None => None,
        };
        stored.push(Stored { placed, queue_id });
    }
    Ok(stored)
}

#[async_trait::async_trait]
impl DeliveryStore for PostgresStore {
    async fn store_message(&self, message: NewMessage) -> Result<Stored> {
        let mut stored = self.store_messages(vec![message]).await?;
        stored
            .pop()
            .ok_or_else(|| StoreError::Io("nothing stored".into()))
    }

    async fn store_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<Stored>> {
        let indexes = messages.iter().map(crate::search::index_of).collect();
        let (done, result) = oneshot::channel();
        self.deliveries
            .jobs
            .send(Job {
                messages,
                indexes,
                done,
            })
            .map_err(|_| StoreError::Io("the store is closing".into()))?;
        result
            .await
            .map_err(|_| StoreError::Io("the delivery was dropped".into()))?
    }
}
