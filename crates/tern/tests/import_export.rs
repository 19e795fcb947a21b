//! `tern import` and `tern export`: a Maildir++ with folders, flags and
//! Dovecot keywords, a LAYOUT=fs subfolder and an mboxrd file come in with
//! their flags (seen over IMAP); a second run adds nothing; the export is a
//! Maildir that imports into another account as the same mail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn maildir(root: &Path) {
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
}

fn dump(server: &testkit::TernServer, user: &str, password: &str) -> String {
    let port = server.addr("imap").port().to_string();
    common::text(&common::python(
        "imap_dump.py",
        &["127.0.0.1", &port, user, password],
        b"",
    ))
}

#[test]
fn maildir_and_mbox_in_and_out() {
    let server = common::full_server("[imap]\nplaintext_on_loopback = true\n");
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Maildir");
    maildir(&md);
    write(
        &md.join("cur/1700000001.M1.old:2,RS"),
        "From: a@b.test\nSubject: answered and seen\nMessage-ID: <one@b.test>\n\nLF line ends.\n",
    );
    write(
        &md.join("new/1700000002.M2.old"),
        "From: a@b.test\r\nSubject: new one\r\nMessage-ID: <two@b.test>\r\n\r\nx\r\n",
    );
    maildir(&md.join(".Lists.rust"));
    write(
        &md.join(".Lists.rust/dovecot-keywords"),
        "0 $Important\n1 work\n",
    );
    write(
        &md.join(".Lists.rust/cur/1700000003.M3.old:2,Fb"),
        "Subject: flagged with a keyword\r\nMessage-ID: <three@b.test>\r\n\r\ny\r\n",
    );
    maildir(&md.join(".Sent"));
    write(
        &md.join(".Sent/cur/1700000004.M4.old:2,S"),
        "Subject: sent, no message id\r\n\r\nz\r\n",
    );
    // Dovecot LAYOUT=fs: a plain subdirectory that is a Maildir.
    maildir(&md.join("Projects"));
    write(
        &md.join("Projects/cur/1700000005.M5.old:2,"),
        "Subject: in a plain subdirectory\r\nMessage-ID: <five@b.test>\r\n\r\nw\r\n",
    );
    let mbox = dir.path().join("Old Mail.mbox");
    write(
        &mbox,
        "From a@b.test Mon Jan  1 10:00:00 2024\nSubject: from the mbox\nStatus: RO\nX-Status: A\nMessage-ID: <m1@b.test>\n\n>From the start of a line\nbody\n\nFrom c@d.test Tue Jan  2 10:00:00 2024\nSubject: second\nMessage-ID: <m2@b.test>\n\nmore\n",
    );

    let out = server.admin_ok(&["import", "alice@a.test", md.to_str().unwrap()]);
    assert!(
        out.contains("imported 5 message(s) into 4 folder(s) of alice@a.test; 0 already there"),
        "{out}"
    );
    let out = server.admin_ok(&["import", "alice@a.test", mbox.to_str().unwrap()]);
    assert!(
        out.contains("imported 2 message(s) into 1 folder(s)"),
        "{out}"
    );

    let listing = dump(&server, "alice@a.test", "alice-pw");
    for line in [
        "folder INBOX 2",
        "  answered and seen [\\Answered \\Seen]",
        "  new one []",
        "folder Lists/rust 1",
        "  flagged with a keyword [\\Flagged work]",
        "folder Sent 1",
        "  sent, no message id [\\Seen]",
        "folder Projects 1",
        "folder Old Mail 2",
        "  from the mbox [\\Answered \\Seen]",
    ] {
        assert!(listing.contains(line), "{line:?} missing in:\n{listing}");
    }

    // Again: nothing new.
    let out = server.admin_ok(&["import", "alice@a.test", md.to_str().unwrap()]);
    assert!(
        out.contains("imported 0 message(s) into 0 folder(s) of alice@a.test; 5 already there"),
        "{out}"
    );
    let out = server.admin_ok(&["import", "alice@a.test", mbox.to_str().unwrap()]);
    assert!(out.contains("; 2 already there"), "{out}");

    // Out, and into bob: the same folders, flags and sizes.
    let exported = dir.path().join("export");
    let out = server.admin_ok(&["export", "alice@a.test", exported.to_str().unwrap()]);
    assert!(out.contains("exported 7 message(s)"), "{out}");
    let mbox_text = std::fs::read_dir(exported.join(".Old Mail/cur"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let first = std::fs::read_to_string(mbox_text).unwrap();
    assert!(first.contains("\r\n"), "CRLF line ends");
    server.admin_ok(&["import", "bob@a.test", exported.to_str().unwrap()]);
    let again = dump(&server, "bob@a.test", "bob-pw");
    assert_eq!(again, listing);

    // From another IMAP server (this one, over IMAPS, as alice): carol
    // gets the same folders, flags and messages; the certificate checked
    // against the server's own (self-signed) one.
    server.admin_ok(&["account", "add", "carol@a.test", "--password", "carol-pw"]);
    let url = format!(
        "imaps://alice%40a.test@localhost:{}",
        server.addr("imaps").port()
    );
    let cert = server.data_dir().join("tls/cert.pem");
    let cert = cert.to_str().unwrap();
    let from_imap = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "carol@a.test",
            url.as_str(),
            "--password",
            "alice-pw",
        ];
        args.extend(extra);
        server.admin_ok(&args)
    };
    let out = from_imap(&["--ca-file", cert]);
    assert!(
        out.contains("imported 7 message(s) into 5 folder(s) of carol@a.test"),
        "{out}"
    );
    assert_eq!(dump(&server, "carol@a.test", "carol-pw"), listing);
    // Again: nothing new; nothing marked seen at the source either.
    let out = from_imap(&["--insecure"]);
    assert!(
        out.contains("imported 0 message(s)") && out.contains("; 7 already there"),
        "{out}"
    );
    assert_eq!(dump(&server, "alice@a.test", "alice-pw"), listing);
    // An unknown certificate, a wrong password, a bad URL: refused, clearly.
    let err = server.admin_err(&["import", "carol@a.test", &url, "--password", "alice-pw"]);
    assert!(err.contains("certificate"), "{err}");
    let err = server.admin_err(&[
        "import",
        "carol@a.test",
        &url,
        "--password",
        "wrong",
        "--insecure",
    ]);
    assert!(err.contains("refused the login"), "{err}");

    // Errors: no such account, no such path, not a Maildir.
    let err = server.admin_err(&["import", "nobody@a.test", md.to_str().unwrap()]);
    assert!(err.contains("no account nobody@a.test"), "{err}");
    let err = server.admin_err(&["import", "alice@a.test", "/nonexistent/path"]);
    assert!(err.contains("/nonexistent/path"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = server.admin_err(&["import", "alice@a.test", empty.to_str().unwrap()]);
    assert!(err.contains("not a Maildir"), "{err}");
}

/// 10,000 messages in one mbox, with 8-bit header fields, a body line that
/// starts with "From " (not a separator: no address and date after it),
/// and flags: every message arrives once, whole; a second run adds none.
#[test]
fn ten_thousand_messages_from_an_mbox() {
    let server = common::smtp_server("");
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("inbox");
    let mut text = String::new();
    for i in 0..10_000 {
        text.push_str(&format!("From sender{i}@b.test Mon Jan  1 10:00:00 2024\n"));
        if i % 1000 == 0 {
            text.push_str(&format!("Subject: Grüße Nummer {i}\nStatus: RO\n"));
        } else {
            text.push_str(&format!("Subject: message {i}\n"));
        }
        text.push_str(&format!("Message-ID: <m{i}@b.test>\n\n"));
        if i % 500 == 0 {
            text.push_str("From the desk of the editor:\n");
        }
        text.push_str(&format!("body {i}\n\n"));
    }
    std::fs::write(&mbox, text).unwrap();
    let out = server.admin_ok(&["import", "alice@a.test", mbox.to_str().unwrap()]);
    assert!(
        out.contains("imported 10000 message(s) into 1 folder(s) of alice@a.test; 0 already there"),
        "{out}"
    );
    let store = common::probe(&server);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (count, seen, utf8, desk) = rt.block_on(async {
        let account = store.0.list_accounts().await.unwrap();
        let alice = account
            .iter()
            .find(|a| a.address == "alice@a.test")
            .unwrap();
        let inbox = store.0.mailbox(alice.id, "INBOX").await.unwrap().unwrap();
        let entries = store.0.messages(inbox.id).await.unwrap();
        let seen = entries
            .iter()
            .filter(|e| e.flags.iter().any(|f| f == "\\Seen"))
            .count();
        let first = store
            .0
            .message_content(inbox.id, entries[0].uid)
            .await
            .unwrap()
            .unwrap();
        (
            entries.len(),
            seen,
            String::from_utf8_lossy(&first).contains("Subject: Grüße Nummer 0"),
            String::from_utf8_lossy(&first).contains("\r\nFrom the desk of the editor:\r\nbody 0"),
        )
    });
    assert_eq!(count, 10_000);
    assert_eq!(seen, 10, "Status: RO on every 1000th");
    assert!(utf8, "8-bit header kept");
    assert!(desk, "a body line starting with From is the body's");
    let out = server.admin_ok(&["import", "alice@a.test", mbox.to_str().unwrap()]);
    assert!(
        out.contains("imported 0 message(s)") && out.contains("; 10000 already there"),
        "{out}"
    );
}

/// C-FT9 for `tern export`: a 40 MB message is copied from the store into
/// its Maildir file a piece at a time (small ones go a batch at a time), so
/// exporting it takes no more memory than exporting a small one; the file
/// holds the message octet for octet.
#[test]
fn a_large_message_is_exported_a_piece_at_a_time() {
    let server = common::full_server("");
    let dir = tempfile::tempdir().unwrap();
    let small_out = dir.path().join("small");
    let (small_said, small_peak) = common::admin_with_peak(
        &server,
        &["export", "alice@a.test", small_out.to_str().unwrap()],
    );
    assert!(small_said.contains("exported 0 message(s)"), "{small_said}");
    let (_, message, _) = common::with_large_attachment("Subject: large export\r\n");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::append_to_alice(
            &server,
            std::slice::from_ref(&message),
        ));
    let out = dir.path().join("large");
    let (said, peak) =
        common::admin_with_peak(&server, &["export", "alice@a.test", out.to_str().unwrap()]);
    eprintln!("tern export peak RSS: {small_peak} KiB with no message, {peak} KiB with 40 MB");
    assert!(said.contains("exported 1 message(s)"), "{said}");
    let file = std::fs::read_dir(out.join("cur"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(
        std::fs::read(file.path()).unwrap() == message,
        "the exported file differs"
    );
    assert!(
        peak < small_peak + 16 * 1024,
        "tern export took {peak} KiB for a 40 MB message, {small_peak} KiB for none"
    );
}

/// C-FT9 for `tern import`: messages are stored a batch at a time, and a
/// batch is stored once it holds 8 MiB, so importing sixty 1 MB messages
/// takes little more memory than importing one (a batch of 200 was held
/// whatever their size, before).
#[test]
fn an_import_of_large_messages_is_stored_in_bounded_batches() {
    let server = common::full_server("");
    let dir = tempfile::tempdir().unwrap();
    let mbox = |count: usize, tag: &str| {
        let body: String = (0..14_000)
            .map(|i| format!("line {i} of a large message\n"))
            .collect();
        let text: String = (0..count)
            .map(|n| {
                format!(
                    "From sender@far.test Thu Dec  3 10:00:00 2026\nFrom: sender@far.test\n\
                     Subject: {tag} {n}\nMessage-ID: <{tag}{n}@far.test>\n\n{body}\n"
                )
            })
            .collect();
        let path = dir.path().join(format!("{tag}.mbox"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let (one, sixty) = (mbox(1, "one"), mbox(60, "sixty"));
    let import = |path: &std::path::Path| {
        common::admin_with_peak(&server, &["import", "alice@a.test", path.to_str().unwrap()])
    };
    let (said_one, peak_one) = import(&one);
    let (said_sixty, peak_sixty) = import(&sixty);
    eprintln!(
        "tern import peak RSS: {peak_one} KiB for one 1 MB message, {peak_sixty} KiB for sixty"
    );
    assert!(said_one.contains("imported 1 message(s)"), "{said_one}");
    assert!(
        said_sixty.contains("imported 60 message(s)"),
        "{said_sixty}"
    );
    assert!(
        peak_sixty < peak_one + 32 * 1024,
        "tern import took {peak_sixty} KiB for sixty 1 MB messages, {peak_one} KiB for one"
    );
}
