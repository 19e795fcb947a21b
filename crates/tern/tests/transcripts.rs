//! Every transcript of `tests/transcripts/{smtp,imap}/`, over TCP against a real
//! `tern serve` (the same files run in memory in `crates/smtp/tests` and
//! `crates/imap/tests`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use testkit::fixture;
use testkit::{TcpWire, Transcript};

async fn play(name: String, text: String) -> Result<(), String> {
    let transcript = Transcript::parse(&name, &text, &fixture::all_vars())?;
    let listener = transcript
        .headers
        .get("listener")
        .cloned()
        .unwrap_or_else(|| "smtp".into());
    let plaintext = transcript.headers.get("plaintext").map(String::as_str) != Some("no");
    let config = format!(
        "[imap]\nplaintext_on_loopback = {plaintext}\n[pop3]\nplaintext_on_loopback = {plaintext}\n\
         [sieve]\nplaintext_on_loopback = {plaintext}\n"
    );
    let server = tokio::task::spawn_blocking(move || common::full_server(&config))
        .await
        .unwrap();
    if transcript.headers.get("seed").map(String::as_str) == Some("messages") {
        fixture::seed_messages(&common::probe(&server).0).await;
    }
    let addr = server.addr(&listener);
    let implicit = listener.ends_with('s') && listener != "smtps";
    let wire = if implicit {
        TcpWire::connect_tls(addr).await
    } else {
        TcpWire::connect(addr).await
    };
    let mut wire = wire
        .map_err(|e| format!("{name}: connect: {e}"))?
        .with_probe(common::probe(&server));
    transcript
        .play(&mut wire)
        .await
        .map_err(|e| format!("{e}\n--- server log ---\n{}", tail(&server.log())))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

// Each transcript gets its own server and data; a few run at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smtp_transcripts_over_tcp() {
    testkit::transcript::run_all("smtp", 4, play).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pop3_transcripts_over_tcp() {
    testkit::transcript::run_all("pop3", 4, play).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imap_transcripts_over_tcp() {
    testkit::transcript::run_all("imap", 4, play).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn managesieve_transcripts_over_tcp() {
    testkit::transcript::run_all("managesieve", 4, play).await;
}
