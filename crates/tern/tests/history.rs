//! `tern history`: a message's life as the operator asks about it, from a
//! real mail network (two Terns, a non-Tern SMTP server that greylists,
//! a null MX): accepted with its verdicts, refused recipients, the mailbox
//! each copy was filed into, queued, each attempt with MX, IP, TLS and
//! reply, deferred, delivered, failed, bounced; found by address, by
//! Message-ID, by the SMTP id of "queued as" and by queue id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MailNet, Sink, history, mx_port, submit};
use serde_json::Value;

/// The (event, recipient) pairs, in order.
fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["recipient"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

fn detail<'a>(events: &'a [Value], event: &str, recipient: &str) -> &'a str {
    events
        .iter()
        .find(|e| e["event"] == event && e["recipient"].as_str() == Some(recipient))
        .and_then(|e| e["detail"].as_str())
        .unwrap_or_else(|| panic!("no {event} for {recipient} in {events:#?}"))
}

#[test]
fn a_message_life_from_smtp_to_the_next_hop() {
    let net = MailNet::new(160);
    let a = net.tern(10, "a.test", &[], "");
    // far.test's MX is not Tern, and greylists: the first try is deferred.
    net.dns
        .mx("far.test", 10, "mx.far.test")
        .a("mx.far.test", net.ip(20));
    let sink = Sink::start(net.ip(20), mx_port(), &["--greylist"]);
    net.dns.mx("nomail.test", 0, ".");

    // Inbound: accepted and filed; a recipient refused at RCPT.
    let mx = a.addr("smtp");
    let mut s = std::net::TcpStream::connect(mx).unwrap();
    use std::io::{Read, Write};
    s.write_all(
        b"EHLO client.test\r\nMAIL FROM:<x@elsewhere.test>\r\nRCPT TO:<bob@a.test>\r\n\
          RCPT TO:<nobody@a.test>\r\nDATA\r\n",
    )
    .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("354 ") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    s.write_all(b"From: x@elsewhere.test\r\nMessage-ID: <in-1@elsewhere.test>\r\nSubject: hi\r\n\r\nHello.\r\n.\r\nQUIT\r\n")
        .unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    let smtp_id = rest
        .split("queued as ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no queued as: {rest}"))
        .to_string();

    let inbound = history(&a, "bob@a.test");
    assert_eq!(
        kinds(&inbound),
        [
            ("refused".into(), "nobody@a.test".into()),
            ("accepted".into(), "bob@a.test".into()),
            ("filed".into(), "bob@a.test".into()),
        ]
    );
    let accepted = &inbound[1];
    assert_eq!(accepted["message"], smtp_id.as_str());
    assert_eq!(accepted["sender"], "x@elsewhere.test");
    assert_eq!(accepted["message_id"], "in-1@elsewhere.test");
    let verdicts = accepted["detail"].as_str().unwrap();
    assert!(
        verdicts.starts_with("mx from [127.0.0.1] helo=client.test"),
        "{verdicts}"
    );
    assert!(verdicts.contains("spf="), "{verdicts}");
    assert!(verdicts.contains("spam score"), "{verdicts}");
    assert_eq!(detail(&inbound, "filed", "bob@a.test"), "into INBOX");
    // The refused recipient is found by its address, with the reply it got.
    let refused = history(&a, "nobody@a.test");
    assert_eq!(
        kinds(&refused)[0],
        ("refused".into(), "nobody@a.test".into())
    );
    assert!(detail(&refused, "refused", "nobody@a.test").starts_with("550 5.1.1"));
    // By SMTP id and by Message-ID, the same message.
    assert_eq!(
        history(&a, &smtp_id).len(),
        history(&a, "<in-1@elsewhere.test>").len()
    );

    // Outbound: greylisted once, then delivered; a null MX fails and bounces.
    let message = "From: <alice@a.test>\r\nTo: <carol@far.test>\r\nSubject: out\r\n\
                   Message-ID: <out-1@a.test>\r\n\r\nHello.\r\n";
    let refused = submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["carol@far.test", "x@nomail.test"],
        message,
    );
    assert_eq!(refused, "{}");
    net.wait(30, "delivered to the sink", &[&a], || {
        sink.messages().len() == 1
    });
    net.wait(30, "the bounce", &[&a], || {
        !net.inbox(&a, "alice@a.test").is_empty()
    });
    let mut out = history(&a, "<out-1@a.test>");
    for _ in 0..50 {
        if kinds(&out).iter().any(|(k, _)| k == "bounced")
            && kinds(&out).iter().any(|(k, _)| k == "delivered")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        out = history(&a, "<out-1@a.test>");
    }
    let events: Vec<String> = kinds(&out).into_iter().map(|(k, _)| k).collect();
    for expected in [
        "accepted",
        "queued",
        "attempt",
        "deferred",
        "delivered",
        "failed",
        "bounced",
    ] {
        assert!(
            events.contains(&expected.to_string()),
            "{expected} missing: {out:#?}"
        );
    }
    assert_eq!(events[0], "accepted");
    assert!(
        out[0]["detail"]
            .as_str()
            .unwrap()
            .contains("user=alice@a.test")
    );
    let attempt = out
        .iter()
        .find(|e| e["event"] == "attempt" && e["recipient"] == "carol@far.test")
        .unwrap();
    let attempt = attempt["detail"].as_str().unwrap();
    assert!(
        attempt.starts_with(&format!("mx mx.far.test [{}]", net.ip(20))),
        "{attempt}"
    );
    assert!(attempt.contains("451"), "{attempt}");
    assert!(detail(&out, "delivered", "carol@far.test").contains("250"));
    assert!(detail(&out, "failed", "x@nomail.test").contains("5.1.10"));
    let bounced = detail(&out, "bounced", "alice@a.test");
    assert!(bounced.contains("failed"), "{bounced}");
    // The queue id finds the same life; the address finds it too.
    let queue_id = out.iter().find_map(|e| e["queue_id"].as_i64()).unwrap();
    assert_eq!(history(&a, &format!("Q{queue_id}")).len(), out.len());
    assert!(history(&a, "carol@far.test").len() >= out.len() - 1);

    // The text form: one line an event.
    let text = a.admin_ok(&["history", "<out-1@a.test>"]);
    assert!(
        text.lines()
            .any(|l| l.contains("delivered") && l.contains("carol@far.test")),
        "{text}"
    );
    // Nothing known: a clear error and a non-zero exit.
    let err = a.admin_err(&["history", "nobody-ever@a.test"]);
    assert!(err.contains("no history for nobody-ever@a.test"), "{err}");
}

#[test]
fn old_events_expire() {
    let net = MailNet::new(161);
    let a = net.tern(10, "a.test", &[], "");
    testkit::send_smtp(
        a.addr("smtp"),
        "x@elsewhere.test",
        "bob@a.test",
        "From: x@elsewhere.test\r\nSubject: x\r\n\r\nx",
    );
    assert!(!history(&a, "bob@a.test").is_empty());
    // Expiry through the store, as the hourly task does it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = common::probe(&a);
    let removed = rt
        .block_on(store.0.expire_history(message::date::unix_now() + 10))
        .unwrap();
    assert!(removed >= 2, "{removed}");
    let err = a.admin_err(&["history", "bob@a.test"]);
    assert!(err.contains("no history"), "{err}");
}
