//! The web admin's operations ([`web::admin::AdminOps`]): each action runs
//! the admin CLI's own function (`crate::admin`, `crate::dns_check`,
//! `crate::history`, the store's queue and reports), so the browser gets
//! the same checks and the same messages as the terminal, as JSON.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use store::Store;
use web::admin::Action;

use crate::admin::{self, AdminError};
use crate::config::Config;

/// The most history events one request shows.
const HISTORY_MAX: usize = 1000;

pub struct WebAdmin {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    /// `[http] admins`, canonical.
    admins: Vec<String>,
    started: Instant,
}

impl WebAdmin {
    pub fn new(store: Arc<dyn Store>, config: Arc<Config>) -> WebAdmin {
        let admins = config
            .http
            .admins
            .iter()
            .filter_map(|a| match message::Mailbox::parse(a) {
                Ok(m) => Some(m.key()),
                Err(e) => {
                    tracing::warn!(address = %a, error = %e, "[http] admins: not an address, ignored");
                    None
                }
            })
            .collect();
        WebAdmin {
            store,
            config,
            admins,
            started: Instant::now(),
        }
    }

    async fn dispatch(&self, action: Action) -> Result<Value, AdminError> {
        let store = &self.store;
        Ok(match action {
            Action::Health => self.health().await?,
            Action::Domains => self.domains().await?,
            Action::DomainAdd { domain } => {
                let (name, selectors) = admin::add_domain(store, &domain).await?;
                json!({"domain": name, "dkimSelectors": selectors})
            }
            Action::DomainRemove { domain } => {
                json!({"domain": admin::remove_domain(store, &domain).await?})
            }
            Action::DnsRecords { domain } => {
                let name = admin::known_domain(store, &domain).await?;
                let lines = admin::dns_lines(store, &self.config, &name).await?;
                json!({"domain": name, "lines": lines.zone_lines()})
            }
            Action::DnsCheck { domain } => {
                let name = admin::known_domain(store, &domain).await?;
                let findings = crate::dns_check::findings(store, &self.config, &name).await?;
                let list: Vec<Value> = findings
                    .iter()
                    .map(|f| {
                        let status = match (&f.problem, f.required) {
                            (None, _) => "ok",
                            (Some(_), true) => "fail",
                            (Some(_), false) => "warn",
                        };
                        json!({"what": f.what, "status": status, "problem": f.problem, "fix": f.fix})
                    })
                    .collect();
                json!({"domain": name, "checks": list})
            }
            Action::Accounts => self.accounts().await?,
            Action::AccountAdd { address, password } => {
                json!({"address": admin::add_account(store, &address, Some(password)).await?})
            }
            Action::AccountPassword { address, password } => {
                json!({"address": admin::set_password(store, &address, Some(password)).await?})
            }
            Action::AccountRemove { address } => {
                json!({"address": admin::remove_account(store, &address).await?})
            }
            Action::AccountHold { address, hold } => {
                let (address, n) = admin::hold(store, &address, hold).await?;
                json!({"address": address, "held": hold, "queuedRecipients": n})
            }
            Action::AccountQuota {
                address,
                storage,
                messages,
            } => {
                let (address, usage) =
                    admin::set_quota(store, &address, storage.as_deref(), messages.as_deref())
                        .await?;
                usage_json(&address, &usage)
            }
            Action::Aliases => {
                let list: Vec<Value> = store
                    .list_aliases()
                    .await?
                    .into_iter()
                    .map(|a| json!({"address": a.address, "targets": a.targets}))
                    .collect();
                json!(list)
            }
            Action::AliasAdd { address, targets } => {
                let (address, targets) = admin::add_alias(store, &address, &targets).await?;
                json!({"address": address, "targets": targets})
            }
            Action::AliasRemove { address } => {
                json!({"address": admin::remove_alias(store, &address).await?})
            }
            Action::Queue => {
                let list: Vec<Value> = store.queue_list().await?.iter().map(queued_json).collect();
                json!(list)
            }
            Action::QueueShow { id } => self.queue_show(id).await?,
            Action::QueueRetry { id } => json!({"due": admin::queue_retry(store, id).await?}),
            Action::QueueDelete { id } => {
                store.queue_delete(id).await?;
                json!({"deleted": id})
            }
            Action::Reports => {
                let list: Vec<Value> = store
                    .received_reports()
                    .await?
                    .iter()
                    .map(|r| {
                        json!({
                            "id": r.id, "kind": r.kind.as_str(),
                            "received": message::date::rfc3339_text(r.received_at),
                            "org": r.org, "domain": r.domain,
                            "begin": message::date::rfc3339_text(r.begin),
                            "end": message::date::rfc3339_text(r.end),
                            "messages": r.messages, "failed": r.failed,
                            "summary": policy::feedback::summary(r),
                        })
                    })
                    .collect();
                json!(list)
            }
            Action::ReportShow { id } => {
                let Some(r) = store.received_report(id).await? else {
                    return Err(AdminError(format!("report {id} not found")));
                };
                json!({"id": id, "text": policy::feedback::describe(&r).map_err(AdminError)?})
            }
            Action::History { what, limit } => {
                let limit = limit.unwrap_or(200).clamp(1, HISTORY_MAX);
                let events = crate::history::find(store, &what, limit).await?;
                json!(
                    events
                        .iter()
                        .map(crate::history::event_json)
                        .collect::<Vec<_>>()
                )
            }
        })
    }

    /// Every domain with its accounts and aliases counted.
    async fn domains(&self) -> Result<Value, AdminError> {
        let accounts = self.store.list_accounts().await?;
        let aliases = self.store.list_aliases().await?;
        let of = |address: &str, name: &str| {
            address
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(name))
        };
        let list: Vec<Value> = self
            .store
            .list_domains()
            .await?
            .iter()
            .map(|d| {
                json!({
                    "domain": d.name,
                    "created": message::date::rfc3339_text(d.created),
                    "accounts": accounts.iter().filter(|a| of(&a.address, &d.name)).count(),
                    "aliases": aliases.iter().filter(|a| of(&a.address, &d.name)).count(),
                })
            })
            .collect();
        Ok(json!(list))
    }

    /// Every account with its usage, limits and whether its mail is held.
    async fn accounts(&self) -> Result<Value, AdminError> {
        let mut list = Vec::new();
        for a in self.store.list_accounts().await? {
            let usage = self.store.quota(a.id).await?;
            let mut entry = usage_json(&a.address, &usage);
            entry["created"] = json!(message::date::rfc3339_text(a.created));
            entry["held"] = json!(self.store.is_held(&a.address).await?);
            list.push(entry);
        }
        Ok(json!(list))
    }

    async fn queue_show(&self, id: i64) -> Result<Value, AdminError> {
        let Some(d) = self.store.queue_show(id).await? else {
            return Err(AdminError(format!("queued message {id} not found")));
        };
        let recipients: Vec<Value> = d
            .recipients
            .iter()
            .map(|(address, state, attempts, next, last)| {
                json!({
                    "address": address, "state": state, "attempts": attempts,
                    "next": message::date::rfc3339_text(*next), "lastReply": last,
                })
            })
            .collect();
        let attempts: Vec<Value> = d
            .attempts
            .iter()
            .map(|a| {
                json!({
                    "at": message::date::rfc3339_text(a.at), "mx": a.mx, "ip": a.ip,
                    "tls": a.tls, "recipients": a.recipients, "reply": a.reply,
                })
            })
            .collect();
        let mut out = queued_json(&d.summary);
        out["recipients"] = json!(recipients);
        out["attempts"] = json!(attempts);
        Ok(out)
    }

    /// What an operator looks at first: is it up, is mail flowing, is
    /// anything about to run out.
    async fn health(&self) -> Result<Value, AdminError> {
        let queue = self.store.queue_list().await?;
        let mut states = std::collections::BTreeMap::<String, usize>::new();
        for (_, state) in queue.iter().flat_map(|q| &q.recipients) {
            *states.entry(state.clone()).or_default() += 1;
        }
        let l = &self.config.listeners;
        let listeners: Vec<Value> = [
            ("smtp", l.smtp),
            ("submission", l.submission),
            ("submissions", l.submissions),
            ("imap", l.imap),
            ("imaps", l.imaps),
            ("pop3", l.pop3),
            ("pop3s", l.pop3s),
            ("managesieve", l.managesieve),
            ("http", l.http),
            ("https", l.https),
        ]
        .iter()
        .filter_map(|(name, addr)| Some(json!({"name": name, "address": (*addr)?.to_string()})))
        .collect();
        let certificate = admin::served_certificate(&self.config);
        let now = message::date::unix_now();
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "hostname": self.config.hostname,
            "uptimeSeconds": self.started.elapsed().as_secs(),
            "listeners": listeners,
            "domains": self.store.list_domains().await?.len(),
            "accounts": self.store.list_accounts().await?.len(),
            "queue": {"messages": queue.len(), "recipients": states},
            "disk": disk(&self.config.data_dir),
            "certificate": crate::acme::not_after(&certificate).map(|t| json!({
                "path": certificate.display().to_string(),
                "notAfter": message::date::rfc3339_text(t),
                "daysLeft": (t - now).div_euclid(86_400),
            })),
        }))
    }
}

/// Free and total space of the filesystem holding `dir`.
fn disk(dir: &std::path::Path) -> Value {
    match rustix::fs::statvfs(dir) {
        Ok(s) => json!({
            "path": dir.display().to_string(),
            "freeBytes": s.f_bavail.saturating_mul(s.f_frsize),
            "totalBytes": s.f_blocks.saturating_mul(s.f_frsize),
        }),
        Err(e) => json!({"path": dir.display().to_string(), "error": e.to_string()}),
    }
}

fn usage_json(address: &str, u: &store::QuotaUsage) -> Value {
    json!({
        "address": address,
        "storage": u.storage, "storageLimit": u.quota.storage,
        "messages": u.messages, "messagesLimit": u.quota.messages,
    })
}

fn queued_json(q: &store::QueueSummary) -> Value {
    let recipients: Vec<Value> = q
        .recipients
        .iter()
        .map(|(address, state)| json!({"address": address, "state": state}))
        .collect();
    json!({
        "id": q.id,
        "created": message::date::rfc3339_text(q.created),
        "size": q.size,
        "sender": q.sender,
        "recipients": recipients,
    })
}

#[async_trait::async_trait]
impl web::admin::AdminOps for WebAdmin {
    fn is_admin(&self, address: &str) -> bool {
        self.admins.iter().any(|a| a == address)
    }

    async fn run(&self, action: Action) -> Result<Value, String> {
        self.dispatch(action).await.map_err(|e| e.0)
    }
}
