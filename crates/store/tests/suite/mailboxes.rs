//! The mailbox contract (`MailboxStore`) on every backend: names,
//! subscriptions, flags, expunges, changes since a MODSEQ, \Recent, copies
//! and moves, quota and annotations, and the change feed's promise (every
//! change published after its commit, with the right mailbox ids).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use message::spool::Spooled;
use store::*;
use tokio::sync::broadcast::Receiver;

use super::{MailStore, creds};

/// alice@a.test with her special-use mailboxes.
async fn alice<S: MailStore + ?Sized>(s: &Arc<S>) -> AccountRecord {
    s.add_domain("a.test").await.unwrap();
    s.add_account("alice@a.test", creds("a")).await.unwrap()
}

async fn named<S: MailStore + ?Sized>(s: &Arc<S>, account: AccountId, name: &str) -> MailboxRecord {
    s.mailbox(account, name).await.unwrap().unwrap()
}

async fn append<S: MailStore + ?Sized>(
    s: &Arc<S>,
    mailbox: MailboxId,
    subject: &str,
    flags: &[&str],
) -> u32 {
    let data = format!("Subject: {subject}\r\n\r\nbody of {subject}\r\n");
    let flags = flags.iter().map(|f| f.to_string()).collect();
    s.append(mailbox, Spooled::from_vec(data.into_bytes()), flags, 1_000)
        .await
        .unwrap()
}

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|f| f.to_string()).collect()
}

/// The ids published since the last drain, as a set (the feed may repeat
/// one). A notice may come a moment after the change returned (PostgreSQL
/// relays it through the database): wait for the first a while, then until
/// the feed is quiet.
async fn drained(rx: &mut Receiver<MailboxId>) -> BTreeSet<MailboxId> {
    let mut ids = BTreeSet::new();
    let mut wait = Duration::from_millis(300);
    while let Ok(Ok(id)) = tokio::time::timeout(wait, rx.recv()).await {
        ids.insert(id);
        wait = Duration::from_millis(50);
    }
    ids
}

pub async fn mailbox_names_and_subscriptions<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    let a = alice(&s).await;
    let names: Vec<String> = s
        .mailboxes(a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert!(names.contains(&"INBOX".to_string()));
    let work = s.create_mailbox(a.id, "Work").await.unwrap();
    assert_eq!(work.uid_next, 1);
    assert!(matches!(
        s.create_mailbox(a.id, "Work").await,
        Err(StoreError::Duplicate(_))
    ));
    s.create_mailbox(a.id, "Work/2026").await.unwrap();
    s.create_mailbox(a.id, "Workshop").await.unwrap();

    s.set_subscribed(a.id, "Work", true).await.unwrap();
    assert!(named(&s, a.id, "Work").await.subscribed);
    s.set_subscribed(a.id, "Work", false).await.unwrap();
    assert!(!named(&s, a.id, "Work").await.subscribed);
    assert!(matches!(
        s.set_subscribed(a.id, "Nope", true).await,
        Err(StoreError::NotFound(_))
    ));

    // A rename takes the mailboxes below along, not a sibling sharing the prefix.
    let uid = append(&s, work.id, "kept", &[]).await;
    s.rename_mailbox(a.id, "Work", "Job").await.unwrap();
    assert!(s.mailbox(a.id, "Work").await.unwrap().is_none());
    let job = named(&s, a.id, "Job").await;
    assert_eq!((job.id, job.uid_validity), (work.id, work.uid_validity));
    assert!(s.message_content(job.id, uid).await.unwrap().is_some());
    assert!(s.mailbox(a.id, "Job/2026").await.unwrap().is_some());
    assert!(s.mailbox(a.id, "Workshop").await.unwrap().is_some());
    assert!(matches!(
        s.rename_mailbox(a.id, "Job", "Workshop").await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        s.rename_mailbox(a.id, "Nope", "Other").await,
        Err(StoreError::NotFound(_))
    ));

    // Renaming INBOX moves its messages into a new mailbox (RFC 9051 §6.3.6).
    let inbox = named(&s, a.id, "INBOX").await;
    append(&s, inbox.id, "one", &["\\Seen"]).await;
    append(&s, inbox.id, "two", &[]).await;
    s.rename_mailbox(a.id, "INBOX", "Old").await.unwrap();
    let old = named(&s, a.id, "Old").await;
    assert_ne!(old.id, inbox.id);
    assert_eq!(s.messages(old.id).await.unwrap().len(), 2);
    assert!(s.messages(inbox.id).await.unwrap().is_empty());
    assert_eq!(named(&s, a.id, "INBOX").await.id, inbox.id);

    // Deleting takes the messages, not the mailboxes below.
    s.delete_mailbox(a.id, "Job").await.unwrap();
    assert!(s.mailbox(a.id, "Job").await.unwrap().is_none());
    assert!(s.message_content(job.id, uid).await.unwrap().is_none());
    assert!(s.mailbox(a.id, "Job/2026").await.unwrap().is_some());
    assert!(matches!(
        s.delete_mailbox(a.id, "Job").await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn flags_expunge_and_changes<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    let a = alice(&s).await;
    let inbox = named(&s, a.id, "INBOX").await;
    for subject in ["one", "two", "three"] {
        append(&s, inbox.id, subject, &[]).await;
    }
    let start = named(&s, a.id, "INBOX").await.highest_modseq;

    // One change, one new MODSEQ for every message it touched (RFC 7162 §3.1).
    let seen = s
        .set_flags(inbox.id, vec![1, 2], FlagOp::Add, flags(&["\\Seen"]), None)
        .await
        .unwrap();
    assert_eq!(
        seen.updated.iter().map(|e| e.uid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let modseq = seen.updated[0].modseq;
    assert!(modseq > start && seen.updated[1].modseq == modseq);
    assert!(seen.conflicts.is_empty());
    // Nothing to change: nothing updated, no new MODSEQ.
    let again = s
        .set_flags(inbox.id, vec![1], FlagOp::Add, flags(&["\\Seen"]), None)
        .await
        .unwrap();
    assert!(again.updated.is_empty());
    assert_eq!(named(&s, a.id, "INBOX").await.highest_modseq, modseq);
    // UNCHANGEDSINCE: a message changed after it is left alone (RFC 7162 §3.1.3).
    let guarded = s
        .set_flags(
            inbox.id,
            vec![1, 3],
            FlagOp::Replace,
            flags(&["$Work"]),
            Some(start),
        )
        .await
        .unwrap();
    assert_eq!(guarded.conflicts, vec![1]);
    assert_eq!(guarded.updated[0].flags, flags(&["$Work"]));
    let changed = s.changes_since(inbox.id, modseq).await.unwrap();
    assert_eq!(
        changed.changed.iter().map(|e| e.uid).collect::<Vec<_>>(),
        vec![3]
    );
    assert!(changed.expunged.is_empty());

    // EXPUNGE removes \Deleted messages only, among the UIDs given.
    s.set_flags(
        inbox.id,
        vec![1, 2, 3],
        FlagOp::Add,
        flags(&["\\Deleted"]),
        None,
    )
    .await
    .unwrap();
    let before_expunge = named(&s, a.id, "INBOX").await.highest_modseq;
    assert_eq!(
        s.expunge(inbox.id, Some(vec![2, 3, 9])).await.unwrap(),
        vec![2, 3]
    );
    let gone = s.changes_since(inbox.id, before_expunge).await.unwrap();
    assert_eq!(gone.expunged, vec![2, 3]);
    assert!(gone.changed.is_empty());
    assert_eq!(
        s.entries(inbox.id, vec![3, 1, 2, 1]).await.unwrap().len(),
        1
    );
    let contents = s.contents(inbox.id, vec![1, 2]).await.unwrap();
    assert_eq!(contents.len(), 1);
    assert!(contents[0].1.starts_with(b"Subject: one\r\n"));
    assert_eq!(s.expunge(inbox.id, None).await.unwrap(), vec![1]);
    assert!(s.messages(inbox.id).await.unwrap().is_empty());
    assert!(s.expunge(inbox.id, None).await.unwrap().is_empty());
    // UIDs are never reused (RFC 9051 §2.3.1.1).
    assert_eq!(append(&s, inbox.id, "four", &[]).await, 4);
}

pub async fn recent_is_claimed_once<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    let a = alice(&s).await;
    let inbox = named(&s, a.id, "INBOX").await;
    append(&s, inbox.id, "one", &[]).await;
    append(&s, inbox.id, "two", &[]).await;
    // The first session sees both as \Recent, the next none (RFC 3501 §2.3.2).
    assert_eq!(s.claim_recent(inbox.id).await.unwrap(), 1);
    assert_eq!(s.claim_recent(inbox.id).await.unwrap(), 3);
    append(&s, inbox.id, "three", &[]).await;
    assert_eq!(s.claim_recent(inbox.id).await.unwrap(), 3);
}

pub async fn copy_and_move<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    let a = alice(&s).await;
    let inbox = named(&s, a.id, "INBOX").await;
    let archive = s.create_mailbox(a.id, "Kept").await.unwrap();
    append(&s, archive.id, "already there", &[]).await;
    for subject in ["one", "two", "three"] {
        append(&s, inbox.id, subject, &["$Tag"]).await;
    }
    let pairs = s
        .copy_messages(inbox.id, vec![3, 1], archive.id, false)
        .await
        .unwrap();
    assert_eq!(pairs, vec![(1, 2), (3, 3)]);
    let copied = s.entries(archive.id, vec![2]).await.unwrap();
    assert_eq!(copied[0].flags, flags(&["$Tag"]));
    assert_eq!(s.messages(inbox.id).await.unwrap().len(), 3);
    let moved = s
        .copy_messages(inbox.id, vec![2], archive.id, true)
        .await
        .unwrap();
    assert_eq!(moved, vec![(2, 4)]);
    let left: Vec<u32> = s
        .messages(inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.uid)
        .collect();
    assert_eq!(left, vec![1, 3]);
    let text = s.message_content(archive.id, 4).await.unwrap().unwrap();
    assert!(text.starts_with(b"Subject: two\r\n"));
    // A UID that is not there is skipped, not an error.
    assert!(
        s.copy_messages(inbox.id, vec![2], archive.id, false)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn quota_and_annotations<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    let a = alice(&s).await;
    assert_eq!(s.quota_limits(a.id).await.unwrap(), Quota::default());
    let limits = Quota {
        storage: Some(10_000),
        messages: Some(5),
    };
    s.set_quota("alice@a.test", limits).await.unwrap();
    assert_eq!(s.quota_limits(a.id).await.unwrap(), limits);
    let inbox = named(&s, a.id, "INBOX").await;
    let archive = s.create_mailbox(a.id, "Kept").await.unwrap();
    append(&s, inbox.id, "one", &[]).await;
    append(&s, archive.id, "two", &[]).await;
    let usage = s.quota(a.id).await.unwrap();
    assert_eq!((usage.quota, usage.messages), (limits, 2));
    let octets =
        s.messages(inbox.id).await.unwrap()[0].size + s.messages(archive.id).await.unwrap()[0].size;
    assert_eq!(usage.storage, octets);
    assert!(matches!(
        s.set_quota("nobody@a.test", limits).await,
        Err(StoreError::NotFound(_))
    ));

    // Annotations (RFC 5464) on the server and on a mailbox, set and removed.
    let entries = |list: &[(&str, Option<&str>)]| {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.map(|v| v.as_bytes().to_vec())))
            .collect::<Vec<_>>()
    };
    s.set_metadata(
        a.id,
        None,
        entries(&[("/private/comment", Some("mine"))]),
        10,
    )
    .await
    .unwrap();
    s.set_metadata(
        a.id,
        Some(inbox.id),
        entries(&[
            ("/private/color", Some("red")),
            ("/private/note", Some("x")),
        ]),
        10,
    )
    .await
    .unwrap();
    assert_eq!(
        s.metadata(a.id, None).await.unwrap(),
        vec![("/private/comment".to_string(), b"mine".to_vec())]
    );
    assert_eq!(s.metadata(a.id, Some(inbox.id)).await.unwrap().len(), 2);
    s.set_metadata(
        a.id,
        Some(inbox.id),
        entries(&[("/private/note", None)]),
        10,
    )
    .await
    .unwrap();
    assert_eq!(
        s.metadata(a.id, Some(inbox.id)).await.unwrap(),
        vec![("/private/color".to_string(), b"red".to_vec())]
    );
    // Past the account's limit nothing of the request is kept.
    let many = entries(&[("/private/a", Some("1")), ("/private/b", Some("2"))]);
    assert!(matches!(
        s.set_metadata(a.id, Some(archive.id), many, 3).await,
        Err(StoreError::Full)
    ));
    assert!(s.metadata(a.id, Some(archive.id)).await.unwrap().is_empty());
}

/// Every change is published after its commit, with the ids it touched;
/// reads publish nothing.
pub async fn change_feed<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    let a = alice(&s).await;
    let inbox = named(&s, a.id, "INBOX").await;
    let mut rx = s.watch();
    let one = |id| BTreeSet::from([id]);

    let work = s.create_mailbox(a.id, "Work").await.unwrap();
    assert_eq!(drained(&mut rx).await, one(work.id));
    append(&s, inbox.id, "one", &[]).await;
    append(&s, inbox.id, "two", &[]).await;
    assert_eq!(drained(&mut rx).await, one(inbox.id));
    s.set_flags(inbox.id, vec![1], FlagOp::Add, flags(&["\\Deleted"]), None)
        .await
        .unwrap();
    assert_eq!(drained(&mut rx).await, one(inbox.id));
    // Nothing changed, nothing published.
    s.set_flags(inbox.id, vec![1], FlagOp::Add, flags(&["\\Deleted"]), None)
        .await
        .unwrap();
    s.expunge(inbox.id, Some(vec![2])).await.unwrap();
    assert!(drained(&mut rx).await.is_empty());
    s.expunge(inbox.id, None).await.unwrap();
    assert_eq!(drained(&mut rx).await, one(inbox.id));
    s.copy_messages(inbox.id, vec![2], work.id, false)
        .await
        .unwrap();
    assert_eq!(drained(&mut rx).await, one(work.id));
    s.copy_messages(inbox.id, vec![2], work.id, true)
        .await
        .unwrap();
    assert_eq!(drained(&mut rx).await, BTreeSet::from([inbox.id, work.id]));
    s.remove_messages(work.id, vec![1]).await.unwrap();
    assert_eq!(drained(&mut rx).await, one(work.id));
    s.set_subscribed(a.id, "Work", true).await.unwrap();
    assert_eq!(drained(&mut rx).await, one(work.id));
    s.create_mailbox(a.id, "Work/Sub").await.unwrap();
    drained(&mut rx).await;
    s.rename_mailbox(a.id, "Work", "Job").await.unwrap();
    let sub = named(&s, a.id, "Job/Sub").await;
    assert_eq!(drained(&mut rx).await, BTreeSet::from([work.id, sub.id]));
    s.delete_mailbox(a.id, "Job").await.unwrap();
    assert_eq!(drained(&mut rx).await, one(work.id));
    // A delivery publishes every mailbox it reached.
    let stored = s
        .store_message(NewMessage {
            data: Spooled::from_vec(b"Subject: hi\r\n\r\nhi\r\n".to_vec()),
            received_at: 1,
            deliveries: vec![Delivery {
                account: a.id,
                folder: Folder::SpecialUse("\\Junk".into()),
                prefix: Vec::new(),
                flags: vec![],
            }],
            queue: None,
        })
        .await
        .unwrap();
    assert_eq!(drained(&mut rx).await, one(stored.placed[0].0));
    // Failures and reads publish nothing.
    let _ = s.create_mailbox(a.id, "INBOX").await;
    let _ = s.delete_mailbox(a.id, "Nope").await;
    s.messages(inbox.id).await.unwrap();
    s.changes_since(inbox.id, 0).await.unwrap();
    assert!(drained(&mut rx).await.is_empty());
    // Removing the account: every one of its mailboxes.
    let all: BTreeSet<MailboxId> = s
        .mailboxes(a.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    s.remove_account("alice@a.test").await.unwrap();
    assert_eq!(drained(&mut rx).await, all);
}

/// Two writers on one mailbox at once: every append gets its own UID,
/// every flag change lands (none lost to the other's write).
pub async fn concurrent_writers<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    let a = alice(&s).await;
    let inbox = named(&s, a.id, "INBOX").await;
    let mut tasks = Vec::new();
    for writer in 0..2 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut uids = Vec::new();
            for i in 0..25 {
                uids.push(append(&s, inbox.id, &format!("{writer}-{i}"), &[]).await);
            }
            uids
        }));
    }
    let mut uids = Vec::new();
    for t in tasks {
        uids.extend(t.await.unwrap());
    }
    uids.sort_unstable();
    assert_eq!(uids, (1..=50).collect::<Vec<u32>>());
    let mut tasks = Vec::new();
    for flag in ["$A", "$B"] {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for uid in 1..=50 {
                s.set_flags(inbox.id, vec![uid], FlagOp::Add, flags(&[flag]), None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let entries = s.messages(inbox.id).await.unwrap();
    assert!(entries.iter().all(|e| e.flags == flags(&["$A", "$B"])));
    let record = named(&s, a.id, "INBOX").await;
    assert_eq!(record.uid_next, 51);
    assert!(record.highest_modseq >= entries.iter().map(|e| e.modseq).max().unwrap());
}
