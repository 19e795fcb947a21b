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
            let data = spooled_message(&message)?;
            let mda = crate::serve::mda(config, &store)
                .await
                .map_err(|e| e.to_string())?;
            let from = if from == "<>" { String::new() } else { from };
            let outcome = mda
                .dry_run(
                    Arc::new(script),
                    data,
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

/// A message file as mail has it on the wire (bare LF made CRLF), read a
/// piece at a time into a spool in the temporary directory: a large
/// message is never held whole (hardening.md C-FT9).
fn spooled_message(path: &Path) -> Result<message::spool::Spooled, String> {
    use std::io::Read;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::fs::File::open(path).map_err(fail)?;
    let spool = message::spool::Spool::in_dir(&std::env::temp_dir()).map_err(fail)?;
    let mut out = spool.writer();
    let mut crlf = message::crlf::Crlf::default();
    let mut piece = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut piece).map_err(fail)?;
        if n == 0 {
            break;
        }
        out.write(&crlf.convert(&piece[..n])).map_err(fail)?;
    }
    out.finish().map_err(fail)
}
