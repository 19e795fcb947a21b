//! IMAP limits that need more than a transcript (hardening.md C-IM8, C-AU1 over IMAP).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use testkit::{TcpWire, Wire};

async fn login(addr: std::net::SocketAddr, password: &str) -> (TcpWire, String) {
    let mut w = TcpWire::connect(addr).await.unwrap();
    w.read_line().await.unwrap();
    w.send(format!("a LOGIN alice@a.test {password}\r\n").as_bytes())
        .await
        .unwrap();
    let reply = w.read_line().await.unwrap().unwrap_or_default();
    (w, reply)
}

/// C-IM8: at most N sessions of one user from one address; others are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_user_and_address() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server(
            "[imap]\nplaintext_on_loopback = true\nmax_connections_per_user_ip = 2\n",
        )
    })
    .await
    .unwrap();
    let addr = server.addr("imap");
    let (_a, r1) = login(addr, "alice-pw").await;
    let (_b, r2) = login(addr, "alice-pw").await;
    assert!(
        r1.starts_with("a OK") && r2.starts_with("a OK"),
        "{r1} {r2}"
    );
    let (mut c, r3) = login(addr, "alice-pw").await;
    assert_eq!(
        r3,
        "a NO [LIMIT] Too many sessions for this user from this address"
    );
    // The refused session may still log in as someone else.
    c.send(b"b LOGIN bob@a.test bob-pw\r\n").await.unwrap();
    assert!(c.read_line().await.unwrap().unwrap().starts_with("b OK"));
    drop(_a);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_d, r4) = login(addr, "alice-pw").await;
    assert!(r4.starts_with("a OK"), "a freed place is given back: {r4}");
}

/// C-AU1 over IMAP: after the failure limit the client is told BYE and blocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_password_guessing() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server(
            "[imap]\nplaintext_on_loopback = true\n[auth]\nmax_failures_per_ip = 2\n",
        )
    })
    .await
    .unwrap();
    let addr = server.addr("imap");
    let (mut w, r1) = login(addr, "guess").await;
    assert_eq!(r1, "a NO [AUTHENTICATIONFAILED] Authentication failed");
    w.send(b"b LOGIN alice@a.test guess2\r\n").await.unwrap();
    assert_eq!(
        w.read_line().await.unwrap().as_deref(),
        Some("* BYE [UNAVAILABLE] Too many authentication failures; try again later")
    );
    assert_eq!(w.read_line().await.unwrap(), None);
    let (_w, r) = login(addr, "alice-pw").await;
    assert_eq!(
        r,
        "* BYE [UNAVAILABLE] Too many authentication failures; try again later"
    );
}
