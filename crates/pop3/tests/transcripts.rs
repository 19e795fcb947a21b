//! Every POP3 transcript of `tests/transcripts/pop3/`, played in memory against
//! the session state machine (no socket). `crates/tern/tests/transcripts.rs`
//! plays the same files over TCP against a real `tern serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use pop3::{Pop3Config, Pop3Session, Services};
use testkit::Transcript;
use testkit::fixture;
use testkit::memory::{MemoryWire, conn_info};

async fn play(name: &str, text: &str) -> Result<(), String> {
    let transcript = Transcript::parse(name, text, &fixture::all_vars())?;
    let listener = transcript
        .headers
        .get("listener")
        .map(String::as_str)
        .unwrap_or("pop3");
    let (_dir, store, auth) = fixture::world().await;
    if transcript.headers.get("seed").map(String::as_str) == Some("messages") {
        fixture::seed_messages(&store).await;
    }
    let services = Arc::new(Services {
        store: store.clone(),
        auth,
    });
    let mut config = Pop3Config::new(fixture::HOST);
    config.starttls = true;
    config.plaintext_on_loopback =
        transcript.headers.get("plaintext").map(String::as_str) != Some("no");
    let session = Pop3Session::new(Arc::new(config), services, &conn_info(listener == "pop3s"));
    let mut wire = MemoryWire::new(session, store);
    transcript.play(&mut wire).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_transcripts_in_memory() {
    testkit::transcript::run_all(
        "pop3",
        1,
        |name, text| async move { play(&name, &text).await },
    )
    .await;
}
