//! Failed logins and known client addresses in PostgreSQL; see
//! [`crate::logins`]. A failure is counted by one upsert per scope, so
//! nodes counting at once each count (the row's lock orders them).

use deadpool_postgres::GenericClient;

use super::{PostgresStore, Prepared, pg};
use crate::error::Result;
use crate::logins::{
    ACCOUNT, CLIENT, FailureRow, KNOWN_CLIENTS, LoginStanding, LoginStore, LoginWindows, standing,
};

/// The standing of `client` on `account`, read in one statement.
async fn read_standing(
    c: &impl GenericClient,
    client: &str,
    account: &str,
    now: i64,
    windows: &LoginWindows,
) -> Result<LoginStanding> {
    let r = c
        .query_one_p(
            "SELECT c.window_start, c.failures, c.blocked_until,
                    a.window_start, a.failures,
                    EXISTS (SELECT 1 FROM login_known WHERE account = $2 AND client = $1)
             FROM (SELECT 1) AS one
             LEFT JOIN login_failures c ON c.scope = 'client' AND c.key = $1
             LEFT JOIN login_failures a ON a.scope = 'account' AND a.key = $2",
            &[&client, &account],
        )
        .await
        .map_err(pg)?;
    let client: Option<FailureRow> = r
        .get::<_, Option<i64>>(0)
        .map(|start| (start, r.get(1), r.get(2)));
    let account: Option<FailureRow> = r
        .get::<_, Option<i64>>(3)
        .map(|start| (start, r.get(4), None));
    Ok(standing(client, account, r.get(5), now, windows))
}

/// Count one failure of `key` in `scope`: a window that is over starts
/// again (and its block with it); reaching `limit` blocks until `now +
/// block`.
async fn count_failure(
    c: &impl GenericClient,
    scope: &str,
    key: &str,
    now: i64,
    (window, limit, block): (i64, i64, i64),
) -> Result<()> {
    c.execute_p(
        "INSERT INTO login_failures(scope, key, window_start, failures, blocked_until)
         VALUES ($1, $2, $3::BIGINT, 1, CASE WHEN 1 >= $5::BIGINT THEN $3::BIGINT + $6::BIGINT END)
         ON CONFLICT (scope, key) DO UPDATE SET
            window_start = CASE WHEN $3 - login_failures.window_start > $4
                THEN $3 ELSE login_failures.window_start END,
            failures = CASE WHEN $3 - login_failures.window_start > $4
                THEN 1 ELSE login_failures.failures + 1 END,
            blocked_until = CASE
                WHEN (CASE WHEN $3 - login_failures.window_start > $4
                    THEN 1 ELSE login_failures.failures + 1 END) >= $5 THEN $3 + $6
                WHEN $3 - login_failures.window_start > $4 THEN NULL
                ELSE login_failures.blocked_until END",
        &[&scope, &key, &now, &window, &limit, &block],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

#[async_trait::async_trait]
impl LoginStore for PostgresStore {
    async fn login_standing(
        &self,
        client: &str,
        account: &str,
        now: i64,
        windows: &LoginWindows,
    ) -> Result<LoginStanding> {
        read_standing(&self.client().await?, client, account, now, windows).await
    }

    async fn login_failed(
        &self,
        client: &str,
        account: &str,
        now: i64,
        w: &LoginWindows,
    ) -> Result<LoginStanding> {
        let mut connection = self.client().await?;
        let tx = connection.transaction().await.map_err(pg)?;
        let client_rule = (w.client_window, i64::from(w.client_limit), w.client_block);
        count_failure(&tx, CLIENT, client, now, client_rule).await?;
        count_failure(&tx, ACCOUNT, account, now, (w.account_window, i64::MAX, 0)).await?;
        let after = read_standing(&tx, client, account, now, w).await?;
        tx.commit().await.map_err(pg)?;
        Ok(after)
    }

    async fn login_succeeded(&self, client: &str, account: &str, now: i64) -> Result<()> {
        let mut connection = self.client().await?;
        let tx = connection.transaction().await.map_err(pg)?;
        tx.execute_p(
            "DELETE FROM login_failures WHERE scope = 'client' AND key = $1",
            &[&client],
        )
        .await
        .map_err(pg)?;
        let added = tx
            .execute_p(
                "INSERT INTO login_known(account, client, since) VALUES ($1, $2, $3)
                 ON CONFLICT (account, client) DO NOTHING",
                &[&account, &client, &now],
            )
            .await
            .map_err(pg)?;
        if added > 0 {
            tx.execute_p(
                "DELETE FROM login_known WHERE account = $1 AND client NOT IN (
                    SELECT client FROM login_known WHERE account = $1
                    ORDER BY client = $3 DESC, since DESC, client LIMIT $2)",
                &[&account, &(KNOWN_CLIENTS as i64), &client],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(())
    }

    async fn expire_login_failures(&self, now: i64, w: &LoginWindows) -> Result<u64> {
        self.run(
            "DELETE FROM login_failures
             WHERE (blocked_until IS NULL OR blocked_until <= $1)
               AND ((scope = 'client' AND $1 - window_start > $2)
                 OR (scope = 'account' AND $1 - window_start > $3))",
            &[&now, &w.client_window, &w.account_window],
        )
        .await
    }
}
