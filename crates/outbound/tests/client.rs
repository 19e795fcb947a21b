//! Tern's SMTP client against scripted servers on a real socket: every stage's
//! 4xx and 5xx, garbage replies, stalls, a server that injects data before TLS
//! (hardening.md C-OB1..C-OB6, C-TLS6, C-SM4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outbound::client::{
    ClientError, ClientSettings, OutEnvelope, OutRecipient, RcptResult, Session, Timeouts, TlsUse,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One step of what the scripted server does.
enum Step {
    /// Send this text.
    Say(String),
    /// Read one command line; it must start with this.
    Hear(&'static str),
    /// Read message data up to the final dot line.
    Data,
    /// Read `BDAT n LAST` and its n bytes.
    Bdat,
    /// Become the TLS server side.
    Tls,
    /// Answer nothing for a while.
    Stall(Duration),
}
use Step::*;

fn say(s: &str) -> Step {
    Say(s.to_string())
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Serve one connection with `script`; what the client sent is collected.
async fn server(script: Vec<Step>) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut io: BufReader<Box<dyn Io>> = BufReader::new(Box::new(tcp));
        for step in script {
            match step {
                Say(s) => {
                    if io.get_mut().write_all(s.as_bytes()).await.is_err() {
                        return;
                    }
                }
                Hear(prefix) => {
                    let mut line = String::new();
                    if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    log.lock().unwrap().extend_from_slice(line.as_bytes());
                    assert!(
                        line.starts_with(prefix),
                        "expected {prefix:?}, heard {line:?}"
                    );
                }
                Data => loop {
                    let mut line = Vec::new();
                    if io.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    log.lock().unwrap().extend_from_slice(&line);
                    if line == b".\r\n" {
                        break;
                    }
                },
                Bdat => {
                    let mut line = String::new();
                    io.read_line(&mut line).await.unwrap();
                    let n: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
                    let mut chunk = vec![0u8; n];
                    io.read_exact(&mut chunk).await.unwrap();
                    let mut l = log.lock().unwrap();
                    l.extend_from_slice(line.as_bytes());
                    l.extend_from_slice(&chunk);
                }
                Tls => {
                    let dir = tempfile::tempdir().unwrap();
                    let identity =
                        net::tls::Identity::self_signed(dir.path(), &["mx.test".into()]).unwrap();
                    let acceptor =
                        tokio_rustls::TlsAcceptor::from(identity.server_config(&[]).unwrap());
                    let tls = acceptor.accept(io.into_inner()).await.unwrap();
                    io = BufReader::new(Box::new(tls));
                }
                Stall(d) => tokio::time::sleep(d).await,
            }
        }
        // Keep the connection open until the client goes.
        let mut rest = Vec::new();
        let _ = io.read_to_end(&mut rest).await;
    });
    (addr, heard)
}

fn settings(timeout: Duration) -> ClientSettings {
    ClientSettings {
        helo_name: "mx.a.test".into(),
        timeouts: Timeouts {
            connect: timeout,
            greeting: timeout,
            command: timeout,
            data_init: timeout,
            data_block: timeout,
            data_final: timeout,
        },
        source: None,
        tls: net::tls::opportunistic_client(&[]).unwrap(),
    }
}

async fn open(addr: SocketAddr, try_tls: bool) -> Result<Session, ClientError> {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    Session::open(
        "mx.test",
        ip,
        addr.port(),
        &settings(Duration::from_secs(2)),
        if try_tls {
            TlsUse::Opportunistic
        } else {
            TlsUse::Off
        },
    )
    .await
}

fn envelope(to: &[&str]) -> OutEnvelope {
    OutEnvelope {
        sender: "alice@a.test".into(),
        recipients: to
            .iter()
            .map(|a| OutRecipient {
                address: a.to_string(),
                notify: None,
                orcpt: None,
            })
            .collect(),
        envid: None,
        ret: None,
        smtputf8: false,
        require_tls: false,
        by: None,
        priority: 0,
    }
}

const MESSAGE: &[u8] = b"Subject: t\r\n\r\nline\r\n.\r\n.x\nbare LF\rbare CR\r\n";

fn message() -> message::spool::Spooled {
    spooled(MESSAGE)
}

fn spooled(content: &[u8]) -> message::spool::Spooled {
    message::spool::Spooled::from_vec(content.to_vec())
}

/// The plain EHLO of a server with PIPELINING (no CHUNKING, no DSN).
fn greet_and_ehlo() -> Vec<Step> {
    vec![
        say("220 mx.test ESMTP\r\n"),
        Hear("EHLO mx.a.test"),
        say("250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100000\r\n"),
    ]
}

fn codes(results: &[RcptResult]) -> Vec<(char, u16)> {
    results
        .iter()
        .map(|r| match r {
            RcptResult::Delivered(x) => ('D', x.code),
            RcptResult::Temporary(x) => ('T', x.code),
            RcptResult::Permanent(x) => ('P', x.code),
        })
        .collect()
}

/// Greet with PIPELINING, play `script`, send MESSAGE to `to`: each recipient's
/// outcome.
async fn transaction(
    script: impl IntoIterator<Item = Step>,
    to: &[&str],
) -> Result<Vec<(char, u16)>, ClientError> {
    let mut steps = greet_and_ehlo();
    steps.extend(script);
    let (addr, _) = server(steps).await;
    let mut s = open(addr, true).await?;
    Ok(codes(&s.send(&envelope(to), &message()).await?))
}

/// C-OB4 and C-SM4: one recipient refused, the others get the message, which
/// leaves dot-stuffed with CRLF only.
#[tokio::test]
async fn one_refused_recipient_and_clean_data() {
    let mut script = greet_and_ehlo();
    script.extend([
        Hear("MAIL FROM:<alice@a.test> SIZE="),
        Hear("RCPT TO:<x@b.test>"),
        Hear("RCPT TO:<nobody@b.test>"),
        Hear("RCPT TO:<y@b.test>"),
        say("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n"),
        Hear("DATA"),
        say("354 go\r\n"),
        Data,
        say("250 2.0.0 queued\r\n"),
    ]);
    let (addr, heard) = server(script).await;
    let mut s = open(addr, true).await.unwrap();
    let results = s
        .send(
            &envelope(&["x@b.test", "nobody@b.test", "y@b.test"]),
            &message(),
        )
        .await
        .unwrap();
    assert_eq!(codes(&results), [('D', 250), ('P', 550), ('D', 250)]);
    assert_eq!(results[1].reply().status(), "5.1.1");
    let heard = String::from_utf8(heard.lock().unwrap().clone()).unwrap();
    assert!(
        heard.ends_with(
            "DATA\r\nSubject: t\r\n\r\nline\r\n..\r\n..x\r\nbare LF\r\nbare CR\r\n.\r\n"
        ),
        "{heard:?}"
    );
}

/// C-OB3: 4xx at each stage is temporary for the recipients concerned.
#[tokio::test]
async fn temporary_failures_at_each_stage() {
    // 421 at the greeting.
    let (addr, _) = server(vec![say("421 4.3.2 busy\r\n")]).await;
    let e = open(addr, true).await.err().unwrap();
    assert!(
        matches!(&e, ClientError::Reply { reply, .. } if reply.code == 421),
        "{e:?}"
    );
    assert!(e.permanent_reply().is_none());

    // 450 at one RCPT, 451 after DATA for the rest.
    let outcome = transaction(
        [
            Hear("MAIL"),
            Hear("RCPT"),
            Hear("RCPT"),
            say("250 ok\r\n450 4.2.1 mailbox busy\r\n250 ok\r\n"),
            Hear("DATA"),
            say("354 go\r\n"),
            Data,
            say("451 4.3.0 local error\r\n"),
        ],
        &["x@b.test", "y@b.test"],
    )
    .await;
    assert_eq!(outcome.unwrap(), [('T', 450), ('T', 451)]);
}

/// C-OB4: 5xx to MAIL or after the data is final for every recipient.
#[tokio::test]
async fn permanent_failures_of_the_transaction() {
    let outcome = transaction(
        [
            Hear("MAIL"),
            Hear("RCPT"),
            Hear("DATA"),
            say("553 5.7.1 sender refused\r\n503 5.5.1 no MAIL\r\n503 5.5.1 no RCPT\r\n"),
            Hear("RSET"),
            say("250 ok\r\n"),
        ],
        &["x@b.test"],
    )
    .await;
    let e = outcome.err().unwrap();
    assert_eq!(e.permanent_reply().map(|r| r.code), Some(553));

    let outcome = transaction(
        [
            Hear("MAIL"),
            Hear("RCPT"),
            say("250 ok\r\n250 ok\r\n"),
            Hear("DATA"),
            say("354 go\r\n"),
            Data,
            say("554 5.7.1 spam\r\n"),
        ],
        &["x@b.test"],
    )
    .await;
    assert_eq!(outcome.unwrap(), [('P', 554)]);

    // RFC 2920 §3.1: DATA is refused, except for a recipient already refused.
    let outcome = transaction(
        [
            Hear("MAIL"),
            Hear("RCPT"),
            Hear("RCPT"),
            Hear("DATA"),
            say("250 ok\r\n450 4.2.1 busy\r\n250 ok\r\n554 5.6.0 no thanks\r\n"),
            Hear("RSET"),
            say("250 ok\r\n"),
        ],
        &["x@b.test", "y@b.test"],
    )
    .await;
    assert_eq!(outcome.unwrap(), [('T', 450), ('P', 554)]);
}

/// RFC 2920 §3.1: a server that says 354 to a pipelined DATA although it
/// refused every recipient gets an empty message, and nothing is delivered.
#[tokio::test]
async fn pipelined_data_after_refused_recipients() {
    let mut script = greet_and_ehlo();
    script.extend([
        Hear("MAIL"),
        Hear("RCPT"),
        Hear("DATA"),
        say("250 ok\r\n550 5.1.1 unknown\r\n354 go on\r\n"),
        Hear(".\r\n"),
        say("554 5.5.1 no valid recipients\r\n"),
        Hear("RSET"),
        say("250 ok\r\n"),
    ]);
    let (addr, heard) = server(script).await;
    let mut s = open(addr, true).await.unwrap();
    let results = s.send(&envelope(&["x@b.test"]), &message()).await.unwrap();
    assert_eq!(codes(&results), [('P', 550)]);
    let heard = String::from_utf8(heard.lock().unwrap().clone()).unwrap();
    assert!(!heard.contains("Subject"), "{heard:?}");
}

/// C-OB1, C-OB2: oversized and malformed replies are protocol errors (so
/// temporary), never a delivery.
#[tokio::test]
async fn garbage_replies_are_temporary_errors() {
    let endless: String = "250-x\r\n".repeat(100_000);
    let long_line = format!("250 {}\r\n", "x".repeat(1_000_000));
    for bad in [endless, long_line] {
        let (addr, _) = server(vec![say("220 mx.test\r\n"), Hear("EHLO"), Say(bad)]).await;
        let e = open(addr, true).await.err().unwrap();
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
    }
    for bad in ["999 x\r\n", "25 x\r\n", "2500 ok\r\n", "250x\r\n"] {
        let mut script = greet_and_ehlo();
        script.extend([
            Hear("MAIL"),
            Hear("RCPT"),
            say("250 ok\r\n250 ok\r\n"),
            Hear("DATA"),
            say("354 go\r\n"),
            Data,
            say(bad),
        ]);
        let (addr, _) = server(script).await;
        let mut s = open(addr, true).await.unwrap();
        let e = s
            .send(&envelope(&["x@b.test"]), &message())
            .await
            .err()
            .unwrap();
        assert!(matches!(e, ClientError::Protocol(_)), "{bad:?}: {e:?}");
        assert!(e.permanent_reply().is_none());
    }
}

/// C-OB5, C-OB6: a server that never greets, one that stalls after the data,
/// one that hangs up after the dot: timeouts and errors, never "delivered".
#[tokio::test]
async fn stalls_and_hangups() {
    let (addr, _) = server(vec![Stall(Duration::from_secs(10))]).await;
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let fast = settings(Duration::from_millis(300));
    let e = Session::open("mx.test", ip, addr.port(), &fast, TlsUse::Opportunistic)
        .await
        .err()
        .unwrap();
    assert_eq!(e, ClientError::Timeout("the greeting"));

    let mut script = greet_and_ehlo();
    script.extend([
        Hear("MAIL"),
        Hear("RCPT"),
        say("250 ok\r\n250 ok\r\n"),
        Hear("DATA"),
        say("354 go\r\n"),
        Data,
        Stall(Duration::from_secs(10)),
    ]);
    let (addr, _) = server(script).await;
    let mut s = Session::open("mx.test", ip, addr.port(), &fast, TlsUse::Opportunistic)
        .await
        .unwrap();
    let e = s
        .send(&envelope(&["x@b.test"]), &message())
        .await
        .err()
        .unwrap();
    assert_eq!(e, ClientError::Timeout("the reply after the data"));

    // A server that reads the dot and hangs up without a reply.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut io = BufReader::new(tcp);
        io.get_mut().write_all(b"220 mx.test\r\n").await.unwrap();
        let mut line = String::new();
        while io.read_line(&mut line).await.unwrap_or(0) > 0 {
            let reply: &[u8] = match line.as_str() {
                l if l.starts_with("EHLO") => b"250 mx.test\r\n",
                l if l.starts_with("DATA") => b"354 go\r\n",
                ".\r\n" => return, // hang up instead of answering
                l if l.starts_with("MAIL") || l.starts_with("RCPT") => b"250 ok\r\n",
                _ => b"",
            };
            io.get_mut().write_all(reply).await.unwrap();
            line.clear();
        }
    });
    let mut s = Session::open("mx.test", ip, port, &fast, TlsUse::Opportunistic)
        .await
        .unwrap();
    let e = s
        .send(&envelope(&["x@b.test"]), &message())
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
}

/// C-TLS6: what the server sent after its 220 to STARTTLS, before the
/// handshake, is dropped; the session goes on over TLS with a fresh EHLO.
#[tokio::test]
async fn injected_plaintext_before_tls_is_dropped() {
    let script = vec![
        say("220 mx.test\r\n"),
        Hear("EHLO"),
        say("250-mx.test\r\n250 STARTTLS\r\n"),
        Hear("STARTTLS"),
        say("220 go ahead\r\n250 injected\r\n"),
        Tls,
        Hear("EHLO"),
        say("250-mx.test\r\n250 CHUNKING\r\n"),
        Hear("MAIL FROM:<alice@a.test>\r\n"),
        say("250 ok\r\n"),
        Hear("RCPT"),
        say("451 4.7.1 greylisted\r\n"),
        Hear("RSET"),
        say("250 ok\r\n"),
    ];
    let (addr, _) = server(script).await;
    let mut s = open(addr, true).await.unwrap();
    assert!(s.tls.as_deref().unwrap().starts_with("TLSv1.3"));
    assert!(
        s.ext.chunking && !s.ext.starttls,
        "extensions come from the EHLO after TLS"
    );
    let results = s.send(&envelope(&["x@b.test"]), &message()).await.unwrap();
    assert_eq!(codes(&results), [('T', 451)], "not the injected 250");
}

/// A server without EHLO gets HELO and a plain transaction; CHUNKING sends BDAT
/// without dot-stuffing.
#[tokio::test]
async fn helo_fallback_and_bdat() {
    let script = vec![
        say("220 old.test\r\n"),
        Hear("EHLO mx.a.test"),
        say("502 5.5.2 what?\r\n"),
        Hear("HELO mx.a.test"),
        say("250 old.test\r\n"),
        Hear("MAIL FROM:<alice@a.test>\r\n"),
        say("250 ok\r\n"),
        Hear("RCPT TO:<x@b.test>\r\n"),
        say("250 ok\r\n"),
        Hear("DATA"),
        say("354 go\r\n"),
        Data,
        say("250 ok\r\n"),
    ];
    let (addr, _) = server(script).await;
    let mut s = open(addr, true).await.unwrap();
    let results = s.send(&envelope(&["x@b.test"]), &message()).await.unwrap();
    assert_eq!(codes(&results), [('D', 250)]);

    let script = vec![
        say("220 new.test\r\n"),
        Hear("EHLO"),
        say("250-new.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
        Hear("MAIL"),
        Hear("RCPT"),
        say("250 ok\r\n250 ok\r\n"),
        Bdat,
        say("250 ok\r\n"),
    ];
    let (addr, heard) = server(script).await;
    let mut s = open(addr, true).await.unwrap();
    let results = s.send(&envelope(&["x@b.test"]), &message()).await.unwrap();
    assert_eq!(codes(&results), [('D', 250)]);
    let heard = String::from_utf8(heard.lock().unwrap().clone()).unwrap();
    let body = "Subject: t\r\n\r\nline\r\n.\r\n.x\r\nbare LF\r\nbare CR\r\n";
    assert!(
        heard.ends_with(&format!("BDAT {} LAST\r\n{body}", body.len())),
        "{heard:?}"
    );
}

/// RFC 6152, RFC 6531 §3.4: 8-bit content to a server without 8BITMIME and a
/// message that needs SMTPUTF8 to a server without it are refused before any
/// transaction; a message that declared SMTPUTF8 without needing it goes
/// without the parameter.
#[tokio::test]
async fn eight_bit_and_smtputf8_to_a_plain_server() {
    let plain = || {
        vec![
            say("220 plain.test\r\n"),
            Hear("EHLO"),
            say("250 plain.test\r\n"),
        ]
    };
    let (addr, _) = server(plain()).await;
    let mut s = open(addr, true).await.unwrap();
    let results = s
        .send(
            &envelope(&["x@b.test"]),
            &spooled("Subject: café\r\n\r\nx\r\n".as_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(codes(&results), [('P', 554)]);
    assert_eq!(results[0].reply().status(), "5.6.3");

    let mut utf8 = envelope(&["jörg@b.test"]);
    utf8.smtputf8 = true;
    let results = s
        .send(&utf8, &spooled(b"Subject: x\r\n\r\nx\r\n"))
        .await
        .unwrap();
    assert_eq!(results[0].reply().status(), "5.6.7");

    let mut declared = envelope(&["x@b.test"]);
    declared.smtputf8 = true;
    let mut script = plain();
    script.extend([
        Hear("MAIL FROM:<alice@a.test>\r\n"),
        say("250 ok\r\n"),
        Hear("RCPT TO:<x@b.test>\r\n"),
        say("250 ok\r\n"),
        Hear("DATA"),
        say("354 go\r\n"),
        Data,
        say("250 ok\r\n"),
    ]);
    let (addr, _) = server(script).await;
    let mut s = open(addr, true).await.unwrap();
    let results = s
        .send(&declared, &spooled(b"Subject: x\r\n\r\nx\r\n"))
        .await
        .unwrap();
    assert_eq!(codes(&results), [('D', 250)]);
}

/// RFC 2852 §4.1.1 and RFC 6710: BY= (the time left) and MT-PRIORITY= go on
/// MAIL to a server that offers DELIVERBY and MT-PRIORITY; not to others.
#[tokio::test]
async fn deliverby_and_priority_are_passed_on() {
    let mut env = envelope(&["x@b.test"]);
    env.by = Some((300, true, true));
    env.priority = 4;
    for offered in [true, false] {
        let ehlo = if offered {
            "250-mx.test\r\n250-DELIVERBY 60\r\n250 MT-PRIORITY MIXER\r\n"
        } else {
            "250 mx.test\r\n"
        };
        let (addr, heard) = server(vec![
            say("220 mx.test ESMTP\r\n"),
            Hear("EHLO mx.a.test"),
            say(ehlo),
            Hear("MAIL FROM:<alice@a.test>"),
            say("250 ok\r\n"),
            Hear("RCPT TO:<x@b.test>"),
            say("250 ok\r\n"),
            Hear("DATA"),
            say("354 go\r\n"),
            Data,
            say("250 2.0.0 queued\r\n"),
        ])
        .await;
        let mut s = open(addr, false).await.unwrap();
        let results = s.send(&env, &message()).await.unwrap();
        assert_eq!(codes(&results), [('D', 250)]);
        let heard = String::from_utf8(heard.lock().unwrap().clone()).unwrap();
        let mail = heard.lines().find(|l| l.starts_with("MAIL")).unwrap();
        assert_eq!(
            mail.contains(" BY=300;RT") && mail.contains(" MT-PRIORITY=4"),
            offered,
            "{mail}"
        );
    }
}
