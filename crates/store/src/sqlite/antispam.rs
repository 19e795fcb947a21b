//! The spam defences' tables in SQLite (see `crate::antispam`).
//!
//! Implementation notes
//! - Token hashes are u64; SQLite integers are i64, so they are stored as
//!   the same 64 bits reinterpreted.
//! - Training runs in one write job: the trained-message row, every token
//!   count and the totals change together, so a crash leaves no half.
//! - A training record keeps the message's token hashes, so that training
//!   it the other way later can undo exactly what this training added.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::antispam::*;
use crate::error::Result;

fn greylist_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GreylistEntry> {
    Ok(GreylistEntry {
        key: r.get(0)?,
        first_seen: r.get(1)?,
        last_seen: r.get(2)?,
        passed_at: r.get(3)?,
        attempts: r.get(4)?,
    })
}

/// Add (`sign` 1) or take away (-1) one message's tokens in one owner's table.
fn count(
    c: &Connection,
    owner: i64,
    tokens: &[u64],
    spam: bool,
    sign: i64,
    now: i64,
) -> Result<()> {
    let (ds, dh) = if spam { (sign, 0) } else { (0, sign) };
    let mut up = c
        .prepare_cached(
            "INSERT INTO spam_tokens(owner, hash, spam, ham, seen) VALUES (?1, ?2, max(?3, 0), max(?4, 0), ?5)
             ON CONFLICT(owner, hash) DO UPDATE SET spam = max(spam + ?3, 0), ham = max(ham + ?4, 0), seen = ?5",
        )
        .map_err(sql)?;
    for t in tokens {
        up.execute(params![owner, to_i64(*t), ds, dh, now])
            .map_err(sql)?;
    }
    c.prepare_cached(
        "INSERT INTO spam_totals(owner, spam, ham) VALUES (?1, max(?2, 0), max(?3, 0))
         ON CONFLICT(owner) DO UPDATE SET spam = max(spam + ?2, 0), ham = max(ham + ?3, 0)",
    )
    .and_then(|mut st| st.execute(params![owner, ds, dh]))
    .map_err(sql)?;
    Ok(())
}

fn train_one(c: &Connection, owner: i64, t: &Training) -> Result<Trained> {
    let before: Option<(bool, Vec<u8>)> = c
        .prepare_cached("SELECT spam, tokens FROM spam_trained WHERE owner = ?1 AND digest = ?2")
        .and_then(|mut st| {
            st.query_row(params![owner, t.digest], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql)?;
    let outcome = match &before {
        Some((spam, _)) if *spam == t.spam => return Ok(Trained::Unchanged),
        Some((spam, old)) => {
            count(c, owner, &unpack(old), *spam, -1, t.now)?;
            Trained::Reversed
        }
        None => Trained::New,
    };
    count(c, owner, &t.tokens, t.spam, 1, t.now)?;
    c.prepare_cached(
        "INSERT INTO spam_trained(owner, digest, spam, tokens) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(owner, digest) DO UPDATE SET spam = ?3, tokens = ?4",
    )
    .and_then(|mut st| st.execute(params![owner, t.digest, t.spam, pack(&t.tokens)]))
    .map_err(sql)?;
    Ok(outcome)
}

#[async_trait::async_trait]
impl AntispamStore for SqliteStore {
    async fn greylist_entry(&self, key: &str) -> Result<Option<GreylistEntry>> {
        let key = key.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT key, first_seen, last_seen, passed_at, attempts FROM greylist WHERE key = ?1")
                .and_then(|mut st| st.query_row([key], greylist_row).optional())
                .map_err(sql)
        })
        .await
    }

    async fn greylist_put(&self, e: GreylistEntry) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO greylist(key, first_seen, last_seen, passed_at, attempts) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(key) DO UPDATE SET first_seen = ?2, last_seen = ?3, passed_at = ?4, attempts = ?5",
            )
            .and_then(|mut st| st.execute(params![e.key, e.first_seen, e.last_seen, e.passed_at, e.attempts]))
            .map(|_| ())
            .map_err(sql)
        })
        .await
    }

    async fn greylist_client(&self, network: &str) -> Result<(u32, i64)> {
        let network = network.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT passes, last_pass FROM greylist_clients WHERE network = ?1")
                .and_then(|mut st| {
                    st.query_row([network], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map(|r| r.unwrap_or((0, 0)))
                .map_err(sql)
        })
        .await
    }

    async fn greylist_client_passed(&self, network: &str, now: i64) -> Result<()> {
        let network = network.to_string();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO greylist_clients(network, passes, last_pass) VALUES (?1, 1, ?2)
                 ON CONFLICT(network) DO UPDATE SET passes = passes + 1, last_pass = ?2",
            )
            .and_then(|mut st| st.execute(params![network, now]))
            .map(|_| ())
            .map_err(sql)
        })
        .await
    }

    async fn greylist_list(&self, limit: usize) -> Result<Vec<GreylistEntry>> {
        self.read(move |c| {
            c.prepare_cached("SELECT key, first_seen, last_seen, passed_at, attempts FROM greylist ORDER BY last_seen DESC LIMIT ?1")
                .and_then(|mut st| st.query_map([limit as i64], greylist_row)?.collect())
                .map_err(sql)
        })
        .await
    }

    async fn greylist_expire(&self, before: i64) -> Result<usize> {
        self.write(move |c| {
            let n = c
                .execute("DELETE FROM greylist WHERE last_seen < ?1", [before])
                .map_err(sql)?;
            c.execute(
                "DELETE FROM greylist_clients WHERE last_pass < ?1",
                [before],
            )
            .map_err(sql)?;
            Ok(n)
        })
        .await
    }

    async fn spam_tokens(&self, owner: i64, tokens: Vec<u64>) -> Result<Vec<(u64, u32, u32)>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT spam, ham FROM spam_tokens WHERE owner = ?1 AND hash = ?2")
                .map_err(sql)?;
            let mut out = Vec::new();
            for t in tokens {
                if let Some((s, h)) = st
                    .query_row(params![owner, to_i64(t)], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(sql)?
                {
                    out.push((t, s, h));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn spam_totals(&self, owner: i64) -> Result<(u64, u64)> {
        self.read(move |c| {
            c.prepare_cached("SELECT spam, ham FROM spam_totals WHERE owner = ?1")
                .and_then(|mut st| {
                    st.query_row([owner], |r| {
                        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
                    })
                    .optional()
                })
                .map(|r| r.unwrap_or((0, 0)))
                .map_err(sql)
        })
        .await
    }

    async fn spam_train(&self, training: Training) -> Result<Trained> {
        self.write(move |c| {
            let mut outcome = Trained::Unchanged;
            for owner in &training.owners {
                let o = train_one(c, *owner, &training)?;
                if outcome == Trained::Unchanged {
                    outcome = o;
                }
            }
            Ok(outcome)
        })
        .await
    }

    async fn spam_prune(&self, owner: i64, max: usize) -> Result<usize> {
        self.write(move |c| {
            let n: i64 = c
                .query_row("SELECT count(*) FROM spam_tokens WHERE owner = ?1", [owner], |r| r.get(0))
                .map_err(sql)?;
            let excess = n - max as i64;
            if excess <= 0 {
                return Ok(0);
            }
            c.execute(
                "DELETE FROM spam_tokens WHERE owner = ?1 AND hash IN
                 (SELECT hash FROM spam_tokens WHERE owner = ?1 ORDER BY spam + ham, seen LIMIT ?2)",
                params![owner, excess],
            )
            .map_err(sql)
        })
        .await
    }

    async fn set_held(&self, account: &str, held: bool, now: i64) -> Result<usize> {
        let account = account.to_string();
        self.write(move |c| {
            let n = c
                .execute("UPDATE accounts SET held = ?2 WHERE address = ?1", params![account, held])
                .map_err(sql)?;
            if n == 0 {
                return Err(crate::StoreError::NotFound(format!("account {account}")));
            }
            let (from, to) = if held {
                (crate::queue::QUEUED, crate::queue::HELD)
            } else {
                (crate::queue::HELD, crate::queue::QUEUED)
            };
            c.execute(
                "UPDATE queue_recipients SET state = ?2, next_attempt = max(next_attempt, ?3), lease_until = NULL
                 WHERE state = ?1 AND queue_id IN (SELECT id FROM queue_messages WHERE submitter = ?4)",
                params![from, to, now, account],
            )
            .map_err(sql)
        })
        .await
    }

    async fn is_held(&self, account: &str) -> Result<bool> {
        let account = account.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT held FROM accounts WHERE address = ?1")
                .and_then(|mut st| st.query_row([account], |r| r.get(0)).optional())
                .map(|r| r.unwrap_or(false))
                .map_err(sql)
        })
        .await
    }

    async fn record_sent(&self, sent: Sent) -> Result<()> {
        self.write(move |c| {
            let mut new_domains = 0i64;
            let mut add = c
                .prepare_cached("INSERT OR IGNORE INTO sent_domains(account, domain, first_sent) VALUES (?1, ?2, ?3)")
                .map_err(sql)?;
            for d in &sent.domains {
                new_domains += add.execute(params![sent.account, d, sent.now]).map_err(sql)? as i64;
            }
            c.prepare_cached(
                "INSERT INTO sending(account, hour, messages, recipients, new_domains, spam) VALUES (?1, ?2, 1, ?3, ?4, ?5)
                 ON CONFLICT(account, hour) DO UPDATE SET messages = messages + 1, recipients = recipients + ?3,
                 new_domains = new_domains + ?4, spam = spam + ?5",
            )
            .and_then(|mut st| {
                st.execute(params![sent.account, hour_of(sent.now), sent.recipients as i64, new_domains, sent.spam as i64])
            })
            .map(|_| ())
            .map_err(sql)
        })
        .await
    }

    async fn record_bounce(&self, account: &str, now: i64) -> Result<()> {
        let account = account.to_string();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO sending(account, hour, bounces) VALUES (?1, ?2, 1)
                 ON CONFLICT(account, hour) DO UPDATE SET bounces = bounces + 1",
            )
            .and_then(|mut st| st.execute(params![account, hour_of(now)]))
            .map(|_| ())
            .map_err(sql)
        })
        .await
    }

    async fn sending_stats(&self, account: &str, now: i64) -> Result<SendingStats> {
        let account = account.to_string();
        self.read(move |c| {
            let rows: Vec<SendingHour> = c
                .prepare_cached("SELECT hour, messages, recipients, new_domains, bounces, spam FROM sending WHERE account = ?1 AND hour >= ?2")
                .and_then(|mut st| {
                    st.query_map(params![account, usual_since(now)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                    })?
                    .collect()
                })
                .map_err(sql)?;
            Ok(sending_stats(rows, now))
        })
        .await
    }
}
