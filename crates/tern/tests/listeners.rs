//! The listener framework, through SMTP: connection limits, TLS versions and ALPN,
//! idle timeouts, graceful shutdown, and the development setup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::{TcpWire, Wire};

fn greeting(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    (s, String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Over the per-IP or the total limit: the protocol's "try later", then close.
#[test]
fn connection_limits() {
    let server = common::smtp_server("[limits]\nmax_connections_per_ip = 2\nper_ip_exempt = []\n");
    let addr = server.addr("smtp");
    let (_a, g1) = greeting(addr);
    let (_b, g2) = greeting(addr);
    assert!(g1.starts_with("220 ") && g2.starts_with("220 "));
    let (mut c, g3) = greeting(addr);
    assert_eq!(g3, "421 4.7.0 Too many connections; try again later\r\n");
    assert_eq!(c.read(&mut [0u8; 16]).unwrap(), 0, "closed after the 421");
    drop(_a);
    // The place is free again once a connection closes.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_d, g) = greeting(addr);
        if g.starts_with("220 ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was not given back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let server = common::smtp_server("[limits]\nmax_connections = 1\n");
    let (_a, g1) = greeting(server.addr("smtp"));
    assert!(g1.starts_with("220 "));
    let (_b, g2) = greeting(server.addr("submission"));
    assert!(
        g2.starts_with("421 4.7.0"),
        "the total counts every listener: {g2}"
    );
}

/// `openssl s_client` to `addr` that says QUIT: what it printed.
fn s_client(addr: &str, extra: &[&str]) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-servername",
            "localhost",
            "-crlf",
            "-ign_eof",
        ])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"QUIT\n").unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// C-TLS12: one address gets so many TLS handshakes a minute, implicit
/// TLS and STARTTLS together; past them its connections are closed before
/// any handshake work, while plain connections go on and the loopback
/// range (exempt by default) is never counted.
#[test]
fn tls_handshakes_are_limited_per_address() {
    let server =
        common::smtp_server("[limits]\nper_ip_exempt = []\ntls_handshakes_per_ip_minute = 3\n");
    let submissions = server.addr("submissions").to_string();
    let smtp = server.addr("smtp").to_string();
    for i in 0..2 {
        let out = s_client(&submissions, &[]);
        assert!(
            out.contains("220 mx.a.test ESMTP Tern"),
            "handshake {i}: {out}"
        );
    }
    let out = s_client(&smtp, &["-starttls", "smtp"]);
    assert!(
        out.contains("250 ") && out.contains("TLSv1.3"),
        "STARTTLS: {out}"
    );
    let out = s_client(&submissions, &[]);
    assert!(
        !out.contains("220 mx.a.test"),
        "the fourth handshake: {out}"
    );
    let out = s_client(&smtp, &["-starttls", "smtp"]);
    assert!(!out.contains("TLSv1.3"), "a STARTTLS past the limit: {out}");
    let (_plain, greeting) = greeting(server.addr("smtp"));
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(
        server
            .log()
            .contains("too many TLS handshakes from this address")
    );
    let exempt = common::smtp_server("[limits]\ntls_handshakes_per_ip_minute = 1\n");
    let addr = exempt.addr("submissions").to_string();
    for _ in 0..3 {
        assert!(s_client(&addr, &[]).contains("220 mx.a.test"));
    }
}

/// TLS 1.2 and 1.3 only (hardening.md C-TLS8, C-TLS9), ALPN enforced (C-TLS10).
#[test]
fn tls_versions_and_alpn() {
    let server = common::smtp_server("");
    let addr = server.addr("submissions").to_string();
    let s_client = |extra: &[&str]| s_client(&addr, extra);
    assert!(s_client(&["-tls1_3"]).contains("220 mx.a.test ESMTP Tern"));
    let tls12 = s_client(&["-tls1_2"]);
    assert!(
        tls12.contains("220 mx.a.test ESMTP Tern") && tls12.contains("TLSv1.2"),
        "{tls12}"
    );
    for old in ["-tls1_1", "-tls1"] {
        let out = s_client(&[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(
            !out.contains("220 mx.a.test"),
            "{old} must be refused: {out}"
        );
    }
    // CBC and static-RSA suites only: refused.
    let out = s_client(&["-tls1_2", "-cipher", "AES128-SHA:AES256-SHA256"]);
    assert!(
        !out.contains("220 mx.a.test"),
        "weak suites must be refused: {out}"
    );
    // An HTTP client on the SMTP TLS port gets no_application_protocol.
    let out = s_client(&["-alpn", "http/1.1"]);
    assert!(
        !out.contains("220 mx.a.test") && out.contains("no application protocol"),
        "{out}"
    );
    assert!(s_client(&["-alpn", "smtp"]).contains("220 mx.a.test"));
}

#[test]
fn idle_timeout() {
    let server = common::smtp_server("[smtp]\ncommand_timeout = \"1s\"\n");
    let (mut s, g) = greeting(server.addr("smtp"));
    assert!(g.starts_with("220 "));
    let start = Instant::now();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "421 4.4.2 Timeout; closing\r\n");
    assert!(
        start.elapsed() >= Duration::from_millis(900) && start.elapsed() < Duration::from_secs(5)
    );
}

/// hardening.md C-SL1: a client that sends one byte before each timeout
/// (slowloris), in a command line or in DATA, is cut off once its work is
/// past the deadline; one that sends whole commands with pauses is not.
#[test]
fn slowloris_is_cut_off() {
    let server = common::smtp_server("[smtp]\ncommand_timeout = \"2s\"\ndata_timeout = \"2s\"\n");
    let drip = |prelude: &[&str]| {
        let (mut s, _) = greeting(server.addr("smtp"));
        let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
        for line in prelude {
            s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
            let mut reply = String::new();
            loop {
                reply.clear();
                std::io::BufRead::read_line(&mut reader, &mut reply).unwrap();
                if reply.as_bytes().get(3) != Some(&b'-') {
                    break;
                }
            }
        }
        s.set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        let start = Instant::now();
        let mut got = Vec::new();
        while start.elapsed() < Duration::from_secs(15) {
            if s.write_all(b"x").is_err() {
                break;
            }
            let mut buf = [0; 256];
            match reader.get_mut().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        (start.elapsed(), String::from_utf8_lossy(&got).to_string())
    };
    let (took, said) = drip(&["EHLO x"]);
    assert!(said.contains("421 4.4.2"), "{said}");
    assert!(took < Duration::from_secs(6), "command line: {took:?}");
    let (took, said) = drip(&[
        "EHLO x",
        "MAIL FROM:<a@far.test>",
        "RCPT TO:<bob@a.test>",
        "DATA",
    ]);
    assert!(said.contains("421 4.4.2"), "{said}");
    assert!(took < Duration::from_secs(6), "DATA: {took:?}");
    // Whole commands, with pauses shorter than the timeout: never cut.
    let (mut s, _) = greeting(server.addr("smtp"));
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    for _ in 0..5 {
        s.write_all(b"NOOP\r\n").unwrap();
        let mut reply = String::new();
        std::io::BufRead::read_line(&mut reader, &mut reply).unwrap();
        assert!(reply.starts_with("250"), "{reply}");
        std::thread::sleep(Duration::from_millis(1500));
    }
}

/// hardening.md C-FT11: SIGTERM stops accepting, closes idle sessions with 421,
/// lets a transaction in progress finish, then exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown() {
    let mut server =
        tokio::task::spawn_blocking(|| common::smtp_server("shutdown_timeout = \"10s\"\n"))
            .await
            .unwrap();
    let addr = server.addr("smtp");
    let mut idle = TcpWire::connect(addr).await.unwrap();
    assert!(idle.read_line().await.unwrap().unwrap().starts_with("220 "));
    let mut busy = TcpWire::connect(addr).await.unwrap();
    busy.read_line().await.unwrap();
    for line in [
        "EHLO x",
        "MAIL FROM:<s@far.test>",
        "RCPT TO:<alice@a.test>",
        "DATA",
    ] {
        busy.send(format!("{line}\r\n").as_bytes()).await.unwrap();
    }
    loop {
        if busy.read_line().await.unwrap().unwrap().starts_with("354") {
            break;
        }
    }
    busy.send(b"Subject: in flight\r\n\r\n").await.unwrap();
    let pid = server.pid().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert_eq!(
        idle.read_line().await.unwrap().as_deref(),
        Some("421 4.3.2 Server shutting down; try again later")
    );
    assert_eq!(idle.read_line().await.unwrap(), None);
    // New connections are no longer accepted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after SIGTERM"
    );
    // The transaction in progress completes, then the session is closed.
    busy.send(b"body\r\n.\r\n").await.unwrap();
    assert!(
        busy.read_line()
            .await
            .unwrap()
            .unwrap()
            .starts_with("250 2.0.0 Ok")
    );
    assert_eq!(
        busy.read_line().await.unwrap().as_deref(),
        Some("421 4.3.2 Server shutting down; try again later")
    );
    let status = tokio::task::spawn_blocking(move || server.stop(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "tern should exit 0 after a graceful stop"
    );
}

/// interface.md: `tern serve` without a config creates ./tern-data, a domain, one
/// account with a printed password, and reuses them on the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_setup() {
    let dir = tempfile::tempdir().unwrap();
    let start = |dir: &std::path::Path| {
        let mut child = Command::new(common::BIN)
            .arg("serve")
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
                "tern exited: {lines:?}"
            );
            let done = line.trim() == "tern: ready";
            lines.push(line.trim().to_string());
            if done {
                break;
            }
        }
        (child, lines)
    };
    let (mut first, lines) = start(dir.path());
    let password = lines
        .iter()
        .find_map(|l| l.strip_prefix("tern: account admin@localhost, password "))
        .map(|p| p.split(' ').next().unwrap().to_string())
        .unwrap();
    for bound in [
        "smtp listening on 127.0.0.1:2525",
        "submission listening on 127.0.0.1:2587",
        "submissions listening on 127.0.0.1:2465",
    ] {
        assert!(
            lines.iter().any(|l| l.ends_with(bound)),
            "{bound} not in {lines:?}"
        );
    }
    assert!(
        dir.path().join("tern-data/tern.db").exists()
            && dir.path().join("tern-data/tls/cert.pem").exists()
    );
    // The printed password works.
    let mut w = TcpWire::connect_tls("127.0.0.1:2465".parse().unwrap())
        .await
        .unwrap();
    w.read_line().await.unwrap();
    w.send(
        format!(
            "AUTH PLAIN {}\r\n",
            testkit::sasl_plain("admin@localhost", &password)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(
        w.read_line().await.unwrap().as_deref(),
        Some("235 2.7.0 Authentication successful")
    );
    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(first.wait().unwrap().success());
    let (mut second, lines) = start(dir.path());
    assert!(lines.iter().any(|l| l.contains("reusing")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("password")),
        "the password is shown only once"
    );
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(second.wait().unwrap().success());
    let _ = std::io::stdout().flush();
}
