//! The outbound queue in SQLite: one row per message, one per recipient with its
//! own state, so a message to several domains advances per recipient.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::queue::{
    DELIVERED, FAILED, HELD, QUEUED, QueueStore, by_mode, deliver_by, domain_of, first_attempt,
};
use crate::types::*;
use message::spool::Spooled;

pub(super) fn insert(c: &Connection, blob: i64, q: &QueueInsert, now: i64) -> Result<i64> {
    let o = &q.options;
    // Never an id used before (migration 19).
    let id = super::mail::unused_id(c, "queue_messages", "queue_floor")?;
    c.prepare_cached("INSERT INTO queue_messages(id, blob_id, sender, envid, ret, smtputf8, eight_bit, created, release_at, deliver_by, by_mode, priority, submitter) VALUES (?13, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")
        .and_then(|mut st| st.execute(params![blob, q.sender, q.envid, q.ret, q.smtputf8, q.eight_bit, now, o.release_at, o.deliver_by.map(|b| b.deadline), o.deliver_by.as_ref().map(by_mode), o.priority, q.submitter, id]))
        .map_err(sql)?;
    if o.require_tls {
        c.prepare_cached("INSERT INTO queue_require_tls(queue_id) VALUES (?1)")
            .and_then(|mut st| st.execute([id]))
            .map_err(sql)?;
    }
    // A held account's mail waits with it (the compromised-account hold).
    let held: bool = match &q.submitter {
        Some(a) => c
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM accounts WHERE address = ?1 AND held)")
            .and_then(|mut st| st.query_row([a], |r| r.get(0)))
            .map_err(sql)?,
        None => false,
    };
    let state = if held { HELD } else { QUEUED };
    let first = first_attempt(o, now);
    let mut st = c
        .prepare_cached("INSERT INTO queue_recipients(queue_id, address, domain, orcpt, notify, state, next_attempt, priority) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
        .map_err(sql)?;
    for r in &q.recipients {
        let domain = domain_of(&r.address);
        st.execute(params![
            id, r.address, domain, r.orcpt, r.notify, state, first, o.priority
        ])
        .map_err(sql)?;
    }
    Ok(id)
}

/// Take a message whose recipients are all done out of the queue. Its content
/// comes along only when a recipient failed (for the report), whole or its
/// first `limit` octets ([`QueueReport::return_limit`]).
fn finish_if_done(c: &Connection, id: i64, limit: u64) -> Result<Option<FinishedMessage>> {
    let pending: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM queue_recipients WHERE queue_id = ?1 AND state IN ('queued', 'held')",
        )
        .and_then(|mut st| st.query_row([id], |r| r.get(0)))
        .map_err(sql)?;
    if pending > 0 {
        return Ok(None);
    }
    let recipients = c
        .prepare_cached("SELECT address, orcpt, notify, state, coalesce(status, ''), coalesce(last_reply, ''), remote_mta FROM queue_recipients WHERE queue_id = ?1 ORDER BY id")
        .and_then(|mut st| {
            st.query_map([id], |r| {
                Ok(FinalRecipient {
                    address: r.get(0)?,
                    orcpt: r.get(1)?,
                    notify: r.get(2)?,
                    delivered: r.get::<_, String>(3)? == DELIVERED,
                    status: r.get(4)?,
                    reply: r.get(5)?,
                    remote_mta: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(sql)?;
    let with_content = recipients.iter().any(|r| !r.delivered);
    let Some((sender, envid, ret, created, blob, size)) = c
        .prepare_cached(
            // RFC 8689 §5: the report about a REQUIRETLS message carries
            // its header section only (it may travel less protected).
            "SELECT q.sender, q.envid, CASE WHEN EXISTS (SELECT 1 FROM queue_require_tls t WHERE t.queue_id = q.id) THEN 'HDRS' ELSE q.ret END, q.created, q.blob_id, length(b.data) FROM queue_messages q JOIN blobs b ON b.id = q.blob_id WHERE q.id = ?1",
        )
        .and_then(|mut st| {
            st.query_row(params![id], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, Option<String>>(2)?, r.get(3)?, r.get::<_, i64>(4)?, r.get::<_, i64>(5)?))
            })
            .optional()
        })
        .map_err(sql)?
    else {
        return Ok(None);
    };
    let content = if with_content {
        let full = ret
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case("FULL"));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let take = if full { size } else { size.min(limit) };
        c.prepare_cached("SELECT substr(data, 1, ?2) FROM blobs WHERE id = ?1")
            .and_then(|mut st| st.query_row(params![blob, take], |r| r.get::<_, Vec<u8>>(0)))
            .map_err(sql)?
    } else {
        Vec::new()
    };
    c.prepare_cached("DELETE FROM queue_messages WHERE id = ?1")
        .and_then(|mut st| st.execute([id]))
        .map_err(sql)?;
    super::mail::collect_blobs(c, &[blob])?;
    Ok(Some(FinishedMessage {
        id,
        sender,
        envid,
        ret,
        created,
        content,
        size: u64::try_from(size).unwrap_or(0),
        recipients,
    }))
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueueJob> {
    Ok(QueueJob {
        id: r.get(0)?,
        sender: r.get(1)?,
        envid: r.get(2)?,
        ret: r.get(3)?,
        smtputf8: r.get(4)?,
        eight_bit: r.get(5)?,
        created: r.get(6)?,
        size: r.get::<_, i64>(7)? as u64,
        options: QueueOptions {
            release_at: r.get(8)?,
            deliver_by: deliver_by(r.get(9)?, r.get(10)?),
            priority: r.get(11)?,
            require_tls: r.get(12)?,
        },
        recipients: Vec::new(),
    })
}

const JOB_COLUMNS: &str = "q.id, q.sender, q.envid, q.ret, q.smtputf8, q.eight_bit, q.created, length(b.data), q.release_at, q.deliver_by, q.by_mode, q.priority, EXISTS (SELECT 1 FROM queue_require_tls t WHERE t.queue_id = q.id)";

/// RFC 6710 priorities, highest first.
const PRIORITIES: std::ops::RangeInclusive<i8> = -9..=9;

#[async_trait::async_trait]
impl QueueStore for SqliteStore {
    async fn queue_list(&self) -> Result<Vec<QueueSummary>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached("SELECT q.id, q.sender, q.created, length(b.data) FROM queue_messages q JOIN blobs b ON b.id = q.blob_id ORDER BY q.id")
                .map_err(sql)?;
            let mut out: Vec<QueueSummary> = st
                .query_map([], |r| Ok(QueueSummary { id: r.get(0)?, sender: r.get(1)?, created: r.get(2)?, size: r.get(3)?, recipients: Vec::new() }))
                .map_err(sql)?
                .collect::<rusqlite::Result<_>>()
                .map_err(sql)?;
            let mut st = c.prepare_cached("SELECT address, state FROM queue_recipients WHERE queue_id = ?1 ORDER BY id").map_err(sql)?;
            for q in &mut out {
                q.recipients = st.query_map([q.id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql)?.collect::<rusqlite::Result<_>>().map_err(sql)?;
            }
            Ok(out)
        })
        .await
    }

    /// Lease the recipients that are due (or those of one message) until `lease_until`,
    /// grouped per message; at most `limit` messages.
    async fn queue_claim(
        &self,
        claim: Claim,
        now: i64,
        lease_until: i64,
        limit: usize,
    ) -> Result<Vec<QueueJob>> {
        self.write(move |c| {
            let free = "r.state = 'queued' AND (r.lease_until IS NULL OR r.lease_until < ?1)";
            let ids: Vec<i64> = match claim {
                // Highest MT-PRIORITY first, each an index range (state,
                // priority, next_attempt) that stops at the batch size.
                Claim::Due(due) => {
                    let mut ids: Vec<i64> = Vec::new();
                    let mut st = c
                        .prepare_cached(&format!("SELECT DISTINCT r.queue_id FROM queue_recipients r WHERE {free} AND r.priority = ?4 AND r.next_attempt <= ?2 ORDER BY r.next_attempt, r.id LIMIT ?3"))
                        .map_err(sql)?;
                    for p in PRIORITIES.rev() {
                        let left = limit.saturating_sub(ids.len());
                        if left == 0 {
                            break;
                        }
                        let more: Vec<i64> = st
                            .query_map(params![now, due, left as i64, p], |r| r.get(0))
                            .and_then(|rows| rows.collect())
                            .map_err(sql)?;
                        ids.extend(more.into_iter().filter(|id| !ids.contains(id)).collect::<Vec<_>>());
                    }
                    ids
                }
                Claim::Message(id) => vec![id],
            };
            let mut jobs = Vec::new();
            for id in ids {
                let Some(mut job) = c
                    .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM queue_messages q JOIN blobs b ON b.id = q.blob_id WHERE q.id = ?1"))
                    .and_then(|mut st| st.query_row([id], job_row).optional())
                    .map_err(sql)?
                else {
                    continue;
                };
                let due_filter = match claim {
                    Claim::Due(due) => format!(" AND r.next_attempt <= {due}"),
                    Claim::Message(_) => String::new(),
                };
                job.recipients = c
                    .prepare(&format!("SELECT r.id, r.address, r.domain, r.orcpt, r.notify, r.attempts, r.warned FROM queue_recipients r WHERE r.queue_id = ?2 AND {free}{due_filter} ORDER BY r.id"))
                    .and_then(|mut st| {
                        st.query_map(params![now, id], |r| {
                            Ok(QueuedRecipient { id: r.get(0)?, address: r.get(1)?, domain: r.get(2)?, orcpt: r.get(3)?, notify: r.get(4)?, attempts: r.get(5)?, warned: r.get(6)? })
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(sql)?;
                if job.recipients.is_empty() {
                    continue;
                }
                let mut lease = c.prepare_cached("UPDATE queue_recipients SET lease_until = ?2 WHERE id = ?1").map_err(sql)?;
                for r in &job.recipients {
                    lease.execute(params![r.id, lease_until]).map_err(sql)?;
                }
                jobs.push(job);
            }
            Ok(jobs)
        })
        .await
    }

    async fn queue_content(
        &self,
        id: i64,
        spool: &message::spool::Spool,
    ) -> Result<Option<Spooled>> {
        let mut writer = spool.writer();
        self.read(move |c| {
            let blob_id: Option<i64> = c
                .query_row(
                    "SELECT blob_id FROM queue_messages WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            let Some(blob_id) = blob_id else {
                return Ok(None);
            };
            let blob = c
                .blob_open(rusqlite::MAIN_DB, "blobs", "data", blob_id, true)
                .map_err(sql)?;
            let mut piece = vec![0; message::spool::MEMORY_LIMIT];
            let mut at = 0;
            while at < blob.len() {
                let n = piece.len().min(blob.len() - at);
                blob.read_at_exact(&mut piece[..n], at).map_err(sql)?;
                writer.write(&piece[..n])?;
                at += n;
            }
            Ok(Some(writer.finish()?))
        })
        .await
    }

    /// Record the outcome of a delivery run and release the leases; if no
    /// recipient is left to try, take the message out of the queue, in the same
    /// transaction, and return it.
    async fn queue_report(&self, report: QueueReport) -> Result<Option<FinishedMessage>> {
        self.write(move |c| {
            let mut log = c.prepare_cached("INSERT INTO queue_attempts(queue_id, at, recipients, mx, ip, tls, reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)").map_err(sql)?;
            for a in &report.attempts {
                log.execute(params![report.queue_id, a.at, a.recipients, a.mx, a.ip, a.tls, a.reply]).map_err(sql)?;
            }
            let mut update = c
                .prepare_cached(
                    "UPDATE queue_recipients SET state = ?2, next_attempt = coalesce(?3, next_attempt), attempts = attempts + 1, last_reply = ?4, status = ?5, remote_mta = ?6, warned = warned OR ?7, lease_until = NULL WHERE id = ?1",
                )
                .map_err(sql)?;
            for o in &report.outcomes {
                let (state, next) = match o.state {
                    RecipientState::Delivered => (DELIVERED, None),
                    RecipientState::Failed => (FAILED, None),
                    RecipientState::Deferred(at) => (QUEUED, Some(at)),
                };
                update.execute(params![o.id, state, next, o.reply, o.status, o.remote_mta, o.warned]).map_err(sql)?;
            }
            finish_if_done(c, report.queue_id, report.return_limit)
        })
        .await
    }

    async fn queue_show(&self, id: i64) -> Result<Option<QueueDetail>> {
        let summary = self.queue_list().await?.into_iter().find(|q| q.id == id);
        let Some(summary) = summary else {
            return Ok(None);
        };
        self.read(move |c| {
            let recipients = c
                .prepare_cached("SELECT address, state, attempts, next_attempt, last_reply FROM queue_recipients WHERE queue_id = ?1 ORDER BY id")
                .and_then(|mut st| st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sql)?;
            let attempts = c
                .prepare_cached("SELECT at, recipients, mx, ip, tls, reply FROM queue_attempts WHERE queue_id = ?1 ORDER BY id")
                .and_then(|mut st| {
                    st.query_map([id], |r| Ok(Attempt { at: r.get(0)?, recipients: r.get(1)?, mx: r.get(2)?, ip: r.get(3)?, tls: r.get(4)?, reply: r.get(5)? }))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(sql)?;
            Ok(Some(QueueDetail { summary, recipients, attempts }))
        })
        .await
    }

    /// Make queued recipients due now (one message, or all); returns how many.
    async fn queue_retry(&self, id: Option<i64>, now: i64) -> Result<usize> {
        self.write(move |c| {
            let n = match id {
                Some(id) => c.execute("UPDATE queue_recipients SET next_attempt = ?2, lease_until = NULL WHERE queue_id = ?1 AND state = 'queued'", params![id, now]),
                None => c.execute("UPDATE queue_recipients SET next_attempt = ?1, lease_until = NULL WHERE state = 'queued'", [now]),
            }
            .map_err(sql)?;
            Ok(n)
        })
        .await
    }

    async fn queue_delete(&self, id: i64) -> Result<()> {
        self.write(move |c| {
            let blob: Option<i64> = c
                .query_row(
                    "DELETE FROM queue_messages WHERE id = ?1 RETURNING blob_id",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            let Some(blob) = blob else {
                return Err(crate::StoreError::NotFound(format!("queued message {id}")));
            };
            super::mail::collect_blobs(c, &[blob])
        })
        .await
    }

    /// Forget every lease (a single node starting up: nobody else is delivering).
    async fn queue_release(&self) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE queue_recipients SET lease_until = NULL WHERE lease_until IS NOT NULL",
                [],
            )
            .map(|_| ())
            .map_err(sql)
        })
        .await
    }

    /// (message id, earliest next attempt) of every message with queued recipients.
    async fn queue_pending(&self) -> Result<Vec<(i64, i64)>> {
        self.read(|c| {
            c.prepare_cached("SELECT queue_id, min(next_attempt) FROM queue_recipients WHERE state = 'queued' GROUP BY queue_id")
                .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(sql)
        })
        .await
    }
}
