//! Real IMAP clients against a real server: Python's imaplib and imapclient,
//! and a two-way sync with mbsync (isync).
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

/// Start a server with `config`, run a client script from `tests/clients/`
/// with the arguments `args` makes from the server, and expect its last
/// line to be OK.
async fn client_script(
    config: &'static str,
    script: &str,
    args: impl FnOnce(&testkit::TernServer) -> Vec<String>,
) {
    let server = tokio::task::spawn_blocking(move || common::full_server(config))
        .await
        .unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(repo(&format!("tests/clients/{script}")));
    cmd.args(args(&server));
    let out = run(&mut cmd);
    assert!(out.trim().ends_with("OK"), "{out}\n{}", server.log());
    eprintln!("{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_and_imapclient() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server("[imap]\nplaintext_on_loopback = true\n")
    })
    .await
    .unwrap();
    let port = |l: &str| server.addr(l).port().to_string();
    let out = run(Command::new("python3").args([
        repo("tests/clients/imap_clients.py"),
        "127.0.0.1".into(),
        port("imap"),
        port("imaps"),
        port("smtp"),
    ]));
    assert!(out.trim().ends_with("OK"), "{out}\n{}", server.log());
    eprintln!("{out}");
}

/// A two-way sync with mbsync: mail on the server comes down, a flag change and a
/// new message made locally go up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_two_way() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server("[imap]\nplaintext_on_loopback = true\n")
    })
    .await
    .unwrap();
    let store = common::probe(&server).0.clone();
    let smtp = server.addr("smtp");
    tokio::task::spawn_blocking(move || {
        for i in 0..3 {
            testkit::send_smtp(
                smtp,
                "s@far.test",
                "alice@a.test",
                &format!("Subject: sync {i}\r\n\r\nbody {i}"),
            );
        }
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = dir.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount tern\nHost 127.0.0.1\nPort {}\nUser alice@a.test\nPass alice-pw\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount tern\n\nMaildirStore local\nPath {}/\nInbox {}/INBOX\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nSync All\nExpunge Both\nSyncState *\n",
            server.addr("imap").port(),
            maildir.display(),
            maildir.display()
        ),
    )
    .unwrap();
    let mbsync = |rc: &Path| run(Command::new("mbsync").arg("-c").arg(rc).arg("-a"));
    mbsync(&rc);
    let cur: Vec<_> = std::fs::read_dir(maildir.join("INBOX/new"))
        .unwrap()
        .chain(std::fs::read_dir(maildir.join("INBOX/cur")).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cur.len(), 3, "three messages came down");
    // Locally: mark one read and flagged, add a new message.
    let first = &cur[0];
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    let base = name.split(":2,").next().unwrap();
    std::fs::rename(first, maildir.join(format!("INBOX/cur/{base}:2,FS"))).unwrap();
    std::fs::write(
        maildir.join("INBOX/new/local-1"),
        "From: alice@a.test\r\nSubject: written offline\r\n\r\nhello\r\n",
    )
    .unwrap();
    mbsync(&rc);
    let msgs = inbox(&store, "alice@a.test").await.unwrap();
    assert_eq!(msgs.len(), 4, "the local message went up");
    assert!(
        msgs.iter()
            .any(|m| String::from_utf8_lossy(m).contains("Subject: written offline"))
    );
    let account = match store.lookup_address("alice@a.test").await.unwrap() {
        store::AddressKind::Account(a) => a,
        other => panic!("{other:?}"),
    };
    let inbox_box = store
        .mailboxes(account.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "INBOX")
        .unwrap();
    let entries = store.messages(inbox_box.id).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.flags.contains(&"\\Flagged".to_string())
                && e.flags.contains(&"\\Seen".to_string())),
        "flags went up: {entries:?}"
    );
    // A third run changes nothing.
    mbsync(&rc);
    assert_eq!(inbox(&store, "alice@a.test").await.unwrap().len(), 4);
}

/// SCRAM-SHA-256-PLUS with `tls-exporter` binding (RFC 9266), the client
/// side written independently (OpenSSL exports the binding, Python does
/// SCRAM): the honest client logs in; one whose binding belongs to another
/// TLS connection (a man in the middle) fails, and so does one that says
/// "y" (could bind, thinks the server cannot) where -PLUS is offered.
#[test]
fn scram_sha256_plus_channel_binding() {
    let server = common::full_server("");
    let imaps = server.addr("imaps").to_string();
    let run = |mode: &str| {
        common::text(&common::python(
            "scram_plus.py",
            &[&imaps, "alice@a.test", "alice-pw", mode],
            b"",
        ))
    };
    let honest = run("honest");
    assert!(honest.contains("a OK"), "{honest}\n{}", server.log());
    let mitm = run("wrong-binding");
    assert!(mitm.contains("a NO") || mitm.contains("a BAD"), "{mitm}");
    let downgrade = run("no-binding");
    assert!(
        downgrade.contains("a NO") || downgrade.contains("a BAD"),
        "{downgrade}"
    );
}

/// COMPRESS=DEFLATE (RFC 4978) over TLS with a zlib client: commands, a
/// large FETCH that crosses the wire compressed, pipelined commands in one
/// compressed write, a second COMPRESS refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_deflate_over_tls() {
    client_script("", "imap_compress.py", |s| {
        let port = s.addr("imaps").port().to_string();
        ["check", "127.0.0.1", &port, "alice@a.test", "alice-pw"]
            .map(String::from)
            .to_vec()
    })
    .await;
}

/// Shared mailboxes (RFC 4314) with two users and imaplib: grants read,
/// then seen and insert, enforced command by command; IDLE on the shared
/// mailbox hears the owner's new mail; DELETEACL hides it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mailboxes_two_users() {
    client_script(PLAINTEXT, "imap_shared.py", |s| {
        vec!["127.0.0.1".into(), s.addr("imap").port().to_string()]
    })
    .await;
}

/// NOTIFY (RFC 5465) across two sessions of one user: news of the
/// selected mailbox, of other mailboxes (STATUS), names, subscriptions
/// and annotations, unasked and without IDLE; NOTIFY NONE stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_across_sessions() {
    client_script(PLAINTEXT, "imap_notify.py", |s| {
        vec!["127.0.0.1".into(), s.addr("imap").port().to_string()]
    })
    .await;
}

const PLAINTEXT: &str = "[imap]\nplaintext_on_loopback = true\n";
