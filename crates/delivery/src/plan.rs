//! From what the filters decided to the store's operation: the message as
//! received once, with a mailbox copy per keep and fileinto (each with its
//! own Return-Path and Delivered-To), and one queue entry for the remote
//! targets; a version of its own for each copy a script edited
//! (`editheader`); a queue entry of its own for each account's redirects,
//! marked `Delivered-To:` that account (loops are found by it).

use std::collections::BTreeSet;

use message::spool::Spooled;
use sieve::mail::Edited;
use sieve::{Action, Content};
use store::{AccountId, Delivery, Folder, NewMessage, QueueInsert, QueueRecipient};

use crate::Envelope;
use crate::filter::Run;

pub(crate) struct Built {
    pub messages: Vec<NewMessage>,
}

/// One version of the message and what goes with it.
struct Version {
    content: Content,
    /// Redirected copies: the account whose script sent them.
    redirected_by: Option<String>,
    data: Spooled,
    deliveries: Vec<Delivery>,
    queue: Vec<QueueRecipient>,
    sender: Option<String>,
}

/// What delivery adds to the local copies beyond the filters' verdicts.
pub(crate) struct Extras<'a> {
    /// The PGP/MIME signature's Authentication-Results field (or empty).
    pub signature: &'a str,
    /// The copy an account stores instead, encrypted at rest.
    pub encrypted: &'a std::collections::HashMap<AccountId, Sealed>,
}

/// A message encrypted at rest for one account: its version's identity
/// among the delivery's versions, and its octets (spooled: a large one is
/// never held whole).
pub(crate) struct Sealed {
    pub marker: Content,
    pub data: Spooled,
}

impl Sealed {
    pub fn new(data: Spooled) -> Sealed {
        Sealed {
            marker: Some(std::sync::Arc::new(Edited::whole(Vec::new()))),
            data,
        }
    }
}

pub(crate) fn build(
    envelope: &Envelope,
    queue_sender: &str,
    redirect_senders: &[(AccountId, String)],
    data: Spooled,
    received_at: i64,
    runs: &[Run],
    extras: &Extras<'_>,
) -> Built {
    let signature = extras.signature;
    let mut base = Version {
        content: None,
        redirected_by: None,
        data,
        deliveries: Vec::new(),
        queue: Vec::new(),
        sender: Some(queue_sender.to_string()),
    };
    let mut versions: Vec<Version> = Vec::new();
    // RFC 4865: a held message reaches nobody before its release time, not
    // even a local mailbox: the queue holds every copy.
    if envelope.queue_options.release_at.is_some() {
        let mut seen = BTreeSet::new();
        for r in &envelope.recipients {
            for t in r.local.iter().filter(|t| seen.insert(t.account)) {
                base.queue.push(QueueRecipient {
                    address: t.address.clone(),
                    orcpt: r.orcpt.clone(),
                    notify: r.notify.clone(),
                });
            }
        }
    }
    for run in runs {
        let prefix = message::trace::delivery_prefix(&envelope.sender, &run.target.address);
        let verdict = run.verdict.as_ref().map(|v| v.field.as_str()).unwrap_or("");
        let field = format!("{verdict}{signature}");
        let keep_folder = match &run.verdict {
            Some(v) if v.junk => Folder::SpecialUse("\\Junk".into()),
            _ => Folder::Inbox,
        };
        let Some(outcome) = &run.outcome else {
            let version = match extras.encrypted.get(&run.target.account) {
                Some(sealed) => sealed_version(&mut versions, sealed),
                None => &mut base,
            };
            version.deliveries.push(Delivery {
                account: run.target.account,
                folder: keep_folder,
                prefix: format!("{prefix}{field}").into_bytes(),
                flags: vec![],
            });
            continue;
        };
        for action in &outcome.actions {
            let (folder, flags, content) = match action {
                Action::Keep { flags, content, .. } => (keep_folder.clone(), flags, content),
                Action::FileInto {
                    mailbox,
                    flags,
                    create,
                    content,
                } => (folder_of(mailbox, *create), flags, content),
                Action::Redirect { address, content } => {
                    let sender = redirect_senders
                        .iter()
                        .find(|(a, _)| *a == run.target.account)
                        .map(|(_, s)| s.clone())
                        .unwrap_or_else(|| envelope.sender.clone());
                    let v = redirect_version(&mut versions, &base.data, run, content, sender);
                    v.queue.push(QueueRecipient {
                        address: address.clone(),
                        // RFC 3461 §4.2: who it was sent to.
                        orcpt: run.orcpt.clone().or_else(|| {
                            Some(format!("rfc822;{}", message::xtext::encode(&run.rcpt)))
                        }),
                        notify: run.notify.clone(),
                    });
                    continue;
                }
                _ => continue,
            };
            // The version a script edited holds the verdict field already;
            // one encrypted at rest has it outside, in clear.
            let encrypted = extras.encrypted.get(&run.target.account);
            let (version, prefix) = match (content, encrypted) {
                (None, Some(sealed)) => (
                    sealed_version(&mut versions, sealed),
                    format!("{prefix}{field}"),
                ),
                (None, None) => (&mut base, format!("{prefix}{field}")),
                (Some(_), _) => (
                    edited_version(&mut versions, &base.data, content),
                    prefix.clone(),
                ),
            };
            version.deliveries.push(Delivery {
                account: run.target.account,
                folder,
                prefix: prefix.into_bytes(),
                flags: flags.clone(),
            });
        }
    }
    for r in &envelope.recipients {
        for address in &r.remote {
            if base.queue.iter().any(|q| &q.address == address) {
                continue;
            }
            // RFC 3461 §4.2: keep the original recipient when forwarding.
            let orcpt = r.orcpt.clone().or_else(|| {
                (address != &r.address)
                    .then(|| format!("rfc822;{}", message::xtext::encode(&r.address)))
            });
            base.queue.push(QueueRecipient {
                address: address.clone(),
                orcpt,
                notify: r.notify.clone(),
            });
        }
    }
    let mut messages = Vec::new();
    for v in std::iter::once(base).chain(versions) {
        if v.deliveries.is_empty() && v.queue.is_empty() {
            continue;
        }
        let queue = (!v.queue.is_empty()).then(|| QueueInsert {
            sender: v.sender.clone().unwrap_or_else(|| envelope.sender.clone()),
            recipients: v.queue,
            envid: envelope.envid.clone(),
            ret: envelope.ret.clone(),
            smtputf8: envelope.smtputf8,
            eight_bit: envelope.eight_bit,
            options: envelope.queue_options,
            submitter: envelope.submitter.clone(),
        });
        messages.push(NewMessage {
            data: v.data,
            received_at,
            deliveries: v.deliveries,
            queue,
        });
    }
    Built { messages }
}

/// RFC 5228 §4.1: INBOX is the inbox; other names as the store knows them;
/// with `:create` (RFC 5490 §3.2) made when missing.
fn folder_of(mailbox: &str, create: bool) -> Folder {
    match (mailbox.eq_ignore_ascii_case("INBOX"), create) {
        (true, _) => Folder::Inbox,
        (false, true) => Folder::Create(mailbox.to_string()),
        (false, false) => Folder::Named(mailbox.to_string()),
    }
}

fn same(a: &Content, b: &Content) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => std::sync::Arc::ptr_eq(x, y),
        (None, None) => true,
        _ => false,
    }
}

/// The message as it came with an edit applied, after the fields `top`.
/// The body stays in its spool (C-FT9); a spool that cannot be extended or
/// copied (the disk is full) is read whole instead, and if even that fails
/// the message carries its head alone, and the log says so.
fn edited_data(original: &Spooled, edited: Option<&Edited>, top: &[u8]) -> Spooled {
    let made = match edited {
        None => original.with_prefix(top),
        Some(Edited {
            head,
            body_from: None,
        }) => Ok(Spooled::from_vec([top, head].concat())),
        Some(Edited {
            head,
            body_from: Some(n),
        }) => original.skip(*n).with_prefix(&[top, head].concat()),
    };
    made.or_else(|e| {
        tracing::warn!(error = %e, "spool: cannot copy the message for a changed version; reading it whole");
        let whole = original.read_all()?;
        let edited = edited.map_or_else(|| whole.to_vec(), |ed| ed.bytes(&whole));
        Ok::<_, std::io::Error>(Spooled::from_vec([top, &edited].concat()))
    })
    .unwrap_or_else(|e: std::io::Error| {
        tracing::warn!(error = %e, "spool: cannot read the message for a changed version: its head alone");
        Spooled::from_vec([top, original.head()].concat())
    })
}

fn edited_version<'v>(
    versions: &'v mut Vec<Version>,
    original: &Spooled,
    content: &Content,
) -> &'v mut Version {
    version_of(versions, content, || {
        edited_data(original, content.as_deref(), b"")
    })
}

fn sealed_version<'v>(versions: &'v mut Vec<Version>, sealed: &Sealed) -> &'v mut Version {
    version_of(versions, &sealed.marker, || sealed.data.clone())
}

/// The version (not redirected) holding `content`, made from `data` when
/// there is none yet.
fn version_of<'v>(
    versions: &'v mut Vec<Version>,
    content: &Content,
    data: impl FnOnce() -> Spooled,
) -> &'v mut Version {
    let at = versions
        .iter()
        .position(|v| v.redirected_by.is_none() && same(&v.content, content));
    match at {
        Some(i) => &mut versions[i],
        None => {
            versions.push(Version {
                content: content.clone(),
                redirected_by: None,
                data: data(),
                deliveries: Vec::new(),
                queue: Vec::new(),
                sender: None,
            });
            let last = versions.len() - 1;
            &mut versions[last]
        }
    }
}

/// The copy an account redirects: `Delivered-To:` it, then the message as
/// the script left it.
fn redirect_version<'v>(
    versions: &'v mut Vec<Version>,
    original: &Spooled,
    run: &Run,
    content: &Content,
    sender: String,
) -> &'v mut Version {
    let by = &run.target.address;
    let at = versions
        .iter()
        .position(|v| v.redirected_by.as_deref() == Some(by.as_str()) && same(&v.content, content));
    match at {
        Some(i) => &mut versions[i],
        None => {
            let delivered_to = format!("Delivered-To: {by}\r\n");
            let data = edited_data(original, content.as_deref(), delivered_to.as_bytes());
            versions.push(Version {
                content: content.clone(),
                redirected_by: Some(by.clone()),
                data,
                deliveries: Vec::new(),
                queue: Vec::new(),
                sender: Some(sender),
            });
            let last = versions.len() - 1;
            &mut versions[last]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalTarget, Recipient};

    fn target(id: i64, a: &str) -> LocalTarget {
        LocalTarget {
            account: AccountId(id),
            address: a.into(),
        }
    }

    fn run(id: i64, a: &str, outcome: Option<sieve::Outcome>) -> Run {
        Run {
            target: target(id, a),
            rcpt: a.into(),
            notify: None,
            orcpt: None,
            verdict: None,
            outcome,
        }
    }

    #[test]
    fn without_scripts_one_version_for_all() {
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
            ],
            ..Default::default()
        };
        let runs = vec![run(1, "a@d.test", None), run(2, "b@d.test", None)];
        let b = build(
            &env,
            "SRS0=x@d.test",
            &[],
            Spooled::from_vec(b"x".to_vec()),
            0,
            &runs,
            &Extras {
                signature: "",
                encrypted: &Default::default(),
            },
        );
        assert_eq!(b.messages.len(), 1);
        let m = &b.messages[0];
        assert_eq!(m.deliveries.len(), 2);
        assert_eq!(
            m.deliveries[0].prefix,
            b"Return-Path: <s@x.test>\r\nDelivered-To: a@d.test\r\n"
        );
        let q = m.queue.as_ref().unwrap();
        assert_eq!(q.sender, "SRS0=x@d.test");
        assert_eq!(q.recipients[0].orcpt.as_deref(), Some("rfc822;all@d.test"));
        assert_eq!(q.recipients[0].notify.as_deref(), Some("FAILURE"));
    }

    #[test]
    fn scripts_make_versions() {
        // A new header section over the body as it came ("x").
        let edited: Content = Some(std::sync::Arc::new(Edited {
            head: b"X-E: 1\r\n\r\n".to_vec(),
            body_from: Some(0),
        }));
        let env = Envelope {
            sender: "s@x.test".into(),
            ..Default::default()
        };
        let outcome = sieve::Outcome {
            actions: vec![
                Action::FileInto {
                    mailbox: "Work".into(),
                    flags: vec!["\\Seen".into()],
                    create: true,
                    content: None,
                },
                Action::Keep {
                    flags: vec![],
                    content: edited.clone(),
                    implicit: false,
                },
                Action::Redirect {
                    address: "f@far.test".into(),
                    content: None,
                },
                Action::Discard,
            ],
            ..Default::default()
        };
        let runs = vec![run(1, "a@d.test", Some(outcome))];
        let b = build(
            &env,
            "s@x.test",
            &[(AccountId(1), "SRS0=y@d.test".into())],
            Spooled::from_vec(b"x".to_vec()),
            0,
            &runs,
            &Extras {
                signature: "",
                encrypted: &Default::default(),
            },
        );
        assert_eq!(b.messages.len(), 3);
        assert_eq!(
            b.messages[0].deliveries[0].folder,
            Folder::Create("Work".into())
        );
        assert_eq!(
            b.messages[0].deliveries[0].flags,
            vec!["\\Seen".to_string()]
        );
        assert!(b.messages[0].queue.is_none());
        assert_eq!(b.messages[1].data.head(), b"X-E: 1\r\n\r\nx");
        assert_eq!(b.messages[1].deliveries[0].folder, Folder::Inbox);
        assert_eq!(b.messages[2].data.head(), b"Delivered-To: a@d.test\r\nx");
        let q = b.messages[2].queue.as_ref().unwrap();
        assert_eq!(q.sender, "SRS0=y@d.test");
        assert_eq!(q.recipients[0].orcpt.as_deref(), Some("rfc822;a@d.test"));
    }
}
