//! The queue's leases on every backend: what makes several deliverers
//! (threads of one node, or several nodes on one database) safe. Two
//! claimers never hold the same recipient; a lease that ran out (its
//! holder died) makes the recipient due again for whoever claims next.

use std::collections::BTreeSet;
use std::sync::Arc;

use message::spool::Spooled;
use store::*;

use super::{MailStore, to_x};

async fn queue_messages<S: MailStore + QueueStore + ?Sized>(
    s: &Arc<S>,
    count: usize,
) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    for i in 0..count {
        let stored = s
            .store_message(NewMessage {
                data: Spooled::from_vec(format!("Subject: {i}\r\n\r\nx\r\n").into_bytes()),
                received_at: 100,
                deliveries: vec![],
                queue: Some(to_x("alice@a.test")),
            })
            .await
            .unwrap();
        ids.insert(stored.queue_id.unwrap());
    }
    ids
}

/// Claim (a few at a time) until nothing is due; what this claimer got.
async fn claim_all<S: QueueStore + ?Sized>(s: Arc<S>, now: i64, lease_until: i64) -> Vec<i64> {
    let mut got = Vec::new();
    loop {
        let jobs = s
            .queue_claim(Claim::Due(now), now, lease_until, 3)
            .await
            .unwrap();
        if jobs.is_empty() {
            return got;
        }
        got.extend(jobs.iter().map(|j| j.id));
        tokio::task::yield_now().await;
    }
}

pub async fn leases_are_exclusive_and_expire<S: MailStore + QueueStore + ?Sized + 'static>(
    s: Arc<S>,
) {
    let ids = queue_messages(&s, 40).await;
    let (a, b) = (s.clone(), s.clone());
    let (got_a, got_b) = tokio::join!(
        tokio::spawn(claim_all(a, 100, 700)),
        tokio::spawn(claim_all(b, 100, 700))
    );
    let (got_a, got_b) = (got_a.unwrap(), got_b.unwrap());
    let union: BTreeSet<i64> = got_a.iter().chain(&got_b).copied().collect();
    assert_eq!(union, ids, "every due message claimed");
    assert_eq!(got_a.len() + got_b.len(), ids.len(), "none claimed twice");

    // Still leased (a lease holds through its last second): nobody gets them, not even one message asked by id.
    assert!(claim_all(s.clone(), 699, 1_300).await.is_empty());
    let first = *ids.first().unwrap();
    assert!(
        s.queue_claim(Claim::Message(first), 699, 1_300, 1)
            .await
            .unwrap()
            .is_empty()
    );

    // The holder died: once its leases run out, another claimer takes over.
    let taken_over: BTreeSet<i64> = claim_all(s.clone(), 701, 1_300).await.into_iter().collect();
    assert_eq!(taken_over, ids);

    // A report ends the lease: deferred to 800, the message is due then,
    // while the others stay leased until 1,300.
    let job = s
        .queue_claim(Claim::Message(first), 1_301, 1_900, 1)
        .await
        .unwrap();
    assert_eq!(job.len(), 1, "its lease ran out after 1,300");
    s.queue_report(QueueReport {
        queue_id: first,
        attempts: vec![],
        outcomes: vec![RecipientOutcome {
            id: job[0].recipients[0].id,
            state: RecipientState::Deferred(800),
            status: "4.4.1".into(),
            reply: "no answer".into(),
            remote_mta: None,
            warned: false,
        }],
        return_limit: 1 << 20,
    })
    .await
    .unwrap();
    assert_eq!(claim_all(s.clone(), 800, 1_000).await, vec![first]);
    assert!(claim_all(s.clone(), 800, 1_000).await.is_empty());
}

/// Named leases (a POP3 maildrop, a report period): one holder at a time
/// among racing takers, renewed by its holder, free once run out or given
/// up, never given up by another.
pub async fn named_leases<S: LeaseStore + ?Sized + 'static>(s: Arc<S>) {
    assert!(s.take_lease("pop3:1", "a", 100, 200).await.unwrap());
    assert!(!s.take_lease("pop3:1", "b", 150, 250).await.unwrap());
    assert!(s.take_lease("pop3:2", "b", 150, 250).await.unwrap());
    assert!(
        s.take_lease("pop3:1", "a", 150, 300).await.unwrap(),
        "renewed"
    );
    assert!(!s.take_lease("pop3:1", "b", 299, 400).await.unwrap());
    assert!(
        s.take_lease("pop3:1", "b", 300, 400).await.unwrap(),
        "run out"
    );
    s.drop_lease("pop3:1", "a").await.unwrap();
    assert!(
        !s.take_lease("pop3:1", "a", 301, 400).await.unwrap(),
        "only its holder gives a lease up"
    );
    s.drop_lease("pop3:1", "b").await.unwrap();
    assert!(s.take_lease("pop3:1", "a", 301, 400).await.unwrap());
    s.clear_leases().await.unwrap();
    assert!(s.take_lease("pop3:2", "c", 301, 400).await.unwrap());
    let mut racers = Vec::new();
    for n in 0..8 {
        let s = s.clone();
        racers.push(tokio::spawn(async move {
            s.take_lease("reports", &format!("node{n}"), 500, 600)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1);
}
