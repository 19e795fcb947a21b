//! Real POP3 clients against a real server: Python's poplib (with POP3/IMAP
//! consistency) and fetchmail delivering into a local mbox file.
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
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (scripts/install-test-deps installs it)")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

const CONFIG: &str = "[imap]\nplaintext_on_loopback = true\n[pop3]\nplaintext_on_loopback = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poplib_and_imap_consistency() {
    let server = tokio::task::spawn_blocking(|| common::full_server(CONFIG))
        .await
        .unwrap();
    let port = |l: &str| server.addr(l).port().to_string();
    let out = run(Command::new("python3").args([
        repo("tests/clients/pop3_clients.py"),
        "127.0.0.1".into(),
        port("pop3"),
        port("pop3s"),
        port("imap"),
        port("smtp"),
    ]));
    assert!(out.trim().ends_with("OK"), "{out}\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchmail_into_mbox() {
    let server = tokio::task::spawn_blocking(|| common::full_server(CONFIG))
        .await
        .unwrap();
    let smtp = server.addr("smtp");
    tokio::task::spawn_blocking(move || {
        for i in 0..3 {
            testkit::send_smtp(
                smtp,
                "s@far.test",
                "alice@a.test",
                &format!("From: s@far.test\r\nSubject: fetch {i}\r\n\r\n..body {i}"),
            );
        }
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("mbox");
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no bouncemail\npoll 127.0.0.1 with proto POP3 port {} uidl\n  user \"alice@a.test\" there with password \"alice-pw\" is \"root\" here no sslcertck\n  mda \"/bin/sh -c 'cat >> {}'\"\n",
            server.addr("pop3").port(),
            mbox.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let fetch = || {
        Command::new("fetchmail")
            .args(["--fetchmailrc"])
            .arg(&rc)
            .args(["--nosyslog", "--nodetach", "--pidfile"])
            .arg(dir.path().join("pid"))
            .env("HOME", dir.path())
            .env("FETCHMAILHOME", dir.path())
            .output()
            .unwrap()
    };
    let out = fetch();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "fetchmail failed:\n{text}\n{}",
        server.log()
    );
    let got = std::fs::read_to_string(&mbox).unwrap();
    for i in 0..3 {
        assert!(
            got.contains(&format!("Subject: fetch {i}")),
            "message {i} missing:\n{got}"
        );
        assert!(
            got.contains(&format!("\n.body {i}")),
            "dot-stuffing undone:\n{got}"
        );
    }
    // fetchmail deleted what it fetched (no "keep"): the maildrop is empty now.
    let store = common::probe(&server).0.clone();
    assert!(inbox(&store, "alice@a.test").await.unwrap().is_empty());
    // Nothing new: fetchmail says so with exit code 1.
    assert_eq!(fetch().status.code(), Some(1));
}
