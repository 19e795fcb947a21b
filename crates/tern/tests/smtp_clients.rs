//! Real SMTP clients against a real server: Python's smtplib and swaks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use testkit::fixture::inbox;

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install it: see .ci/run)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib() {
    let server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let port = |l: &str| server.addr(l).port().to_string();
    let out = run(Command::new("python3").args([
        repo("tests/clients/smtplib_client.py"),
        "127.0.0.1".into(),
        port("smtp"),
        port("submission"),
        port("submissions"),
    ]));
    assert!(out.trim().ends_with("OK"), "{out}");
    let store = common::probe(&server).0.clone();
    let alice = inbox(&store, "alice@a.test").await.unwrap();
    assert_eq!(alice.len(), 1);
    let bob = inbox(&store, "bob@a.test").await.unwrap();
    assert_eq!(bob.len(), 2, "submitted + SMTPUTF8 copy");
    let submitted = String::from_utf8_lossy(&bob[0]);
    // RFC 3848: ESMTPSA over TLS with authentication; the TLS parameters are recorded.
    assert!(
        submitted.contains("with ESMTPSA id")
            && submitted.contains("(version=TLSv1.3 cipher=TLS13_"),
        "{submitted}"
    );
    assert!(
        String::from_utf8_lossy(&bob[1]).contains("with UTF8SMTPSA id"),
        "{}",
        String::from_utf8_lossy(&bob[1])
    );
    let queue = store.queue_list().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].recipients[0].0, "jörg@bücher.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks() {
    let server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let mx = server.addr("smtp").to_string();
    let sub = server.addr("submission").to_string();
    let out = run(Command::new("swaks").args([
        "--server",
        &mx,
        "--from",
        "x@far.test",
        "--to",
        "alice@a.test",
        "--helo",
        "client.test",
        "--pipeline",
    ]));
    assert!(out.contains("  250 2.0.0 Ok: queued as"), "{out}");
    let out = run(Command::new("swaks").args([
        "--server",
        &mx,
        "--from",
        "x@far.test",
        "--to",
        "bob@a.test",
        "-tls",
        "--h-Subject",
        "swaks over STARTTLS",
    ]));
    assert!(out.contains("  250 2.0.0 Ok: queued as"), "{out}");
    let out = run(Command::new("swaks").args([
        "--server",
        &sub,
        "-tls",
        "--auth",
        "LOGIN",
        "--auth-user",
        "alice@a.test",
        "--auth-password",
        "alice-pw",
        "--from",
        "alice@a.test",
        "--to",
        "bob@a.test",
        "--h-From",
        "alice@a.test",
    ]));
    assert!(
        out.contains("235 2.7.0 Authentication successful")
            && out.contains("  250 2.0.0 Ok: queued as"),
        "{out}"
    );
    // The harness check of hardening.md C-AU7 and C-RL1: no AUTH on port 25, no relay.
    let out = Command::new("swaks")
        .args([
            "--server",
            &mx,
            "--from",
            "alice@a.test",
            "--to",
            "x@far.test",
            "--quit-after",
            "RCPT",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("<** 554 5.7.1 Relay access denied"), "{text}");
    let out = Command::new("swaks")
        .args([
            "--server",
            &mx,
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@a.test",
            "--auth-password",
            "alice-pw",
            "--to",
            "bob@a.test",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "AUTH must not work on port 25");
    let store = common::probe(&server).0.clone();
    assert_eq!(inbox(&store, "alice@a.test").await.unwrap().len(), 1);
    assert_eq!(inbox(&store, "bob@a.test").await.unwrap().len(), 2);
}
