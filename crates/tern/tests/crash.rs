//! hardening.md C-FT1 / C-FT2, design.md principle 2: many sessions send, the server
//! is killed with SIGKILL in the middle, restarted on the same data, again and
//! again; every message that got a 250 is in its mailbox exactly once. A
//! message without a 250 may or may not be there (once at most).
//!
//! `TERN_CRASH_KILLS` (default 2) and `TERN_CRASH_MESSAGES` (acknowledged
//! messages to reach over all rounds, default 600) set the size;
//! `scripts/prove-crash-loop` runs 20 kills and 20,000 messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

const SESSIONS: usize = 16;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A number in 0..n that differs from run to run (the kill moments).
fn jitter(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos.wrapping_mul(6364136223846793005) % n.max(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let kills = env_number("TERN_CRASH_KILLS", 2);
    let target = env_number("TERN_CRASH_MESSAGES", 600);
    let mut server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..kills {
        let addr = server.addr("smtp");
        let before = acked.lock().unwrap().len();
        let mut tasks = Vec::new();
        for id in 0..SESSIONS {
            tasks.push(tokio::spawn(common::load_sender(
                addr,
                format!("{round}-{id}"),
                acked.clone(),
            )));
        }
        // Let the load run to a share of the target, give or take, then
        // crash the server in the middle of it.
        let share = target / kills;
        let want = before + share / 2 + jitter(share as u64) as usize;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while acked.lock().unwrap().len() < want && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(jitter(30))).await;
        server.kill();
        for t in tasks {
            t.await.unwrap();
        }
        let now = acked.lock().unwrap().len();
        assert!(
            now - before >= 50,
            "round {round}: too little load before the crash: {}",
            now - before
        );
        server = tokio::task::spawn_blocking(move || {
            server.spawn();
            server
        })
        .await
        .unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let store = common::probe(&server).0.clone();
    let stored = common::subjects_stored_once(&store).await;
    let lost: Vec<&String> = acked.iter().filter(|s| !stored.contains(*s)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost after SIGKILL: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "crash test: {kills} kills, {} acknowledged, {} stored (the rest were cut before their 250), 0 lost, 0 twice",
        acked.len(),
        stored.len()
    );
}
