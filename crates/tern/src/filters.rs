//! `tern sieve`: users' Sieve scripts from the command line (the same
//! store and checks as ManageSieve), and `sieve test`, which shows what a
//! script does with a message without delivering it.

use std::path::Path;
use std::sync::Arc;

use store::Store;

use crate::spam::account_id;

use crate::cli::SieveCmd;
use crate::config::Config;

pub async fn sieve(store: Arc<dyn Store>, config: &Config, cmd: SieveCmd) -> Result<(), String> {
    let fail = |e: store::StoreError| e.to_string();
    match cmd {
        SieveCmd::List { address } => {
            let account = account_id(&store, &address).await?;
            let list = store.sieve_list(account).await.map_err(fail)?;
            if list.is_empty() {
                println!("{address} has no scripts");
            }
            for s in list {
                let mark = if s.active { "  (active)" } else { "" };
                println!("{}  {} octets{mark}", s.name, s.size);
            }
        }
        SieveCmd::Put {
            address,
            name,
            file,
            activate,
        } => {
            let account = account_id(&store, &address).await?;
            let text = read_script(&file)?;
            if text.len() as u64 > config.sieve.max_script_size {
                return Err(format!(
                    "{}: {} octets, more than the {} allowed ([sieve] max_script_size)",
                    file.display(),
                    text.len(),
                    config.sieve.max_script_size
                ));
            }
            sieve::compile(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            store.sieve_put(account, &name, &text).await.map_err(fail)?;
            if activate {
                store
                    .sieve_activate(account, Some(&name))
                    .await
                    .map_err(fail)?;
            }
            println!(
                "stored {name} for {address}{}",
                if activate { ", active" } else { "" }
            );
        }
        SieveCmd::Activate { address, name } => {
            let account = account_id(&store, &address).await?;
            store
                .sieve_activate(account, name.as_deref())
                .await
                .map_err(fail)?;
            match name {
                Some(n) => println!("{n} is {address}'s active script"),
                None => println!("{address} has no active script"),
            }
        }
        SieveCmd::Delete { address, name } => {
            let account = account_id(&store, &address).await?;
            store.sieve_delete(account, &name).await.map_err(fail)?;
            println!("deleted {name} of {address}");
        }
        SieveCmd::Test {
            file,
            message,
            from,
            to,
        } => {
            let text = read_script(&file)?;
            let script = sieve::compile(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let raw = std::fs::read(&message).map_err(|e| format!("{}: {e}", message.display()))?;
            let mda = crate::serve::mda(config, &store)
                .await
                .map_err(|e| e.to_string())?;
            let from = if from == "<>" { String::new() } else { from };
            let outcome = mda
                .dry_run(
                    Arc::new(script),
                    crlf(raw),
                    &from,
                    &to,
                    message::date::unix_now(),
                )
                .await;
            for a in &outcome.actions {
                println!("{}", a.describe());
            }
            if let Some(e) = outcome.error {
                println!("error: {e} (so the message is kept)");
            }
        }
    }
    Ok(())
}

fn read_script(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A message file with bare LF line ends, as mail has them on the wire.
fn crlf(raw: Vec<u8>) -> Vec<u8> {
    if raw.windows(2).any(|w| w == b"\r\n") {
        return raw;
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for b in raw {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}
