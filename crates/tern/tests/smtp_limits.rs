//! SMTP limits and defences that need more than a transcript: huge lines, many
//! recipients, oversize data, password guessing, and the trace headers written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use testkit::fixture::inbox;
use testkit::{TcpWire, Wire};

async fn connect(addr: std::net::SocketAddr) -> TcpWire {
    let mut w = TcpWire::connect(addr).await.unwrap();
    assert!(w.read_line().await.unwrap().unwrap().starts_with("220 "));
    w
}

async fn say(w: &mut TcpWire, line: &str) -> String {
    w.send(format!("{line}\r\n").as_bytes()).await.unwrap();
    let mut last = w.read_line().await.unwrap().unwrap();
    while last.as_bytes().get(3) == Some(&b'-') {
        last = w.read_line().await.unwrap().unwrap();
    }
    last
}

/// hardening.md C-SM6: a 1 MiB command line is answered once and never buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabyte_command_line() {
    let server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let mut w = connect(server.addr("smtp")).await;
    let before = common::rss_kib(server.pid().unwrap());
    w.send(b"MAIL FROM:<").await.unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..16 {
        w.send(&chunk).await.unwrap();
    }
    assert_eq!(
        w.read_line().await.unwrap().as_deref(),
        Some("500 5.5.2 Line too long (RFC 5321 §4.5.3.1.4)")
    );
    w.send(b"@x>\r\n").await.unwrap();
    assert_eq!(say(&mut w, "NOOP").await, "250 2.0.0 Ok");
    let grown = common::rss_kib(server.pid().unwrap()).saturating_sub(before);
    assert!(
        grown < 512,
        "the server grew by {grown} KiB for one long line"
    );
    // C-SM7: a 1 MiB text line inside DATA is accepted (RFC 5321 §4.5.3.1: no limits
    // where possible), bounded by the message size...
    assert_eq!(
        long_line_message(&mut w, &chunk).await.get(..13),
        Some("250 2.0.0 Ok:")
    );
    let store = common::probe(&server).0.clone();
    assert!(inbox(&store, "alice@a.test").await.unwrap()[0].len() > 1 << 20);
    // ...or refused when the operator asks for the strict limit.
    let strict =
        tokio::task::spawn_blocking(|| common::smtp_server("[smtp]\nmax_text_line = 1000\n"))
            .await
            .unwrap();
    let mut w = connect(strict.addr("smtp")).await;
    assert_eq!(
        long_line_message(&mut w, &chunk).await,
        "554 5.5.2 Line longer than 1000 octets in message data (RFC 5321 §4.5.3.1.6)"
    );
}

async fn long_line_message(w: &mut TcpWire, chunk: &[u8]) -> String {
    say(w, "EHLO x").await;
    say(w, "MAIL FROM:<s@far.test>").await;
    say(w, "RCPT TO:<alice@a.test>").await;
    assert!(say(w, "DATA").await.starts_with("354"));
    w.send(b"Subject: x\r\n\r\n").await.unwrap();
    for _ in 0..16 {
        w.send(chunk).await.unwrap();
    }
    say(w, "\r\n.").await
}

/// hardening.md C-SM9, RFC 5321 §4.5.3.1.8: 452 4.5.3 past the limit, then the next
/// transaction works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_and_one_recipients() {
    let server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let mut w = connect(server.addr("smtp")).await;
    say(&mut w, "EHLO x").await;
    let mut batch = String::from("MAIL FROM:<s@far.test>\r\n");
    for _ in 0..1001 {
        batch.push_str("RCPT TO:<alice@a.test>\r\n");
    }
    w.send(batch.as_bytes()).await.unwrap();
    assert_eq!(
        w.read_line().await.unwrap().as_deref(),
        Some("250 2.1.0 Sender OK")
    );
    for i in 0..1000 {
        assert_eq!(
            w.read_line().await.unwrap().as_deref(),
            Some("250 2.1.5 Recipient OK"),
            "recipient {i}"
        );
    }
    assert_eq!(
        w.read_line().await.unwrap().as_deref(),
        Some("452 4.5.3 Too many recipients")
    );
    assert!(say(&mut w, "DATA").await.starts_with("354"));
    assert!(
        say(&mut w, "Subject: many\r\n\r\nx\r\n.")
            .await
            .starts_with("250 2.0.0 Ok")
    );
    let store = common::probe(&server).0.clone();
    assert_eq!(
        inbox(&store, "alice@a.test").await.unwrap().len(),
        1,
        "one copy for 1000 identical recipients"
    );
}

/// hardening.md C-SM18, RFC 1870: a client that lies about SIZE gets 552 5.3.4 once
/// the real size passes the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_lie() {
    let server =
        tokio::task::spawn_blocking(|| common::smtp_server("[smtp]\nmax_message_size = 100000\n"))
            .await
            .unwrap();
    let mut w = connect(server.addr("smtp")).await;
    assert_eq!(say(&mut w, "EHLO x").await, "250 STARTTLS");
    say(&mut w, "MAIL FROM:<s@far.test> SIZE=1000").await;
    say(&mut w, "RCPT TO:<alice@a.test>").await;
    say(&mut w, "DATA").await;
    w.send(b"Subject: big\r\n\r\n").await.unwrap();
    let line = format!("{}\r\n", "y".repeat(998));
    for _ in 0..200 {
        w.send(line.as_bytes()).await.unwrap();
    }
    assert_eq!(
        say(&mut w, ".").await,
        "552 5.3.4 Message size exceeds the limit"
    );
    assert_eq!(
        say(&mut w, "MAIL FROM:<s@far.test> SIZE=100001").await,
        "552 5.3.4 Message size exceeds the limit"
    );
    let store = common::probe(&server).0.clone();
    assert!(inbox(&store, "alice@a.test").await.unwrap().is_empty());
}

/// hardening.md C-AU1, C-AU2, C-AU3: a delay after each failure, the IP blocked after
/// the limit, the same answer for unknown users, other clients unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing() {
    let server = tokio::task::spawn_blocking(|| {
        common::smtp_server("[auth]\nfailure_delay = \"1s\"\nmax_failures_per_ip = 3\n")
    })
    .await
    .unwrap();
    let addr = server.addr("submissions");
    let mut w = TcpWire::connect_tls(addr).await.unwrap();
    w.read_line().await.unwrap();
    let start = Instant::now();
    assert_eq!(
        say(
            &mut w,
            &format!(
                "AUTH PLAIN {}",
                testkit::sasl_plain("alice@a.test", "guess1")
            )
        )
        .await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "no delay after a failure"
    );
    let start = Instant::now();
    assert_eq!(
        say(
            &mut w,
            &format!(
                "AUTH PLAIN {}",
                testkit::sasl_plain("nobody@a.test", "guess2")
            )
        )
        .await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "unknown users take as long"
    );
    assert_eq!(
        say(
            &mut w,
            &format!(
                "AUTH PLAIN {}",
                testkit::sasl_plain("alice@a.test", "guess3")
            )
        )
        .await,
        "421 4.7.0 Too many authentication failures; try again later"
    );
    assert_eq!(w.read_line().await.unwrap(), None);
    // Blocked, even with the right password, from this IP...
    let mut w = TcpWire::connect_tls(addr).await.unwrap();
    w.read_line().await.unwrap();
    assert_eq!(
        say(
            &mut w,
            &format!(
                "AUTH PLAIN {}",
                testkit::sasl_plain("alice@a.test", "alice-pw")
            )
        )
        .await,
        "421 4.7.0 Too many authentication failures; try again later"
    );
    // ...but not from another one.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let mut w = TcpWire::connect_from(other, addr).await.unwrap();
    w.starttls().await.unwrap();
    w.read_line().await.unwrap();
    assert_eq!(
        say(
            &mut w,
            &format!(
                "AUTH PLAIN {}",
                testkit::sasl_plain("alice@a.test", "alice-pw")
            )
        )
        .await,
        "235 2.7.0 Authentication successful"
    );
}

/// RFC 5321 §4.4 (Received, Return-Path), RFC 3848 (with ESMTP/ESMTPSA), Delivered-To,
/// RFC 6409 §8 (Date and Message-ID added by the MSA).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_and_submission_headers() {
    let server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let mut w = connect(server.addr("smtp")).await;
    say(&mut w, "EHLO client.test").await;
    say(&mut w, "MAIL FROM:<s@far.test>").await;
    say(&mut w, "RCPT TO:<alice+tag@a.test>").await;
    say(&mut w, "DATA").await;
    let id = say(&mut w, "Subject: trace\r\n\r\nx\r\n.").await;
    let id = id
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap()
        .to_string();
    say(&mut w, "MAIL FROM:<>").await;
    say(&mut w, "RCPT TO:<alice@a.test>").await;
    say(&mut w, "RCPT TO:<bob@a.test>").await;
    say(&mut w, "DATA").await;
    say(&mut w, "Subject: two\r\n\r\nx\r\n.").await;

    let mut w = TcpWire::connect_tls(server.addr("submissions"))
        .await
        .unwrap();
    w.read_line().await.unwrap();
    say(&mut w, "EHLO laptop").await;
    say(
        &mut w,
        &format!(
            "AUTH PLAIN {}",
            testkit::sasl_plain("alice@a.test", "alice-pw")
        ),
    )
    .await;
    say(&mut w, "MAIL FROM:<alice@a.test>").await;
    say(&mut w, "RCPT TO:<bob@a.test>").await;
    say(&mut w, "DATA").await;
    say(&mut w, "From: alice@a.test\r\nSubject: bare\r\n\r\nx\r\n.").await;

    let store = common::probe(&server).0.clone();
    let alice = inbox(&store, "alice@a.test").await.unwrap();
    let first = String::from_utf8(alice[0].clone()).unwrap();
    // The per-recipient fields, then the spam verdict, then our Received.
    let expected_start =
        "Return-Path: <s@far.test>\r\nDelivered-To: alice@a.test\r\nX-Spam-Status: No, ";
    assert!(first.starts_with(expected_start), "{first}");
    let received = format!(
        "\r\nReceived: from client.test ([127.0.0.1])\r\n\tby mx.a.test (Tern) with ESMTP id {id}\r\n\tfor <alice+tag@a.test>;\r\n\t"
    );
    assert!(first.contains(&received), "{first}");
    assert!(
        first.ends_with("+0000\r\nSubject: trace\r\n\r\nx\r\n"),
        "{first}"
    );
    let second = String::from_utf8(alice[1].clone()).unwrap();
    assert!(
        second.starts_with("Return-Path: <>\r\nDelivered-To: alice@a.test\r\nX-Spam-Status: "),
        "{second}"
    );
    assert!(
        !second.contains("\tfor <"),
        "no `for` with several recipients: {second}"
    );
    let bob = inbox(&store, "bob@a.test").await.unwrap();
    let submitted = String::from_utf8(bob[1].clone()).unwrap();
    assert!(
        submitted.contains("with ESMTPSA id")
            && submitted.contains("\r\nDate: ")
            && submitted.contains("\r\nMessage-ID: <"),
        "{submitted}"
    );
    let header_end = submitted.find("\r\n\r\n").unwrap();
    assert!(submitted.find("Message-ID:").unwrap() < header_end);
}

/// C-FZ3: an XCLIENT value is xtext, which can encode CR LF; a HELO name
/// that holds one would split our Received field, so it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xclient_values_stay_on_one_line() {
    let server = tokio::task::spawn_blocking(|| {
        common::smtp_server("[smtp]\nxclient_trusted = [\"127.0.0.0/8\"]\n")
    })
    .await
    .unwrap();
    let mut w = connect(server.addr("smtp")).await;
    say(&mut w, "EHLO proxy.test").await;
    let r = say(&mut w, "XCLIENT ADDR=192.0.2.7 HELO=a+0D+0AX-Injected:+20y").await;
    assert!(r.starts_with("501 "), "{r}");
    let r = say(&mut w, "XCLIENT ADDR=192.0.2.7 HELO=client+2Eexample").await;
    assert!(r.starts_with("220 "), "{r}");
}

/// C-SM6: a line past the limit that arrives in one read with the next
/// command behind it is answered once, and the next command is answered
/// too. The long line's tail once went with the read, and the command
/// after it was skipped as that line's rest: the client waited for a
/// reply that never came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_line_and_the_command_behind_it_in_one_read() {
    let server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let mut w = connect(server.addr("smtp")).await;
    let both = format!("MAIL FROM:<{}@b.test>\r\nNOOP\r\n", "a".repeat(600));
    w.send(both.as_bytes()).await.unwrap();
    assert_eq!(
        w.read_line().await.unwrap().as_deref(),
        Some("500 5.5.2 Line too long (RFC 5321 §4.5.3.1.4)")
    );
    assert_eq!(
        w.read_line().await.unwrap().as_deref(),
        Some("250 2.0.0 Ok")
    );
    assert_eq!(say(&mut w, "NOOP").await, "250 2.0.0 Ok");
}

/// hardening.md C-FZ17: a message nested 40,000 deep (each level a
/// message/rfc822 part, 1.3 MB in all) read by the spam filter at DATA and
/// by the search index at delivery. The structure mail-parser makes of it
/// nests as deep, and dropping it overflowed a task's stack, which aborts
/// the whole server; the next delivery attempt did it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_nested_forty_thousand_deep() {
    let server = tokio::task::spawn_blocking(|| common::smtp_server(""))
        .await
        .unwrap();
    let mut w = connect(server.addr("smtp")).await;
    say(&mut w, "EHLO x").await;
    say(&mut w, "MAIL FROM:<s@far.test>").await;
    say(&mut w, "RCPT TO:<alice@a.test>").await;
    say(&mut w, "DATA").await;
    w.send(b"From: s@far.test\r\nSubject: deep\r\n")
        .await
        .unwrap();
    let level = b"Content-Type: message/rfc822\r\n\r\n".repeat(1000);
    for _ in 0..40 {
        w.send(&level).await.unwrap();
    }
    w.send(b"Subject: the bottom\r\n\r\nbody\r\n")
        .await
        .unwrap();
    let reply = say(&mut w, ".").await;
    assert!(reply.starts_with("250 "), "{reply}");
    let store = common::probe(&server).0.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    while inbox(&store, "alice@a.test").await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
