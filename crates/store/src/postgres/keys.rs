//! Published public keys in PostgreSQL; see [`crate::keys`].

use tokio_postgres::Row;

use super::PostgresStore;
use crate::error::Result;
use crate::keys::{KeyKind, KeyStore, PublicKey};
use crate::types::AccountId;

fn key(r: &Row, at: usize) -> PublicKey {
    let kind: String = r.get(at);
    PublicKey {
        kind: KeyKind::parse(&kind).unwrap_or(KeyKind::OpenPgp),
        data: r.get(at + 1),
        fingerprint: r.get(at + 2),
        created: r.get(at + 3),
    }
}

#[async_trait::async_trait]
impl KeyStore for PostgresStore {
    async fn put_public_key(&self, account: AccountId, key: PublicKey) -> Result<()> {
        self.run(
            "INSERT INTO public_keys(account_id, kind, data, fingerprint, created)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (account_id, kind) DO UPDATE SET data = excluded.data,
                   fingerprint = excluded.fingerprint, created = excluded.created",
            &[
                &account.0,
                &key.kind.as_str(),
                &key.data,
                &key.fingerprint,
                &key.created,
            ],
        )
        .await?;
        Ok(())
    }

    async fn public_keys(&self, account: AccountId) -> Result<Vec<PublicKey>> {
        let rows = self
            .rows(
                "SELECT kind, data, fingerprint, created FROM public_keys
                 WHERE account_id = $1 ORDER BY kind",
                &[&account.0],
            )
            .await?;
        Ok(rows.iter().map(|r| key(r, 0)).collect())
    }

    async fn remove_public_key(&self, account: AccountId, kind: KeyKind) -> Result<bool> {
        let n = self
            .run(
                "DELETE FROM public_keys WHERE account_id = $1 AND kind = $2",
                &[&account.0, &kind.as_str()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn set_encrypt_at_rest(&self, account: AccountId, on: bool) -> Result<()> {
        self.run(
            "INSERT INTO key_settings(account_id, encrypt_at_rest) VALUES ($1, $2)
                 ON CONFLICT (account_id) DO UPDATE SET encrypt_at_rest = excluded.encrypt_at_rest",
            &[&account.0, &on],
        )
        .await?;
        Ok(())
    }

    async fn encrypts_at_rest(&self, account: AccountId) -> Result<bool> {
        let row = self
            .row(
                "SELECT encrypt_at_rest FROM key_settings WHERE account_id = $1",
                &[&account.0],
            )
            .await?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    async fn domain_public_keys(
        &self,
        domain: &str,
        kind: KeyKind,
    ) -> Result<Vec<(String, PublicKey)>> {
        let suffix = format!("@{}", domain.to_ascii_lowercase());
        let rows = self
            .rows(
                "SELECT a.address, k.kind, k.data, k.fingerprint, k.created
                 FROM public_keys k JOIN accounts a ON a.id = k.account_id
                 WHERE k.kind = $1 AND right(a.address, length($2)) = $2
                 ORDER BY a.address",
                &[&kind.as_str(), &suffix],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), key(r, 1))).collect())
    }
}
