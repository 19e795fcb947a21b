//! Shared-mailbox rights in SQLite (see `crate::acl`): one row per mailbox
//! and grantee; a mailbox's rows go with it, a removed account's grants
//! with the account (`sql_remove_account`).

use rusqlite::params;

use super::mail::{MAILBOX_COLUMNS, mailbox_row};
use super::{SqliteStore, sql};
use crate::acl::*;
use crate::error::Result;
use crate::types::MailboxId;

#[async_trait::async_trait]
impl AclStore for SqliteStore {
    async fn set_rights(&self, mailbox: MailboxId, grantee: &str, rights: &str) -> Result<()> {
        let (grantee, rights) = (grantee.to_string(), rights.to_string());
        self.write(move |c| {
            if rights.is_empty() {
                c.execute(
                    "DELETE FROM acl WHERE mailbox_id = ?1 AND grantee = ?2",
                    params![mailbox, grantee],
                )
            } else {
                c.execute(
                    "INSERT INTO acl(mailbox_id, grantee, rights) VALUES (?1, ?2, ?3)
                     ON CONFLICT(mailbox_id, grantee) DO UPDATE SET rights = excluded.rights",
                    params![mailbox, grantee, rights],
                )
            }
            .map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn acl(&self, mailbox: MailboxId) -> Result<Vec<(String, String)>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT grantee, rights FROM acl WHERE mailbox_id = ?1 ORDER BY grantee",
                )
                .map_err(sql)?;
            let rows = st
                .query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn rights_of(&self, mailbox: MailboxId, grantee: &str) -> Result<String> {
        let grantee = grantee.to_string();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT rights FROM acl WHERE mailbox_id = ?1 AND grantee IN (?2, ?3)",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(params![mailbox, grantee, ANYONE], |r| r.get::<_, String>(0))
                .map_err(sql)?;
            let all = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)?;
            Ok(all
                .iter()
                .fold(String::new(), |acc, r| rights_union(&acc, r)))
        })
        .await
    }

    async fn shared_with(&self, grantee: &str) -> Result<Vec<SharedMailbox>> {
        let grantee = grantee.to_string();
        self.read(move |c| {
            let columns = MAILBOX_COLUMNS
                .split(", ")
                .map(|col| format!("m.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {columns}, a.address, acl.rights FROM acl
                     JOIN mailboxes m ON m.id = acl.mailbox_id
                     JOIN accounts a ON a.id = m.account_id
                     WHERE acl.grantee IN (?1, ?2) AND a.address != ?1
                     ORDER BY a.address, m.name"
                ))
                .map_err(sql)?;
            let n = MAILBOX_COLUMNS.split(", ").count();
            let rows = st
                .query_map(params![grantee, ANYONE], |r| {
                    Ok(SharedMailbox {
                        mailbox: mailbox_row(r)?,
                        owner: r.get(n)?,
                        rights: r.get(n + 1)?,
                    })
                })
                .map_err(sql)?;
            let rows = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)?;
            let out = merge_shared(rows);
            Ok(out)
        })
        .await
    }
}
