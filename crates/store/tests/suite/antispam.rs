//! The spam defences' state (`AntispamStore`) on every backend:
//! greylisting, Bayesian training undone exactly, pruning, the
//! compromised-account hold on queued mail, and the sending pace.

use std::sync::Arc;

use message::spool::Spooled;
use store::antispam::*;
use store::*;

use super::{MailStore, creds, to_x};

pub async fn greylisting_state<S: AntispamStore + ?Sized>(s: Arc<S>) {
    let entry = |key: &str, last_seen| GreylistEntry {
        key: key.into(),
        first_seen: 100,
        last_seen,
        passed_at: None,
        attempts: 1,
    };
    assert_eq!(s.greylist_entry("k1").await.unwrap(), None);
    s.greylist_put(entry("k1", 100)).await.unwrap();
    s.greylist_put(entry("k2", 300)).await.unwrap();
    let passed = GreylistEntry {
        passed_at: Some(400),
        attempts: 2,
        ..entry("k1", 400)
    };
    s.greylist_put(passed.clone()).await.unwrap();
    assert_eq!(s.greylist_entry("k1").await.unwrap(), Some(passed));
    let keys: Vec<String> = s
        .greylist_list(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["k1", "k2"], "most recently seen first");
    assert_eq!(s.greylist_client("192.0.2.0/24").await.unwrap(), (0, 0));
    s.greylist_client_passed("192.0.2.0/24", 400).await.unwrap();
    s.greylist_client_passed("192.0.2.0/24", 500).await.unwrap();
    assert_eq!(s.greylist_client("192.0.2.0/24").await.unwrap(), (2, 500));
    assert_eq!(s.greylist_expire(350).await.unwrap(), 1, "k2 only");
    assert!(s.greylist_entry("k2").await.unwrap().is_none());
    s.greylist_expire(600).await.unwrap();
    assert_eq!(s.greylist_client("192.0.2.0/24").await.unwrap(), (0, 0));
}

pub async fn bayes_training<S: AntispamStore + ?Sized>(s: Arc<S>) {
    let training = |digest: &[u8], spam, tokens: &[u64]| Training {
        owners: vec![SHARED, 7],
        digest: digest.to_vec(),
        spam,
        tokens: tokens.to_vec(),
        now: 10,
    };
    let big = u64::MAX - 1;
    assert_eq!(
        s.spam_train(training(b"m1", true, &[1, 2, big]))
            .await
            .unwrap(),
        Trained::New
    );
    assert_eq!(
        s.spam_train(training(b"m1", true, &[1, 2, big]))
            .await
            .unwrap(),
        Trained::Unchanged
    );
    assert_eq!(
        s.spam_train(training(b"m2", false, &[2, 3])).await.unwrap(),
        Trained::New
    );
    assert_eq!(s.spam_totals(SHARED).await.unwrap(), (1, 1));
    assert_eq!(s.spam_totals(7).await.unwrap(), (1, 1));
    assert_eq!(
        s.spam_tokens(7, vec![3, 2, big, 99]).await.unwrap(),
        vec![(3, 0, 1), (2, 1, 1), (big, 1, 0)],
        "in the order asked, unknown ones left out"
    );
    // The other way: what m1 added is taken back, exactly.
    assert_eq!(
        s.spam_train(training(b"m1", false, &[1, 2, big]))
            .await
            .unwrap(),
        Trained::Reversed
    );
    assert_eq!(s.spam_totals(7).await.unwrap(), (0, 2));
    assert_eq!(
        s.spam_tokens(7, vec![1, 2]).await.unwrap(),
        vec![(1, 0, 1), (2, 0, 2)]
    );
    // Pruning keeps the most used.
    assert_eq!(s.spam_prune(7, 2).await.unwrap(), 2);
    let kept = s.spam_tokens(7, vec![1, 2, 3, big]).await.unwrap();
    assert_eq!(kept.len(), 2);
    assert!(kept.contains(&(2, 0, 2)));
    assert_eq!(s.spam_prune(7, 10).await.unwrap(), 0);
}

pub async fn held_accounts_hold_their_queue<S: MailStore + QueueStore + AntispamStore + ?Sized>(
    s: Arc<S>,
) {
    s.add_domain("a.test").await.unwrap();
    s.add_account("alice@a.test", creds("a")).await.unwrap();
    let queue = |submitter: Option<&str>| QueueInsert {
        submitter: submitter.map(String::from),
        ..to_x("alice@a.test")
    };
    let store = |q| NewMessage {
        data: Spooled::from_vec(b"Subject: x\r\n\r\nx\r\n".to_vec()),
        received_at: 100,
        deliveries: vec![],
        queue: Some(q),
    };
    s.store_message(store(queue(Some("alice@a.test"))))
        .await
        .unwrap();
    assert!(!s.is_held("alice@a.test").await.unwrap());
    assert_eq!(s.set_held("alice@a.test", true, 200).await.unwrap(), 1);
    assert!(s.is_held("alice@a.test").await.unwrap());
    // Held: nothing of hers is claimed, and new mail of hers waits too.
    s.store_message(store(queue(Some("alice@a.test"))))
        .await
        .unwrap();
    s.store_message(store(queue(None))).await.unwrap();
    assert_eq!(
        s.queue_claim(Claim::Due(1000), 1000, 5000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.set_held("alice@a.test", false, 2000).await.unwrap(), 2);
    let released = s
        .queue_claim(Claim::Due(2000), 2000, 2100, 10)
        .await
        .unwrap();
    assert_eq!(released.len(), 2, "due again from the release on");
    assert!(matches!(
        s.set_held("nobody@a.test", true, 1).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn sending_pace<S: AntispamStore + ?Sized>(s: Arc<S>) {
    let hour = 3600;
    let now = 100 * hour + hour / 2;
    let sent = |at: i64, domains: &[&str], spam| Sent {
        account: "alice@a.test".into(),
        now: at,
        recipients: 2,
        domains: domains.iter().map(|d| d.to_string()).collect(),
        spam,
    };
    // Two hours long ago (the usual pace), one in the previous hour, two now.
    s.record_sent(sent(90 * hour, &["b.test"], false))
        .await
        .unwrap();
    s.record_sent(sent(91 * hour, &["b.test"], false))
        .await
        .unwrap();
    s.record_sent(sent(99 * hour + 10, &["c.test"], false))
        .await
        .unwrap();
    s.record_sent(sent(now, &["c.test", "d.test"], true))
        .await
        .unwrap();
    s.record_sent(sent(now, &["d.test"], false)).await.unwrap();
    s.record_bounce("alice@a.test", now).await.unwrap();
    let stats = s.sending_stats("alice@a.test", now).await.unwrap();
    // The previous hour counts half (half of it is inside the last 60 minutes).
    assert_eq!(stats.messages_last_hour, 3);
    assert_eq!(stats.recipients_last_hour, 5);
    assert_eq!(
        stats.new_domains_last_hour, 2,
        "d.test now, c.test's half-hour"
    );
    assert_eq!(stats.bounces_last_hour, 1);
    assert_eq!(stats.spam_last_hour, 1);
    assert_eq!(stats.usual_per_hour, 1.0);
    assert_eq!(
        s.sending_stats("bob@a.test", now).await.unwrap(),
        SendingStats::default()
    );
}
