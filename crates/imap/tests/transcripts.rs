//! Every IMAP transcript of `tests/transcripts/imap/`, played in memory against
//! the session state machine (no socket). `crates/tern/tests/transcripts.rs`
//! plays the same files over TCP against a real `tern serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use imap::{ImapConfig, ImapSession};
use testkit::Transcript;
use testkit::fixture;
use testkit::memory::{MemoryWire, conn_info};

async fn play(name: &str, text: &str) -> Result<(), String> {
    play_with(name, text, 256 * 1024).await
}

async fn play_with(name: &str, text: &str, stream_over: u64) -> Result<(), String> {
    let transcript = Transcript::parse(name, text, &fixture::all_vars())?;
    let listener = transcript
        .headers
        .get("listener")
        .map(String::as_str)
        .unwrap_or("imap");
    let (_dir, store, services) = common::world().await;
    let mut config = ImapConfig::new(fixture::HOST, 50 << 20);
    config.starttls = true;
    config.stream_over = stream_over;
    config.plaintext_on_loopback =
        transcript.headers.get("plaintext").map(String::as_str) != Some("no");
    let session = ImapSession::new(Arc::new(config), services, &conn_info(listener == "imaps"));
    let mut wire = MemoryWire::new(session, store);
    transcript.play(&mut wire).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_transcripts_in_memory() {
    testkit::transcript::run_all(
        "imap",
        1,
        |name, text| async move { play(&name, &text).await },
    )
    .await;
}

/// The same transcripts with every message read as a stream (C-FT9): the
/// outline of a message and the parts copied or decoded from the store
/// give, octet for octet, what the message read whole gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_transcripts_with_every_message_streamed() {
    testkit::transcript::run_all("imap", 1, |name, text| async move {
        play_with(&name, &text, 0).await
    })
    .await;
}
