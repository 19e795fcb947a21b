//! Shared-mailbox rights in PostgreSQL (see `crate::acl`): one row per
//! mailbox and grantee; a mailbox's rows go with it, a removed account's
//! grants with the account.

use super::Prepared;
use super::mailbox::{MAILBOX_COLUMNS, mailbox_row};
use super::{PostgresStore, pg};
use crate::acl::*;
use crate::error::Result;
use crate::types::MailboxId;

#[async_trait::async_trait]
impl AclStore for PostgresStore {
    async fn set_rights(&self, mailbox: MailboxId, grantee: &str, rights: &str) -> Result<()> {
        let client = self.client().await?;
        if rights.is_empty() {
            client
                .execute_p(
                    "DELETE FROM acl WHERE mailbox_id = $1 AND grantee = $2",
                    &[&mailbox.0, &grantee],
                )
                .await
        } else {
            client
                .execute_p(
                    "INSERT INTO acl(mailbox_id, grantee, rights) VALUES ($1, $2, $3)
                     ON CONFLICT (mailbox_id, grantee) DO UPDATE SET rights = excluded.rights",
                    &[&mailbox.0, &grantee, &rights],
                )
                .await
        }
        .map_err(pg)?;
        Ok(())
    }

    async fn acl(&self, mailbox: MailboxId) -> Result<Vec<(String, String)>> {
        let rows = self
            .rows(
                "SELECT grantee, rights FROM acl WHERE mailbox_id = $1 ORDER BY grantee",
                &[&mailbox.0],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn rights_of(&self, mailbox: MailboxId, grantee: &str) -> Result<String> {
        let rows = self
            .rows(
                "SELECT rights FROM acl WHERE mailbox_id = $1 AND grantee IN ($2, $3)",
                &[&mailbox.0, &grantee, &ANYONE],
            )
            .await?;
        Ok(rows
            .iter()
            .fold(String::new(), |acc, r| rights_union(&acc, r.get(0))))
    }

    async fn shared_with(&self, grantee: &str) -> Result<Vec<SharedMailbox>> {
        let columns = MAILBOX_COLUMNS
            .split(", ")
            .map(|col| format!("m.{col}"))
            .collect::<Vec<_>>()
            .join(", ");
        let n = MAILBOX_COLUMNS.split(", ").count();
        let rows = self
            .rows(
                &format!(
                    "SELECT {columns}, a.address, acl.rights FROM acl
                     JOIN mailboxes m ON m.id = acl.mailbox_id
                     JOIN accounts a ON a.id = m.account_id
                     WHERE acl.grantee IN ($1, $2) AND a.address != $1
                     ORDER BY a.address, m.name"
                ),
                &[&grantee, &ANYONE],
            )
            .await?;
        Ok(merge_shared(rows.iter().map(|r| SharedMailbox {
            mailbox: mailbox_row(r),
            owner: r.get(n),
            rights: r.get(n + 1),
        })))
    }
}
