//! Sieve end to end: scripts uploaded with real ManageSieve clients
//! (Debian's sieve-connect, PyPI's managesieve), mail delivered over SMTP
//! by another Tern, the outcome read over IMAP: folders and flags, the
//! header a script added, vacation responses received once, redirect with
//! and without :copy, a refusal at SMTP time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{MailNet, python, submit, text};
use testkit::TernServer;

const ALICE_SCRIPT: &str = r#"require ["fileinto", "imap4flags", "editheader", "copy", "reject", "mailbox", "vacation"];
if header :contains "subject" "[list]" { addflag "\\Seen"; fileinto :create "Lists"; stop; }
if header :contains "subject" "copy to carol" { redirect :copy "carol@b.test"; }
if header :contains "subject" "forward to carol" { redirect "carol@b.test"; stop; }
if header :contains "subject" "refuse" { reject "Alice does not want this."; stop; }
addheader "X-Sieved" "alice";
vacation :days 1 :subject "Alice is away" "Back on Monday.";
"#;

/// sieve-connect, with the password on standard input.
fn sieve_connect(server: &TernServer, args: &[&str]) -> String {
    let addr = server.addr("managesieve");
    let mut child = Command::new("sieve-connect")
        .args([
            "--server",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ])
        .args([
            "--user",
            "alice@a.test",
            "--passwordfd",
            "0",
            "--notlsverify",
            "--authmech",
            "PLAIN",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("sieve-connect: {e} (scripts/install-test-deps installs it)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alice-pw\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "sieve-connect {args:?}: {all}");
    all
}

fn message(subject: &str) -> String {
    format!(
        "From: Carol <carol@b.test>\r\nTo: Alice <alice@a.test>\r\nSubject: {subject}\r\n\
         Date: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{}@b.test>\r\n\r\nHello Alice.\r\n",
        subject.replace(' ', ".")
    )
}

/// The mailboxes of an account as IMAP shows them: name → (flags, subject, X-Sieved).
fn imap_view(server: &TernServer, user: &str, password: &str) -> serde_json::Value {
    let addr = server.addr("imap");
    let out = python(
        "sieve_clients.py",
        &[
            "mailboxes",
            &addr.ip().to_string(),
            &addr.port().to_string(),
            user,
            password,
        ],
        b"",
    );
    serde_json::from_slice(&out).unwrap()
}

fn subjects(view: &serde_json::Value, mailbox: &str) -> Vec<String> {
    view[mailbox]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["subject"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn filters_from_upload_to_imap() {
    let net = MailNet::new(150);
    let a = net.tern(
        10,
        "a.test",
        &[],
        &format!("[listeners]\nmanagesieve = \"{}:0\"\n", net.ip(10)),
    );
    let b = net.tern(20, "b.test", &[("carol@b.test", "carol-pw")], "");
    for (server, host, domain) in [(&a, 10, "a.test"), (&b, 20, "b.test")] {
        net.publish(server, host, domain);
    }

    // Upload and activate with sieve-connect.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alice.sieve");
    std::fs::write(&file, ALICE_SCRIPT).unwrap();
    let file = file.display().to_string();
    sieve_connect(
        &a,
        &["--localsieve", &file, "--remotesieve", "main", "--upload"],
    );
    sieve_connect(&a, &["--remotesieve", "main", "--activate"]);
    let list = sieve_connect(&a, &["--list"]);
    assert!(
        list.contains("\"main\" ACTIVE") || list.contains("main  <-- active"),
        "{list}"
    );
    assert!(
        a.admin_ok(&["sieve", "list", "alice@a.test"])
            .contains("main")
    );

    for subject in [
        "[list] weekly news",
        "hello",
        "hello again",
        "copy to carol",
        "forward to carol",
    ] {
        submit(
            &b,
            "carol@b.test",
            "carol-pw",
            &["alice@a.test"],
            &message(subject),
        );
    }
    // Carol gets one vacation response, and the two redirected copies.
    net.wait(
        30,
        "the redirects and one vacation response at carol",
        &[&a, &b],
        || net.inbox(&b, "carol@b.test").len() == 3,
    );
    net.wait(30, "alice's deliveries", &[&a, &b], || {
        net.inbox(&a, "alice@a.test").len() == 3
    });
    let carol: Vec<String> = net
        .inbox(&b, "carol@b.test")
        .iter()
        .map(|m| text(m))
        .collect();
    let vacation: Vec<&String> = carol
        .iter()
        .filter(|m| m.contains("Subject: Alice is away"))
        .collect();
    assert_eq!(vacation.len(), 1, "{carol:#?}");
    let v = vacation[0];
    assert!(v.contains("Auto-Submitted: auto-replied"), "{v}");
    assert!(v.contains("In-Reply-To: <hello@b.test>"), "{v}");
    assert!(v.contains("Back on Monday."), "{v}");
    assert!(
        v.contains("Return-Path: <>"),
        "a vacation response goes out from <>: {v}"
    );
    for subject in ["copy to carol", "forward to carol"] {
        let copy = carol
            .iter()
            .find(|m| m.contains(&format!("Subject: {subject}")))
            .unwrap_or_else(|| panic!("no {subject:?} at carol: {carol:#?}"));
        // Forwarded: SRS sender, Delivered-To alice, sealed by a.test.
        assert!(copy.contains("Delivered-To: alice@a.test"), "{copy}");
        assert!(copy.contains("Return-Path: <SRS0="), "{copy}");
        assert!(copy.contains("ARC-Seal: i=1;"), "{copy}");
    }

    // Over IMAP: Lists created with the message \Seen; INBOX holds the
    // others with the added header; the forwarded one was not kept.
    let view = imap_view(&a, "alice@a.test", "alice-pw");
    assert_eq!(subjects(&view, "Lists"), ["[list] weekly news"], "{view}");
    let flags = view["Lists"][0]["flags"].as_array().unwrap();
    assert!(flags.iter().any(|f| f == "\\Seen"), "{view}");
    assert_eq!(
        subjects(&view, "INBOX"),
        ["hello", "hello again", "copy to carol"],
        "{view}"
    );
    for m in view["INBOX"].as_array().unwrap() {
        assert_eq!(m["x-sieved"], "alice", "{view}");
    }

    // A refusal at SMTP time: the only recipient's script rejects.
    let replies = net.send_from(
        30,
        a.addr("smtp"),
        "client.test",
        "carol@b.test",
        "alice@a.test",
        message("please refuse").as_bytes(),
    );
    assert_eq!(
        replies.last().map(String::as_str),
        Some("550 5.7.1 Alice does not want this."),
        "{replies:?}"
    );
    assert_eq!(net.inbox(&a, "alice@a.test").len(), 3);

    // With another recipient that takes it, the message is accepted and
    // the sender gets a disposition report instead (RFC 5429 §2.1.1).
    submit(
        &b,
        "carol@b.test",
        "carol-pw",
        &["alice@a.test", "bob@a.test"],
        &message("refuse this too"),
    );
    let report = net.wait_for(&b, "carol@b.test", |m| {
        m.contains("Subject: Rejected: refuse this too")
    });
    assert!(
        report.contains("report-type=disposition-notification"),
        "{report}"
    );
    assert!(report.contains("Alice does not want this."), "{report}");
    assert!(
        report.contains("Disposition: automatic-action/MDN-sent-automatically; deleted"),
        "{report}"
    );
    assert!(report.contains("Return-Path: <>"), "{report}");
    assert_eq!(net.inbox(&a, "bob@a.test").len(), 1);
    assert_eq!(net.inbox(&a, "alice@a.test").len(), 3);
}

/// PyPI's managesieve client drives every command; the script it leaves
/// active files mail into a folder it creates, flagged.
#[test]
fn pypi_managesieve_client() {
    let server = common::full_server(
        "[sieve]\nplaintext_on_loopback = false\n[imap]\nplaintext_on_loopback = true\n",
    );
    let addr = server.addr("managesieve");
    let out = python(
        "sieve_clients.py",
        &[
            "manage",
            &addr.ip().to_string(),
            &addr.port().to_string(),
            "bob@a.test",
            "bob-pw",
        ],
        b"",
    );
    assert_eq!(text(&out).trim(), "OK");
    testkit::send_smtp(
        server.addr("smtp"),
        "carol@c.test",
        "bob@a.test",
        &message("to be sorted"),
    );
    let view = imap_view(&server, "bob@a.test", "bob-pw");
    assert_eq!(subjects(&view, "Sorted"), ["to be sorted"], "{view}");
    assert!(
        view["Sorted"][0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "$Sorted"),
        "{view}"
    );
    assert_eq!(subjects(&view, "INBOX"), Vec::<String>::new(), "{view}");
}

/// C-FT9 for `tern sieve test`: the message file is read a piece at a
/// time into a spool, so testing a script on a 40 MB message takes no more
/// memory than on a small one (the file was read whole, and the script
/// ran over it held whole, before). The script still sees its header and
/// its body (bare LF line ends made CRLF).
#[test]
fn sieve_test_on_a_large_file_spools_it() {
    let server = common::smtp_server("");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.sieve");
    std::fs::write(
        &script,
        "require [\"fileinto\", \"body\"];\n\
         if allof (header :contains \"subject\" \"huge\", body :text :contains \"Attached\") {\n\
           fileinto \"Big\";\n}\n",
    )
    .unwrap();
    let (_, large, _) = common::with_large_attachment("Subject: huge\r\n");
    let small = dir.path().join("small.eml");
    std::fs::write(
        &small,
        b"Subject: huge\nContent-Type: text/plain\n\nAttached.\n",
    )
    .unwrap();
    let big = dir.path().join("big.eml");
    std::fs::write(&big, &large).unwrap();
    drop(large);
    let measured = |message: &std::path::Path| {
        common::admin_with_peak(
            &server,
            &[
                "sieve",
                "test",
                script.to_str().unwrap(),
                message.to_str().unwrap(),
                "--to",
                "alice@a.test",
            ],
        )
    };
    let (small_said, small_peak) = measured(&small);
    let (big_said, big_peak) = measured(&big);
    eprintln!(
        "tern sieve test peak RSS: {small_peak} KiB on a small message, {big_peak} KiB on 40 MB"
    );
    assert_eq!(small_said, "fileinto \"Big\"", "{small_said}");
    assert_eq!(big_said, "fileinto \"Big\"", "{big_said}");
    assert!(
        big_peak < small_peak + 16 * 1024,
        "tern sieve test took {big_peak} KiB on a 40 MB message, {small_peak} KiB on a small one"
    );
}

/// `tern sieve test` shows what a script does without delivering;
/// `tern sieve put` refuses a script that does not check, naming the line.
#[test]
fn sieve_cli() {
    let server = common::smtp_server("");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.sieve");
    std::fs::write(&script, ALICE_SCRIPT).unwrap();
    let msg = dir.path().join("m.eml");
    std::fs::write(&msg, message("copy to carol").replace("\r\n", "\n")).unwrap();
    let out = server.admin_ok(&[
        "sieve",
        "test",
        &script.display().to_string(),
        &msg.display().to_string(),
        "--from",
        "carol@b.test",
        "--to",
        "alice@a.test",
    ]);
    assert_eq!(
        out.trim(),
        "redirect carol@b.test\n\
         vacation to carol@b.test from alice@a.test subject \"Alice is away\" period 86400\n\
         keep (implicit) (edited)",
        "{out}"
    );
    let bad = dir.path().join("bad.sieve");
    std::fs::write(&bad, "require \"fileinto\";\nfileinto \"x\"\n").unwrap();
    let err = server.admin_err(&[
        "sieve",
        "put",
        "alice@a.test",
        "bad",
        &bad.display().to_string(),
    ]);
    assert!(
        err.contains("line 3, column 1: expected ';' or a block"),
        "{err}"
    );
    server.admin_ok(&[
        "sieve",
        "put",
        "alice@a.test",
        "main",
        &script.display().to_string(),
        "--activate",
    ]);
    let list = server.admin_ok(&["sieve", "list", "alice@a.test"]);
    assert!(list.contains("main") && list.contains("(active)"), "{list}");
}

/// The site's script runs before the user's (`[sieve] before`) and may end
/// filtering; users may include the site's shared scripts (`[sieve]
/// global_dir`); a site script that does not check stops the server from
/// starting, naming the file, line and column.
#[test]
fn site_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before.sieve");
    std::fs::write(
        &before,
        "require [\"editheader\", \"fileinto\", \"mailbox\"];\n\
         addheader \"X-Sieved\" \"site\";\n\
         if header :contains \"subject\" \"virus\" { fileinto :create \"Quarantine\"; stop; }\n",
    )
    .unwrap();
    let global = dir.path().join("global");
    std::fs::create_dir(&global).unwrap();
    std::fs::write(
        global.join("lists.sieve"),
        "require [\"fileinto\", \"mailbox\"];\nif exists \"List-Id\" { fileinto :create \"Lists\"; }\n",
    )
    .unwrap();
    let server = common::full_server(&format!(
        "[sieve]\nbefore = \"{}\"\nglobal_dir = \"{}\"\n[imap]\nplaintext_on_loopback = true\n",
        before.display(),
        global.display()
    ));
    let user = dir.path().join("user.sieve");
    std::fs::write(&user, "require [\"include\", \"fileinto\"];\ninclude :global \"lists\";\nif header :contains \"subject\" \"virus\" { fileinto \"Never\"; }\n").unwrap();
    server.admin_ok(&[
        "sieve",
        "put",
        "alice@a.test",
        "main",
        &user.display().to_string(),
        "--activate",
    ]);
    let smtp = server.addr("smtp");
    testkit::send_smtp(smtp, "carol@c.test", "alice@a.test", &message("plain"));
    testkit::send_smtp(
        smtp,
        "carol@c.test",
        "alice@a.test",
        &message("news").replace("Subject:", "List-Id: <news.c.test>\r\nSubject:"),
    );
    testkit::send_smtp(smtp, "carol@c.test", "alice@a.test", &message("a virus"));
    let view = imap_view(&server, "alice@a.test", "alice-pw");
    assert_eq!(subjects(&view, "INBOX"), ["plain"], "{view}");
    assert_eq!(subjects(&view, "Lists"), ["news"], "{view}");
    assert_eq!(subjects(&view, "Quarantine"), ["a virus"], "{view}");
    assert!(view.get("Never").is_none(), "{view}");
    for mailbox in ["INBOX", "Lists", "Quarantine"] {
        for m in view[mailbox].as_array().unwrap() {
            assert_eq!(m["x-sieved"], "site", "{view}");
        }
    }

    std::fs::write(&before, "fileinto \"x\";\n").unwrap();
    let out = server.admin(&["serve"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("before.sieve: line 1, column 1: \"fileinto\" is used without require"),
        "{err}"
    );
}

/// C-FT9 for Sieve: a 30 MB message to an account whose script tests the
/// body, edits the header and files the message. The message stays in its
/// spool: the script's tests read its structure as a stream and at most a
/// MiB of each text part, and the edited copy is the new header over the
/// spooled body. The server's peak memory hardly moves (the message was
/// read whole and copied for the script before); the stored message is
/// the one sent, with the field the script added.
#[test]
fn a_large_message_is_filtered_from_its_spool() {
    let server = common::full_server("[imap]\nplaintext_on_loopback = true\n");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("big.sieve");
    std::fs::write(
        &script,
        "require [\"fileinto\", \"editheader\", \"body\", \"mailbox\", \"mime\", \"foreverypart\"];\n\
         if body :text :contains \"needle\" { addheader \"X-Found\" \"needle\"; }\n\
         foreverypart { if header :mime :contains \"Content-Type\" \"application/pdf\" { addheader \"X-Pdf\" \"yes\"; } }\n\
         if exists \"X-Found\" { fileinto :create \"Found\"; }\n",
    )
    .unwrap();
    server.admin_ok(&[
        "sieve",
        "put",
        "alice@a.test",
        "big",
        &script.display().to_string(),
        "--activate",
    ]);
    // A first message: the login's password hash has its peak before we measure.
    let warm = "From: alice@a.test\r\nTo: alice@a.test\r\nSubject: warm up\r\n\r\nHi.\r\n";
    submit(&server, "alice@a.test", "alice-pw", &["alice@a.test"], warm);
    let pid = server.pid().unwrap();
    let before = common::peak_rss_kib(pid);
    let line = format!("{}\r\n", "QUJDRA".repeat(12));
    let attachment = line.repeat(30_000_000 / line.len());
    let big = format!(
        "From: Alice <alice@a.test>\r\nTo: alice@a.test\r\nSubject: big\r\nMessage-ID: <big@a.test>\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         The needle is here.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {attachment}--b--\r\n"
    );
    let refused = submit(&server, "alice@a.test", "alice-pw", &["alice@a.test"], &big);
    assert_eq!(refused, "{}", "{refused}");
    let view = imap_view(&server, "alice@a.test", "alice-pw");
    assert_eq!(subjects(&view, "Found"), ["big"], "{view}");
    let peak = common::peak_rss_kib(pid);
    eprintln!("server peak RSS {before} KiB before a 30 MB message filtered, {peak} KiB after");
    assert!(
        peak < before + 16 * 1024,
        "the server's peak memory grew from {before} KiB to {peak} KiB"
    );
    let store = common::probe(&server).0.clone();
    let stored = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store::AddressKind::Account(alice) =
            store.lookup_address("alice@a.test").await.unwrap()
        else {
            panic!("no alice")
        };
        let found = store.mailbox(alice.id, "Found").await.unwrap().unwrap();
        store.contents(found.id, vec![1]).await.unwrap().remove(0).1
    });
    let text = String::from_utf8_lossy(&stored[..4096]);
    assert!(text.contains("X-Pdf: yes\r\nX-Found: needle\r\n"), "{text}");
    assert!(stored.ends_with(format!("{attachment}--b--\r\n").as_bytes()));
}
