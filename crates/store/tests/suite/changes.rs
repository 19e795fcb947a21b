//! The change log and the search index under the conditions a second
//! backend makes real: writers on several connections at once, and text
//! that one database keeps and another refuses.

use std::collections::BTreeSet;
use std::sync::Arc;

use message::spool::Spooled;
use store::*;

use super::creds;

/// A client that follows an account's changes from the state it last
/// read never misses one while several writers commit at once: each new
/// change is numbered above every state a reader could have seen (JMAP
/// /changes, RFC 8620 §5.2). Writers on four mailboxes of one account, so
/// no mailbox lock orders them; the reader polls meanwhile.
pub async fn change_states_follow_commits(s: Arc<dyn Store>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let mut writers = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        let mailbox = s.create_mailbox(a, &format!("W{w}")).await.unwrap().id;
        writers.push(tokio::spawn(async move {
            for i in 0..40 {
                let data = format!("Subject: {w}-{i}\r\n\r\nhi\r\n").into_bytes();
                s.append(mailbox, Spooled::from_vec(data), vec![], 1)
                    .await
                    .unwrap();
            }
        }));
    }
    let mut seen = BTreeSet::new();
    let mut state = 0;
    let read_since = |s: Arc<dyn Store>, state: u64| async move {
        s.changes_after(a, DataType::Email, state, 10_000)
            .await
            .unwrap()
    };
    while !writers.iter().all(|w| w.is_finished()) {
        for row in read_since(s.clone(), state).await {
            assert!(row.seq > state);
            seen.insert(row.object);
            state = row.seq;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    for row in read_since(s.clone(), state).await {
        seen.insert(row.object);
    }
    let mut stored = BTreeSet::new();
    for mailbox in s.mailboxes(a).await.unwrap() {
        let uids: Vec<u32> = s
            .messages(mailbox.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        for e in s.entries(mailbox.id, uids).await.unwrap() {
            stored.insert(e.email_id);
        }
    }
    assert_eq!(stored.len(), 160);
    assert_eq!(
        seen, stored,
        "a change committed below a state already read"
    );
}

/// Whatever octets a message holds, it is stored, indexed and found: a
/// NUL in its subject and body (which PostgreSQL text cannot hold),
/// LIKE's and GLOB's own characters taken literally.
pub async fn index_keeps_any_text(s: Arc<dyn Store>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let inbox = s.mailbox(a, "INBOX").await.unwrap().unwrap().id;
    let raw = b"Subject: half\x00way 100%_done\r\nMessage-ID: <n\x00ul@a.test>\r\n\r\nnul \x00 in the body, 50% off_now\r\n";
    let uid = s
        .append(inbox, Spooled::from_vec(raw.to_vec()), vec![], 1)
        .await
        .unwrap();
    s.append(
        inbox,
        Spooled::from_vec(b"Subject: 100 percent done\r\n\r\n50 off now\r\n".to_vec()),
        vec![],
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        s.message_content(inbox, uid).await.unwrap().unwrap(),
        raw.to_vec()
    );
    let find = |f, n: &'static str| {
        let s = s.clone();
        async move { s.search_text(inbox, f, n).await.unwrap() }
    };
    assert_eq!(find(TextField::Subject, "100%_").await, vec![uid]);
    assert_eq!(find(TextField::Body, "50% off_").await, vec![uid]);
    assert_eq!(find(TextField::Body, "%").await, vec![uid]);
    assert_eq!(find(TextField::Text, "in the body").await, vec![uid]);
    assert_eq!(s.index_rows(inbox, 0).await.unwrap().len(), 2);
    assert_eq!(s.previews(inbox, vec![uid]).await.unwrap().len(), 1);
}

/// Deliveries arriving together may share a transaction (both backends
/// batch them): one that fails (its account is gone) fails alone, the
/// others are stored, each with its own UIDs, none twice.
pub async fn a_failed_delivery_spares_the_others(s: Arc<dyn Store>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let gone = s.add_account("gone@a.test", creds("g")).await.unwrap().id;
    s.remove_account("gone@a.test").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        let to = if i % 10 == 3 { gone } else { a };
        tasks.push(tokio::spawn(async move {
            s.store_message(NewMessage {
                data: Spooled::from_vec(format!("Subject: {i}\r\n\r\nhi\r\n").into_bytes()),
                received_at: i,
                deliveries: vec![super::delivery(to, "")],
                queue: None,
            })
            .await
        }));
    }
    let mut uids = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(stored) => uids.push(stored.placed[0].1),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(failed, 4);
    uids.sort_unstable();
    assert_eq!(uids, (1..=36).collect::<Vec<u32>>());
    let inbox = s.mailbox(a, "INBOX").await.unwrap().unwrap().id;
    assert_eq!(s.messages(inbox).await.unwrap().len(), 36);
}
