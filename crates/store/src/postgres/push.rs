//! JMAP push subscriptions in PostgreSQL; see [`crate::push`].

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::error::Result;
use crate::push::{PushStore, PushSubscription, types_of, types_text};
use crate::types::AccountId;

const COLUMNS: &str = "id, account_id, device_client_id, url, p256dh, auth, verification_code, verified, expires, types";

fn subscription(r: &Row) -> PushSubscription {
    let (p256dh, auth): (Option<String>, Option<String>) = (r.get(4), r.get(5));
    PushSubscription {
        id: r.get(0),
        account: AccountId(r.get(1)),
        device_client_id: r.get(2),
        url: r.get(3),
        keys: p256dh.zip(auth),
        verification_code: r.get(6),
        verified: r.get(7),
        expires: r.get(8),
        types: types_of(r.get(9)),
    }
}

impl PostgresStore {
    async fn select_push(
        &self,
        filter: &str,
        value: &(dyn ToSql + Sync),
    ) -> Result<Vec<PushSubscription>> {
        let rows = self
            .rows(
                &format!("SELECT {COLUMNS} FROM push_subscriptions WHERE {filter} ORDER BY id"),
                &[value],
            )
            .await?;
        Ok(rows.iter().map(subscription).collect())
    }
}

#[async_trait::async_trait]
impl PushStore for PostgresStore {
    async fn add_push_subscription(&self, s: PushSubscription) -> Result<i64> {
        let (p256dh, auth) = s.keys.clone().unzip();
        let row = self.one_row(
                "INSERT INTO push_subscriptions(account_id, device_client_id, url, p256dh, auth, verification_code, verified, expires, types)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &[
                    &s.account.0,
                    &s.device_client_id,
                    &s.url,
                    &p256dh,
                    &auth,
                    &s.verification_code,
                    &s.verified,
                    &s.expires,
                    &types_text(&s.types),
                ],
            ).await?;
        Ok(row.get(0))
    }

    async fn push_subscriptions(&self, account: AccountId) -> Result<Vec<PushSubscription>> {
        self.select_push("account_id = $1", &account.0).await
    }

    async fn active_push_subscriptions(&self, now: i64) -> Result<Vec<PushSubscription>> {
        self.select_push("verified AND expires > $1", &now).await
    }

    async fn update_push_subscription(&self, s: &PushSubscription) -> Result<bool> {
        let n = self
            .run(
                "UPDATE push_subscriptions SET verified = $3, expires = $4, types = $5
                 WHERE account_id = $1 AND id = $2",
                &[
                    &s.account.0,
                    &s.id,
                    &s.verified,
                    &s.expires,
                    &types_text(&s.types),
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn remove_push_subscription(&self, account: AccountId, id: i64) -> Result<bool> {
        let n = self
            .run(
                "DELETE FROM push_subscriptions WHERE account_id = $1 AND id = $2",
                &[&account.0, &id],
            )
            .await?;
        Ok(n > 0)
    }

    async fn remove_expired_push_subscriptions(&self, now: i64) -> Result<usize> {
        let n = self
            .run(
                "DELETE FROM push_subscriptions WHERE expires <= $1",
                &[&now],
            )
            .await?;
        Ok(n as usize)
    }
}
