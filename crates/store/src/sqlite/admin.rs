//! Domains, accounts and aliases in SQLite.

use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::directory::{DirectoryStore, domain_of, split_targets};
use crate::error::{Result, StoreError};
use crate::types::*;

fn now() -> i64 {
    message::date::unix_now()
}

fn domain_id(conn: &Connection, name: &str) -> Result<DomainId> {
    conn.query_row("SELECT id FROM domains WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
    .map_err(sql)?
    .ok_or_else(|| StoreError::NotFound(format!("domain {name}")))
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: r.get(0)?,
        address: r.get(1)?,
        created: r.get(2)?,
    })
}

fn quota_limits(c: &Connection, account: AccountId) -> Result<Quota> {
    let (storage, messages): (Option<i64>, Option<i64>) = c
        .prepare_cached("SELECT quota_storage, quota_messages FROM accounts WHERE id = ?1")
        .and_then(|mut st| st.query_row([account], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(sql)?;
    Ok(Quota {
        storage: storage.map(|v| v as u64),
        messages: messages.map(|v| v as u64),
    })
}

/// A fresh UIDVALIDITY: the current time, but always above the last one handed out,
/// so a mailbox deleted and created again within a second still gets a new value
/// (RFC 9051 §2.3.1.1).
pub(super) fn next_uid_validity(conn: &Connection) -> Result<u32> {
    let last: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'uid_validity'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    let last: u32 = last.and_then(|v| v.parse().ok()).unwrap_or(0);
    let candidate = crate::mailbox::next_uid_validity(last, now());
    conn.execute("INSERT INTO meta(key, value) VALUES('uid_validity', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [candidate.to_string()])
        .map_err(sql)?;
    Ok(candidate)
}

#[async_trait::async_trait]
impl DirectoryStore for SqliteStore {
    async fn add_domain(&self, name: &str) -> Result<DomainRecord> {
        let name = name.to_string();
        self.write(move |c| {
            let created = now();
            c.execute(
                "INSERT INTO domains(name, created) VALUES (?1, ?2)",
                params![name, created],
            )
            .map_err(|e| match sql(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("domain {name}")),
                other => other,
            })?;
            Ok(DomainRecord {
                id: DomainId(c.last_insert_rowid()),
                name,
                created,
            })
        })
        .await
    }

    async fn list_domains(&self) -> Result<Vec<DomainRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached("SELECT id, name, created FROM domains ORDER BY name")
                .map_err(sql)?;
            let rows = st
                .query_map([], |r| {
                    Ok(DomainRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created: r.get(2)?,
                    })
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |c| {
            let id = domain_id(c, &name)?;
            let accounts: i64 = c.query_row("SELECT count(*) FROM accounts WHERE domain_id = ?1", [id], |r| r.get(0)).map_err(sql)?;
            let aliases: i64 = c.query_row("SELECT count(*) FROM aliases WHERE domain_id = ?1", [id], |r| r.get(0)).map_err(sql)?;
            if accounts + aliases > 0 {
                return Err(StoreError::InUse(format!(
                    "domain {name} still has {accounts} account(s) and {aliases} alias(es); remove them first"
                )));
            }
            c.execute("DELETE FROM domains WHERE id = ?1", [id]).map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn add_dkim_key(&self, domain: &str, key: NewDkimKey) -> Result<()> {
        let domain = domain.to_string();
        self.write(move |c| {
            let id = domain_id(c, &domain)?;
            c.execute(
                "INSERT INTO dkim_keys(domain_id, selector, algorithm, private_key, public_key, created, active_from) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, key.selector, key.algorithm, key.private_key, key.public_key, now(), key.active_from],
            )
            .map_err(|e| match sql(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("DKIM selector {} of {domain}", key.selector)),
                other => other,
            })?;
            Ok(())
        })
        .await
    }

    async fn setting_or_init(&self, name: &str, initial: Vec<u8>) -> Result<Vec<u8>> {
        let name = name.to_string();
        self.write(move |c| {
            c.execute(
                "INSERT INTO settings(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                params![name, initial],
            )
            .map_err(sql)?;
            c.query_row("SELECT value FROM settings WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .map_err(sql)
        })
        .await
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let domain = domain.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT k.selector, k.algorithm, k.private_key, k.public_key, k.active_from, k.created FROM dkim_keys k JOIN domains d ON d.id = k.domain_id WHERE d.name = ?1 ORDER BY k.active_from DESC, k.id DESC",
            )
            .and_then(|mut st| {
                st.query_map([&domain], |r| {
                    Ok(DkimKey {
                        domain: domain.clone(),
                        key: NewDkimKey {
                            selector: r.get(0)?,
                            algorithm: r.get(1)?,
                            private_key: r.get(2)?,
                            public_key: r.get(3)?,
                            active_from: r.get(4)?,
                        },
                        created: r.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(sql)
        })
        .await
    }

    async fn add_account(&self, address: &str, credentials: Credentials) -> Result<AccountRecord> {
        let address = address.to_string();
        let creds = credentials;
        self.write(move |c| {
            let domain = domain_id(c, domain_of(&address)?)?;
            ensure_no_alias(c, &address)?;
            let created = now();
            c.execute(
                "INSERT INTO accounts(address, domain_id, password_hash, scram_sha256, created) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![address, domain, creds.password_hash, creds.scram_sha256, created],
            )
            .map_err(|e| match sql(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("account {address}")),
                other => other,
            })?;
            let id = AccountId(c.last_insert_rowid());
            for (name, special) in SPECIAL_MAILBOXES {
                let validity = next_uid_validity(c)?;
                c.execute(
                    "INSERT INTO mailboxes(account_id, name, special_use, uid_validity) VALUES (?1, ?2, ?3, ?4)",
                    params![id, name, special, validity],
                )
                .map_err(sql)?;
            }
            Ok(AccountRecord { id, address, created })
        })
        .await
    }

    async fn set_credentials(&self, address: &str, credentials: Credentials) -> Result<()> {
        let address = address.to_string();
        let creds = credentials;
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE accounts SET password_hash = ?2, scram_sha256 = ?3 WHERE address = ?1",
                    params![address, creds.password_hash, creds.scram_sha256],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("account {address}")));
            }
            Ok(())
        })
        .await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached("SELECT id, address, created FROM accounts ORDER BY address")
                .map_err(sql)?;
            let rows = st.query_map([], account_row).map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = address.to_string();
        let gone = self.write(move |c| {
            let mailboxes: Vec<MailboxId> = c
                .prepare_cached("SELECT b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id WHERE a.address = ?1")
                .and_then(|mut st| st.query_map([&address], |r| r.get(0))?.collect())
                .map_err(sql)?;
            let blobs = super::mail::blobs_of(
                c,
                "m.mailbox_id IN (SELECT b.id FROM mailboxes b JOIN accounts a ON a.id = b.account_id WHERE a.address = ?1)",
                [&address],
            )?;
            // What it was granted goes with it: a new account of the same
            // address must not inherit it.
            c.execute("DELETE FROM acl WHERE grantee = ?1", [&address])
                .map_err(sql)?;
            let id: Option<i64> = c
                .query_row("SELECT id FROM accounts WHERE address = ?1", [&address], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql)?;
            let Some(id) = id else {
                return Err(StoreError::NotFound(format!("account {address}")));
            };
            c.execute("DELETE FROM accounts WHERE id = ?1", [id])
                .map_err(sql)?;
            // Its change log too (written by the cascade above): an account
            // id may be used again.
            c.execute("DELETE FROM changes WHERE account_id = ?1", [id])
                .map_err(sql)?;
            super::mail::collect_blobs(c, &blobs)?;
            Ok(mailboxes)
        })
        .await?;
        // Its sessions' watchers learn their mailboxes are gone.
        self.feed().publish(gone);
        Ok(())
    }

    async fn set_quota(&self, address: &str, quota: Quota) -> Result<()> {
        let address = address.to_string();
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE accounts SET quota_storage = ?2, quota_messages = ?3 WHERE address = ?1",
                    params![address, quota.storage.map(|v| v as i64), quota.messages.map(|v| v as i64)],
                )
                .map_err(sql)?;
            match n {
                0 => Err(StoreError::NotFound(format!("account {address}"))),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT name, value FROM metadata WHERE account_id = ?1 AND ifnull(mailbox_id, 0) = ?2 ORDER BY name",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(params![account, mailbox.map_or(0, |m| m.0)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn set_metadata(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
        entries: Vec<(String, Option<Vec<u8>>)>,
        max_entries: usize,
    ) -> Result<()> {
        self.write(move |c| {
            for (name, value) in &entries {
                c.prepare_cached(
                    "DELETE FROM metadata WHERE account_id = ?1 AND ifnull(mailbox_id, 0) = ?2 AND name = ?3",
                )
                .and_then(|mut st| st.execute(params![account, mailbox.map_or(0, |m| m.0), name]))
                .map_err(sql)?;
                if let Some(v) = value {
                    c.prepare_cached(
                        "INSERT INTO metadata(account_id, mailbox_id, name, value) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut st| st.execute(params![account, mailbox, name, v]))
                    .map_err(sql)?;
                }
            }
            let count: i64 = c
                .prepare_cached("SELECT count(*) FROM metadata WHERE account_id = ?1")
                .and_then(|mut st| st.query_row([account], |r| r.get(0)))
                .map_err(sql)?;
            if count as usize > max_entries {
                // The writer rolls the whole job back.
                return Err(StoreError::Full);
            }
            Ok(())
        })
        .await
    }

    async fn quota_limits(&self, account: AccountId) -> Result<Quota> {
        self.read(move |c| quota_limits(c, account)).await
    }

    async fn quota(&self, account: AccountId) -> Result<QuotaUsage> {
        self.read(move |c| {
            let quota = quota_limits(c, account)?;
            let (count, octets): (i64, i64) = c
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(size), 0) FROM mailbox_messages
                     WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)",
                )
                .and_then(|mut st| st.query_row([account], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(sql)?;
            Ok(QuotaUsage {
                quota,
                storage: octets as u64,
                messages: count as u64,
            })
        })
        .await
    }

    async fn account_credentials(&self, address: &str) -> Result<Option<AccountCredentials>> {
        let address = address.to_string();
        self.read(move |c| {
            c.query_row("SELECT id, address, created, password_hash, scram_sha256 FROM accounts WHERE address = ?1", [address], |r| {
                Ok(AccountCredentials { account: account_row(r)?, credentials: Credentials { password_hash: r.get(3)?, scram_sha256: r.get(4)? } })
            })
            .optional()
            .map_err(sql)
        })
        .await
    }

    async fn add_alias(&self, address: &str, targets: &[String]) -> Result<()> {
        let address = address.to_string();
        let targets = targets.to_vec();
        self.write(move |c| {
            let domain = domain_id(c, domain_of(&address)?)?;
            let is_account: bool = c
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM accounts WHERE address = ?1)",
                    [&address],
                    |r| r.get(0),
                )
                .map_err(sql)?;
            if is_account {
                return Err(StoreError::Duplicate(format!(
                    "account {address} (an alias cannot have an account's address)"
                )));
            }
            c.execute(
                "INSERT INTO aliases(address, domain_id, targets, created) VALUES (?1, ?2, ?3, ?4)",
                params![address, domain, targets.join(","), now()],
            )
            .map_err(|e| match sql(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("alias {address}")),
                other => other,
            })?;
            Ok(())
        })
        .await
    }

    async fn list_aliases(&self) -> Result<Vec<AliasRecord>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached("SELECT address, targets FROM aliases ORDER BY address")
                .map_err(sql)?;
            let rows = st
                .query_map([], |r| {
                    Ok(AliasRecord {
                        address: r.get(0)?,
                        targets: split_targets(&r.get::<_, String>(1)?),
                    })
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn remove_alias(&self, address: &str) -> Result<()> {
        let address = address.to_string();
        self.write(move |c| {
            let n = c
                .execute("DELETE FROM aliases WHERE address = ?1", [&address])
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("alias {address}")));
            }
            Ok(())
        })
        .await
    }

    async fn lookup_address(&self, address: &str) -> Result<AddressKind> {
        let address = address.to_string();
        self.read(move |c| {
            let account = c
                .prepare_cached("SELECT id, address, created FROM accounts WHERE address = ?1")
                .and_then(|mut st| st.query_row([&address], account_row).optional())
                .map_err(sql)?;
            if let Some(a) = account {
                return Ok(AddressKind::Account(a));
            }
            let alias: Option<String> = c
                .prepare_cached("SELECT targets FROM aliases WHERE address = ?1")
                .and_then(|mut st| st.query_row([&address], |r| r.get(0)).optional())
                .map_err(sql)?;
            if let Some(t) = alias {
                return Ok(AddressKind::Alias(split_targets(&t)));
            }
            let domain = domain_of(&address)?;
            let local: bool = c
                .prepare_cached("SELECT EXISTS(SELECT 1 FROM domains WHERE name = ?1)")
                .and_then(|mut st| st.query_row([domain], |r| r.get(0)))
                .map_err(sql)?;
            Ok(if local {
                AddressKind::Unknown
            } else {
                AddressKind::NotLocal
            })
        })
        .await
    }

    async fn aliases_targeting(&self, address: &str) -> Result<Vec<String>> {
        let address = address.to_string();
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT address, targets FROM aliases WHERE address NOT LIKE '@%' AND instr(',' || targets || ',', ',' || ?1 || ',') > 0").map_err(sql)?;
            let rows = st.query_map([&address], |r| r.get::<_, String>(0)).map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }
}

fn ensure_no_alias(c: &Connection, address: &str) -> Result<()> {
    let is_alias: bool = c
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM aliases WHERE address = ?1)",
            [address],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if is_alias {
        return Err(StoreError::Duplicate(format!(
            "alias {address} (an account cannot have an alias's address)"
        )));
    }
    Ok(())
}
