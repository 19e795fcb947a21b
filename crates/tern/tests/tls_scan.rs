//! testssl.sh (Debian's `testssl`) against Tern's TLS listeners: no weak
//! protocol, cipher or renegotiation finding (issue #21; hardening.md
//! C-TLS1..C-TLS11). The certificate is the test's self-signed one, so the
//! certificate checks are left out: a real deployment uses its own.
//!
//! By default one implicit-TLS listener and one STARTTLS listener are
//! scanned (each scan takes about 25 s); `TERN_TLS_SCAN=all` scans every
//! TLS listener (`scripts/prove-tls`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

/// (listener, testssl's STARTTLS protocol, if any). ManageSieve is left out:
/// testssl 3.0 has no STARTTLS for it; its TLS is the same `net::tls`
/// configuration as every other listener's.
const LISTENERS: &[(&str, Option<&str>)] = &[
    ("imaps", None),
    ("smtp", Some("smtp")),
    ("submissions", None),
    ("submission", Some("smtp")),
    ("imap", Some("imap")),
    ("pop3s", None),
    ("pop3", Some("pop3")),
    ("https", None),
];

/// Findings of one scan worse than LOW (MEDIUM, HIGH, CRITICAL, or a WARN
/// that the scan itself went wrong), as "id: finding". DEBUG lines are
/// testssl's own notes ("couldn't determine service").
fn scan(addr: std::net::SocketAddr, starttls: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("scan.json");
    // Every openssl connect and the whole scan are bounded: an s_client
    // once hung for good on a loaded machine, and the test with it.
    let mut cmd = Command::new("timeout");
    cmd.args([
        "300",
        "testssl",
        "--openssl-timeout",
        "15",
        "--connect-timeout",
        "15",
    ]);
    cmd.args([
        "--quiet",
        "--color",
        "0",
        "--warnings",
        "batch",
        "-p",
        "-s",
        "-U",
    ])
    .arg("--jsonfile")
    .arg(&json);
    if let Some(protocol) = starttls {
        cmd.args(["-t", protocol]);
    }
    let out = cmd
        .arg(addr.to_string())
        .output()
        .expect("testssl (Debian testssl.sh)");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "testssl wrote no report for {addr}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(
        findings.iter().any(|f| f["id"] == "TLS1_3"),
        "{addr}: the scan did not reach the protocols: {text}"
    );
    findings
        .iter()
        .filter(|f| {
            !matches!(
                f["severity"].as_str(),
                Some("OK" | "INFO" | "LOW" | "DEBUG")
            )
        })
        .map(|f| format!("{}: {} ({})", f["id"], f["finding"], f["severity"]))
        .collect()
}

#[test]
fn testssl_finds_nothing_weak() {
    let mut listeners: Vec<&str> = LISTENERS.iter().map(|(l, _)| *l).collect();
    let all = std::env::var("TERN_TLS_SCAN").is_ok_and(|v| v == "all");
    if !all {
        listeners.truncate(2);
    }
    let server = common::full_server("[listeners]\nhttps = \"127.0.0.1:0\"\n");
    let mut bad = Vec::new();
    for (listener, starttls) in LISTENERS.iter().filter(|(l, _)| listeners.contains(l)) {
        let findings = scan(server.addr(listener), *starttls);
        eprintln!("{listener}: {} findings above LOW", findings.len());
        for f in &findings {
            eprintln!("  {f}");
        }
        bad.extend(findings.into_iter().map(|f| format!("{listener}: {f}")));
    }
    assert!(bad.is_empty(), "testssl findings:\n{}", bad.join("\n"));
}
