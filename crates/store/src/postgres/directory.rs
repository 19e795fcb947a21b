//! Domains, accounts, aliases, DKIM keys, settings, quota and annotations
//! in PostgreSQL (see `crate::directory`). The same rules as the SQLite
//! backend, each change one transaction.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{PostgresStore, Prepared, changed, duplicate, pg};
use crate::directory::{DirectoryStore, domain_of, split_targets};
use crate::error::{Result, StoreError};
use crate::types::*;

fn now() -> i64 {
    message::date::unix_now()
}

async fn domain_id(c: &impl GenericClient, name: &str) -> Result<i64> {
    c.query_opt_p("SELECT id FROM domains WHERE name = $1", &[&name])
        .await
        .map_err(pg)?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))
}

pub(super) fn account_row(r: &Row) -> AccountRecord {
    AccountRecord {
        id: AccountId(r.get(0)),
        address: r.get(1),
        created: r.get(2),
    }
}

async fn exists(c: &impl GenericClient, query: &str, value: &str) -> Result<bool> {
    Ok(c.query_one(query, &[&value]).await.map_err(pg)?.get(0))
}

/// The next UIDVALIDITY, taken under the row lock of its counter (two
/// nodes creating mailboxes at once get different values).
pub(super) async fn next_uid_validity(c: &impl GenericClient) -> Result<u32> {
    let last: Option<String> = c
        .query_opt_p(
            "SELECT value FROM meta WHERE key = 'uid_validity' FOR UPDATE",
            &[],
        )
        .await
        .map_err(pg)?
        .map(|r| r.get(0));
    let last = last.and_then(|v| v.parse().ok()).unwrap_or(0);
    let next = crate::mailbox::next_uid_validity(last, now());
    c.execute_p(
        "INSERT INTO meta(key, value) VALUES ('uid_validity', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&next.to_string()],
    )
    .await
    .map_err(pg)?;
    Ok(next)
}

fn quota_of(r: &Row, from: usize) -> Quota {
    let (storage, messages): (Option<i64>, Option<i64>) = (r.get(from), r.get(from + 1));
    Quota {
        storage: storage.map(|v| v as u64),
        messages: messages.map(|v| v as u64),
    }
}

async fn quota_limits(c: &impl GenericClient, account: AccountId) -> Result<Quota> {
    let row = c
        .query_opt_p(
            "SELECT quota_storage, quota_messages FROM accounts WHERE id = $1",
            &[&account.0],
        )
        .await
        .map_err(pg)?
        .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
    Ok(quota_of(&row, 0))
}

#[async_trait::async_trait]
impl DirectoryStore for PostgresStore {
    async fn add_domain(&self, name: &str) -> Result<DomainRecord> {
        let created = now();
        let row = self
            .client()
            .await?
            .query_one_p(
                "INSERT INTO domains(name, created) VALUES ($1, $2) RETURNING id",
                &[&name, &created],
            )
            .await
            .map_err(duplicate(|| format!("domain {name}")))?;
        Ok(DomainRecord {
            id: DomainId(row.get(0)),
            name: name.to_string(),
            created,
        })
    }

    async fn list_domains(&self) -> Result<Vec<DomainRecord>> {
        let rows = self
            .rows("SELECT id, name, created FROM domains ORDER BY name", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| DomainRecord {
                id: DomainId(r.get(0)),
                name: r.get(1),
                created: r.get(2),
            })
            .collect())
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let id = domain_id(&tx, name).await?;
        let counts = tx
            .query_one_p(
                "SELECT (SELECT count(*) FROM accounts WHERE domain_id = $1),
                        (SELECT count(*) FROM aliases WHERE domain_id = $1)",
                &[&id],
            )
            .await
            .map_err(pg)?;
        let (accounts, aliases): (i64, i64) = (counts.get(0), counts.get(1));
        if accounts + aliases > 0 {
            return Err(StoreError::InUse(format!(
                "domain {name} still has {accounts} account(s) and {aliases} alias(es); remove them first"
            )));
        }
        tx.execute_p("DELETE FROM domains WHERE id = $1", &[&id])
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    async fn add_dkim_key(&self, domain: &str, key: NewDkimKey) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let id = domain_id(&tx, domain).await?;
        tx.execute_p(
            "INSERT INTO dkim_keys(domain_id, selector, algorithm, private_key, public_key, created, active_from)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&id, &key.selector, &key.algorithm, &key.private_key, &key.public_key, &now(), &key.active_from],
        )
        .await
        .map_err(duplicate(|| format!("DKIM selector {} of {domain}", key.selector)))?;
        tx.commit().await.map_err(pg)
    }

    async fn setting_or_init(&self, name: &str, initial: Vec<u8>) -> Result<Vec<u8>> {
        let client = self.client().await?;
        client
            .execute_p(
                "INSERT INTO settings(name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &initial],
            )
            .await
            .map_err(pg)?;
        let row = client
            .query_one_p("SELECT value FROM settings WHERE name = $1", &[&name])
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let rows = self.rows(
                "SELECT k.selector, k.algorithm, k.private_key, k.public_key, k.active_from, k.created
                 FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
                 WHERE d.name = $1 ORDER BY k.active_from DESC, k.id DESC",
                &[&domain],
            ).await?;
        Ok(rows
            .iter()
            .map(|r| DkimKey {
                domain: domain.to_string(),
                key: NewDkimKey {
                    selector: r.get(0),
                    algorithm: r.get(1),
                    private_key: r.get(2),
                    public_key: r.get(3),
                    active_from: r.get(4),
                },
                created: r.get(5),
            })
            .collect())
    }

    async fn add_account(&self, address: &str, credentials: Credentials) -> Result<AccountRecord> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let domain = domain_id(&tx, domain_of(address)?).await?;
        if exists(
            &tx,
            "SELECT EXISTS(SELECT 1 FROM aliases WHERE address = $1)",
            address,
        )
        .await?
        {
            return Err(StoreError::Duplicate(format!(
                "alias {address} (an account cannot have an alias's address)"
            )));
        }
        let created = now();
        let row = tx
            .query_one_p(
                "INSERT INTO accounts(address, domain_id, password_hash, scram_sha256, created)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &address,
                    &domain,
                    &credentials.password_hash,
                    &credentials.scram_sha256,
                    &created,
                ],
            )
            .await
            .map_err(duplicate(|| format!("account {address}")))?;
        let id: i64 = row.get(0);
        for (name, special) in SPECIAL_MAILBOXES {
            let validity = i64::from(next_uid_validity(&tx).await?);
            tx.execute_p(
                "INSERT INTO mailboxes(account_id, name, special_use, uid_validity) VALUES ($1, $2, $3, $4)",
                &[&id, &name, &special, &validity],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(AccountRecord {
            id: AccountId(id),
            address: address.to_string(),
            created,
        })
    }

    async fn set_credentials(&self, address: &str, credentials: Credentials) -> Result<()> {
        let n = self
            .run(
                "UPDATE accounts SET password_hash = $2, scram_sha256 = $3 WHERE address = $1",
                &[
                    &address,
                    &credentials.password_hash,
                    &credentials.scram_sha256,
                ],
            )
            .await?;
        changed(n, || format!("account {address}"))
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>> {
        let rows = self
            .rows(
                "SELECT id, address, created FROM accounts ORDER BY address",
                &[],
            )
            .await?;
        Ok(rows.iter().map(account_row).collect())
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let blobs: Vec<i64> = tx
            .query_p(
                "SELECT DISTINCT m.blob_id FROM mailbox_messages m
                 JOIN mailboxes b ON b.id = m.mailbox_id JOIN accounts a ON a.id = b.account_id
                 WHERE a.address = $1",
                &[&address],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mailboxes: Vec<MailboxId> = tx
            .query_p(
                "SELECT b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id WHERE a.address = $1",
                &[&address],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| MailboxId(r.get(0)))
            .collect();
        // What it was granted goes with it: a new account of the same
        // address must not inherit it.
        tx.execute_p("DELETE FROM acl WHERE grantee = $1", &[&address])
            .await
            .map_err(pg)?;
        let n = tx
            .execute_p("DELETE FROM accounts WHERE address = $1", &[&address])
            .await
            .map_err(pg)?;
        changed(n, || format!("account {address}"))?;
        super::blobs::collect(&tx, &blobs).await?;
        // Its sessions' watchers learn their mailboxes are gone.
        super::feed::notify(&tx, &mailboxes).await?;
        tx.commit().await.map_err(pg)
    }

    async fn account_credentials(&self, address: &str) -> Result<Option<AccountCredentials>> {
        let row = self.row(
                "SELECT id, address, created, password_hash, scram_sha256 FROM accounts WHERE address = $1",
                &[&address],
            ).await?;
        Ok(row.map(|r| AccountCredentials {
            account: account_row(&r),
            credentials: Credentials {
                password_hash: r.get(3),
                scram_sha256: r.get(4),
            },
        }))
    }

    async fn set_quota(&self, address: &str, quota: Quota) -> Result<()> {
        let (storage, messages) = (
            quota.storage.map(|v| v as i64),
            quota.messages.map(|v| v as i64),
        );
        let n = self
            .run(
                "UPDATE accounts SET quota_storage = $2, quota_messages = $3 WHERE address = $1",
                &[&address, &storage, &messages],
            )
            .await?;
        changed(n, || format!("account {address}"))
    }

    async fn metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = self
            .rows(
                "SELECT name, value FROM metadata
                 WHERE account_id = $1 AND coalesce(mailbox_id, 0) = $2 ORDER BY name",
                &[&account.0, &mailbox.map_or(0, |m| m.0)],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: Vec<(String, Option<Vec<u8>>)>,
        max_entries: usize,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let (key, mailbox_id) = (mailbox.map_or(0, |m| m.0), mailbox.map(|m| m.0));
        for (name, value) in &entries {
            tx.execute_p(
                "DELETE FROM metadata WHERE account_id = $1 AND coalesce(mailbox_id, 0) = $2 AND name = $3",
                &[&account.0, &key, name],
            )
            .await
            .map_err(pg)?;
            if let Some(v) = value {
                tx.execute_p(
                    "INSERT INTO metadata(account_id, mailbox_id, name, value) VALUES ($1, $2, $3, $4)",
                    &[&account.0, &mailbox_id, name, v],
                )
                .await
                .map_err(pg)?;
            }
        }
        let count: i64 = tx
            .query_one_p(
                "SELECT count(*) FROM metadata WHERE account_id = $1",
                &[&account.0],
            )
            .await
            .map_err(pg)?
            .get(0);
        if count as usize > max_entries {
            // Dropping the transaction rolls the whole request back.
            return Err(StoreError::Full);
        }
        tx.commit().await.map_err(pg)
    }

    async fn quota_limits(&self, account: AccountId) -> Result<Quota> {
        let client = self.client().await?;
        quota_limits(&client, account).await
    }

    async fn quota(&self, account: AccountId) -> Result<QuotaUsage> {
        let row = self.row(
                "SELECT a.quota_storage, a.quota_messages,
                        (SELECT count(*) FROM mailbox_messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = a.id),
                        (SELECT coalesce(sum(m.size), 0)::BIGINT FROM mailbox_messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = a.id)
                 FROM accounts a WHERE a.id = $1",
                &[&account.0],
            ).await?
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        let (messages, octets): (i64, i64) = (row.get(2), row.get(3));
        Ok(QuotaUsage {
            quota: quota_of(&row, 0),
            storage: octets as u64,
            messages: messages as u64,
        })
    }

    async fn add_alias(&self, address: &str, targets: &[String]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let domain = domain_id(&tx, domain_of(address)?).await?;
        if exists(
            &tx,
            "SELECT EXISTS(SELECT 1 FROM accounts WHERE address = $1)",
            address,
        )
        .await?
        {
            return Err(StoreError::Duplicate(format!(
                "account {address} (an alias cannot have an account's address)"
            )));
        }
        tx.execute_p(
            "INSERT INTO aliases(address, domain_id, targets, created) VALUES ($1, $2, $3, $4)",
            &[&address, &domain, &targets.join(","), &now()],
        )
        .await
        .map_err(duplicate(|| format!("alias {address}")))?;
        tx.commit().await.map_err(pg)
    }

    async fn list_aliases(&self) -> Result<Vec<AliasRecord>> {
        let rows = self
            .rows("SELECT address, targets FROM aliases ORDER BY address", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| AliasRecord {
                address: r.get(0),
                targets: split_targets(r.get(1)),
            })
            .collect())
    }

    async fn remove_alias(&self, address: &str) -> Result<()> {
        let n = self
            .run("DELETE FROM aliases WHERE address = $1", &[&address])
            .await?;
        changed(n, || format!("alias {address}"))
    }

    async fn aliases_targeting(&self, address: &str) -> Result<Vec<String>> {
        let rows = self
            .rows(
                "SELECT address FROM aliases
                 WHERE address NOT LIKE '@%' AND $1 = ANY(string_to_array(targets, ','))
                 ORDER BY address",
                &[&address],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn lookup_address(&self, address: &str) -> Result<AddressKind> {
        let client = self.client().await?;
        let account = client
            .query_opt_p(
                "SELECT id, address, created FROM accounts WHERE address = $1",
                &[&address],
            )
            .await
            .map_err(pg)?;
        if let Some(a) = account {
            return Ok(AddressKind::Account(account_row(&a)));
        }
        let alias = client
            .query_opt_p(
                "SELECT targets FROM aliases WHERE address = $1",
                &[&address],
            )
            .await
            .map_err(pg)?;
        if let Some(t) = alias {
            return Ok(AddressKind::Alias(split_targets(t.get(0))));
        }
        let domain = domain_of(address)?;
        let local = exists(
            &client,
            "SELECT EXISTS(SELECT 1 FROM domains WHERE name = $1)",
            domain,
        )
        .await?;
        Ok(if local {
            AddressKind::Unknown
        } else {
            AddressKind::NotLocal
        })
    }
}
