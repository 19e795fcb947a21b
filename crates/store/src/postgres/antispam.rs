//! The spam defences' tables in PostgreSQL (see `crate::antispam`).
//!
//! Implementation notes
//! - Token hashes are u64 kept as the same 64 bits in a BIGINT.
//! - Training is one transaction: the trained-message row, every token
//!   count and the totals change together. The trained row is read
//!   `FOR UPDATE`, so one message trained on two nodes at once counts once.
//! - Greylisting state and sending counts are rows every node shares: a
//!   client greylisted by one node is known to all.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{PostgresStore, Prepared, changed, pg};
use crate::antispam::*;
use crate::error::Result;

fn greylist_row(r: &Row) -> GreylistEntry {
    GreylistEntry {
        key: r.get(0),
        first_seen: r.get(1),
        last_seen: r.get(2),
        passed_at: r.get(3),
        attempts: r.get::<_, i32>(4) as u32,
    }
}

/// Add (`sign` 1) or take away (-1) one message's tokens in one owner's
/// table (a hash given twice counts twice).
async fn count(
    c: &impl GenericClient,
    owner: i64,
    tokens: &[u64],
    spam: bool,
    sign: i64,
    now: i64,
) -> Result<()> {
    let (ds, dh) = if spam { (sign, 0) } else { (0, sign) };
    let mut counted: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for t in tokens {
        *counted.entry(to_i64(*t)).or_default() += 1;
    }
    let (hashes, times): (Vec<i64>, Vec<i64>) = counted.into_iter().unzip();
    let statement = if sign > 0 {
        "INSERT INTO spam_tokens(owner, hash, spam, ham, seen)
         SELECT $1, h, $3::BIGINT * n, $4::BIGINT * n, $5 FROM unnest($2::BIGINT[], $6::BIGINT[]) AS u(h, n)
         ON CONFLICT (owner, hash) DO UPDATE SET spam = spam_tokens.spam + excluded.spam,
           ham = spam_tokens.ham + excluded.ham, seen = excluded.seen"
    } else {
        // Undoing a training: only rows that exist, never below zero.
        "UPDATE spam_tokens t SET spam = greatest(t.spam + $3::BIGINT * u.n, 0), ham = greatest(t.ham + $4::BIGINT * u.n, 0), seen = $5
         FROM unnest($2::BIGINT[], $6::BIGINT[]) AS u(h, n) WHERE t.owner = $1 AND t.hash = u.h"
    };
    c.execute_p(statement, &[&owner, &hashes, &ds, &dh, &now, &times])
        .await
        .map_err(pg)?;
    c.execute_p(
        "INSERT INTO spam_totals(owner, spam, ham) VALUES ($1, greatest($2::BIGINT, 0), greatest($3::BIGINT, 0))
         ON CONFLICT (owner) DO UPDATE SET spam = greatest(spam_totals.spam + $2::BIGINT, 0),
           ham = greatest(spam_totals.ham + $3::BIGINT, 0)",
        &[&owner, &ds, &dh],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

async fn train_one(c: &impl GenericClient, owner: i64, t: &Training) -> Result<Trained> {
    let before = c
        .query_opt_p(
            "SELECT spam, tokens FROM spam_trained WHERE owner = $1 AND digest = $2 FOR UPDATE",
            &[&owner, &t.digest],
        )
        .await
        .map_err(pg)?;
    let outcome = match &before {
        Some(row) if row.get::<_, bool>(0) == t.spam => return Ok(Trained::Unchanged),
        Some(row) => {
            let old: &[u8] = row.get(1);
            count(c, owner, &unpack(old), row.get(0), -1, t.now).await?;
            Trained::Reversed
        }
        None => Trained::New,
    };
    count(c, owner, &t.tokens, t.spam, 1, t.now).await?;
    c.execute_p(
        "INSERT INTO spam_trained(owner, digest, spam, tokens) VALUES ($1, $2, $3, $4)
         ON CONFLICT (owner, digest) DO UPDATE SET spam = excluded.spam, tokens = excluded.tokens",
        &[&owner, &t.digest, &t.spam, &pack(&t.tokens)],
    )
    .await
    .map_err(pg)?;
    Ok(outcome)
}

#[async_trait::async_trait]
impl AntispamStore for PostgresStore {
    async fn greylist_entry(&self, key: &str) -> Result<Option<GreylistEntry>> {
        let row = self.row(
                "SELECT key, first_seen, last_seen, passed_at, attempts FROM greylist WHERE key = $1",
                &[&key],
            ).await?;
        Ok(row.as_ref().map(greylist_row))
    }

    async fn greylist_put(&self, e: GreylistEntry) -> Result<()> {
        self.run(
                "INSERT INTO greylist(key, first_seen, last_seen, passed_at, attempts) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (key) DO UPDATE SET first_seen = $2, last_seen = $3, passed_at = $4, attempts = $5",
                &[&e.key, &e.first_seen, &e.last_seen, &e.passed_at, &(e.attempts as i32)],
            ).await?;
        Ok(())
    }

    async fn greylist_client(&self, network: &str) -> Result<(u32, i64)> {
        let row = self
            .row(
                "SELECT passes, last_pass FROM greylist_clients WHERE network = $1",
                &[&network],
            )
            .await?;
        Ok(row.map_or((0, 0), |r| (r.get::<_, i32>(0) as u32, r.get(1))))
    }

    async fn greylist_client_passed(&self, network: &str, now: i64) -> Result<()> {
        self.run(
                "INSERT INTO greylist_clients(network, passes, last_pass) VALUES ($1, 1, $2)
                 ON CONFLICT (network) DO UPDATE SET passes = greylist_clients.passes + 1, last_pass = $2",
                &[&network, &now],
            ).await?;
        Ok(())
    }

    async fn greylist_list(&self, limit: usize) -> Result<Vec<GreylistEntry>> {
        let rows = self.rows(
                "SELECT key, first_seen, last_seen, passed_at, attempts FROM greylist ORDER BY last_seen DESC LIMIT $1",
                &[&(limit as i64)],
            ).await?;
        Ok(rows.iter().map(greylist_row).collect())
    }

    async fn greylist_expire(&self, before: i64) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = tx
            .execute_p("DELETE FROM greylist WHERE last_seen < $1", &[&before])
            .await
            .map_err(pg)?;
        tx.execute_p(
            "DELETE FROM greylist_clients WHERE last_pass < $1",
            &[&before],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(n as usize)
    }

    async fn spam_tokens(&self, owner: i64, tokens: Vec<u64>) -> Result<Vec<(u64, u32, u32)>> {
        let hashes: Vec<i64> = tokens.iter().map(|t| to_i64(*t)).collect();
        let rows = self
            .rows(
                "SELECT hash, spam, ham FROM spam_tokens WHERE owner = $1 AND hash = ANY($2)",
                &[&owner, &hashes],
            )
            .await?;
        let found: std::collections::HashMap<i64, (u32, u32)> = rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    (r.get::<_, i64>(1) as u32, r.get::<_, i64>(2) as u32),
                )
            })
            .collect();
        // In the order asked, as the SQLite backend answers.
        Ok(tokens
            .into_iter()
            .filter_map(|t| found.get(&to_i64(t)).map(|(s, h)| (t, *s, *h)))
            .collect())
    }

    async fn spam_totals(&self, owner: i64) -> Result<(u64, u64)> {
        let row = self
            .row(
                "SELECT spam, ham FROM spam_totals WHERE owner = $1",
                &[&owner],
            )
            .await?;
        Ok(row.map_or((0, 0), |r| {
            (r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64)
        }))
    }

    async fn spam_train(&self, training: Training) -> Result<Trained> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let mut outcome = Trained::Unchanged;
        for owner in &training.owners {
            let o = train_one(&tx, *owner, &training).await?;
            if outcome == Trained::Unchanged {
                outcome = o;
            }
        }
        tx.commit().await.map_err(pg)?;
        Ok(outcome)
    }

    async fn spam_prune(&self, owner: i64, max: usize) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n: i64 = tx
            .query_one_p(
                "SELECT count(*) FROM spam_tokens WHERE owner = $1",
                &[&owner],
            )
            .await
            .map_err(pg)?
            .get(0);
        let excess = n - max as i64;
        if excess <= 0 {
            return Ok(0);
        }
        let gone = tx
            .execute_p(
                "DELETE FROM spam_tokens WHERE owner = $1 AND hash IN
                 (SELECT hash FROM spam_tokens WHERE owner = $1 ORDER BY spam + ham, seen LIMIT $2)",
                &[&owner, &excess],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(gone as usize)
    }

    async fn set_held(&self, account: &str, held: bool, now: i64) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let n = tx
            .execute_p(
                "UPDATE accounts SET held = $2 WHERE address = $1",
                &[&account, &held],
            )
            .await
            .map_err(pg)?;
        changed(n, || format!("account {account}"))?;
        let (from, to) = if held {
            (crate::queue::QUEUED, crate::queue::HELD)
        } else {
            (crate::queue::HELD, crate::queue::QUEUED)
        };
        let moved = tx
            .execute_p(
                "UPDATE queue_recipients SET state = $2, next_attempt = greatest(next_attempt, $3), lease_until = NULL
                 WHERE state = $1 AND queue_id IN (SELECT id FROM queue_messages WHERE submitter = $4)",
                &[&from, &to, &now, &account],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(moved as usize)
    }

    async fn is_held(&self, account: &str) -> Result<bool> {
        let row = self
            .row("SELECT held FROM accounts WHERE address = $1", &[&account])
            .await?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    async fn record_sent(&self, sent: Sent) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let new_domains = tx
            .execute_p(
                "INSERT INTO sent_domains(account, domain, first_sent)
                 SELECT $1, d, $3 FROM unnest($2::TEXT[]) d ON CONFLICT DO NOTHING",
                &[&sent.account, &sent.domains, &sent.now],
            )
            .await
            .map_err(pg)? as i64;
        tx.execute_p(
            "INSERT INTO sending(account, hour, messages, recipients, new_domains, spam) VALUES ($1, $2, 1, $3, $4, $5)
             ON CONFLICT (account, hour) DO UPDATE SET messages = sending.messages + 1,
               recipients = sending.recipients + $3, new_domains = sending.new_domains + $4, spam = sending.spam + $5",
            &[&sent.account, &hour_of(sent.now), &(sent.recipients as i64), &new_domains, &i64::from(sent.spam)],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    async fn record_bounce(&self, account: &str, now: i64) -> Result<()> {
        self.run(
            "INSERT INTO sending(account, hour, bounces) VALUES ($1, $2, 1)
                 ON CONFLICT (account, hour) DO UPDATE SET bounces = sending.bounces + 1",
            &[&account, &hour_of(now)],
        )
        .await?;
        Ok(())
    }

    async fn sending_stats(&self, account: &str, now: i64) -> Result<SendingStats> {
        let rows = self.rows(
                "SELECT hour, messages, recipients, new_domains, bounces, spam FROM sending WHERE account = $1 AND hour >= $2",
                &[&account, &usual_since(now)],
            ).await?;
        let hours = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect();
        Ok(sending_stats(hours, now))
    }
}
