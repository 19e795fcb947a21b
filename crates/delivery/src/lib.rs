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
use store::{
    AccountId, AddressKind, Delivery, Folder, NewMessage, QueueInsert, QueueRecipient, Store,
    StoreError, Stored,
};

pub const MAX_DEPTH: usize = 10;
pub const MAX_TARGETS: usize = 1000;

#[derive(Debug, Clone)]
pub struct MdaConfig {
    /// The sub-address separator (`+` in `user+tag@domain`); None turns sub-addressing off.
    pub subaddress_separator: Option<char>,
}

impl Default for MdaConfig {
    fn default() -> Self {
        MdaConfig {
            subaddress_separator: Some('+'),
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
}

/// One accepted recipient of a transaction.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The address as given at RCPT (canonical form).
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
    /// Local copies go to the Junk folder (DMARC quarantine).
    pub junk: bool,
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
        let stored = self
            .store
            .store_message(plan(envelope, data, received_at))
            .await?;
        if stored.queue_id.is_some() {
            self.queued.notify_one();
        }
        Ok(stored)
    }
}

/// The store operation for a delivery: deduplicated local copies, each with its own
/// Return-Path and Delivered-To, and one queue entry for the remote addresses.
fn plan(envelope: &Envelope, data: Vec<u8>, received_at: i64) -> NewMessage {
    let mut deliveries: Vec<Delivery> = Vec::new();
    let mut seen_accounts = BTreeSet::new();
    let mut queue: Vec<QueueRecipient> = Vec::new();
    for r in &envelope.recipients {
        for t in &r.local {
            if seen_accounts.insert(t.account) {
                deliveries.push(Delivery {
                    account: t.account,
                    folder: if envelope.junk {
                        Folder::SpecialUse("\\Junk".into())
                    } else {
                        Folder::Inbox
                    },
                    prefix: message::trace::delivery_prefix(&envelope.sender, &t.address)
                        .into_bytes(),
                    flags: vec![],
                });
            }
        }
        for address in &r.remote {
            if queue.iter().any(|q| &q.address == address) {
                continue;
            }
            // RFC 3461 §4.2: keep the original recipient when forwarding.
            let orcpt = r
                .orcpt
                .clone()
                .or_else(|| (address != &r.address).then(|| format!("rfc822;{}", r.address)));
            queue.push(QueueRecipient {
                address: address.clone(),
                orcpt,
                notify: r.notify.clone(),
            });
        }
    }
    let queue = (!queue.is_empty()).then(|| QueueInsert {
        sender: envelope.sender.clone(),
        recipients: queue,
        envid: envelope.envid.clone(),
        ret: envelope.ret.clone(),
        smtputf8: envelope.smtputf8,
        eight_bit: envelope.eight_bit,
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
        let m = plan(&env, b"x".to_vec(), 0);
        assert_eq!(m.deliveries.len(), 2);
        assert_eq!(
            m.deliveries[0].prefix,
            b"Return-Path: <s@x.test>\r\nDelivered-To: a@d.test\r\n"
        );
        let q = m.queue.unwrap();
        assert_eq!(q.recipients.len(), 1);
        assert_eq!(q.recipients[0].orcpt.as_deref(), Some("rfc822;all@d.test"));
        assert_eq!(q.recipients[0].notify.as_deref(), Some("FAILURE"));
    }
}
