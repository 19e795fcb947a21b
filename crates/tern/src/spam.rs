//! `tern spam` and `tern greylist`: the operator's view of the spam filter.

use std::sync::Arc;

use store::{AddressKind, Store};

use crate::cli::{GreylistCmd, SpamCmd};
use crate::config::Config;

pub async fn spam(store: Arc<dyn Store>, config: &Config, cmd: SpamCmd) -> Result<(), String> {
    match cmd {
        SpamCmd::Train {
            address,
            spam,
            ham: _,
            paths,
        } => {
            let account = account_id(&store, &address).await?;
            let bayes = antispam::bayes::Bayes::new(store.clone());
            let now = message::date::unix_now();
            let (mut new, mut reversed, mut unchanged) = (0, 0, 0);
            for path in &paths {
                for m in crate::messages::read(path)? {
                    let m = m?;
                    match bayes
                        .train(Some(account), &m.raw, spam, now)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        store::antispam::Trained::New => new += 1,
                        store::antispam::Trained::Reversed => reversed += 1,
                        store::antispam::Trained::Unchanged => unchanged += 1,
                    }
                }
            }
            let what = if spam { "spam" } else { "ham" };
            println!(
                "trained {new} messages as {what} ({reversed} of them were {} before; {unchanged} already known)",
                if spam { "ham" } else { "spam" }
            );
            let (s, h) = store
                .spam_totals(account.0)
                .await
                .map_err(|e| e.to_string())?;
            println!("{address} has trained {s} spam and {h} ham");
        }
        SpamCmd::Classify { address, messages } => {
            let account = account_id(&store, &address).await?;
            let checks = crate::serve::checks(
                config,
                None,
                &crate::serve::resolver(config).map_err(|e| e.to_string())?,
                &store,
                clock::system(),
            );
            for path in &messages {
                for m in crate::messages::read(path)? {
                    let m = m?;
                    let c = checks.classify(Some(account), &m.raw).await;
                    print_classified(&m.origin, &c);
                }
            }
        }
    }
    Ok(())
}

fn print_classified(origin: &str, c: &antispam::Classified) {
    use antispam::score::Disposition;
    let verdict = match c.disposition {
        Disposition::Inbox => "ham",
        Disposition::Junk => "spam (Junk)",
        Disposition::Reject => "spam (refused)",
    };
    let bayes = match &c.bayes {
        Some(b) => format!(
            "bayes={:.3} ({} table)",
            b.probability,
            if b.own_table { "own" } else { "shared" }
        ),
        None => "bayes=untrained".to_string(),
    };
    println!(
        "{origin}: {verdict} score={:.1} {bayes}",
        antispam::score::total(&c.hits)
    );
    println!("  rules: {}", antispam::score::rule_list(&c.hits));
    if let Some(b) = &c.bayes {
        let tokens: Vec<String> = b
            .clues
            .iter()
            .take(12)
            .map(|(t, p)| format!("{t:?} {p:.2}"))
            .collect();
        println!("  tokens: {}", tokens.join(", "));
    }
}

/// The id of the account with this address, or why there is none.
pub(crate) async fn account_id(
    store: &Arc<dyn Store>,
    address: &str,
) -> Result<store::AccountId, String> {
    let key = message::Mailbox::parse(address)
        .map_err(|_| format!("malformed address {address:?}"))?
        .key();
    match store
        .lookup_address(&key)
        .await
        .map_err(|e| e.to_string())?
    {
        AddressKind::Account(a) => Ok(a.id),
        _ => Err(format!("account {key} not found")),
    }
}

pub async fn greylist(store: Arc<dyn Store>, cmd: GreylistCmd) -> Result<(), String> {
    match cmd {
        GreylistCmd::List { limit } => {
            let entries = store
                .greylist_list(limit)
                .await
                .map_err(|e| e.to_string())?;
            for e in entries {
                let state = match e.passed_at {
                    Some(at) => format!("passed {}", message::date::rfc5322(at)),
                    None => "waiting".to_string(),
                };
                println!(
                    "{} first {} last {} attempts {} {state}",
                    e.key,
                    message::date::rfc5322(e.first_seen),
                    message::date::rfc5322(e.last_seen),
                    e.attempts
                );
            }
        }
    }
    Ok(())
}
