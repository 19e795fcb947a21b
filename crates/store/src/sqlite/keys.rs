//! Published public keys in SQLite (migration 28); see [`crate::keys`].

use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::keys::{KeyKind, KeyStore, PublicKey};
use crate::types::AccountId;

fn row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<PublicKey> {
    let kind: String = r.get(at)?;
    Ok(PublicKey {
        kind: KeyKind::parse(&kind).unwrap_or(KeyKind::OpenPgp),
        data: r.get(at + 1)?,
        fingerprint: r.get(at + 2)?,
        created: r.get(at + 3)?,
    })
}

#[async_trait::async_trait]
impl KeyStore for SqliteStore {
    async fn put_public_key(&self, account: AccountId, key: PublicKey) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO public_keys(account_id, kind, data, fingerprint, created)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(account_id, kind) DO UPDATE SET data = excluded.data,
                   fingerprint = excluded.fingerprint, created = excluded.created",
                params![
                    account,
                    key.kind.as_str(),
                    key.data,
                    key.fingerprint,
                    key.created
                ],
            )
            .map(|_| ())
            .map_err(sql)
        })
        .await
    }

    async fn public_keys(&self, account: AccountId) -> Result<Vec<PublicKey>> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT kind, data, fingerprint, created FROM public_keys
                     WHERE account_id = ?1 ORDER BY kind",
                )
                .map_err(sql)?;
            let rows = st.query_map([account], |r| row(r, 0)).map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }

    async fn remove_public_key(&self, account: AccountId, kind: KeyKind) -> Result<bool> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM public_keys WHERE account_id = ?1 AND kind = ?2",
                params![account, kind.as_str()],
            )
            .map(|n| n > 0)
            .map_err(sql)
        })
        .await
    }

    async fn set_encrypt_at_rest(&self, account: AccountId, on: bool) -> Result<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO key_settings(account_id, encrypt_at_rest) VALUES (?1, ?2)
                 ON CONFLICT(account_id) DO UPDATE SET encrypt_at_rest = excluded.encrypt_at_rest",
                params![account, on],
            )
            .map(|_| ())
            .map_err(sql)
        })
        .await
    }

    async fn encrypts_at_rest(&self, account: AccountId) -> Result<bool> {
        self.read(move |c| {
            c.prepare_cached("SELECT encrypt_at_rest FROM key_settings WHERE account_id = ?1")
                .and_then(|mut st| st.query_row([account], |r| r.get(0)).optional())
                .map(|v| v.unwrap_or(false))
                .map_err(sql)
        })
        .await
    }

    async fn domain_public_keys(
        &self,
        domain: &str,
        kind: KeyKind,
    ) -> Result<Vec<(String, PublicKey)>> {
        let suffix = format!("@{}", domain.to_ascii_lowercase());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT a.address, k.kind, k.data, k.fingerprint, k.created
                     FROM public_keys k JOIN accounts a ON a.id = k.account_id
                     WHERE k.kind = ?1 AND substr(a.address, -length(?2)) = ?2
                     ORDER BY a.address",
                )
                .map_err(sql)?;
            let rows = st
                .query_map(params![kind.as_str(), suffix], |r| {
                    Ok((r.get(0)?, row(r, 1)?))
                })
                .map_err(sql)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
        })
        .await
    }
}
