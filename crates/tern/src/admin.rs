//! The administration commands: they open the store next to a running server
//! (SQLite serialises the writers) and print one line per record.

use std::io::BufRead;
use std::sync::Arc;

use message::{Domain, Mailbox};
use store::{Store, StoreError};

use crate::cli::{AccountCmd, AliasCmd, DkimCmd, DnsCmd, DomainCmd, QueueCmd, TokenCmd};
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

pub(crate) fn password(given: Option<String>) -> Result<String> {
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
            let (name, selectors) = add_domain(&store, &domain).await?;
            println!(
                "added domain {name} (DKIM selectors {})",
                selectors.join(", ")
            );
        }
        DomainCmd::List => {
            for d in store.list_domains().await? {
                println!("{}", d.name);
            }
        }
        DomainCmd::Remove { domain } => {
            let name = remove_domain(&store, &domain).await?;
            println!("removed domain {name}");
        }
    }
    Ok(())
}

/// The operations of the admin CLI and the web admin, with the same
/// checks: each takes what the operator typed and returns what changed.
/// A new domain with its DKIM keys: (its name, the selectors).
pub async fn add_domain(store: &Arc<dyn Store>, text: &str) -> Result<(String, Vec<String>)> {
    let name = domain_name(text)?;
    let selectors = create_domain(store, &name).await?;
    Ok((name, selectors))
}

/// Refused while the domain still has accounts or aliases.
pub async fn remove_domain(store: &Arc<dyn Store>, text: &str) -> Result<String> {
    let name = domain_name(text)?;
    store.remove_domain(&name).await?;
    Ok(name)
}

/// The canonical address and the hashed credentials of a new password (Argon2 runs
/// on a blocking thread).
async fn key_and_credentials(
    a: &str,
    given: Option<String>,
) -> Result<(String, store::Credentials)> {
    let key = address(a)?.key();
    let password = password(given)?;
    auth::prepare(&password).map_err(|e| AdminError(format!("password {e}")))?;
    let creds = tokio::task::spawn_blocking(move || auth::derive(&password))
        .await
        .map_err(|e| AdminError(e.to_string()))?;
    Ok((key, creds))
}

/// A new account; its canonical address. `password` None: read from stdin.
pub async fn add_account(
    store: &Arc<dyn Store>,
    text: &str,
    password: Option<String>,
) -> Result<String> {
    let (key, creds) = key_and_credentials(text, password).await?;
    store.add_account(&key, creds).await?;
    Ok(key)
}

pub async fn set_password(
    store: &Arc<dyn Store>,
    text: &str,
    password: Option<String>,
) -> Result<String> {
    let (key, creds) = key_and_credentials(text, password).await?;
    store.set_credentials(&key, creds).await?;
    Ok(key)
}

/// The account goes with its mailboxes and messages.
pub async fn remove_account(store: &Arc<dyn Store>, text: &str) -> Result<String> {
    let key = address(text)?.key();
    store.remove_account(&key).await?;
    Ok(key)
}

/// Stop (`hold`) or resume a user's outgoing mail: (the address, how many
/// queued recipients it touched).
pub async fn hold(store: &Arc<dyn Store>, text: &str, hold: bool) -> Result<(String, usize)> {
    let key = address(text)?.key();
    let n = store
        .set_held(&key, hold, message::date::unix_now())
        .await?;
    let word = if hold { "held" } else { "released" };
    tracing::info!(account = %key, recipients = n, "outgoing mail {word} by the administrator");
    Ok((key, n))
}

/// Change the limits given (`none`, or a size like `2G` / a count), then
/// the account's limits and usage.
pub async fn set_quota(
    store: &Arc<dyn Store>,
    text: &str,
    storage: Option<&str>,
    messages: Option<&str>,
) -> Result<(String, store::QuotaUsage)> {
    let key = address(text)?.key();
    let account = account_by_address(store, &key).await?;
    let mut usage = store.quota(account.id).await?;
    if storage.is_some() || messages.is_some() {
        let mut quota = usage.quota;
        if let Some(s) = storage {
            quota.storage = limit(s, parse_size)?;
        }
        if let Some(m) = messages {
            quota.messages = limit(m, |v| v.parse::<u64>().ok())?;
        }
        store.set_quota(&key, quota).await?;
        usage = store.quota(account.id).await?;
    }
    Ok((key, usage))
}

pub async fn account(store: Arc<dyn Store>, cmd: AccountCmd) -> Result<()> {
    match cmd {
        AccountCmd::Add {
            address: a,
            password: p,
        } => {
            let key = add_account(&store, &a, p).await?;
            println!("added account {key}");
        }
        AccountCmd::Passwd {
            address: a,
            password: p,
        } => {
            let key = set_password(&store, &a, p).await?;
            println!("changed the password of {key}");
        }
        AccountCmd::List => {
            for a in store.list_accounts().await? {
                println!("{}", a.address);
            }
        }
        AccountCmd::Remove { address: a } => {
            let key = remove_account(&store, &a).await?;
            println!("removed account {key}");
        }
        AccountCmd::Hold { address: a } => {
            let (key, n) = hold(&store, &a, true).await?;
            println!("held the outgoing mail of {key} ({n} queued recipients)");
        }
        AccountCmd::Release { address: a } => {
            let (key, n) = hold(&store, &a, false).await?;
            println!("released the outgoing mail of {key} ({n} queued recipients)");
        }
        AccountCmd::Quota {
            address: a,
            storage,
            messages,
        } => {
            let (key, usage) =
                set_quota(&store, &a, storage.as_deref(), messages.as_deref()).await?;
            let show = |used: u64, limit: Option<u64>| match limit {
                Some(l) => format!("{used} of {l}"),
                None => format!("{used} (no limit)"),
            };
            println!("{key}");
            println!(
                "  storage:  {} octets",
                show(usage.storage, usage.quota.storage)
            );
            println!("  messages: {}", show(usage.messages, usage.quota.messages));
        }
        AccountCmd::Token(cmd) => token(store, cmd).await?,
    }
    Ok(())
}

/// `tern account token add | list | remove`.
async fn token(store: Arc<dyn Store>, cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Add { address: a, name } => {
            let account = account_by_address(&store, &address(&a)?.key()).await?;
            if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
                return Err(AdminError(
                    "a token name is 1 to 64 printable characters".into(),
                ));
            }
            let token = auth::new_token();
            store
                .add_token(
                    account.id,
                    &name,
                    auth::token_digest(&token),
                    message::date::unix_now(),
                )
                .await?;
            tracing::info!(account = %account.address, token = %name, "bearer token issued by the administrator");
            println!("{token}");
        }
        TokenCmd::List { address: a } => {
            let account = account_by_address(&store, &address(&a)?.key()).await?;
            for t in store.tokens(account.id).await? {
                println!("{}\t{}", t.name, message::date::rfc3339_text(t.created));
            }
        }
        TokenCmd::Remove { address: a, name } => {
            let account = account_by_address(&store, &address(&a)?.key()).await?;
            if !store.remove_token(account.id, &name).await? {
                return Err(AdminError(format!(
                    "{} has no token named {name}",
                    account.address
                )));
            }
            tracing::info!(account = %account.address, token = %name, "bearer token revoked by the administrator");
            println!("revoked token {name} of {}", account.address);
        }
    }
    Ok(())
}

/// An account by the address an operator typed.
pub async fn account_by_address(
    store: &Arc<dyn Store>,
    address_text: &str,
) -> Result<store::AccountRecord> {
    let key = address(address_text)?.key();
    store
        .list_accounts()
        .await?
        .into_iter()
        .find(|a| a.address == key)
        .ok_or_else(|| AdminError(format!("no account {key}")))
}

/// A limit given on the command line: `none`, or a value `parse` accepts.
fn limit(s: &str, parse: impl Fn(&str) -> Option<u64>) -> Result<Option<u64>> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    parse(s)
        .map(Some)
        .ok_or_else(|| AdminError(format!("not a limit: {s:?} (a number, or none)")))
}

/// `512`, `100K`, `20M`, `2G` (powers of 1024).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// An alias address: `user@domain`, or `@domain` for the catch-all.
fn alias_address(s: &str) -> Result<String> {
    match s.strip_prefix('@') {
        Some(d) => Ok(format!("@{}", domain_name(d)?)),
        None => Ok(address(s)?.key()),
    }
}

/// A new alias (`@domain`: the catch-all) to comma-separated targets:
/// (the alias, its targets).
pub async fn add_alias(
    store: &Arc<dyn Store>,
    text: &str,
    targets: &str,
) -> Result<(String, Vec<String>)> {
    let key = alias_address(text)?;
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
    Ok((key, targets))
}

pub async fn remove_alias(store: &Arc<dyn Store>, text: &str) -> Result<String> {
    let key = alias_address(text)?;
    store.remove_alias(&key).await?;
    Ok(key)
}

pub async fn alias(store: Arc<dyn Store>, cmd: AliasCmd) -> Result<()> {
    match cmd {
        AliasCmd::Add {
            address: a,
            targets,
        } => {
            let (key, targets) = add_alias(&store, &a, &targets).await?;
            println!("added alias {key} -> {}", targets.join(","));
        }
        AliasCmd::List => {
            for a in store.list_aliases().await? {
                println!("{} -> {}", a.address, a.targets.join(","));
            }
        }
        AliasCmd::Remove { address: a } => {
            let key = remove_alias(&store, &a).await?;
            println!("removed alias {key}");
        }
    }
    Ok(())
}

/// A new domain with its DKIM keys (RSA and Ed25519), signing at once;
/// returns the selectors. Without keys, no domain: it is removed again.
pub async fn create_domain(store: &Arc<dyn Store>, name: &str) -> Result<Vec<String>> {
    let now = message::date::unix_now();
    let keys = generate_keys(now, now, &[]).await?;
    store.add_domain(name).await?;
    let mut selectors = Vec::new();
    for key in keys {
        selectors.push(key.selector.clone());
        if let Err(e) = store.add_dkim_key(name, key).await {
            let _ = store.remove_domain(name).await;
            return Err(e.into());
        }
    }
    Ok(selectors)
}

/// RSA key generation takes a moment: off the async threads.
async fn generate_keys(
    now: i64,
    active_from: i64,
    taken: &[String],
) -> Result<Vec<store::NewDkimKey>> {
    let taken = taken.to_vec();
    tokio::task::spawn_blocking(move || policy::keys::generate(now, active_from, &taken))
        .await
        .map_err(|e| AdminError(e.to_string()))?
        .map_err(|e| AdminError(e.to_string()))
}

pub async fn dkim(store: Arc<dyn Store>, config: &Config, cmd: DkimCmd) -> Result<()> {
    match cmd {
        DkimCmd::Rotate { domain } => {
            let name = known_domain(&store, &domain).await?;
            let taken: Vec<String> = store
                .dkim_keys(&name)
                .await?
                .into_iter()
                .map(|k| k.key.selector)
                .collect();
            let now = message::date::unix_now();
            let from = now + config.dkim.rotation_delay.0.as_secs() as i64;
            for key in generate_keys(now, from, &taken).await? {
                let selector = key.selector.clone();
                store.add_dkim_key(&name, key).await?;
                println!(
                    "added DKIM selector {selector}, signing from {}",
                    message::date::rfc5322(from)
                );
            }
            println!(
                "publish the new records now (tern dns records {name}); keep the old ones until messages they signed are delivered"
            );
        }
        DkimCmd::List { domain } => {
            let name = known_domain(&store, &domain).await?;
            let keys = store.dkim_keys(&name).await?;
            let now = message::date::unix_now();
            let active = policy::sign::active_keys(&keys, now);
            for k in &keys {
                let state = if active.iter().any(|a| a.key.selector == k.key.selector) {
                    "signing".to_string()
                } else if k.key.active_from > now {
                    format!("signs from {}", message::date::rfc5322(k.key.active_from))
                } else {
                    "retired (still published)".to_string()
                };
                println!("{} {} {state}", k.key.selector, k.key.algorithm);
            }
        }
    }
    Ok(())
}

pub async fn known_domain(store: &Arc<dyn Store>, domain: &str) -> Result<String> {
    let name = domain_name(domain)?;
    if !store.list_domains().await?.iter().any(|d| d.name == name) {
        return Err(AdminError(format!(
            "domain {name} not found (add it with `tern domain add {name}`)"
        )));
    }
    Ok(name)
}

/// The DNS records a domain needs, as zone-file lines.
pub struct DnsLines {
    pub mx: String,
    pub spf: String,
    /// (owner, TXT value, zone line) of every key.
    pub dkim: Vec<(String, String, String)>,
    pub dmarc: String,
    /// RFC 6186 / RFC 8314 SRV records for mail clients: (owner, port,
    /// zone line) of each client service configured.
    pub srv: Vec<(String, u16, String)>,
    /// DANE (RFC 7672 §3.1): (owner, SHA-256 of our key, zone line) of the
    /// `TLSA 3 1 1` record for the certificate the MX serves; None without
    /// an MX listener or before a certificate exists.
    pub tlsa: Option<(String, Vec<u8>, String)>,
    /// With ACME: the `TLSA 3 1 1` line of the key the next certificate
    /// will have, to publish beside the current one before the renewal
    /// (RFC 7671 §8.1: "current + next").
    pub tlsa_next: Option<String>,
    /// MTA-STS (RFC 8461 §3.1): the `_mta-sts` TXT line with the id of our
    /// policy and the `mta-sts.DOMAIN` name senders fetch it from; None
    /// without an https listener to serve it.
    pub mta_sts: Option<MtaStsLines>,
    /// TLS reporting (RFC 8460 §3): (owner, zone line) of `_smtp._tls`,
    /// the reports to our TLS report address.
    pub tlsrpt: (String, String),
    /// The names clients ask for their settings (Thunderbird's
    /// `autoconfig.DOMAIN`, Outlook's `autodiscover.DOMAIN`): (name, zone
    /// line) pointing at us; empty without an http or https listener.
    pub autoconfig: Vec<(String, String)>,
    /// The Web Key Directory's host (`openpgpkey.DOMAIN`, the advanced
    /// method) pointing at us; None without an https listener.
    pub wkd: Option<String>,
    /// The users' published keys as OPENPGPKEY (RFC 7929) and SMIMEA (RFC
    /// 8162) records, trustworthy in a DNSSEC-signed zone.
    pub keys: Vec<KeyRecord>,
}

/// One published key's record.
pub struct KeyRecord {
    pub owner: String,
    pub kind: store::KeyKind,
    /// The key's octets (OPENPGPKEY), the certificate's DER (SMIMEA 3 0 0).
    pub data: Vec<u8>,
    pub line: String,
}

impl DnsLines {
    /// Every line to publish, in the order `tern dns records` prints them.
    pub fn zone_lines(&self) -> Vec<String> {
        let mut out = vec![self.mx.clone(), self.spf.clone()];
        out.extend(self.dkim.iter().map(|(_, _, line)| line.clone()));
        out.push(self.dmarc.clone());
        out.extend(self.srv.iter().map(|(_, _, line)| line.clone()));
        if let Some((_, _, line)) = &self.tlsa {
            out.push(line.clone());
        }
        if let Some(line) = &self.tlsa_next {
            out.push(format!("{line}   ; the next certificate's key (ACME)"));
        }
        if let Some(m) = &self.mta_sts {
            out.push(m.txt.clone());
            out.push(m.cname.clone());
        }
        out.push(self.tlsrpt.1.clone());
        out.extend(self.autoconfig.iter().map(|(_, line)| line.clone()));
        out.extend(self.wkd.clone());
        out.extend(self.keys.iter().map(|k| k.line.clone()));
        out
    }
}

pub struct MtaStsLines {
    pub owner: String,
    pub id: String,
    pub txt: String,
    pub host: String,
    pub cname: String,
}

fn mta_sts_lines(config: &Config, name: &str) -> Option<MtaStsLines> {
    config.listeners.https?;
    let owner = format!("_mta-sts.{name}");
    let id = config.mta_sts_policy().id();
    let host = format!("mta-sts.{name}");
    Some(MtaStsLines {
        txt: format!("{owner}. 3600 IN TXT \"v=STSv1; id={id}\""),
        cname: format!("{host}. 3600 IN CNAME {}.", config.hostname),
        owner,
        id,
        host,
    })
}

/// The certificate the listeners serve: ACME's once it has one, else
/// `[tls] cert`, else the self-signed one made on the first start.
pub fn served_certificate(config: &Config) -> std::path::PathBuf {
    let acme = crate::acme::dir(&config.data_dir).join("cert.pem");
    match &config.tls {
        _ if config.acme.is_some() && acme.exists() => acme,
        Some(files) => files.cert.clone(),
        None => config.data_dir.join("tls").join("cert.pem"),
    }
}

/// The TLSA line of ACME's next key (see [`DnsLines::tlsa_next`]).
fn tlsa_next_line(config: &Config) -> Option<String> {
    use sha2::Digest;
    config.listeners.smtp?;
    config.acme.as_ref()?;
    let spki = crate::acme::next_key_spki(&config.data_dir)?;
    let hex: String = sha2::Sha256::digest(&spki)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(format!(
        "_25._tcp.{}. 3600 IN TLSA 3 1 1 {hex}",
        config.hostname
    ))
}

fn tlsa_line(config: &Config) -> Option<(String, Vec<u8>, String)> {
    config.listeners.smtp?;
    let hash = net::tls::dane_ee_spki_sha256(&served_certificate(config)).ok()?;
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let owner = format!("_25._tcp.{}", config.hostname);
    let line = format!("{owner}. 3600 IN TLSA 3 1 1 {hex}");
    Some((owner, hash, line))
}

/// MX, SPF, every DKIM key (older keys stay published for messages in
/// transit), DMARC. MTA-STS, TLS-RPT and TLSA come with the features
/// behind them.
pub async fn dns_lines(store: &Arc<dyn Store>, config: &Config, name: &str) -> Result<DnsLines> {
    let dkim = store
        .dkim_keys(name)
        .await?
        .iter()
        .map(|key| {
            let (owner, text) = policy::keys::dns_record(key);
            let line = format!("{owner}. 3600 IN TXT {}", zone_strings(&text));
            (owner, text, line)
        })
        .collect();
    Ok(DnsLines {
        mx: format!("{name}. 3600 IN MX 10 {}.", config.hostname),
        spf: format!("{name}. 3600 IN TXT \"{}\"", spf_record(config)),
        dkim,
        // Reports to this address are parsed and kept (`tern report list`).
        dmarc: format!(
            "_dmarc.{name}. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:{}@{name}\"",
            delivery::REPORT_LOCAL_PART
        ),
        srv: client_srv(config, name),
        tlsa: tlsa_line(config),
        tlsa_next: tlsa_next_line(config),
        mta_sts: mta_sts_lines(config, name),
        autoconfig: match config.listeners.http.or(config.listeners.https) {
            None => Vec::new(),
            Some(_) => ["autoconfig", "autodiscover"]
                .iter()
                .map(|label| {
                    let owner = format!("{label}.{name}");
                    let line = format!("{owner}. 3600 IN CNAME {}.", config.hostname);
                    (owner, line)
                })
                .collect(),
        },
        wkd: config
            .listeners
            .https
            .map(|_| format!("openpgpkey.{name}. 3600 IN CNAME {}.", config.hostname)),
        keys: key_lines(store, name).await?,
        tlsrpt: {
            let owner = format!("_smtp._tls.{name}");
            let line = format!(
                "{owner}. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:{}@{name}\"",
                delivery::TLSRPT_LOCAL_PART
            );
            (owner, line)
        },
    })
}

/// The OPENPGPKEY and SMIMEA records of every key published in `name`.
async fn key_lines(store: &Arc<dyn Store>, name: &str) -> Result<Vec<KeyRecord>> {
    let mut out = Vec::new();
    for kind in [store::KeyKind::OpenPgp, store::KeyKind::Smime] {
        for (address, key) in store.domain_public_keys(name, kind).await? {
            let local = address
                .rsplit_once('@')
                .map_or(address.as_str(), |(l, _)| l);
            let (owner, line) = match kind {
                store::KeyKind::OpenPgp => (
                    policy::openpgp::openpgpkey_owner(local, name),
                    policy::openpgp::openpgpkey_record(local, name, &key.data),
                ),
                store::KeyKind::Smime => (
                    policy::smime::smimea_owner(local, name),
                    policy::smime::smimea_record(local, name, &key.data),
                ),
            };
            out.push(KeyRecord {
                owner,
                kind,
                data: key.data,
                line,
            });
        }
    }
    Ok(out)
}

/// RFC 6186 §3 (and RFC 8314 §5.1 for implicit TLS): where mail clients
/// find each service this server offers, at the configured ports.
fn client_srv(config: &Config, name: &str) -> Vec<(String, u16, String)> {
    config
        .client_services()
        .iter()
        .map(|s| {
            let owner = format!("{}._tcp.{name}", s.srv_label());
            let line = format!("{owner}. 3600 IN SRV 0 1 {} {}.", s.port, config.hostname);
            (owner, s.port, line)
        })
        .collect()
}

pub async fn dns(store: Arc<dyn Store>, config: &Config, cmd: DnsCmd) -> Result<()> {
    match cmd {
        DnsCmd::Records { domain } => {
            let name = known_domain(&store, &domain).await?;
            for line in dns_lines(&store, config, &name).await?.zone_lines() {
                println!("{line}");
            }
            Ok(())
        }
        DnsCmd::Check { domain } => crate::dns_check::check(store, config, &domain).await,
    }
}

/// RFC 7208: our MX host sends the mail; with `[outbound] source`, that
/// address too; a smarthost's own SPF must be added by hand.
fn spf_record(config: &Config) -> String {
    let mut terms = vec!["v=spf1".to_string(), "mx".to_string()];
    match config.outbound.source {
        Some(std::net::IpAddr::V4(ip)) => terms.push(format!("ip4:{ip}")),
        Some(std::net::IpAddr::V6(ip)) => terms.push(format!("ip6:{ip}")),
        None => {}
    }
    terms.push(
        if config.outbound.smarthost.is_some() {
            "~all"
        } else {
            "-all"
        }
        .to_string(),
    );
    terms.join(" ")
}

/// A TXT value as zone-file strings of at most 255 octets (RFC 1035 §3.3.14).
fn zone_strings(text: &str) -> String {
    text.as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
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
            let n = queue_retry(&store, if all { None } else { id }).await?;
            println!("{n} recipient(s) due now");
        }
        QueueCmd::Delete { id } => {
            store.queue_delete(id).await?;
            println!("deleted queued message {id}");
        }
    }
    Ok(())
}

/// Make one queued message's recipients (None: every one) due now; how many.
pub async fn queue_retry(store: &Arc<dyn Store>, id: Option<i64>) -> Result<usize> {
    let n = store.queue_retry(id, message::date::unix_now()).await?;
    if let Some(id) = id
        && n == 0
    {
        return Err(AdminError(format!(
            "queued message {id} not found (or nothing left to send)"
        )));
    }
    Ok(n)
}

fn reverse_path(sender: &str) -> String {
    if sender.is_empty() {
        "<>".into()
    } else {
        sender.into()
    }
}
