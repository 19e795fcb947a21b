//! The outbound queue in PostgreSQL (see `crate::queue`): one row per
//! message, one per recipient with its own state and lease.
//!
//! Implementation notes
//! - Claims are safe between nodes: a claim picks due recipients with
//!   `FOR UPDATE SKIP LOCKED` (rows another claimer is taking are passed
//!   over, not waited for), sets their lease and commits; a recipient
//!   whose lease ran out is free again, so a dead node's work is taken
//!   over and no recipient is held by two live claimers.
//! - `queue_release` drops every lease, as on SQLite: the caller decides
//!   it is alone (with several nodes, leases run out instead).

use deadpool_postgres::GenericClient;
use message::spool::{Spool, Spooled};
use tokio_postgres::Row;

use super::{PostgresStore, Prepared, blobs, pg};
use crate::error::{Result, StoreError};
use crate::queue::{
    DELIVERED, FAILED, HELD, QUEUED, QueueStore, by_mode, deliver_by, domain_of, first_attempt,
};
use crate::types::*;

/// The most recipient rows one claim looks at to fill its messages.
const CLAIM_SCAN: i64 = 1000;

const JOB_COLUMNS: &str = "q.id, q.sender, q.envid, q.ret, q.smtputf8, q.eight_bit, q.created, b.size, q.release_at, q.deliver_by, q.by_mode, q.priority, EXISTS (SELECT 1 FROM queue_require_tls t WHERE t.queue_id = q.id)";

fn job_row(r: &Row) -> QueueJob {
    QueueJob {
        id: r.get(0),
        sender: r.get(1),
        envid: r.get(2),
        ret: r.get(3),
        smtputf8: r.get(4),
        eight_bit: r.get(5),
        created: r.get(6),
        size: r.get::<_, i64>(7) as u64,
        options: QueueOptions {
            release_at: r.get(8),
            deliver_by: deliver_by(r.get(9), r.get(10)),
            priority: r.get::<_, i16>(11) as i8,
            require_tls: r.get(12),
        },
        recipients: Vec::new(),
    }
}

/// Queue a message whose content is `blob`; its id.
pub(super) async fn insert(
    c: &impl GenericClient,
    blob: i64,
    q: &QueueInsert,
    now: i64,
) -> Result<i64> {
    let o = &q.options;
    let priority = i16::from(o.priority);
    let id: i64 = c
        .query_one_p(
            "INSERT INTO queue_messages(blob_id, sender, envid, ret, smtputf8, eight_bit, created, release_at, deliver_by, by_mode, priority, submitter)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            &[&blob, &q.sender, &q.envid, &q.ret, &q.smtputf8, &q.eight_bit, &now, &o.release_at,
              &o.deliver_by.map(|b| b.deadline), &o.deliver_by.as_ref().map(by_mode), &priority, &q.submitter],
        )
        .await
        .map_err(pg)?
        .get(0);
    if o.require_tls {
        c.execute_p(
            "INSERT INTO queue_require_tls(queue_id) VALUES ($1)",
            &[&id],
        )
        .await
        .map_err(pg)?;
    }
    // A held account's mail waits with it (the compromised-account hold).
    let held = match &q.submitter {
        Some(a) => c
            .query_one_p(
                "SELECT EXISTS(SELECT 1 FROM accounts WHERE address = $1 AND held)",
                &[a],
            )
            .await
            .map_err(pg)?
            .get(0),
        None => false,
    };
    let state = if held { HELD } else { QUEUED };
    let first = first_attempt(o, now);
    let insert = c
        .prepare_cached(
            "INSERT INTO queue_recipients(queue_id, address, domain, orcpt, notify, state, next_attempt, priority)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await
        .map_err(pg)?;
    for r in &q.recipients {
        c.execute(
            &insert,
            &[
                &id,
                &r.address,
                &domain_of(&r.address),
                &r.orcpt,
                &r.notify,
                &state,
                &first,
                &priority,
            ],
        )
        .await
        .map_err(pg)?;
    }
    Ok(id)
}

/// Take a message whose recipients are all done out of the queue, with its
/// content when one failed (whole, or its first `limit` octets unless
/// RET=FULL; RFC 8689 §5: a REQUIRETLS message's header section only).
async fn finish_if_done(
    c: &impl GenericClient,
    id: i64,
    limit: u64,
) -> Result<Option<FinishedMessage>> {
    let pending: i64 = c
        .query_one_p(
            "SELECT count(*) FROM queue_recipients WHERE queue_id = $1 AND state IN ('queued', 'held')",
            &[&id],
        )
        .await
        .map_err(pg)?
        .get(0);
    if pending > 0 {
        return Ok(None);
    }
    let recipients: Vec<FinalRecipient> = c
        .query_p(
            "SELECT address, orcpt, notify, state, coalesce(status, ''), coalesce(last_reply, ''), remote_mta
             FROM queue_recipients WHERE queue_id = $1 ORDER BY id",
            &[&id],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| FinalRecipient {
            address: r.get(0),
            orcpt: r.get(1),
            notify: r.get(2),
            delivered: r.get::<_, &str>(3) == DELIVERED,
            status: r.get(4),
            reply: r.get(5),
            remote_mta: r.get(6),
        })
        .collect();
    let Some(row) = c
        .query_opt_p(
            "SELECT q.sender, q.envid,
                    CASE WHEN EXISTS (SELECT 1 FROM queue_require_tls t WHERE t.queue_id = q.id) THEN 'HDRS' ELSE q.ret END,
                    q.created, q.blob_id, b.size
             FROM queue_messages q JOIN blobs b ON b.id = q.blob_id WHERE q.id = $1",
            &[&id],
        )
        .await
        .map_err(pg)?
    else {
        return Ok(None);
    };
    let (ret, blob, size): (Option<String>, i64, i64) = (row.get(2), row.get(4), row.get(5));
    let content = if recipients.iter().any(|r| !r.delivered) {
        let full = ret
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case("FULL"));
        let take = if full {
            size as u64
        } else {
            (size as u64).min(limit)
        };
        blobs::read_range(c, blob, 0, usize::try_from(take).unwrap_or(usize::MAX)).await?
    } else {
        Vec::new()
    };
    c.execute_p("DELETE FROM queue_messages WHERE id = $1", &[&id])
        .await
        .map_err(pg)?;
    blobs::collect(c, &[blob]).await?;
    Ok(Some(FinishedMessage {
        id,
        sender: row.get(0),
        envid: row.get(1),
        ret,
        created: row.get(3),
        content,
        size: size as u64,
        recipients,
    }))
}

/// The messages whose free recipients this claim takes, in order: due
/// ones by priority then age, or the one asked for. Their rows stay
/// locked by this transaction; rows other claimers hold are skipped.
async fn claimable(
    c: &impl GenericClient,
    claim: Claim,
    now: i64,
    limit: usize,
) -> Result<Vec<i64>> {
    let free = "r.state = 'queued' AND (r.lease_until IS NULL OR r.lease_until < $1)";
    let rows = match claim {
        Claim::Due(due) => {
            c.query_p(
                &format!(
                    "SELECT r.queue_id FROM queue_recipients r WHERE {free} AND r.next_attempt <= $2
                     ORDER BY r.priority DESC, r.next_attempt, r.id LIMIT $3 FOR UPDATE SKIP LOCKED"
                ),
                &[&now, &due, &CLAIM_SCAN],
            )
            .await
        }
        Claim::Message(id) => {
            c.query_p(
                &format!(
                    "SELECT r.queue_id FROM queue_recipients r WHERE {free} AND r.queue_id = $2
                     ORDER BY r.id FOR UPDATE SKIP LOCKED"
                ),
                &[&now, &id],
            )
            .await
        }
    }
    .map_err(pg)?;
    let mut ids: Vec<i64> = Vec::new();
    for r in &rows {
        let id: i64 = r.get(0);
        if !ids.contains(&id) {
            if ids.len() == limit {
                break;
            }
            ids.push(id);
        }
    }
    Ok(ids)
}

#[async_trait::async_trait]
impl QueueStore for PostgresStore {
    async fn queue_list(&self) -> Result<Vec<QueueSummary>> {
        let client = self.client().await?;
        let mut out: Vec<QueueSummary> = client
            .query_p(
                "SELECT q.id, q.sender, q.created, b.size FROM queue_messages q JOIN blobs b ON b.id = q.blob_id ORDER BY q.id",
                &[],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| QueueSummary {
                id: r.get(0),
                sender: r.get(1),
                created: r.get(2),
                size: r.get(3),
                recipients: Vec::new(),
            })
            .collect();
        for q in &mut out {
            q.recipients = client
                .query_p(
                    "SELECT address, state FROM queue_recipients WHERE queue_id = $1 ORDER BY id",
                    &[&q.id],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        }
        Ok(out)
    }

    async fn queue_claim(
        &self,
        claim: Claim,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueueJob>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let due = match claim {
            Claim::Due(due) => due,
            Claim::Message(_) => i64::MAX,
        };
        let mut jobs = Vec::new();
        for id in claimable(&tx, claim, now, limit).await? {
            let Some(row) = tx
                .query_opt_p(
                    &format!("SELECT {JOB_COLUMNS} FROM queue_messages q JOIN blobs b ON b.id = q.blob_id WHERE q.id = $1"),
                    &[&id],
                )
                .await
                .map_err(pg)?
            else {
                continue;
            };
            let mut job = job_row(&row);
            job.recipients = tx
                .query_p(
                    "UPDATE queue_recipients r SET lease_until = $4
                     WHERE r.id IN (SELECT id FROM queue_recipients WHERE queue_id = $2 AND state = 'queued'
                                      AND (lease_until IS NULL OR lease_until < $1) AND next_attempt <= $3
                                    FOR UPDATE SKIP LOCKED)
                     RETURNING r.id, r.address, r.domain, r.orcpt, r.notify, r.attempts, r.warned",
                    &[&now, &id, &due, &lease_until],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(|r| QueuedRecipient {
                    id: r.get(0),
                    address: r.get(1),
                    domain: r.get(2),
                    orcpt: r.get(3),
                    notify: r.get(4),
                    attempts: r.get::<_, i32>(5) as u32,
                    warned: r.get(6),
                })
                .collect();
            job.recipients.sort_by_key(|r| r.id);
            if !job.recipients.is_empty() {
                jobs.push(job);
            }
        }
        tx.commit().await.map_err(pg)?;
        Ok(jobs)
    }

    async fn queue_content(&self, id: i64, spool: &Spool) -> Result<Option<Spooled>> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt_p(
                "SELECT q.blob_id, b.size FROM queue_messages q JOIN blobs b ON b.id = q.blob_id WHERE q.id = $1",
                &[&id],
            )
            .await
            .map_err(pg)?
        else {
            return Ok(None);
        };
        let (blob, size): (i64, i64) = (row.get(0), row.get(1));
        let mut writer = spool.writer();
        let mut at = 0u64;
        while at < size as u64 {
            let piece = blobs::read_range(&client, blob, at, blobs::PIECE).await?;
            if piece.is_empty() {
                return Err(StoreError::Io(format!("queued message {id} is cut short")));
            }
            writer.write(&piece)?;
            at += piece.len() as u64;
        }
        Ok(Some(writer.finish()?))
    }

    async fn queue_report(&self, report: QueueReport) -> Result<Option<FinishedMessage>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        for a in &report.attempts {
            tx.execute_p(
                "INSERT INTO queue_attempts(queue_id, at, recipients, mx, ip, tls, reply) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&report.queue_id, &a.at, &a.recipients, &a.mx, &a.ip, &a.tls, &a.reply],
            )
            .await
            .map_err(pg)?;
        }
        for o in &report.outcomes {
            let (state, next) = match o.state {
                RecipientState::Delivered => (DELIVERED, None),
                RecipientState::Failed => (FAILED, None),
                RecipientState::Deferred(at) => (QUEUED, Some(at)),
            };
            tx.execute_p(
                "UPDATE queue_recipients SET state = $2, next_attempt = coalesce($3, next_attempt), attempts = attempts + 1,
                   last_reply = $4, status = $5, remote_mta = $6, warned = warned OR $7, lease_until = NULL WHERE id = $1",
                &[&o.id, &state, &next, &o.reply, &o.status, &o.remote_mta, &o.warned],
            )
            .await
            .map_err(pg)?;
        }
        let finished = finish_if_done(&tx, report.queue_id, report.return_limit).await?;
        tx.commit().await.map_err(pg)?;
        Ok(finished)
    }

    async fn queue_show(&self, id: i64) -> Result<Option<QueueDetail>> {
        let Some(summary) = self.queue_list().await?.into_iter().find(|q| q.id == id) else {
            return Ok(None);
        };
        let client = self.client().await?;
        let recipients = client
            .query_p(
                "SELECT address, state, attempts, next_attempt, last_reply FROM queue_recipients WHERE queue_id = $1 ORDER BY id",
                &[&id],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i32>(2) as u32, r.get(3), r.get(4)))
            .collect();
        let attempts = client
            .query_p(
                "SELECT at, recipients, mx, ip, tls, reply FROM queue_attempts WHERE queue_id = $1 ORDER BY id",
                &[&id],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| Attempt {
                at: r.get(0),
                recipients: r.get(1),
                mx: r.get(2),
                ip: r.get(3),
                tls: r.get(4),
                reply: r.get(5),
            })
            .collect();
        Ok(Some(QueueDetail {
            summary,
            recipients,
            attempts,
        }))
    }

    async fn queue_retry(&self, id: Option<i64>, now: i64) -> Result<usize> {
        let client = self.client().await?;
        // One statement: every queued recipient, or one message's (id NULL: all).
        let n = client
            .execute_p(
                "UPDATE queue_recipients SET next_attempt = $2, lease_until = NULL
                 WHERE state = 'queued' AND ($1::BIGINT IS NULL OR queue_id = $1)",
                &[&id, &now],
            )
            .await
            .map_err(pg)?;
        Ok(n as usize)
    }

    async fn queue_delete(&self, id: i64) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let blob: i64 = tx
            .query_opt_p(
                "DELETE FROM queue_messages WHERE id = $1 RETURNING blob_id",
                &[&id],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| StoreError::NotFound(format!("queued message {id}")))?
            .get(0);
        blobs::collect(&tx, &[blob]).await?;
        tx.commit().await.map_err(pg)
    }

    /// The same contract as on SQLite: every lease dropped. Only a node
    /// that knows it is alone may ask (docs/scale.md: with several nodes,
    /// leases run out instead).
    async fn queue_release(&self) -> Result<()> {
        self.run(
            "UPDATE queue_recipients SET lease_until = NULL WHERE lease_until IS NOT NULL",
            &[],
        )
        .await?;
        Ok(())
    }

    async fn queue_pending(&self) -> Result<Vec<(i64, i64)>> {
        let rows = self.rows(
                "SELECT queue_id, min(next_attempt) FROM queue_recipients WHERE state = 'queued' GROUP BY queue_id",
                &[],
            ).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
