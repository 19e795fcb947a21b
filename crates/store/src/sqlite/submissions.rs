//! JMAP submissions in SQLite (migration 23); see [`crate::submissions`].

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::submissions::{Submission, SubmissionStore};
use crate::types::AccountId;

#[async_trait::async_trait]
impl SubmissionStore for SqliteStore {
    async fn add_submission(&self, s: Submission) -> Result<i64> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO submissions(account_id, smtp_id, email_id, thread_id, identity, envelope, send_at, queue_id, canceled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.account, s.smtp_id, s.email_id, s.thread_id, s.identity, s.envelope, s.send_at,
                    s.queue_id, s.canceled
                ])
            })
            .map_err(sql)?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn submissions(&self, account: AccountId) -> Result<Vec<Submission>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT id, account_id, smtp_id, email_id, thread_id, identity, envelope, send_at, queue_id, canceled
                     FROM submissions WHERE account_id = ?1 ORDER BY send_at DESC, id DESC",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([account], |r| {
                    Ok(Submission {
                        id: r.get(0)?,
                        account: r.get(1)?,
                        smtp_id: r.get(2)?,
                        email_id: r.get(3)?,
                        thread_id: r.get(4)?,
                        identity: r.get(5)?,
                        envelope: r.get(6)?,
                        send_at: r.get(7)?,
                        queue_id: r.get(8)?,
                        canceled: r.get(9)?,
                    })
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn remove_submission(&self, account: AccountId, id: i64) -> Result<bool> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM submissions WHERE account_id = ?1 AND id = ?2",
                params![account, id],
            )
            .map(|n| n > 0)
            .map_err(sql)
        })
        .await
    }

    async fn cancel_submission(&self, account: AccountId, id: i64, now: i64) -> Result<bool> {
        // One write job: its own savepoint, all of it or nothing.
        self.write(move |c| {
            // Held, not released, never tried, nobody delivering it.
            let queue: Option<i64> = c
                .query_row(
                    "SELECT s.queue_id FROM submissions s JOIN queue_messages q ON q.id = s.queue_id
                     WHERE s.account_id = ?1 AND s.id = ?2 AND s.canceled = 0 AND s.send_at > ?3
                       AND q.release_at > ?3
                       AND NOT EXISTS (SELECT 1 FROM queue_recipients r WHERE r.queue_id = q.id
                                       AND (r.attempts > 0 OR r.lease_until > ?3 OR r.state != 'queued'))",
                    params![account, id, now],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql)?;
            let Some(queue) = queue else {
                return Ok(false);
            };
            let blob: i64 = c
                .query_row(
                    "DELETE FROM queue_messages WHERE id = ?1 RETURNING blob_id",
                    [queue],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            super::mail::collect_blobs(c, &[blob])?;
            c.execute(
                "UPDATE submissions SET canceled = 1 WHERE id = ?1",
                [id],
            )
            .map_err(sql)?;
            Ok(true)
        })
        .await
    }
}
