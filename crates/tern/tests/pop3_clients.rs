//! Real POP3 clients against a real server: Python's poplib (with POP3/IMAP
//! consistency) and fetchmail delivering into a local mbox file; and a
//! client on a raw socket that asks for large messages without reading.
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

/// C-SL2 and C-FT9 over POP3: six 4 MB messages asked for at once and not
/// read for two seconds cost the server little memory (each was read
/// whole, sixteen at a time, before); read afterwards, each arrives
/// dot-stuffed exactly, and TOP of a large message stops where it should.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_are_sent_at_the_pace_of_the_reader() {
    let server = tokio::task::spawn_blocking(|| common::full_server(CONFIG))
        .await
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..6u8 {
        let line = format!(".{i} a line that starts with a dot {}\r\n", "y".repeat(40));
        let body = line.repeat(4 * 1024 * 1024 / line.len());
        sent.push(format!("Subject: big {i}\r\n\r\n{body}").into_bytes());
    }
    common::append_to_alice(&server, &sent).await;
    let pid = server.pid().unwrap();
    let addr = server.addr("pop3");
    tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, Write};
        let (mut w, mut r) = common::raw_client(addr);
        let mut line = String::new();
        let mut status = |r: &mut std::io::BufReader<std::net::TcpStream>| {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with("+OK"), "{line}");
        };
        w.write_all(b"USER alice@a.test\r\nPASS alice-pw\r\n")
            .unwrap();
        status(&mut r);
        status(&mut r);
        let before = common::rss_kib(pid);
        w.write_all(b"RETR 1\r\nRETR 2\r\nRETR 3\r\nRETR 4\r\nRETR 5\r\nRETR 6\r\nTOP 3 2\r\n")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs(2));
        let during = common::rss_kib(pid);
        eprintln!("server RSS {before} KiB before the RETRs, {during} KiB with them unread");
        assert!(
            during < before + 24 * 1024,
            "server memory grew from {before} KiB to {during} KiB with 24 MB unread"
        );
        // A multi-line reply, un-stuffed.
        let mut multi_line = |r: &mut std::io::BufReader<std::net::TcpStream>| {
            status(r);
            let mut msg = Vec::new();
            loop {
                let mut l = Vec::new();
                r.read_until(b'\n', &mut l).unwrap();
                assert!(!l.is_empty(), "connection closed");
                if l == b".\r\n" {
                    return msg;
                }
                msg.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
            }
        };
        for (i, s) in sent.iter().enumerate() {
            let got = multi_line(&mut r);
            assert!(
                got == *s,
                "message {} differs ({} vs {} octets)",
                i + 1,
                got.len(),
                s.len()
            );
        }
        let top = multi_line(&mut r);
        let head_and_two = sent[2].split_inclusive(|&b| b == b'\n').take(4).flatten();
        assert_eq!(top, head_and_two.copied().collect::<Vec<u8>>());
    })
    .await
    .unwrap();
}

/// A command line past the limit (RFC 2449 §4: 255 octets) that arrives in
/// one read with the next command behind it: one error, then the next
/// command is answered (it went with the long line's tail once, and the
/// client waited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_line_and_the_command_behind_it_in_one_read() {
    use testkit::{TcpWire, Wire};
    let server = tokio::task::spawn_blocking(|| common::full_server(CONFIG))
        .await
        .unwrap();
    let mut w = TcpWire::connect(server.addr("pop3")).await.unwrap();
    assert!(w.read_line().await.unwrap().unwrap().starts_with("+OK"));
    let both = format!("USER {}\r\nQUIT\r\n", "a".repeat(300));
    w.send(both.as_bytes()).await.unwrap();
    let error = w.read_line().await.unwrap().unwrap();
    assert!(error.starts_with("-ERR"), "{error}");
    let quit = w.read_line().await.unwrap();
    assert!(
        quit.as_deref().is_some_and(|l| l.starts_with("+OK")),
        "{quit:?}"
    );
    let after = w.read_line().await.unwrap();
    assert!(after.is_none(), "nothing after QUIT: {after:?}");
}
