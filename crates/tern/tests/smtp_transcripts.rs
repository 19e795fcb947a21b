//! Every SMTP transcript of `tests/transcripts/smtp/`, over TCP against a real
//! `tern serve` (the same files run in memory in `crates/smtp/tests`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use testkit::fixture;
use testkit::{TcpWire, Transcript};

async fn play(name: String, text: String) -> Result<(), String> {
    let transcript = Transcript::parse(&name, &text, &fixture::vars())?;
    let listener = transcript
        .headers
        .get("listener")
        .cloned()
        .unwrap_or_else(|| "smtp".into());
    let server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let addr = server.addr(&listener);
    let wire = if listener == "submissions" {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smtp_transcripts_over_tcp() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/transcripts/smtp");
    let files = testkit::transcript::load_dir(&dir);
    assert!(
        files.len() >= 10,
        "transcripts not found in {}",
        dir.display()
    );
    let total = files.len();
    let mut failures = Vec::new();
    // A few servers at a time: each transcript gets its own server and data.
    for batch in files.chunks(4) {
        let mut tasks = tokio::task::JoinSet::new();
        for (name, text) in batch.iter().cloned() {
            tasks.spawn(play(name, text));
        }
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r.unwrap() {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} transcripts failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
