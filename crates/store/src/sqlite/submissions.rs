//! JMAP submissions in SQLite (migration 23); see [`crate::submissions`].

use rusqlite::params;

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::submissions::{Submission, SubmissionStore};
use crate::types::AccountId;

#[async_trait::async_trait]
impl SubmissionStore for SqliteStore {
    async fn add_submission(&self, s: Submission) -> Result<i64> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO submissions(account_id, smtp_id, email_id, thread_id, identity, envelope, send_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.account, s.smtp_id, s.email_id, s.thread_id, s.identity, s.envelope, s.send_at
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
                    "SELECT id, account_id, smtp_id, email_id, thread_id, identity, envelope, send_at
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
}
