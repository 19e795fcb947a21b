//! Failed logins and known client addresses in SQLite (migration 31); see
//! [`crate::logins`].

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::logins::{
    ACCOUNT, CLIENT, FailureRow, KNOWN_CLIENTS, LoginStanding, LoginStore, LoginWindows, standing,
};

/// The standing of `client` on `account`, read in one statement.
fn read_standing(
    c: &Connection,
    client: &str,
    account: &str,
    now: i64,
    windows: &LoginWindows,
) -> Result<LoginStanding> {
    c.prepare_cached(
        "SELECT c.window_start, c.failures, c.blocked_until,
                a.window_start, a.failures,
                EXISTS (SELECT 1 FROM login_known WHERE account = ?2 AND client = ?1)
         FROM (SELECT 1) AS one
         LEFT JOIN login_failures c ON c.scope = 'client' AND c.key = ?1
         LEFT JOIN login_failures a ON a.scope = 'account' AND a.key = ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![client, account], |r| {
            let client: Option<FailureRow> = match r.get::<_, Option<i64>>(0)? {
                Some(start) => Some((start, r.get(1)?, r.get(2)?)),
                None => None,
            };
            let account: Option<FailureRow> = match r.get::<_, Option<i64>>(3)? {
                Some(start) => Some((start, r.get(4)?, None)),
                None => None,
            };
            Ok(standing(client, account, r.get(5)?, now, windows))
        })
    })
    .map_err(sql)
}

/// Count one failure of `key` in `scope`: a window that is over starts
/// again (and its block with it); reaching `limit` blocks until `now +
/// block`.
fn count_failure(
    c: &Connection,
    scope: &str,
    key: &str,
    now: i64,
    (window, limit, block): (i64, i64, i64),
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO login_failures(scope, key, window_start, failures, blocked_until)
         VALUES (?1, ?2, ?3, 1, CASE WHEN 1 >= ?5 THEN ?3 + ?6 END)
         ON CONFLICT(scope, key) DO UPDATE SET
            window_start = CASE WHEN ?3 - window_start > ?4 THEN ?3 ELSE window_start END,
            failures = CASE WHEN ?3 - window_start > ?4 THEN 1 ELSE failures + 1 END,
            blocked_until = CASE
                WHEN (CASE WHEN ?3 - window_start > ?4 THEN 1 ELSE failures + 1 END) >= ?5
                    THEN ?3 + ?6
                WHEN ?3 - window_start > ?4 THEN NULL
                ELSE blocked_until END",
    )
    .and_then(|mut st| st.execute(params![scope, key, now, window, limit, block]))
    .map(drop)
    .map_err(sql)
}

#[async_trait::async_trait]
impl LoginStore for SqliteStore {
    async fn login_standing(
        &self,
        client: &str,
        account: &str,
        now: i64,
        windows: &LoginWindows,
    ) -> Result<LoginStanding> {
        let (client, account, windows) = (client.to_string(), account.to_string(), *windows);
        self.read(move |c| read_standing(c, &client, &account, now, &windows))
            .await
    }

    async fn login_failed(
        &self,
        client: &str,
        account: &str,
        now: i64,
        windows: &LoginWindows,
    ) -> Result<LoginStanding> {
        let (client, account, w) = (client.to_string(), account.to_string(), *windows);
        self.write(move |c| {
            let client_rule = (w.client_window, i64::from(w.client_limit), w.client_block);
            count_failure(c, CLIENT, &client, now, client_rule)?;
            count_failure(c, ACCOUNT, &account, now, (w.account_window, i64::MAX, 0))?;
            read_standing(c, &client, &account, now, &w)
        })
        .await
    }

    async fn login_succeeded(&self, client: &str, account: &str, now: i64) -> Result<()> {
        let (client, account) = (client.to_string(), account.to_string());
        self.write(move |c| {
            c.prepare_cached("DELETE FROM login_failures WHERE scope = 'client' AND key = ?1")
                .and_then(|mut st| st.execute(params![client]))
                .map_err(sql)?;
            let known = c
                .prepare_cached("SELECT 1 FROM login_known WHERE account = ?1 AND client = ?2")
                .and_then(|mut st| {
                    st.query_row(params![account, client], |_| Ok(()))
                        .optional()
                })
                .map_err(sql)?;
            if known.is_some() {
                return Ok(());
            }
            c.prepare_cached("INSERT INTO login_known(account, client, since) VALUES (?1, ?2, ?3)")
                .and_then(|mut st| st.execute(params![account, client, now]))
                .map_err(sql)?;
            c.prepare_cached(
                "DELETE FROM login_known WHERE account = ?1 AND client NOT IN (
                    SELECT client FROM login_known WHERE account = ?1
                    ORDER BY client = ?3 DESC, since DESC, client LIMIT ?2)",
            )
            .and_then(|mut st| st.execute(params![account, KNOWN_CLIENTS as i64, client]))
            .map(drop)
            .map_err(sql)
        })
        .await
    }

    async fn expire_login_failures(&self, now: i64, windows: &LoginWindows) -> Result<u64> {
        let w = *windows;
        self.write(move |c| {
            c.prepare_cached(
                "DELETE FROM login_failures
                 WHERE (blocked_until IS NULL OR blocked_until <= ?1)
                   AND ((scope = 'client' AND ?1 - window_start > ?2)
                     OR (scope = 'account' AND ?1 - window_start > ?3))",
            )
            .and_then(|mut st| st.execute(params![now, w.client_window, w.account_window]))
            .map(|n| n as u64)
            .map_err(sql)
        })
        .await
    }
}
