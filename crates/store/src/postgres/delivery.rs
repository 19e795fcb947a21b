//! A message arriving, in PostgreSQL (see `crate::delivery`): its content,
//! its search index and every local copy in one transaction, the mailboxes taken in id
//! order and published at commit.

use deadpool_postgres::GenericClient;
use message::index::MessageIndex;

use super::feed::notify;
use super::mailbox::{create, insert_entry, lock, mailbox_by_name};
use super::{PostgresStore, blobs, pg, search};
use crate::delivery::DeliveryStore;
use crate::error::{Result, StoreError};
use crate::types::*;

/// The mailbox a delivery goes to; INBOX when the asked one does not exist.
async fn folder_mailbox(
    c: &impl GenericClient,
    account: AccountId,
    folder: &Folder,
) -> Result<MailboxId> {
    let found = match folder {
        Folder::Inbox => None,
        Folder::SpecialUse(s) => c
            .query_opt(
                "SELECT id FROM mailboxes WHERE account_id = $1 AND special_use = $2",
                &[&account.0, s],
            )
            .await
            .map_err(pg)?
            .map(|r| MailboxId(r.get(0))),
        Folder::Named(n) => mailbox_by_name(c, account, n).await?.map(|m| m.id),
        Folder::Create(n) => Some(match mailbox_by_name(c, account, n).await? {
            Some(m) => m.id,
            None => create(c, account, n).await?.id,
        }),
    };
    if let Some(id) = found {
        return Ok(id);
    }
    mailbox_by_name(c, account, "INBOX")
        .await?
        .map(|m| m.id)
        .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account}")))
}

async fn store_new_message(
    c: &impl GenericClient,
    msg: &NewMessage,
    index: Option<&MessageIndex>,
) -> Result<Stored> {
    let blob = blobs::insert(c, &msg.data).await?;
    if let Some(i) = index {
        search::insert(c, blob, i).await?;
    }
    let mut targets = Vec::with_capacity(msg.deliveries.len());
    for d in &msg.deliveries {
        targets.push(folder_mailbox(c, d.account, &d.folder).await?);
    }
    lock(c, &targets).await?;
    let mut placed = Vec::with_capacity(targets.len());
    for (d, mailbox) in msg.deliveries.iter().zip(targets) {
        let size = d.prefix.len() as u64 + msg.data.len();
        let uid =
            insert_entry(c, mailbox, blob, &d.prefix, size, msg.received_at, &d.flags).await?;
        placed.push((mailbox, uid));
    }
    let queue_id = match &msg.queue {
        Some(q) => Some(super::queue::insert(c, blob, q, msg.received_at).await?),
        None => None,
    };
    Ok(Stored { placed, queue_id })
}

#[async_trait::async_trait]
impl DeliveryStore for PostgresStore {
    async fn store_message(&self, message: NewMessage) -> Result<Stored> {
        let mut stored = self.store_messages(vec![message]).await?;
        stored
            .pop()
            .ok_or_else(|| StoreError::Io("nothing stored".into()))
    }

    async fn store_messages(&self, messages: Vec<NewMessage>) -> Result<Vec<Stored>> {
        let indexes: Vec<Option<MessageIndex>> =
            messages.iter().map(crate::search::index_of).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let mut stored = Vec::with_capacity(messages.len());
        for (message, index) in messages.iter().zip(&indexes) {
            stored.push(store_new_message(&tx, message, index.as_ref()).await?);
        }
        let placed: Vec<MailboxId> = stored
            .iter()
            .flat_map(|s| s.placed.iter().map(|p| p.0))
            .collect();
        notify(&tx, &placed).await?;
        tx.commit().await.map_err(pg)?;
        Ok(stored)
    }
}
