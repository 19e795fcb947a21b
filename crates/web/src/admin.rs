//! The web admin at `/admin` on the http and https listeners: a page (plain
//! JavaScript, embedded, nothing from any other host) over one JSON
//! endpoint, `POST /admin/api`, that runs the operations of the admin CLI.
//!
//! Who may use it: a signed-in browser session ([`crate::session`], the
//! webmail's sign-in, throttled with every other login) of an account the
//! configuration names an administrator (`[http] admins`); everyone else
//! gets 403. Every call carries the session's CSRF token (it is a POST)
//! and a JSON body (another site cannot send one without a preflight).
//! The operations themselves live with the CLI's ([`AdminOps`],
//! implemented by the server), so the web and the terminal apply the same
//! checks; each change is logged with the administrator who made it.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::jmap::{JmapRoutes, json};
use crate::routes::text;

/// The page and its script and style: (path, media type, content).
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "/admin",
        "text/html; charset=utf-8",
        include_bytes!("../assets/admin/index.html"),
    ),
    (
        "/admin/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/admin/app.js"),
    ),
    (
        "/admin/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/admin/app.css"),
    ),
];

/// The admin page's own policy: its script, style and API only.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The operations an administrator can run, as the page sends them:
/// `{"action": "accountAdd", "address": ..., "password": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    /// Version, uptime, listeners, counts, queue, disk, certificate.
    Health,
    Domains,
    DomainAdd {
        domain: String,
    },
    DomainRemove {
        domain: String,
    },
    /// The zone-file lines a domain needs (`tern dns records`).
    DnsRecords {
        domain: String,
    },
    /// What the DNS publishes against what is needed (`tern dns check`).
    DnsCheck {
        domain: String,
    },
    Accounts,
    AccountAdd {
        address: String,
        password: String,
    },
    AccountPassword {
        address: String,
        password: String,
    },
    AccountRemove {
        address: String,
    },
    /// Stop (true) or resume (false) the account's outgoing mail.
    AccountHold {
        address: String,
        hold: bool,
    },
    /// Each limit: `none`, a size like `2G` / a count; absent: unchanged.
    AccountQuota {
        address: String,
        storage: Option<String>,
        messages: Option<String>,
    },
    Aliases,
    /// `targets`: comma-separated addresses.
    AliasAdd {
        address: String,
        targets: String,
    },
    AliasRemove {
        address: String,
    },
    Queue,
    QueueShow {
        id: i64,
    },
    /// One message's recipients due now, or (no id) every one.
    QueueRetry {
        id: Option<i64>,
    },
    QueueDelete {
        id: i64,
    },
    Reports,
    ReportShow {
        id: i64,
    },
    /// What happened to the messages from or to an address, or to one
    /// message (Message-ID, SMTP id or queue id), newest last.
    History {
        what: String,
        limit: Option<usize>,
    },
}

impl Action {
    /// Whether the action changes something (and so is logged).
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Action::DomainAdd { .. }
                | Action::DomainRemove { .. }
                | Action::AccountAdd { .. }
                | Action::AccountPassword { .. }
                | Action::AccountRemove { .. }
                | Action::AccountHold { .. }
                | Action::AccountQuota { .. }
                | Action::AliasAdd { .. }
                | Action::AliasRemove { .. }
                | Action::QueueRetry { .. }
                | Action::QueueDelete { .. }
        )
    }

    /// What a change is about, for its log line (never a password).
    pub fn target(&self) -> String {
        match self {
            Action::DomainAdd { domain } | Action::DomainRemove { domain } => domain.clone(),
            Action::AccountAdd { address, .. }
            | Action::AccountPassword { address, .. }
            | Action::AccountRemove { address }
            | Action::AccountHold { address, .. }
            | Action::AccountQuota { address, .. }
            | Action::AliasRemove { address } => address.clone(),
            Action::AliasAdd { address, targets } => format!("{address} -> {targets}"),
            Action::QueueRetry { id: Some(id) } | Action::QueueDelete { id } => format!("Q{id}"),
            Action::QueueRetry { id: None } => "the whole queue".into(),
            _ => String::new(),
        }
    }

    /// The action's name as the page sends it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Health => "health",
            Action::Domains => "domains",
            Action::DomainAdd { .. } => "domainAdd",
            Action::DomainRemove { .. } => "domainRemove",
            Action::DnsRecords { .. } => "dnsRecords",
            Action::DnsCheck { .. } => "dnsCheck",
            Action::Accounts => "accounts",
            Action::AccountAdd { .. } => "accountAdd",
            Action::AccountPassword { .. } => "accountPassword",
            Action::AccountRemove { .. } => "accountRemove",
            Action::AccountHold { .. } => "accountHold",
            Action::AccountQuota { .. } => "accountQuota",
            Action::Aliases => "aliases",
            Action::AliasAdd { .. } => "aliasAdd",
            Action::AliasRemove { .. } => "aliasRemove",
            Action::Queue => "queue",
            Action::QueueShow { .. } => "queueShow",
            Action::QueueRetry { .. } => "queueRetry",
            Action::QueueDelete { .. } => "queueDelete",
            Action::Reports => "reports",
            Action::ReportShow { .. } => "reportShow",
            Action::History { .. } => "history",
        }
    }
}

/// The server's side of the web admin: the same operations as the CLI.
#[async_trait::async_trait]
pub trait AdminOps: Send + Sync {
    /// Whether this account (canonical address) is an administrator.
    fn is_admin(&self, address: &str) -> bool;
    /// Run one action: what it shows, or one clear line of what is wrong
    /// (the CLI's message).
    async fn run(&self, action: Action) -> Result<Value, String>;
}

/// The web admin's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRoute {
    Asset(usize),
    Api,
}

impl AdminRoute {
    pub fn of(path: &str) -> Option<AdminRoute> {
        let path = match path {
            "/admin/" => "/admin",
            p => p,
        };
        if let Some(i) = ASSETS.iter().position(|(p, _, _)| *p == path) {
            return Some(AdminRoute::Asset(i));
        }
        (path == "/admin/api").then_some(AdminRoute::Api)
    }

    pub fn name(self) -> &'static str {
        match self {
            AdminRoute::Asset(_) => "admin-asset",
            AdminRoute::Api => "admin-api",
        }
    }
}

/// Answer a web admin route; `jmap` holds the browser sessions.
pub async fn respond(
    ops: &Arc<dyn AdminOps>,
    jmap: &JmapRoutes,
    route: AdminRoute,
    req: &Request<Bytes>,
    client: IpAddr,
) -> Response<Bytes> {
    let mut r = match route {
        AdminRoute::Asset(i) if matches!(*req.method(), Method::GET | Method::HEAD) => asset(i),
        AdminRoute::Api if req.method() == Method::POST => api(ops, jmap, req, client).await,
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    };
    crate::webmail::harden(&mut r, PAGE_CSP);
    r
}

/// `POST /admin/api`: one action of a signed-in administrator.
async fn api(
    ops: &Arc<dyn AdminOps>,
    jmap: &JmapRoutes,
    req: &Request<Bytes>,
    client: IpAddr,
) -> Response<Bytes> {
    let account = match jmap.session_account(req).await {
        None => return text(StatusCode::UNAUTHORIZED, "sign in first\n"),
        Some(Err(refused)) => return refused,
        Some(Ok(account)) => account,
    };
    if !ops.is_admin(&account.address) {
        tracing::warn!(account = %account.address, %client, "web admin: refused, not an administrator");
        return text(
            StatusCode::FORBIDDEN,
            "this account is not an administrator\n",
        );
    }
    if let Some(refused) = crate::jmap::refuse_unless_json(req) {
        return refused;
    }
    let action: Action = match serde_json::from_slice(req.body()) {
        Ok(a) => a,
        Err(e) => return failed(StatusCode::BAD_REQUEST, &format!("bad request: {e}")),
    };
    if let Action::AccountRemove { address } = &action
        && address.eq_ignore_ascii_case(&account.address)
    {
        return failed(
            StatusCode::CONFLICT,
            "you cannot remove the account you are signed in with",
        );
    }
    let (name, target, changes) = (action.name(), action.target(), action.changes());
    match ops.run(action).await {
        Ok(result) => {
            if changes {
                tracing::info!(admin = %account.address, %client, action = %name, target = %target, "web admin: change made");
            }
            json(StatusCode::OK, &json!({ "result": result }))
        }
        Err(why) => {
            if changes {
                tracing::info!(admin = %account.address, %client, action = %name, target = %target, error = %why, "web admin: change refused");
            }
            failed(StatusCode::BAD_REQUEST, &why)
        }
    }
}

fn failed(status: StatusCode, why: &str) -> Response<Bytes> {
    json(status, &json!({ "error": why }))
}

fn asset(i: usize) -> Response<Bytes> {
    let (_, media_type, content) = ASSETS[i];
    crate::webmail::embedded(media_type, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_as_the_page_sends_them() {
        let a: Action =
            serde_json::from_str(r#"{"action":"accountAdd","address":"c@b.test","password":"p"}"#)
                .unwrap();
        assert_eq!(
            a,
            Action::AccountAdd {
                address: "c@b.test".into(),
                password: "p".into()
            }
        );
        assert!(a.changes());
        assert_eq!(a.target(), "c@b.test", "never the password");
        assert_eq!(a.name(), "accountAdd");
        let q: Action = serde_json::from_str(r#"{"action":"queueRetry"}"#).unwrap();
        assert_eq!(q, Action::QueueRetry { id: None });
        let h: Action = serde_json::from_str(r#"{"action":"health"}"#).unwrap();
        assert!(!h.changes());
        for bad in [
            r#"{"action":"shell","cmd":"rm"}"#,
            r#"{"action":"domainAdd"}"#,
            r#"{"action":"domainAdd","domain":"x","extra":1}"#,
        ] {
            assert!(serde_json::from_str::<Action>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes() {
        assert_eq!(AdminRoute::of("/admin"), Some(AdminRoute::Asset(0)));
        assert_eq!(AdminRoute::of("/admin/"), Some(AdminRoute::Asset(0)));
        assert_eq!(AdminRoute::of("/admin/api"), Some(AdminRoute::Api));
        assert_eq!(AdminRoute::of("/admin/other"), None);
        assert_eq!(AdminRoute::of("/"), None);
    }
}
