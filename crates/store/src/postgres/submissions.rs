//! JMAP submissions in PostgreSQL; see [`crate::submissions`].

use super::{PostgresStore, Prepared, blobs, pg};
use crate::error::Result;
use crate::submissions::{Submission, SubmissionStore};
use crate::types::AccountId;

#[async_trait::async_trait]
impl SubmissionStore for PostgresStore {
    async fn add_submission(&self, s: Submission) -> Result<i64> {
        let row = self.one_row(
                "INSERT INTO submissions(account_id, smtp_id, email_id, thread_id, identity, envelope, send_at, queue_id, canceled)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &[
                    &s.account.0, &s.smtp_id, &s.email_id, &s.thread_id, &s.identity, &s.envelope,
                    &s.send_at, &s.queue_id, &s.canceled,
                ],
            ).await?;
        Ok(row.get(0))
    }

    async fn submissions(&self, account: AccountId) -> Result<Vec<Submission>> {
        let rows = self.rows(
                "SELECT id, account_id, smtp_id, email_id, thread_id, identity, envelope, send_at, queue_id, canceled
                 FROM submissions WHERE account_id = $1 ORDER BY send_at DESC, id DESC",
                &[&account.0],
            ).await?;
        Ok(rows
            .iter()
            .map(|r| Submission {
                id: r.get(0),
                account: AccountId(r.get(1)),
                smtp_id: r.get(2),
                email_id: r.get(3),
                thread_id: r.get(4),
                identity: r.get(5),
                envelope: r.get(6),
                send_at: r.get(7),
                queue_id: r.get(8),
                canceled: r.get(9),
            })
            .collect())
    }

    async fn remove_submission(&self, account: AccountId, id: i64) -> Result<bool> {
        let n = self
            .run(
                "DELETE FROM submissions WHERE account_id = $1 AND id = $2",
                &[&account.0, &id],
            )
            .await?;
        Ok(n > 0)
    }

    async fn cancel_submission(&self, account: AccountId, id: i64, now: i64) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // Held, not released, never tried, nobody delivering it: its queue
        // rows locked so no node claims it meanwhile.
        let queue = tx
            .query_opt_p(
                "SELECT s.queue_id FROM submissions s JOIN queue_messages q ON q.id = s.queue_id
                 WHERE s.account_id = $1 AND s.id = $2 AND NOT s.canceled AND s.send_at > $3
                   AND q.release_at > $3
                   AND NOT EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id
                                   AND (r.attempts > 0 OR r.lease_until > $3 OR r.state != 'queued'))
                 FOR UPDATE OF q",
                &[&account.0, &id, &now],
            )
            .await
            .map_err(pg)?;
        let Some(queue) = queue else {
            return Ok(false);
        };
        let queue: i64 = queue.get(0);
        let blob: i64 = tx
            .query_one_p(
                "DELETE FROM queue_messages WHERE id = $1 RETURNING blob_id",
                &[&queue],
            )
            .await
            .map_err(pg)?
            .get(0);
        blobs::collect(&tx, &[blob]).await?;
        tx.execute_p(
            "UPDATE submissions SET canceled = TRUE WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(true)
    }
}
