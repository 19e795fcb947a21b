//! Who gets mail sent to an address: accounts, aliases (expanded, cycles
//! cut), sub-addresses, catch-alls, SRS bounces (see the crate documentation
//! for the order).

use std::collections::BTreeSet;

use message::{Domain, Mailbox};
use policy::srs::Srs;
use store::{AddressKind, StoreError};

use crate::{
    LocalTarget, MAX_DEPTH, MAX_TARGETS, Mda, REPORT_LOCAL_PART, Resolution, TLSRPT_LOCAL_PART,
};

impl Mda {
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
            AddressKind::Unknown
                if [REPORT_LOCAL_PART, TLSRPT_LOCAL_PART]
                    .iter()
                    .any(|l| rcpt.local().eq_ignore_ascii_case(l)) =>
            {
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
}
