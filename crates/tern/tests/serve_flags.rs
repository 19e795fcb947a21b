//! `tern serve --quiet` and `--log-level`: the summary on standard output
//! stays, the log on standard error follows the flag; a level that does
//! not exist is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

/// Run serve with `flags` until it says it is ready; (stdout, stderr).
fn serve(flags: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tern.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mx.a.test\"\ndata_dir = \"{}\"\n[listeners]\nsmtp = \"127.0.0.1:0\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(common::BIN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line == "tern: ready" {
            break;
        }
    }
    // SIGTERM: a graceful stop.
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let rest = child.wait_with_output().unwrap();
    (out, String::from_utf8_lossy(&rest.stderr).into_owned())
}

#[test]
fn quiet_and_log_level() {
    let (out, err) = serve(&[]);
    assert!(out.contains("tern: smtp listening on 127.0.0.1:"), "{out}");
    assert!(err.contains(" INFO "), "{err}");
    let (out, err) = serve(&["--quiet"]);
    assert!(out.contains("tern: ready"), "{out}");
    assert!(!err.contains(" INFO "), "{err}");
    let (_, err) = serve(&["--log-level", "debug"]);
    assert!(err.contains(" DEBUG ") || err.contains(" INFO "), "{err}");
    let out = Command::new(common::BIN)
        .args(["serve", "--log-level", "loud"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'loud'"));
}
