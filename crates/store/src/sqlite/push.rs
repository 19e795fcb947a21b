//! JMAP push subscriptions in SQLite (migration 26); see [`crate::push`].

use rusqlite::params;

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::push::{PushStore, PushSubscription, types_of, types_text};
use crate::types::AccountId;

const COLUMNS: &str = "id, account_id, device_client_id, url, p256dh, auth, verification_code, verified, expires, types";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PushSubscription> {
    let p256dh: Option<String> = r.get(4)?;
    let auth: Option<String> = r.get(5)?;
    let types: Option<String> = r.get(9)?;
    Ok(PushSubscription {
        id: r.get(0)?,
        account: r.get(1)?,
        device_client_id: r.get(2)?,
        url: r.get(3)?,
        keys: p256dh.zip(auth),
        verification_code: r.get(6)?,
        verified: r.get(7)?,
        expires: r.get(8)?,
        types: types_of(types),
    })
}

impl SqliteStore {
    fn select_push(
        &self,
        filter: &'static str,
        value: i64,
    ) -> impl Future<Output = Result<Vec<PushSubscription>>> + '_ {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM push_subscriptions WHERE {filter} ORDER BY id"
            ))
            .and_then(|mut st| st.query_map([value], row)?.collect())
            .map_err(sql)
        })
    }
}

#[async_trait::async_trait]
impl PushStore for SqliteStore {
    async fn add_push_subscription(&self, s: PushSubscription) -> Result<i64> {
        self.write(move |c| {
            let (p256dh, auth) = s.keys.clone().unzip();
            c.prepare_cached(
                "INSERT INTO push_subscriptions(account_id, device_client_id, url, p256dh, auth, verification_code, verified, expires, types)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.account, s.device_client_id, s.url, p256dh, auth, s.verification_code,
                    s.verified, s.expires, types_text(&s.types)
                ])
            })
            .map_err(sql)?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn push_subscriptions(&self, account: AccountId) -> Result<Vec<PushSubscription>> {
        self.select_push("account_id = ?1", account.0).await
    }

    async fn active_push_subscriptions(&self, now: i64) -> Result<Vec<PushSubscription>> {
        self.select_push("verified = 1 AND expires > ?1", now).await
    }

    async fn update_push_subscription(&self, s: &PushSubscription) -> Result<bool> {
        let s = s.clone();
        self.write(move |c| {
            c.execute(
                "UPDATE push_subscriptions SET verified = ?3, expires = ?4, types = ?5
                 WHERE account_id = ?1 AND id = ?2",
                params![s.account, s.id, s.verified, s.expires, types_text(&s.types)],
            )
            .map(|n| n > 0)
            .map_err(sql)
        })
        .await
    }

    async fn remove_push_subscription(&self, account: AccountId, id: i64) -> Result<bool> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM push_subscriptions WHERE account_id = ?1 AND id = ?2",
                params![account, id],
            )
            .map(|n| n > 0)
            .map_err(sql)
        })
        .await
    }

    async fn remove_expired_push_subscriptions(&self, now: i64) -> Result<usize> {
        self.write(move |c| {
            c.execute("DELETE FROM push_subscriptions WHERE expires <= ?1", [now])
                .map_err(sql)
        })
        .await
    }
}
