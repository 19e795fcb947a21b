//! `tern backup` while SMTP mail flows, then `tern restore` into an empty
//! data directory: every message acknowledged before the backup started
//! is in it, the copy passed its integrity check, and neither command
//! overwrites what is there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[test]
fn backup_under_load_and_restore() {
    let server = common::smtp_server("");
    let addr = server.addr("smtp");
    let send = move |i: usize| {
        testkit::send_smtp(
            addr,
            "s@far.test",
            "alice@a.test",
            &format!("Subject: {i}\r\n\r\nx"),
        );
    };
    for i in 0..40 {
        send(i);
    }
    let acknowledged_before = 40;
    let load = std::thread::spawn(move || {
        for i in 40..140 {
            send(i);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    let out = server.admin_ok(&["backup", backup.to_str().unwrap()]);
    load.join().unwrap();
    assert!(out.contains("(integrity checked)"), "{out}");
    let count: usize = out
        .split(" message(s)")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {out}"));
    assert!(count >= acknowledged_before, "{out}");
    let err = server.admin_err(&["backup", backup.to_str().unwrap()]);
    assert!(err.contains("already holds a backup"), "{err}");

    // Restore into an empty data directory, then read it.
    let data = dir.path().join("restored");
    let offline = common::OfflineTern::new(&data);
    let tern = |args: &[&str]| offline.run(args);
    let (ok, out) = tern(&["restore", backup.to_str().unwrap()]);
    assert!(ok, "{out}");
    let (_, accounts) = tern(&["account", "list"]);
    assert!(accounts.contains("alice@a.test"), "{accounts}");
    let db = rusqlite::Connection::open(data.join("tern.db")).unwrap();
    let stored: i64 = db
        .query_row(
            "SELECT count(*) FROM mailbox_messages m JOIN mailboxes b ON b.id = m.mailbox_id
             JOIN accounts a ON a.id = b.account_id WHERE a.address = 'alice@a.test' AND b.name = 'INBOX'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored as usize, count);
    for i in 0..acknowledged_before {
        let subject = format!("Subject: {i}\r\n");
        let found: i64 = db
            .query_row(
                "SELECT count(*) FROM blobs WHERE instr(data, ?1) > 0",
                [subject.as_bytes()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 1, "message {i} missing from the restored store");
    }
    // Not over a store that is there, and not from where there is no backup.
    let (ok, out) = tern(&["restore", backup.to_str().unwrap()]);
    assert!(!ok && out.contains("already holds a store"), "{out}");
    let (ok, out) = tern(&["restore", dir.path().to_str().unwrap()]);
    assert!(!ok && out.contains("no backup here"), "{out}");
}
