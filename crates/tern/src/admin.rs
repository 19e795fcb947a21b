//! The administration commands: they open the store next to a running server
//! (SQLite serialises the writers) and print one line per record.

use std::io::BufRead;
use std::sync::Arc;

use message::{Domain, Mailbox};
use store::{Store, StoreError};

use crate::cli::{AccountCmd, AliasCmd, DnsCmd, DomainCmd, QueueCmd};
use crate::config::Config;

/// An admin failure: one clear line for standard error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AdminError(pub String);

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError(match e {
            StoreError::Busy => "the store is busy (another process holds it); try again".into(),
            other => other.to_string(),
        })
    }
}

type Result<T> = std::result::Result<T, AdminError>;

fn domain_name(s: &str) -> Result<String> {
    match Domain::parse_name(s) {
        Ok(Domain::Name(n)) => Ok(n),
        _ => Err(AdminError(format!("malformed domain: {s:?}"))),
    }
}

fn address(s: &str) -> Result<Mailbox> {
    let m = Mailbox::parse(s).map_err(|e| AdminError(format!("malformed address {s:?}: {e}")))?;
    if m.domain().name().is_none() {
        return Err(AdminError(format!(
            "malformed address {s:?}: an account needs a domain name, not an IP literal"
        )));
    }
    Ok(m)
}

fn password(given: Option<String>) -> Result<String> {
    let password = match given {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| AdminError(format!("cannot read the password: {e}")))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        return Err(AdminError("the password is empty".into()));
    }
    Ok(password)
}

pub async fn domain(store: Arc<dyn Store>, cmd: DomainCmd) -> Result<()> {
    match cmd {
        DomainCmd::Add { domain } => {
            let name = domain_name(&domain)?;
            store.add_domain(&name).await?;
            println!("added domain {name}");
        }
        DomainCmd::List => {
            for d in store.list_domains().await? {
                println!("{}", d.name);
            }
        }
        DomainCmd::Remove { domain } => {
            let name = domain_name(&domain)?;
            store.remove_domain(&name).await?;
            println!("removed domain {name}");
        }
    }
    Ok(())
}

/// The canonical address and the hashed credentials of a new password (Argon2 runs
/// on a blocking thread).
async fn key_and_credentials(
    a: &str,
    given: Option<String>,
) -> Result<(String, store::Credentials)> {
    let key = address(a)?.key();
    let password = password(given)?;
    let creds = tokio::task::spawn_blocking(move || auth::derive(&password))
        .await
        .map_err(|e| AdminError(e.to_string()))?;
    Ok((key, creds))
}

pub async fn account(store: Arc<dyn Store>, cmd: AccountCmd) -> Result<()> {
    match cmd {
        AccountCmd::Add {
            address: a,
            password: p,
        } => {
            let (key, creds) = key_and_credentials(&a, p).await?;
            store.add_account(&key, creds).await?;
            println!("added account {key}");
        }
        AccountCmd::Passwd {
            address: a,
            password: p,
        } => {
            let (key, creds) = key_and_credentials(&a, p).await?;
            store.set_credentials(&key, creds).await?;
            println!("changed the password of {key}");
        }
        AccountCmd::List => {
            for a in store.list_accounts().await? {
                println!("{}", a.address);
            }
        }
        AccountCmd::Remove { address: a } => {
            let key = address(&a)?.key();
            store.remove_account(&key).await?;
            println!("removed account {key}");
        }
    }
    Ok(())
}

/// An alias address: `user@domain`, or `@domain` for the catch-all.
fn alias_address(s: &str) -> Result<String> {
    match s.strip_prefix('@') {
        Some(d) => Ok(format!("@{}", domain_name(d)?)),
        None => Ok(address(s)?.key()),
    }
}

pub async fn alias(store: Arc<dyn Store>, cmd: AliasCmd) -> Result<()> {
    match cmd {
        AliasCmd::Add {
            address: a,
            targets,
        } => {
            let key = alias_address(&a)?;
            let targets: Vec<String> = targets
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| address(t).map(|m| m.key()))
                .collect::<Result<_>>()?;
            if targets.is_empty() {
                return Err(AdminError("an alias needs at least one target".into()));
            }
            store.add_alias(&key, &targets).await?;
            println!("added alias {key} -> {}", targets.join(","));
        }
        AliasCmd::List => {
            for a in store.list_aliases().await? {
                println!("{} -> {}", a.address, a.targets.join(","));
            }
        }
        AliasCmd::Remove { address: a } => {
            let key = alias_address(&a)?;
            store.remove_alias(&key).await?;
            println!("removed alias {key}");
        }
    }
    Ok(())
}

/// The DNS records a domain needs. For now the rows Tern can truly know: MX.
/// SPF, DKIM, DMARC, MTA-STS, TLS-RPT and TLSA come with the features behind them.
pub async fn dns(store: Arc<dyn Store>, config: &Config, cmd: DnsCmd) -> Result<()> {
    let DnsCmd::Records { domain } = cmd;
    let name = domain_name(&domain)?;
    if !store.list_domains().await?.iter().any(|d| d.name == name) {
        return Err(AdminError(format!(
            "domain {name} not found (add it with `tern domain add {name}`)"
        )));
    }
    println!("{name}. 3600 IN MX 10 {}.", config.hostname);
    Ok(())
}

pub async fn queue(store: Arc<dyn Store>, cmd: QueueCmd) -> Result<()> {
    match cmd {
        QueueCmd::List => {
            for q in store.queue_list().await? {
                let rcpts: Vec<String> = q
                    .recipients
                    .iter()
                    .map(|(a, s)| format!("{a}({s})"))
                    .collect();
                println!(
                    "{} {} {} {} {}",
                    q.id,
                    message::date::rfc5322(q.created),
                    q.size,
                    reverse_path(&q.sender),
                    rcpts.join(" ")
                );
            }
        }
        QueueCmd::Show { id } => {
            let Some(d) = store.queue_show(id).await? else {
                return Err(AdminError(format!("queued message {id} not found")));
            };
            let q = &d.summary;
            println!("message {}", q.id);
            println!("  from {}", reverse_path(&q.sender));
            println!("  queued {}", message::date::rfc5322(q.created));
            println!("  size {}", q.size);
            for (address, state, attempts, next, last) in &d.recipients {
                let mut line = format!("  to {address}: {state}, {attempts} attempt(s)");
                if state == "queued" {
                    line.push_str(&format!(", next {}", message::date::rfc5322(*next)));
                }
                if let Some(reply) = last {
                    line.push_str(&format!("; last reply: {reply}"));
                }
                println!("{line}");
            }
            for a in &d.attempts {
                let host = match (&a.mx, &a.ip) {
                    (Some(mx), Some(ip)) => format!("{mx} [{ip}]"),
                    (Some(mx), None) => mx.clone(),
                    (None, Some(ip)) => format!("[{ip}]"),
                    (None, None) => "(no connection)".into(),
                };
                let tls = a.tls.as_deref().unwrap_or("no TLS");
                println!(
                    "  attempt {} {host} {tls} ({}): {}",
                    message::date::rfc5322(a.at),
                    a.recipients,
                    a.reply
                );
            }
        }
        QueueCmd::Retry { id, all } => {
            let id = if all { None } else { id };
            let n = store.queue_retry(id, message::date::unix_now()).await?;
            if let Some(id) = id
                && n == 0
            {
                return Err(AdminError(format!(
                    "queued message {id} not found (or nothing left to send)"
                )));
            }
            println!("{n} recipient(s) due now");
        }
        QueueCmd::Delete { id } => {
            store.queue_delete(id).await?;
            println!("deleted queued message {id}");
        }
    }
    Ok(())
}

fn reverse_path(sender: &str) -> String {
    if sender.is_empty() {
        "<>".into()
    } else {
        sender.into()
    }
}
