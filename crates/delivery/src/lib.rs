//! The MDA: what happens to a message for our domains. It answers "who gets
//! mail sent to this address" at RCPT time (accounts, aliases, sub-addresses,
//! catch-all), and, at the end of DATA, stores the message once for every
//! local account it reaches and queues it for every remote target, in one
//! durable transaction.
//!
//! Resolution order for an address in one of our domains:
//! 1. an account or alias with exactly that address;
//! 2. the address without its sub-address (`user+tag@d` -> `user@d`);
//! 3. the domain's catch-all alias (`@d`);
//! 4. otherwise unknown (550 5.1.1 at RCPT: no backscatter).
//!
//! Aliases expand recursively up to [`MAX_DEPTH`] levels and [`MAX_TARGETS`]
//! targets; a branch that comes back to an alias already on its path is cut
//! (hardening.md C-RL9). If nothing but cycles remains, the address is a loop.

use std::collections::BTreeSet;
use std::sync::Arc;

use message::{Domain, Mailbox};
use policy::srs::Srs;
use store::{
    AccountId, AddressKind, Delivery, Folder, NewMessage, QueueInsert, QueueOptions,
    QueueRecipient, Store, StoreError, Stored,
};

pub const MAX_DEPTH: usize = 10;
pub const MAX_TARGETS: usize = 1000;

#[derive(Clone)]
pub struct MdaConfig {
    /// The sub-address separator (`+` in `user+tag@domain`); None turns sub-addressing off.
    pub subaddress_separator: Option<char>,
    /// Rewrite the sender of forwarded mail, and route bounces to rewritten
    /// addresses back (None: forward with the original sender).
    pub srs: Option<Arc<Srs>>,
}

impl Default for MdaConfig {
    fn default() -> Self {
        MdaConfig {
            subaddress_separator: Some('+'),
            srs: None,
        }
    }
}

/// A local account a message goes to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTarget {
    pub account: AccountId,
    /// The account's address (for Delivered-To).
    pub address: String,
}

/// What one recipient address means here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Ours: these accounts, and these remote addresses (aliases that forward).
    Deliver {
        local: Vec<LocalTarget>,
        remote: Vec<String>,
    },
    /// In one of our domains, but nobody has it.
    Unknown,
    /// Only alias cycles behind it.
    Loop,
    /// Not one of our domains.
    NotLocal,
    /// An SRS address of ours that we did not make, or too old (a forged or
    /// stale bounce).
    BadSrs(String),
    /// Our DMARC report address (RFC 7489 §7.2), kept by no account or alias:
    /// the message is a report to parse and keep.
    Reports,
}

/// The local part of the address where each of our domains receives DMARC
/// aggregate reports (the `rua=` that `tern dns records` prints).
pub const REPORT_LOCAL_PART: &str = "dmarc-reports";

/// One accepted recipient of a transaction.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The address as given at RCPT (local part in its case, domain lowercased).
    pub address: String,
    /// Where it leads: local accounts and remote addresses.
    pub local: Vec<LocalTarget>,
    pub remote: Vec<String>,
    /// RFC 3461 NOTIFY and ORCPT as received.
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

/// The envelope of a message to deliver.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// The reverse-path, empty for `<>`.
    pub sender: String,
    pub recipients: Vec<Recipient>,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    /// What the checks said of each local account's copy: to Junk or not,
    /// and the header field that says why (`X-Spam-Status`). Accounts
    /// absent here get their copy in INBOX as it is.
    pub verdicts: Vec<(AccountId, bool, String)>,
    /// FUTURERELEASE, DELIVERBY, MT-PRIORITY. A held message (FUTURERELEASE)
    /// goes through the queue for local recipients too.
    pub queue_options: QueueOptions,
    /// The authenticated account that submitted it (its mail stops while
    /// the account is held).
    pub submitter: Option<String>,
}

pub struct Mda {
    store: Arc<dyn Store>,
    config: MdaConfig,
    queued: Arc<tokio::sync::Notify>,
}

impl Mda {
    pub fn new(store: Arc<dyn Store>, config: MdaConfig) -> Mda {
        Mda {
            store,
            config,
            queued: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified whenever a delivery put something in the outbound queue (the
    /// queue runner waits on it).
    pub fn queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// What `rcpt` means here (see the crate documentation for the order).
    pub async fn resolve(&self, rcpt: &Mailbox) -> Result<Resolution, StoreError> {
        let Domain::Name(domain) = rcpt.domain() else {
            return Ok(Resolution::NotLocal);
        };
        let mut found = self.store.lookup_address(&rcpt.key()).await?;
        if found == AddressKind::Unknown
            && let Some(srs) = &self.config.srs
            && policy::srs::is_srs(rcpt.local())
        {
            return self.srs_bounce(srs, rcpt).await;
        }
        if found == AddressKind::Unknown
            && let Some(base) = self
                .config
                .subaddress_separator
                .and_then(|sep| rcpt.without_detail(sep))
        {
            found = self.store.lookup_address(&base.key()).await?;
        }
        if found == AddressKind::Unknown {
            found = self.store.lookup_address(&format!("@{domain}")).await?;
        }
        match found {
            AddressKind::NotLocal => Ok(Resolution::NotLocal),
            AddressKind::Unknown if rcpt.local().eq_ignore_ascii_case(REPORT_LOCAL_PART) => {
                Ok(Resolution::Reports)
            }
            AddressKind::Unknown => Ok(Resolution::Unknown),
            AddressKind::Account(a) => Ok(Resolution::Deliver {
                local: vec![LocalTarget {
                    account: a.id,
                    address: a.address,
                }],
                remote: vec![],
            }),
            AddressKind::Alias(targets) => self.expand(rcpt.key(), targets).await,
        }
    }

    /// A bounce to one of our SRS addresses goes back where the rewritten
    /// sender came from (resolved again: it may be one of ours).
    async fn srs_bounce(&self, srs: &Srs, rcpt: &Mailbox) -> Result<Resolution, StoreError> {
        let back = match srs.reverse(rcpt.local(), message::date::unix_now()) {
            Ok(back) => back,
            Err(e) => return Ok(Resolution::BadSrs(e.to_string())),
        };
        let Ok(mailbox) = Mailbox::parse(&back) else {
            return Ok(Resolution::BadSrs("malformed SRS address".into()));
        };
        if policy::srs::is_srs(mailbox.local())
            && self.store.lookup_address(&mailbox.key()).await? != AddressKind::NotLocal
        {
            // SRS1 pointing at ourselves again: no more than one step.
            return Ok(Resolution::BadSrs("SRS address loops".into()));
        }
        Ok(match Box::pin(self.resolve(&mailbox)).await? {
            Resolution::NotLocal => Resolution::Deliver {
                local: vec![],
                // RFC 5321 §2.4: another host's local part keeps its case.
                remote: vec![mailbox.to_string()],
            },
            other => other,
        })
    }

    /// Expand an alias depth-first, cutting cycles.
    async fn expand(&self, alias: String, targets: Vec<String>) -> Result<Resolution, StoreError> {
        let mut local = BTreeSet::new();
        let mut remote = BTreeSet::new();
        let mut cycle = false;
        // (target, path of aliases that led here)
        let mut stack: Vec<(String, Vec<String>)> = targets
            .into_iter()
            .rev()
            .map(|t| (t, vec![alias.clone()]))
            .collect();
        let mut seen_targets = 0usize;
        while let Some((target, path)) = stack.pop() {
            seen_targets += 1;
            if seen_targets > MAX_TARGETS {
                tracing::warn!(alias = %alias, "alias expansion stopped at {MAX_TARGETS} targets");
                break;
            }
            let Ok(mailbox) = Mailbox::parse(&target) else {
                tracing::warn!(alias = %alias, target = %target, "alias target is not an address");
                continue;
            };
            let key = mailbox.key();
            if path.contains(&key) {
                cycle = true;
                continue;
            }
            match self.store.lookup_address(&key).await? {
                AddressKind::Account(a) => {
                    local.insert(LocalTarget {
                        account: a.id,
                        address: a.address,
                    });
                }
                AddressKind::Alias(next) if path.len() < MAX_DEPTH => {
                    let mut next_path = path.clone();
                    next_path.push(key);
                    stack.extend(next.into_iter().rev().map(|t| (t, next_path.clone())));
                }
                AddressKind::Alias(_) => {
                    tracing::warn!(alias = %alias, "alias nesting deeper than {MAX_DEPTH}");
                    cycle = true;
                }
                AddressKind::Unknown => {
                    tracing::warn!(alias = %alias, target = %key, "alias target does not exist")
                }
                AddressKind::NotLocal => {
                    remote.insert(key);
                }
            }
        }
        if local.is_empty() && remote.is_empty() {
            return Ok(if cycle {
                Resolution::Loop
            } else {
                Resolution::Unknown
            });
        }
        Ok(Resolution::Deliver {
            local: local.into_iter().collect(),
            remote: remote.into_iter().collect(),
        })
    }

    /// Store `data` for every local target (once per account) and queue it for every
    /// remote one, in one durable transaction. `data` already carries our Received line.
    pub async fn deliver(
        &self,
        envelope: &Envelope,
        data: Vec<u8>,
        received_at: i64,
    ) -> Result<Stored, StoreError> {
        let queue_sender = self.queue_sender(envelope).await?;
        let plan = plan(envelope, &queue_sender, data, received_at);
        if plan.deliveries.is_empty() && plan.queue.is_none() {
            // Only recipients that took the message otherwise (report addresses).
            return Ok(Stored {
                placed: vec![],
                queue_id: None,
            });
        }
        let stored = self.store.store_message(plan).await?;
        if stored.queue_id.is_some() {
            self.queued.notify_one();
        }
        Ok(stored)
    }

    /// Deliver a message Tern wrote itself (a DSN, a DMARC report) from
    /// `sender` (empty: `<>`): locally for our addresses, through the queue
    /// for others. Addresses that cannot receive mail are skipped with a
    /// warning; returns how many recipients took the message.
    pub async fn deliver_generated(
        &self,
        sender: &str,
        to: &[String],
        data: Vec<u8>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut recipients = Vec::new();
        for address in to {
            let Ok(mailbox) = Mailbox::parse(address) else {
                tracing::warn!(to = %address, "generated message: not an address");
                continue;
            };
            let (local, remote) = match self.resolve(&mailbox).await? {
                Resolution::Deliver { local, remote } => (local, remote),
                Resolution::NotLocal => (vec![], vec![mailbox.to_string()]),
                other => {
                    tracing::warn!(to = %address, resolution = ?other, "generated message: the address cannot receive mail");
                    continue;
                }
            };
            recipients.push(Recipient {
                address: mailbox.to_string(),
                local,
                remote,
                notify: None,
                orcpt: None,
            });
        }
        if recipients.is_empty() {
            return Ok(0);
        }
        let envelope = Envelope {
            sender: sender.to_string(),
            recipients,
            ..Default::default()
        };
        self.deliver(&envelope, data, now).await?;
        Ok(envelope.recipients.len())
    }

    /// The reverse-path of the queued copy: rewritten by SRS when the message is
    /// forwarded by one of our aliases for a sender of another domain (so SPF at
    /// the next hop checks us, and bounces come back here).
    async fn queue_sender(&self, envelope: &Envelope) -> Result<String, StoreError> {
        let Some(srs) = &self.config.srs else {
            return Ok(envelope.sender.clone());
        };
        let forwarding = envelope
            .recipients
            .iter()
            .find(|r| r.remote.iter().any(|t| t != &r.address));
        let (Some(via), false) = (forwarding, envelope.sender.is_empty()) else {
            return Ok(envelope.sender.clone());
        };
        if self.store.lookup_address(&envelope.sender).await? != AddressKind::NotLocal {
            // Our own sender: SPF for our domain already covers us.
            return Ok(envelope.sender.clone());
        }
        let domain = via.address.rsplit_once('@').map_or("", |(_, d)| d);
        Ok(srs.forward(&envelope.sender, domain, message::date::unix_now()))
    }
}

/// The store operation for a delivery: deduplicated local copies, each with its own
/// Return-Path and Delivered-To, and one queue entry for the remote addresses.
fn plan(envelope: &Envelope, queue_sender: &str, data: Vec<u8>, received_at: i64) -> NewMessage {
    let mut deliveries: Vec<Delivery> = Vec::new();
    let mut seen_accounts = BTreeSet::new();
    let mut queue: Vec<QueueRecipient> = Vec::new();
    // RFC 4865: a held message reaches nobody before its release time, not
    // even a local mailbox: the queue holds every copy.
    let held = envelope.queue_options.release_at.is_some();
    for r in &envelope.recipients {
        for t in r.local.iter().filter(|_| held) {
            if seen_accounts.insert(t.account) {
                queue.push(QueueRecipient {
                    address: t.address.clone(),
                    orcpt: r.orcpt.clone(),
                    notify: r.notify.clone(),
                });
            }
        }
        for t in r.local.iter().filter(|_| !held) {
            if seen_accounts.insert(t.account) {
                let verdict = envelope.verdicts.iter().find(|v| v.0 == t.account);
                let mut prefix = message::trace::delivery_prefix(&envelope.sender, &t.address);
                if let Some((_, _, field)) = verdict {
                    prefix.push_str(field);
                }
                deliveries.push(Delivery {
                    account: t.account,
                    folder: match verdict {
                        Some((_, true, _)) => Folder::SpecialUse("\\Junk".into()),
                        _ => Folder::Inbox,
                    },
                    prefix: prefix.into_bytes(),
                    flags: vec![],
                });
            }
        }
        for address in &r.remote {
            if queue.iter().any(|q| &q.address == address) {
                continue;
            }
            // RFC 3461 §4.2: keep the original recipient when forwarding.
            let orcpt = r.orcpt.clone().or_else(|| {
                (address != &r.address)
                    .then(|| format!("rfc822;{}", message::xtext::encode(&r.address)))
            });
            queue.push(QueueRecipient {
                address: address.clone(),
                orcpt,
                notify: r.notify.clone(),
            });
        }
    }
    let queue = (!queue.is_empty()).then(|| QueueInsert {
        sender: queue_sender.to_string(),
        recipients: queue,
        envid: envelope.envid.clone(),
        ret: envelope.ret.clone(),
        smtputf8: envelope.smtputf8,
        eight_bit: envelope.eight_bit,
        options: envelope.queue_options,
        submitter: envelope.submitter.clone(),
    });
    NewMessage {
        data,
        received_at,
        deliveries,
        queue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: AccountId, a: &str) -> LocalTarget {
        LocalTarget {
            account: id,
            address: a.into(),
        }
    }

    #[test]
    fn plan_dedupes_accounts_and_remote_addresses() {
        let env = Envelope {
            sender: "s@x.test".into(),
            recipients: vec![
                Recipient {
                    address: "a@d.test".into(),
                    local: vec![target(1, "a@d.test")],
                    remote: vec![],
                    notify: None,
                    orcpt: None,
                },
                Recipient {
                    address: "all@d.test".into(),
                    local: vec![target(1, "a@d.test"), target(2, "b@d.test")],
                    remote: vec!["r@far.test".into()],
                    notify: Some("FAILURE".into()),
                    orcpt: None,
                },
                Recipient {
                    address: "r@far.test".into(),
                    local: vec![],
                    remote: vec!["r@far.test".into()],
                    notify: None,
                    orcpt: None,
                },
            ],
            ..Default::default()
        };
        let m = plan(&env, "SRS0=x@d.test", b"x".to_vec(), 0);
        assert_eq!(m.deliveries.len(), 2);
        assert_eq!(
            m.deliveries[0].prefix,
            b"Return-Path: <s@x.test>\r\nDelivered-To: a@d.test\r\n"
        );
        let q = m.queue.unwrap();
        assert_eq!(q.sender, "SRS0=x@d.test");
        assert_eq!(q.recipients.len(), 1);
        assert_eq!(q.recipients[0].orcpt.as_deref(), Some("rfc822;all@d.test"));
        assert_eq!(q.recipients[0].notify.as_deref(), Some("FAILURE"));
    }
}
