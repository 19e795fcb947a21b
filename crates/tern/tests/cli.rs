//! The admin CLI as operators and scripts use it (interface.md): every command,
//! every error (exit status non-zero, one clear line on standard error).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "hostname = \"mx.a.test\"\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("tern.toml"), config).unwrap();
        Env { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("tern.toml")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(common::BIN)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?} wrote to stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The command fails with exactly one line on stderr, which contains `needle`.
    fn fails(&self, args: &[&str], needle: &str) {
        let out = self.run(args);
        assert_one_error(&out, needle, &format!("{args:?}"));
    }
}

fn assert_one_error(out: &Output, needle: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} should fail");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{what}: want one line on stderr, got {stderr:?}"
    );
    assert!(
        stderr.contains(needle),
        "{what}: {stderr:?} does not mention {needle:?}"
    );
}

#[test]
fn domains() {
    let e = Env::new();
    let added = e.ok(&["domain", "add", "A.test"]);
    assert!(
        added.starts_with("added domain a.test (DKIM selectors t2"),
        "{added}"
    );
    e.ok(&["domain", "add", "b.test"]);
    assert_eq!(e.ok(&["domain", "list"]), "a.test\nb.test\n");
    e.fails(&["domain", "add", "a.test"], "domain a.test already exists");
    e.fails(&["domain", "add", "not a domain"], "malformed domain");
    e.fails(&["domain", "remove", "c.test"], "domain c.test not found");
    e.ok(&["account", "add", "x@b.test", "--password", "pw"]);
    e.fails(&["domain", "remove", "b.test"], "still has 1 account(s)");
    e.ok(&["account", "remove", "x@b.test"]);
    assert_eq!(
        e.ok(&["domain", "remove", "b.test"]),
        "removed domain b.test\n"
    );
    assert_eq!(e.ok(&["domain", "list"]), "a.test\n");
}

#[test]
fn accounts() {
    let e = Env::new();
    e.fails(
        &["account", "add", "alice@a.test", "--password", "pw"],
        "domain a.test not found",
    );
    e.ok(&["domain", "add", "a.test"]);
    assert_eq!(
        e.ok(&["account", "add", "Alice@a.test", "--password", "pw"]),
        "added account alice@a.test\n"
    );
    e.fails(
        &["account", "add", "alice@a.test", "--password", "pw"],
        "account alice@a.test already exists",
    );
    e.fails(
        &["account", "add", "not-an-address", "--password", "pw"],
        "malformed address",
    );
    e.fails(
        &["account", "add", "x@[127.0.0.1]", "--password", "pw"],
        "malformed address",
    );
    e.fails(
        &["account", "add", "y@a.test", "--password", ""],
        "password is empty",
    );
    // RFC 4013: a control character cannot be part of a password.
    e.fails(
        &["account", "add", "y@a.test", "--password", "bell\u{7}"],
        "password not allowed by SASLprep",
    );
    // Without --password, the password is read from standard input.
    let mut child = Command::new(common::BIN)
        .arg("--config")
        .arg(e.config())
        .args(["account", "add", "bob@a.test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from-stdin\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    assert_eq!(e.ok(&["account", "list"]), "alice@a.test\nbob@a.test\n");
    assert_eq!(
        e.ok(&[
            "account",
            "passwd",
            "alice@a.test",
            "--password",
            "Pw-new-7781"
        ]),
        "changed the password of alice@a.test\n"
    );
    e.fails(
        &["account", "passwd", "carol@a.test", "--password", "new"],
        "account carol@a.test not found",
    );
    e.ok(&["account", "remove", "bob@a.test"]);
    e.fails(
        &["account", "remove", "bob@a.test"],
        "account bob@a.test not found",
    );
    // The password is stored hashed, never in clear.
    let db = std::fs::read(e.dir.path().join("data/tern.db")).unwrap();
    let wal = std::fs::read(e.dir.path().join("data/tern.db-wal")).unwrap_or_default();
    for needle in [&b"from-stdin"[..], b"Pw-new-7781"] {
        assert!(
            !db.windows(needle.len()).any(|w| w == needle)
                && !wal.windows(needle.len()).any(|w| w == needle)
        );
    }
}

#[test]
fn aliases() {
    let e = Env::new();
    e.ok(&["domain", "add", "a.test"]);
    e.ok(&["account", "add", "alice@a.test", "--password", "pw"]);
    assert_eq!(
        e.ok(&["alias", "add", "info@a.test", "alice@a.test, bob@far.test"]),
        "added alias info@a.test -> alice@a.test,bob@far.test\n"
    );
    assert_eq!(
        e.ok(&["alias", "add", "@a.test", "alice@a.test"]),
        "added alias @a.test -> alice@a.test\n"
    );
    e.fails(
        &["alias", "add", "info@a.test", "alice@a.test"],
        "alias info@a.test already exists",
    );
    e.fails(
        &["alias", "add", "alice@a.test", "x@a.test"],
        "account alice@a.test",
    );
    e.fails(
        &["alias", "add", "x@nowhere.test", "alice@a.test"],
        "domain nowhere.test not found",
    );
    e.fails(
        &["alias", "add", "y@a.test", "not an address"],
        "malformed address",
    );
    e.fails(&["alias", "add", "y@a.test", ","], "at least one target");
    assert_eq!(
        e.ok(&["alias", "list"]),
        "@a.test -> alice@a.test\ninfo@a.test -> alice@a.test,bob@far.test\n"
    );
    e.ok(&["alias", "remove", "@a.test"]);
    e.fails(&["alias", "remove", "@a.test"], "alias @a.test not found");
}

#[test]
fn dns_records_and_queue() {
    let e = Env::new();
    e.fails(&["dns", "records", "a.test"], "domain a.test not found");
    e.ok(&["domain", "add", "a.test"]);
    let records = e.ok(&["dns", "records", "a.test"]);
    let lines: Vec<&str> = records.lines().collect();
    assert_eq!(lines.len(), 6, "{records}");
    assert_eq!(lines[0], "a.test. 3600 IN MX 10 mx.a.test.");
    assert_eq!(lines[1], "a.test. 3600 IN TXT \"v=spf1 mx -all\"");
    let dkim: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("._domainkey.a.test. 3600 IN TXT \"v=DKIM1; k="))
        .collect();
    assert_eq!(dkim.len(), 2, "{records}");
    assert!(
        dkim.iter().any(|l| l.contains("k=ed25519"))
            && dkim.iter().any(|l| l.contains("k=rsa; p=MIIBIjAN"))
    );
    // The RSA key is longer than one TXT string: split in strings of <= 255.
    assert!(dkim.iter().any(|l| l.contains("\" \"")), "{records}");
    assert_eq!(
        lines[4],
        "_dmarc.a.test. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@a.test\""
    );
    assert_eq!(
        lines[5],
        "_smtp._tls.a.test. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@a.test\""
    );
    // Rotation adds two selectors (published at once, signing later).
    let rotated = e.ok(&["dkim", "rotate", "a.test"]);
    assert_eq!(
        rotated.matches("added DKIM selector t2").count(),
        2,
        "{rotated}"
    );
    let list = e.ok(&["dkim", "list", "a.test"]);
    assert_eq!(list.matches(" signing").count(), 2, "{list}");
    assert_eq!(list.matches(" signs from ").count(), 2, "{list}");
    assert_eq!(e.ok(&["dns", "records", "a.test"]).lines().count(), 8);
    e.fails(
        &["dkim", "rotate", "nowhere.test"],
        "domain nowhere.test not found",
    );
    assert_eq!(e.ok(&["queue", "list"]), "");
    e.fails(&["queue", "show", "7"], "queued message 7 not found");
    e.fails(&["queue", "delete", "7"], "queued message 7");
    e.fails(&["queue", "retry", "7"], "queued message 7 not found");
    assert_eq!(
        e.ok(&["queue", "retry", "--all"]),
        "0 recipient(s) due now\n"
    );
    assert_eq!(e.ok(&["report", "list"]), "");
    e.fails(&["report", "show", "7"], "report 7 not found");
    assert_eq!(
        e.ok(&["report", "send"]),
        "no DMARC aggregate reports due\nno TLS reports due\n"
    );
}

#[test]
fn help_on_every_command() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["domain"],
        &["domain", "add"],
        &["domain", "list"],
        &["domain", "remove"],
        &["account"],
        &["account", "add"],
        &["account", "passwd"],
        &["account", "list"],
        &["account", "remove"],
        &["alias"],
        &["alias", "add"],
        &["alias", "list"],
        &["alias", "remove"],
        &["dns"],
        &["dns", "records"],
        &["queue"],
        &["queue", "list"],
        &["dkim"],
        &["dkim", "rotate"],
        &["dkim", "list"],
        &["queue", "show"],
        &["queue", "retry"],
        &["queue", "delete"],
        &["report"],
        &["report", "list"],
        &["report", "show"],
        &["report", "send"],
    ];
    for c in commands {
        let out = Command::new(common::BIN)
            .args(*c)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{c:?} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: tern"),
            "{c:?} --help"
        );
    }
    let out = Command::new(common::BIN)
        .arg("frobnicate")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &Path| {
        Command::new(common::BIN)
            .arg("--config")
            .arg(config)
            .args(["domain", "list"])
            .output()
            .unwrap()
    };
    assert_one_error(
        &run(&dir.path().join("missing.toml")),
        "cannot read config",
        "missing config",
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "hostname = \"a.test\"\n\n[smtp]\nmax_recipients = 10\nsurprise = true\n",
    )
    .unwrap();
    assert_one_error(
        &run(&bad),
        "line 5 (surprise): unknown field `surprise`",
        "unknown key",
    );
    std::fs::write(
        &bad,
        "hostname = \"a.test\"\n[listeners]\nsmtp = \"localhost\"\n",
    )
    .unwrap();
    assert_one_error(&run(&bad), "line 3 (smtp)", "bad value");
    std::fs::write(&bad, "hostname = ").unwrap();
    assert_one_error(&run(&bad), "invalid config", "broken TOML");
    // The store cannot be opened: data_dir is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    std::fs::write(
        &bad,
        format!("hostname = \"a.test\"\ndata_dir = \"{}\"\n", file.display()),
    )
    .unwrap();
    assert_one_error(&run(&bad), "store unreachable", "unreachable store");
    // A PostgreSQL store nobody answers for (a closed port).
    std::fs::write(&bad, format!("hostname = \"a.test\"\ndata_dir = \"{}\"\n[store]\nbackend = \"postgres\"\nurl = \"postgres://tern@127.0.0.1:9/tern\"\n", dir.path().display())).unwrap();
    assert_one_error(&run(&bad), "store unreachable", "postgres");
}

/// The admin CLI writes while the server receives mail: no "database is locked".
#[test]
fn admin_while_the_server_runs() {
    let server = common::smtp_server("");
    let addr = server.addr("smtp");
    let sender = std::thread::spawn(move || {
        for i in 0..30 {
            testkit::send_smtp(
                addr,
                "s@far.test",
                "alice@a.test",
                &format!("Subject: {i}\r\n\r\nx"),
            );
        }
    });
    for i in 0..20 {
        server.admin_ok(&[
            "account",
            "add",
            &format!("u{i}@a.test"),
            "--password",
            "pw",
        ]);
    }
    sender.join().unwrap();
    // The fixture's accounts, its quota account, and the 20 added.
    let expected = testkit::fixture::ACCOUNTS.len() + 1 + 20;
    assert_eq!(
        server.admin_ok(&["account", "list"]).lines().count(),
        expected
    );
}

/// `tern man DIR`: a page for tern and for every command and subcommand
/// `--help` lists, in roff with the sections man(1) expects; no store is
/// opened (nothing is created in the working directory).
#[test]
fn man_pages_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::BIN)
        .arg("man")
        .arg(dir.path().join("man"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("tern-data").exists(), "a store was opened");
    let commands = |args: &[&str]| -> Vec<String> {
        let help = Command::new(common::BIN)
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        help.split("Commands:")
            .nth(1)
            .unwrap_or("")
            .split("\n\n")
            .next()
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(String::from)
            .collect()
    };
    let top = commands(&[]);
    assert!(
        top.contains(&"history".to_string()) && top.contains(&"serve".to_string()),
        "{top:?}"
    );
    let mut expected = vec!["tern".to_string()];
    for c in &top {
        expected.push(format!("tern-{c}"));
        for sub in commands(&[c]) {
            expected.push(format!("tern-{c}-{sub}"));
            for leaf in commands(&[c, &sub]) {
                expected.push(format!("tern-{c}-{sub}-{leaf}"));
            }
        }
    }
    for name in &expected {
        let page = std::fs::read_to_string(dir.path().join("man").join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}"));
        for section in [".TH", ".SH NAME", ".SH SYNOPSIS"] {
            assert!(page.contains(section), "{name}.1 has no {section}");
        }
    }
    let written = std::fs::read_dir(dir.path().join("man")).unwrap().count();
    assert_eq!(written, expected.len());
}
