//! Every ManageSieve transcript of `tests/transcripts/managesieve/`, played
//! in memory against the session state machine (no socket).
//! `crates/tern/tests/transcripts.rs` plays the same files over TCP against
//! a real `tern serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use managesieve::{ManageSieveConfig, ManageSieveSession, Services};
use testkit::Transcript;
use testkit::fixture;
use testkit::memory::{MemoryWire, conn_info};

async fn play(name: &str, text: &str) -> Result<(), String> {
    let transcript = Transcript::parse(name, text, &fixture::all_vars())?;
    let (_dir, store, auth) = fixture::world().await;
    let services = Arc::new(Services {
        store: store.clone(),
        auth,
    });
    let mut config = ManageSieveConfig::new(fixture::HOST);
    config.starttls = true;
    config.plaintext_on_loopback =
        transcript.headers.get("plaintext").map(String::as_str) != Some("no");
    let session = ManageSieveSession::new(Arc::new(config), services, &conn_info(false));
    let mut wire = MemoryWire::new(session, store);
    transcript.play(&mut wire).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managesieve_transcripts_in_memory() {
    testkit::transcript::run_all("managesieve", 1, |name, text| async move {
        play(&name, &text).await
    })
    .await;
}

/// A line past the limit whose end comes in a later read: one error, and
/// its rest is skipped, not read as a command (it was once answered as
/// one, and the client took that answer for its next command's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_line_whose_end_comes_later_is_one_error() {
    use testkit::Wire;
    let (_dir, store, auth) = fixture::world().await;
    let services = Arc::new(Services {
        store: store.clone(),
        auth,
    });
    let config = ManageSieveConfig::new(fixture::HOST);
    let session = ManageSieveSession::new(Arc::new(config), services, &conn_info(false));
    let mut wire = MemoryWire::new(session, store);
    while wire
        .read_line()
        .await
        .unwrap()
        .is_some_and(|l| !l.starts_with("OK"))
    {}
    wire.send(&[b'x'; 40_000]).await.unwrap();
    let error = wire.read_line().await.unwrap().unwrap();
    assert_eq!(error, "NO \"Syntax error: line too long\"");
    wire.send(b"xxxx\r\nNOOP\r\n").await.unwrap();
    let noop = wire.read_line().await.unwrap().unwrap();
    assert!(noop.starts_with("OK"), "{noop}");
    assert!(wire.read_line().await.is_err(), "nothing more");
}
