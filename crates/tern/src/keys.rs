//! `tern key put | list | remove`: the public keys users publish. An
//! OpenPGP key must carry a user ID with the address, an S/MIME
//! certificate must be for the address (its subjectAltName): nobody
//! publishes a key under someone else's name. Private keys are refused.

use std::path::Path;
use std::sync::Arc;

use store::{KeyKind, PublicKey, Store};

use crate::admin::{AdminError, account_by_address};
use crate::cli::KeyCmd;

type Result<T> = std::result::Result<T, AdminError>;

pub async fn key(store: Arc<dyn Store>, cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::Put { address, file } => {
            let key = put(&store, &address, &read(&file)?).await?;
            println!(
                "published the {} key {} of {address}",
                key.kind.as_str(),
                key.fingerprint
            );
        }
        KeyCmd::List { address } => {
            let account = account_by_address(&store, &address).await?;
            for k in store.public_keys(account.id).await? {
                println!(
                    "{}\t{}\t{}",
                    k.kind.as_str(),
                    k.fingerprint,
                    message::date::rfc3339_text(k.created)
                );
            }
        }
        KeyCmd::Remove { address, kind } => {
            let account = account_by_address(&store, &address).await?;
            let kind = KeyKind::parse(&kind).ok_or_else(|| {
                AdminError(format!("not a key kind: {kind:?} (openpgp or smime)"))
            })?;
            if !store.remove_public_key(account.id, kind).await? {
                return Err(AdminError(format!(
                    "{} has no {} key",
                    account.address,
                    kind.as_str()
                )));
            }
            println!("withdrew the {} key of {}", kind.as_str(), account.address);
        }
        KeyCmd::Encrypt { address, state } => {
            let account = account_by_address(&store, &address).await?;
            let on = match state.as_str() {
                "on" => true,
                "off" => false,
                other => return Err(AdminError(format!("{other:?}: say on or off"))),
            };
            let keys = store.public_keys(account.id).await?;
            let how = match (on, policy::at_rest_key(&keys)) {
                (false, _) => "as it comes",
                (true, Some(k)) if k.kind == KeyKind::OpenPgp => {
                    "encrypted to its OpenPGP key (PGP/MIME)"
                }
                (true, Some(_)) => "encrypted to its S/MIME certificate",
                (true, None) => {
                    return Err(AdminError(format!(
                        "{} has no key to encrypt to: publish an OpenPGP key with an \
                         encryption subkey, or an S/MIME certificate (RSA or EC P-256), \
                         first (tern key put)",
                        account.address
                    )));
                }
            };
            store.set_encrypt_at_rest(account.id, on).await?;
            tracing::info!(account = %account.address, on, "encryption at rest changed");
            println!("new mail of {} is stored {how}", account.address);
        }
    }
    Ok(())
}

fn read(file: &Path) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(file).map_err(|e| AdminError(format!("{}: {e}", file.display())))?;
    if meta.len() > policy::openpgp::MAX_KEY as u64 {
        return Err(AdminError(format!(
            "{}: too large for a key",
            file.display()
        )));
    }
    std::fs::read(file).map_err(|e| AdminError(format!("{}: {e}", file.display())))
}

/// Publish a key file's key for an account.
pub async fn put(store: &Arc<dyn Store>, address: &str, data: &[u8]) -> Result<PublicKey> {
    let account = account_by_address(store, address).await?;
    let key = policy::publish::understand(&account.address, data, message::date::unix_now())
        .map_err(AdminError)?;
    store.put_public_key(account.id, key.clone()).await?;
    tracing::info!(account = %account.address, kind = key.kind.as_str(), fingerprint = %key.fingerprint, "public key published");
    Ok(key)
}
