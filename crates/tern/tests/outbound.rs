//! Outbound delivery end to end: Tern servers on their own 127.0.N.x addresses
//! (N unique per test), a DNS server the test starts, Python's aiosmtpd as a
//! peer that is not Tern. Users submit with Python's smtplib.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MailNet, Sink, dkim_records_json, dkim_tool, mx_port, submit, submit_with, text};
use testkit::TernServer;

const ALICE: (&str, &str) = ("alice@a.test", "alice-pw");
const CAROL: (&str, &str) = ("carol@b.test", "carol-pw");

fn message(to: &str, subject: &str) -> String {
    message_from(ALICE.0, to, subject)
}

fn message_from(from: &str, to: &str, subject: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@a.test>\r\n\r\nHello.\r\n.\r\n..two dots\r\nBye.\r\n"
    )
}

/// `tern queue show ID` of the first queued message ((0, "") if none).
fn queue_show(net: &MailNet, server: &TernServer) -> (i64, String) {
    match net.queue(server).first() {
        Some(q) => (q.id, server.admin_ok(&["queue", "show", &q.id.to_string()])),
        None => (0, String::new()),
    }
}

fn attempts(show: &str) -> usize {
    show.lines()
        .filter(|l| l.trim_start().starts_with("attempt "))
        .count()
}

/// Alice submits a message (Subject `subject`) on `a` to `to`.
fn alice_sends(a: &TernServer, to: &[&str], subject: &str) {
    let refused = submit(a, ALICE.0, ALICE.1, to, &message(to[0], subject));
    assert_eq!(refused, "{}", "the submission server refused recipients");
}

/// Wait until `address` on `server` holds `count` messages; return them as text.
fn wait_for_mail(net: &MailNet, server: &TernServer, address: &str, count: usize) -> Vec<String> {
    net.wait(
        20,
        &format!("{count} message(s) for {address}"),
        &[server],
        || net.inbox(server, address).len() >= count,
    );
    net.inbox(server, address).iter().map(|m| text(m)).collect()
}

/// The report has a block saying `rcpt` ended with `action` and `status`.
fn assert_reported(report: &str, rcpt: &str, action: &str, status: &str) {
    let block =
        format!("Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n");
    assert!(
        report.contains(&block),
        "no {action} {status} for {rcpt} in:\n{report}"
    );
}

/// Alice on a.test writes to carol on b.test, to a recipient b.test does not
/// have, and to bob on a.test: carol gets it once, over TLS, with the dots
/// intact; bob gets his copy locally; alice gets one bounce about the unknown
/// recipient only, from <>.
#[test]
fn tern_to_tern_delivery_and_bounce() {
    let net = MailNet::new(101);
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(20, "b.test", &[CAROL], "");
    alice_sends(
        &a,
        &["carol@b.test", "nobody@b.test", "bob@a.test"],
        "across",
    );
    net.wait(20, "carol's copy and alice's bounce", &[&a, &b], || {
        net.inbox(&b, "carol@b.test").len() == 1 && net.inbox(&a, "alice@a.test").len() == 1
    });
    let carol = text(&net.inbox(&b, "carol@b.test")[0]);
    assert!(
        carol.contains("\r\nHello.\r\n.\r\n..two dots\r\nBye.\r\n"),
        "{carol}"
    );
    assert!(
        carol.contains("from mx.a.test") && carol.contains("with ESMTPS"),
        "{carol}"
    );
    assert_eq!(
        net.inbox(&a, "bob@a.test").len(),
        1,
        "bob's copy stays local"
    );

    let bounce = text(&net.inbox(&a, "alice@a.test")[0]);
    for want in [
        "Return-Path: <>\r\n",
        "From: Mail Delivery System <MAILER-DAEMON@mx.a.test>\r\n",
        "Content-Type: multipart/report; report-type=delivery-status;",
        "Content-Type: message/delivery-status\r\n",
        "Reporting-MTA: dns; mx.a.test\r\n",
        "Final-Recipient: rfc822; nobody@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.b.test\r\n",
        "Diagnostic-Code: smtp; 550 5.1.1",
        "Subject: across\r\n",
    ] {
        assert!(bounce.contains(want), "bounce lacks {want:?}:\n{bounce}");
    }
    assert!(
        !bounce.contains("Final-Recipient: rfc822; carol@b.test"),
        "{bounce}"
    );
    net.wait(10, "an empty queue", &[&a], || net.queue(&a).is_empty());
    // Once, not again on a retry.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(net.inbox(&b, "carol@b.test").len(), 1);
    assert_eq!(net.inbox(&a, "alice@a.test").len(), 1);
}

/// The receiving server is down: every attempt is in `tern queue show`; once
/// it is up, `tern queue retry` sends the mail at once. `tern queue delete`
/// removes a message without a bounce.
#[test]
fn queue_commands() {
    let net = MailNet::new(102);
    let a = net.tern(10, "a.test", &[], "[queue]\nretry = [\"1s\", \"1h\"]\n");
    net.dns
        .mx("b.test", 10, "mx.b.test")
        .a("mx.b.test", net.ip(20));
    alice_sends(&a, &["carol@b.test"], "later");
    net.wait(20, "two attempts", &[&a], || {
        attempts(&queue_show(&net, &a).1) >= 2
    });
    let (id, show) = queue_show(&net, &a);
    assert!(
        show.contains(&format!("message {id}\n  from alice@a.test\n")),
        "{show}"
    );
    assert!(
        show.contains("  to carol@b.test: queued, 2 attempt(s), next "),
        "{show}"
    );
    let ip = net.ip(20);
    assert!(
        show.contains(&format!(
            " mx.b.test [{ip}] no TLS (carol@b.test): 451 4.4.2 cannot connect"
        )),
        "{show}"
    );

    // Now b.test answers; the next attempt would be in an hour: retry now.
    let b = net.tern(20, "b.test", &[CAROL], "");
    let out = a.admin_ok(&["queue", "retry", &id.to_string()]);
    assert_eq!(out.trim(), "1 recipient(s) due now");
    net.wait(20, "delivery after retry", &[&a, &b], || {
        net.inbox(&b, "carol@b.test").len() == 1
    });
    net.wait(10, "an empty queue", &[&a], || net.queue(&a).is_empty());

    // A message for a domain nobody answers for, deleted by the operator.
    net.dns
        .mx("c.test", 10, "mx.c.test")
        .a("mx.c.test", net.ip(30));
    alice_sends(&a, &["dave@c.test"], "never");
    net.wait(20, "an attempt", &[&a], || {
        attempts(&queue_show(&net, &a).1) >= 1
    });
    let (id, _) = queue_show(&net, &a);
    let out = a.admin_ok(&["queue", "delete", &id.to_string()]);
    assert_eq!(out.trim(), format!("deleted queued message {id}"));
    assert!(net.queue(&a).is_empty());
    let missing = a.admin(&["queue", "show", &id.to_string()]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("not found"),
        "{}",
        text(&missing.stderr)
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        net.inbox(&a, "alice@a.test").is_empty(),
        "no bounce after delete"
    );
}

/// RFC 5321 §5.1: the best MX does not answer; the next one gets the mail.
#[test]
fn unreachable_first_mx_falls_back_to_the_next() {
    let net = MailNet::new(103);
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(20, "b.test", &[CAROL], "");
    // Preference 5 is better than b's 10; nothing listens there.
    net.dns
        .mx("b.test", 5, "dead.b.test")
        .a("dead.b.test", net.ip(21));
    alice_sends(&a, &["carol@b.test"], "fallback");
    net.wait(20, "delivery through the second MX", &[&a, &b], || {
        net.inbox(&b, "carol@b.test").len() == 1
    });
    let log = a.log();
    let dead = format!("mx=dead.b.test ip={}", net.ip(21));
    assert!(
        log.contains(&dead),
        "the first MX was tried:\n{}",
        common::tail(&log, 20)
    );
    assert!(net.inbox(&a, "alice@a.test").is_empty(), "no bounce");
}

/// A null MX (RFC 7505) and a domain that does not exist bounce at once, not
/// after the retry schedule.
#[test]
fn null_mx_and_nxdomain_bounce_at_once() {
    let net = MailNet::new(104);
    let a = net.tern(10, "a.test", &[], "[queue]\nretry = [\"1h\"]\n");
    net.dns.mx("nomail.test", 0, ".");
    alice_sends(&a, &["x@nomail.test", "y@gone.test"], "nowhere");
    let bounce = wait_for_mail(&net, &a, "alice@a.test", 1).remove(0);
    assert_reported(&bounce, "x@nomail.test", "failed", "5.1.10");
    assert_reported(&bounce, "y@gone.test", "failed", "5.1.2");
    assert!(net.queue(&a).is_empty());
}

/// SERVFAIL is temporary: retried, never bounced; delivered when DNS recovers.
#[test]
fn servfail_is_retried_not_bounced() {
    let net = MailNet::new(105);
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(20, "b.test", &[CAROL], "");
    net.dns.servfail("b.test");
    alice_sends(&a, &["carol@b.test"], "flaky");
    net.wait(20, "three attempts", &[&a], || {
        attempts(&queue_show(&net, &a).1) >= 3
    });
    let (_, show) = queue_show(&net, &a);
    assert!(show.contains("451 4.4.3 DNS:"), "{show}");
    assert!(
        net.inbox(&a, "alice@a.test").is_empty(),
        "no bounce for SERVFAIL"
    );
    net.dns.answer_again("b.test");
    net.wait(20, "delivery once DNS answers", &[&a, &b], || {
        net.inbox(&b, "carol@b.test").len() == 1
    });
    assert!(net.inbox(&a, "alice@a.test").is_empty());
}

/// RFC 5321 §6.1, hardening.md C-RL8: mail from <> that cannot be delivered
/// is dropped with a log line, never bounced; the same failure from a real
/// sender is bounced.
#[test]
fn undeliverable_mail_from_null_sender_is_not_bounced() {
    let net = MailNet::new(106);
    let a = net.tern(10, "a.test", &[], "");
    // fwd@a.test forwards to carol@far.test; far.test does not exist.
    let mx = a.addr("smtp");
    testkit::send_smtp(
        mx,
        "",
        "fwd@a.test",
        "From: <bob@a.test>\r\nSubject: from null\r\n\r\nx",
    );
    net.wait(15, "the failure", &[&a], || {
        a.log().contains("no delivery status notification")
    });
    assert!(net.queue(&a).is_empty());
    testkit::send_smtp(
        mx,
        "bob@a.test",
        "fwd@a.test",
        "From: <bob@a.test>\r\nSubject: from bob\r\n\r\nx",
    );
    net.wait(15, "bob's bounce", &[&a], || {
        net.inbox(&a, "bob@a.test").len() == 1
    });
    let bounce = text(&net.inbox(&a, "bob@a.test")[0]);
    assert!(
        bounce.contains("Final-Recipient: rfc822; carol@far.test"),
        "{bounce}"
    );
    // RFC 3461 §4.2: the original recipient is kept through the alias.
    assert!(
        bounce.contains("Original-Recipient: rfc822; fwd@a.test"),
        "{bounce}"
    );
    assert!(net.inbox(&a, "alice@a.test").is_empty());
}

/// hardening.md C-FT1: kill -9 with mail in the queue; after the restart all of
/// it is delivered, each message once.
#[test]
fn queued_mail_survives_kill_9() {
    let net = MailNet::new(107);
    let mut a = net.tern(10, "a.test", &[], "");
    net.dns
        .mx("b.test", 10, "mx.b.test")
        .a("mx.b.test", net.ip(20));
    for i in 0..3 {
        alice_sends(&a, &["carol@b.test"], &format!("crash{i}"));
    }
    net.wait(20, "attempts on every message", &[&a], || {
        let q = net.queue(&a);
        q.len() == 3
            && q.iter()
                .all(|m| attempts(&a.admin_ok(&["queue", "show", &m.id.to_string()])) >= 1)
    });
    a.kill();
    let b = net.tern(20, "b.test", &[CAROL], "");
    a.spawn();
    net.wait(30, "three deliveries", &[&a, &b], || {
        net.inbox(&b, "carol@b.test").len() == 3
    });
    net.wait(10, "an empty queue", &[&a], || net.queue(&a).is_empty());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let subjects: Vec<String> = net
        .inbox(&b, "carol@b.test")
        .iter()
        .map(|m| {
            text(m)
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut sorted = subjects.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 3, "each message once: {subjects:?}");
}

/// A peer that is not Tern (aiosmtpd: no PIPELINING, no CHUNKING, no DSN, no
/// STARTTLS) greylists the first attempt: Tern retries; the data arrives
/// dot-stuffed correctly and with CRLF only (C-SM4); NOTIFY=SUCCESS, which the
/// peer cannot carry on, gets a "relayed" report (RFC 3461 §5.2.2.1).
#[test]
fn greylisting_peer_that_is_not_tern() {
    let net = MailNet::new(108);
    let a = net.tern(10, "a.test", &[], "");
    let sink = Sink::start(net.ip(20), mx_port(), &["--greylist"]);
    net.dns
        .mx("sink.test", 10, "mx.sink.test")
        .a("mx.sink.test", net.ip(20));
    submit_with(
        &a,
        ALICE.0,
        ALICE.1,
        &["u@sink.test"],
        &["NOTIFY=SUCCESS,FAILURE"],
        &message("u@sink.test", "grey"),
    );
    net.wait(20, "delivery to the sink", &[&a], || {
        sink.messages().len() == 1
    });
    let (meta, content) = &sink.messages()[0];
    assert!(
        meta.contains("\"mail_from\": \"alice@a.test\"")
            && meta.contains("\"helo\": \"mx.a.test\""),
        "{meta}"
    );
    let content = text(content);
    assert!(
        content.contains("\r\nHello.\r\n.\r\n..two dots\r\nBye.\r\n"),
        "{content}"
    );
    assert!(
        content
            .bytes()
            .zip(content.bytes().skip(1))
            .all(|(x, y)| y != b'\n' || x == b'\r'),
        "bare LF on the wire"
    );
    assert!(
        a.log().contains("451 4.7.1 greylisted"),
        "the first attempt was greylisted"
    );
    let report = wait_for_mail(&net, &a, "alice@a.test", 1).remove(0);
    assert_reported(&report, "u@sink.test", "relayed", "2.0.0");
}

/// RFC 3461 §5.2.2: NOTIFY=SUCCESS travels to the next Tern, which answers
/// with a "delivered" report once the message is in carol's mailbox (and a
/// local recipient at the sending server gets one from there); the report
/// holds the headers only (§4.3) and comes from the null sender.
#[test]
fn delivered_reports_for_notify_success() {
    let net = MailNet::new(113);
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(20, "b.test", &[CAROL], "");
    submit_with(
        &a,
        ALICE.0,
        ALICE.1,
        &["carol@b.test", "bob@a.test"],
        &["NOTIFY=SUCCESS ORCPT=rfc822;carol@b.test"],
        &message("carol@b.test", "tell-me"),
    );
    let reports = wait_for_mail(&net, &a, "alice@a.test", 2);
    let all: String = reports.concat();
    for r in &reports {
        assert!(
            r.starts_with("Return-Path: <>\r\n") || r.contains("\r\nReturn-Path: <>\r\n"),
            "{r}"
        );
        assert!(r.contains("Content-Type: text/rfc822-headers"), "{r}");
        assert!(!r.contains("..two dots"), "headers only: {r}");
    }
    assert_reported(&all, "carol@b.test", "delivered", "2.0.0");
    assert!(all.contains("Reporting-MTA: dns; mx.b.test"), "{all}");
    assert!(
        all.contains("Original-Recipient: rfc822; carol@b.test"),
        "{all}"
    );
    assert_reported(&all, "bob@a.test", "delivered", "2.0.0");
    assert!(all.contains("Reporting-MTA: dns; mx.a.test"), "{all}");
    assert_eq!(net.inbox(&b, "carol@b.test").len(), 1);
}

/// RFC 4865 FUTURERELEASE: a held message reaches nobody, local or remote,
/// before its release time; then both get it.
#[test]
fn held_mail_waits_for_its_release() {
    let net = MailNet::new(114);
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(20, "b.test", &[CAROL], "");
    let start = std::time::Instant::now();
    submit_with(
        &a,
        ALICE.0,
        ALICE.1,
        &["carol@b.test", "bob@a.test"],
        &["MAIL:HOLDFOR=3"],
        &message("carol@b.test", "later"),
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(net.inbox(&a, "bob@a.test").is_empty(), "held for bob too");
    assert!(net.inbox(&b, "carol@b.test").is_empty());
    assert_eq!(net.queue(&a).len(), 1);
    net.wait(20, "both copies after the release", &[&a, &b], || {
        net.inbox(&a, "bob@a.test").len() == 1 && net.inbox(&b, "carol@b.test").len() == 1
    });
    assert!(start.elapsed() >= std::time::Duration::from_secs(3));
    assert!(net.queue(&a).is_empty());
    // Longer than offered (30 days by default): 501 at MAIL (RFC 4865 §4).
    let said = common::submit_refused(
        &a,
        ALICE.0,
        ALICE.1,
        "bob@a.test",
        &["MAIL:HOLDFOR=99999999"],
    );
    assert!(said.contains("501"), "{said}");
}

/// RFC 2852 DELIVERBY: with R, a message not delivered by its deadline
/// fails with 5.4.7; with N, the sender is told (4.4.7) and delivery goes on.
#[test]
fn deliver_by_deadlines() {
    let net = MailNet::new(115);
    let a = net.tern(10, "a.test", &[], "[smtp]\nmin_deliver_by = \"1s\"\n");
    // The MX of down.test never answers.
    net.dns
        .mx("down.test", 10, "mx.down.test")
        .a("mx.down.test", net.ip(99));
    submit_with(
        &a,
        ALICE.0,
        ALICE.1,
        &["x@down.test"],
        &["MAIL:BY=2;R"],
        &message("x@down.test", "by-return"),
    );
    submit_with(
        &a,
        ALICE.0,
        ALICE.1,
        &["y@down.test"],
        &["MAIL:BY=1;N"],
        &message("y@down.test", "by-notify"),
    );
    let reports = wait_for_mail(&net, &a, "alice@a.test", 2).concat();
    assert_reported(&reports, "x@down.test", "failed", "5.4.7");
    assert_reported(&reports, "y@down.test", "delayed", "4.4.7");
    let left = net.queue(&a);
    assert_eq!(left.len(), 1, "the N message is still tried: {left:?}");
    assert_eq!(left[0].recipients[0].0, "y@down.test");
}

/// RFC 9422 LIMITS: a server that takes 2 recipients per transaction gets
/// five in three transactions, in one delivery run (no 452 and retry).
#[test]
fn recipients_split_by_the_peers_limit() {
    let net = MailNet::new(116);
    let a = net.tern(10, "a.test", &[], "");
    let users: Vec<(String, &str)> = (1..=5).map(|i| (format!("u{i}@b.test"), "pw-u")).collect();
    let refs: Vec<(&str, &str)> = users.iter().map(|(u, p)| (u.as_str(), *p)).collect();
    let b = net.tern(20, "b.test", &refs, "[smtp]\nmax_recipients = 2\n");
    let to: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    alice_sends(&a, &to, "many");
    net.wait(20, "five copies", &[&a, &b], || {
        to.iter().all(|u| net.inbox(&b, u).len() == 1)
    });
    assert_eq!(
        b.log().matches("message accepted").count(),
        3,
        "{}",
        b.log()
    );
    // Never refused for too many recipients (a bare "452" could be part of
    // a timestamp or a message id in the log).
    let log = b.log();
    assert!(
        !log.contains("too many recipients") && !log.contains("452 4.5.3"),
        "{log}"
    );
}

/// What the next server says it cannot take is not sent: a message over its
/// SIZE (RFC 1870 §6) and a message that needs SMTPUTF8 (RFC 6531 §3.4) to a
/// server without it bounce without a transaction.
#[test]
fn size_and_smtputf8_limits_of_the_peer() {
    let net = MailNet::new(109);
    let a = net.tern(10, "a.test", &[], "");
    let sink = Sink::start(net.ip(20), mx_port(), &["--size", "2000"]);
    net.dns
        .mx("sink.test", 10, "mx.sink.test")
        .a("mx.sink.test", net.ip(20));
    let big = format!("{}{}\r\n", message("u@sink.test", "big"), "x".repeat(3000));
    submit(&a, ALICE.0, ALICE.1, &["u@sink.test"], &big);
    alice_sends(&a, &["jörg@sink.test"], "utf8");
    net.wait(20, "two bounces", &[&a], || {
        net.inbox(&a, "alice@a.test").len() == 2
    });
    let bounces: String = net
        .inbox(&a, "alice@a.test")
        .iter()
        .map(|m| text(m))
        .collect();
    assert!(
        bounces.contains("Action: failed\r\nStatus: 5.3.4\r\n"),
        "{bounces}"
    );
    assert!(
        bounces.contains("Action: failed\r\nStatus: 5.6.7\r\n"),
        "{bounces}"
    );
    assert!(sink.messages().is_empty());
}

/// RFC 6152 §3: an 8-bit message to a server without 8BITMIME goes out
/// converted to 7 bit (quoted-printable), not bounced, and Tern's DKIM
/// signatures are made again over the converted form: dkimpy verifies both
/// on what the server received.
#[test]
fn eight_bit_to_a_seven_bit_server_is_converted_and_resigned() {
    let net = MailNet::new(112);
    let a = net.tern(10, "a.test", &[], "");
    let sink = Sink::start(net.ip(20), mx_port(), &["--no-8bitmime"]);
    net.dns
        .mx("sink.test", 10, "mx.sink.test")
        .a("mx.sink.test", net.ip(20));
    let body = format!(
        "From: <{}>\r\nTo: <u@sink.test>\r\nSubject: 8bit\r\nMessage-ID: <8bit@a.test>\r\n\r\nGrüße aus Köln = 100%\r\n",
        ALICE.0
    );
    submit(&a, ALICE.0, ALICE.1, &["u@sink.test"], &body);
    net.wait(20, "the converted message", &[&a], || {
        sink.messages().len() == 1
    });
    let (meta, got) = sink.messages().remove(0);
    assert!(got.is_ascii(), "{}", text(&got));
    let got_text = text(&got);
    assert!(
        got_text.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
        "{got_text}"
    );
    assert!(
        got_text.contains("Gr=C3=BC=C3=9Fe aus K=C3=B6ln =3D 100%"),
        "{got_text}"
    );
    assert!(!meta.contains("8BITMIME"), "{meta}");
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.json");
    dkim_records_json(&a, "a.test", &records);
    let verdict = text(&dkim_tool(&["verify", records.to_str().unwrap()], &got));
    assert_eq!(
        verdict.matches(" pass").count(),
        2,
        "dkimpy says {verdict}\n{got_text}"
    );
    assert!(net.inbox(&a, "alice@a.test").is_empty(), "no bounce");
    // A large one is converted a piece at a time (C-FT9): the sender's
    // peak memory hardly moves; the text arrives intact.
    let line = "Grüße aus Köln, eine lange Zeile = 100%\r\n";
    let text_body = line.repeat(12_000_000 / line.len());
    let large = format!(
        "From: <{}>\r\nTo: <u@sink.test>\r\nSubject: 8bit large\r\nMessage-ID: <8bit-large@a.test>\r\n\r\n{text_body}",
        ALICE.0
    );
    let pid = a.pid().unwrap();
    let before = common::peak_rss_kib(pid);
    submit(&a, ALICE.0, ALICE.1, &["u@sink.test"], &large);
    net.wait(30, "the large converted message", &[&a], || {
        sink.messages().len() == 2
    });
    let peak = common::peak_rss_kib(pid);
    eprintln!("sender peak RSS {before} KiB before, {peak} KiB after converting 12 MB");
    assert!(
        peak < before + 24 * 1024,
        "the sender's peak memory grew from {before} KiB to {peak} KiB"
    );
    let (_, got) = sink.messages().remove(1);
    assert!(got.is_ascii());
    let body = &got[message::header::header_end(&got)..];
    assert!(message::mime::decode_qp(body) == text_body.as_bytes());
    let verdict = text(&dkim_tool(&["verify", records.to_str().unwrap()], &got));
    assert_eq!(verdict.matches(" pass").count(), 2, "dkimpy says {verdict}");
}

/// RFC 5321 §5.1, hardening.md C-RL10: an MX that is this server, by name or
/// by address, is a loop: 5.4.6, never a delivery to itself.
#[test]
fn mx_pointing_back_is_a_loop() {
    let net = MailNet::new(110);
    let a = net.tern(10, "a.test", &[], "");
    net.dns.mx("loop.test", 10, "mx.a.test");
    net.dns
        .mx("alias.test", 10, "other.alias.test")
        .a("other.alias.test", net.ip(10));
    alice_sends(&a, &["x@loop.test", "y@alias.test"], "loop");
    let bounce = wait_for_mail(&net, &a, "alice@a.test", 1).remove(0);
    assert_reported(&bounce, "x@loop.test", "failed", "5.4.6");
    assert_reported(&bounce, "y@alias.test", "failed", "5.4.6");
    assert!(net.queue(&a).is_empty());
}

/// A smarthost with AUTH: all mail goes through it, over TLS, authenticated;
/// one that offers no TLS never sees the password.
#[test]
fn smarthost_with_authentication() {
    let net = MailNet::new(111);
    let tls = tempfile::tempdir().unwrap();
    ::net::tls::Identity::self_signed(tls.path(), &["relay.test".into()]).unwrap();
    let (cert, key) = (tls.path().join("cert.pem"), tls.path().join("key.pem"));
    let relay = Sink::start(
        net.ip(30),
        2587,
        &[
            "--tls",
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            "--auth",
            "relayuser:relaypw",
        ],
    );
    let smarthost = |port: u16| {
        format!(
            "[outbound.smarthost]\nhost = \"{}:{port}\"\nuser = \"relayuser\"\npassword = \"relaypw\"\n",
            net.ip(30)
        )
    };
    let a = net.tern(10, "a.test", &[], &smarthost(2587));
    // far.test is not in DNS at all: the relay route needs no lookup.
    alice_sends(&a, &["someone@far.test"], "relayed");
    net.wait(20, "delivery through the relay", &[&a], || {
        relay.messages().len() == 1
    });
    let (meta, _) = &relay.messages()[0];
    assert!(
        meta.contains("\"tls\": true") && meta.contains("\"auth\": true"),
        "{meta}"
    );

    let plain = Sink::start(net.ip(31), 2587, &["--auth", "relayuser:relaypw"]);
    let b = net.tern(
        11,
        "b.test",
        &[CAROL],
        &smarthost(2587).replace(&net.ip(30).to_string(), &net.ip(31).to_string()),
    );
    submit(
        &b,
        CAROL.0,
        CAROL.1,
        &["someone@far.test"],
        &message_from(CAROL.0, "someone@far.test", "plain"),
    );
    net.wait(20, "a refused attempt", &[&b], || {
        attempts(&queue_show(&net, &b).1) >= 1
    });
    let (_, show) = queue_show(&net, &b);
    assert!(
        show.contains("not sending the password in the clear"),
        "{show}"
    );
    assert!(plain.messages().is_empty());
}

/// RFC 3464 "delayed": with `delay_warning`, the sender hears once that the
/// message is still being retried, then nothing more until it is delivered.
#[test]
fn delay_warning_once() {
    let net = MailNet::new(117);
    let a = net.tern(10, "a.test", &[], "[queue]\ndelay_warning = \"2s\"\n");
    net.dns
        .mx("b.test", 10, "mx.b.test")
        .a("mx.b.test", net.ip(20));
    alice_sends(&a, &["carol@b.test"], "slow");
    let warning = wait_for_mail(&net, &a, "alice@a.test", 1).remove(0);
    for want in [
        "Subject: Delayed Mail (still being retried)\r\n",
        "Final-Recipient: rfc822; carol@b.test\r\nAction: delayed\r\nStatus: 4.4.2\r\n",
        "Will-Retry-Until: ",
        "Content-Type: text/rfc822-headers\r\n",
    ] {
        assert!(warning.contains(want), "warning lacks {want:?}:\n{warning}");
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(net.inbox(&a, "alice@a.test").len(), 1, "one warning only");
    // b's address is published again once b knows b.test (a retry that
    // reached it before was refused for good: 554 relay access denied).
    net.dns.remove("mx.b.test");
    let b = net.tern(20, "b.test", &[CAROL], "");
    // Bounded, but generous: on a machine loaded several times over, the
    // retries every second came later than 20 s twice in this test.
    net.wait(60, "the delivery", &[&a, &b], || {
        net.inbox(&b, "carol@b.test").len() == 1
    });
    assert_eq!(net.inbox(&a, "alice@a.test").len(), 1);
}

/// hardening.md C-FT12: a restart with a big deferred queue delivers it all,
/// once each, over a few reused connections rather than a burst of them.
#[test]
fn restart_with_a_big_deferred_queue() {
    const COUNT: usize = 1000;
    let net = MailNet::new(118);
    let mut a = net.tern(10, "a.test", &[], "");
    // fwd@a.test forwards to carol@far.test, which is down for now.
    net.dns
        .mx("far.test", 10, "mx.far.test")
        .a("mx.far.test", net.ip(20));
    let mx = a.addr("smtp");
    let out = std::process::Command::new("python3")
        .arg(common::repo("tests/clients/flood.py"))
        .args([
            &mx.ip().to_string(),
            &mx.port().to_string(),
            "x@elsewhere.test",
            "fwd@a.test",
        ])
        .arg(COUNT.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    net.wait(120, "every message deferred once", &[&a], || {
        a.log().matches("delivery attempt").count() >= COUNT
    });
    a.kill();
    let b = net.tern(20, "far.test", &[("carol@far.test", "carol-pw")], "");
    a.spawn();
    net.wait(180, "every message delivered", &[&a, &b], || {
        net.inbox(&b, "carol@far.test").len() >= COUNT
    });
    net.wait(10, "an empty queue", &[&a], || net.queue(&a).is_empty());
    let mut subjects: Vec<String> = net
        .inbox(&b, "carol@far.test")
        .iter()
        .map(|m| {
            let t = text(m);
            t.lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), COUNT, "each message once");
    // b saw few connections: per-domain limit and reuse, no burst.
    let sessions = b
        .log()
        .lines()
        .filter(|l| l.contains("proto=\"smtp\"") && l.ends_with(": connected"))
        .count();
    assert!(
        (1..=20).contains(&sessions),
        "{sessions} connections for {COUNT} messages"
    );
}

/// C-FT9 outbound: six 6 MB messages wait for b.test, then go out at once.
/// The sender reads each from the spool a piece at a time as it writes it
/// (each was read whole, and copied again for the wire, before), so its
/// memory hardly moves; every message arrives whole (BDAT, Tern to Tern).
#[test]
fn large_messages_leave_a_piece_at_a_time() {
    let net = MailNet::new(119);
    let a = net.tern(10, "a.test", &[], "[queue]\nretry = [\"1h\"]\n");
    net.dns
        .mx("b.test", 10, "mx.b.test")
        .a("mx.b.test", net.ip(20));
    let line = format!("{} a line of a large message\r\n", "w".repeat(50));
    let body = line.repeat(6 * 1024 * 1024 / line.len());
    for i in 0..6 {
        let msg = format!(
            "From: <{}>\r\nTo: <carol@b.test>\r\nSubject: large {i}\r\nMessage-ID: <large{i}@a.test>\r\n\r\n{body}",
            ALICE.0
        );
        let refused = submit(&a, ALICE.0, ALICE.1, &["carol@b.test"], &msg);
        assert_eq!(refused, "{}");
    }
    net.wait(20, "six queued with an attempt each", &[&a], || {
        net.queue(&a).len() == 6 && a.log().matches("delivery attempt").count() >= 6
    });
    let b = net.tern(20, "b.test", &[CAROL], "");
    let pid = a.pid().unwrap();
    let before = common::rss_kib(pid);
    a.admin_ok(&["queue", "retry", "--all"]);
    let mut peak = before;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while net.inbox(&b, "carol@b.test").len() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            common::tail(&a.log(), 20)
        );
        peak = peak.max(common::rss_kib(pid));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    eprintln!("sender RSS {before} KiB before, peak {peak} KiB while sending 36 MB");
    assert!(
        peak < before + 24 * 1024,
        "the sender's memory grew from {before} KiB to {peak} KiB"
    );
    for m in net.inbox(&b, "carol@b.test") {
        assert!(
            text(&m).ends_with(&body),
            "a message arrived cut or changed"
        );
    }
}

/// A bounce returns a message up to a MiB whole (RFC 3461 §4.3: without RET
/// the MTA chooses); a larger one goes back as its header section alone,
/// and never leaves the queue whole (C-FT9).
#[test]
fn a_large_bounced_message_returns_its_header() {
    let net = MailNet::new(173);
    let a = net.tern(10, "a.test", &[], "");
    net.dns.mx("nomail.test", 0, ".");
    let small = message("x@nomail.test", "small");
    assert_eq!(
        submit(&a, ALICE.0, ALICE.1, &["x@nomail.test"], &small),
        "{}"
    );
    let bounce = wait_for_mail(&net, &a, "alice@a.test", 1).remove(0);
    assert!(
        bounce.contains("Content-Type: message/rfc822\r\n"),
        "{bounce}"
    );
    assert!(bounce.contains("..two dots\r\nBye.\r\n"), "{bounce}");
    let line = format!("{}\r\n", "large body line ".repeat(4));
    let large = format!(
        "From: <alice@a.test>\r\nTo: <y@nomail.test>\r\nSubject: large\r\nMessage-ID: <large@a.test>\r\n\r\n{}",
        line.repeat(3_000_000 / line.len())
    );
    assert_eq!(
        submit(&a, ALICE.0, ALICE.1, &["y@nomail.test"], &large),
        "{}"
    );
    let bounces = wait_for_mail(&net, &a, "alice@a.test", 2);
    let bounce = bounces
        .iter()
        .find(|b| b.contains("y@nomail.test"))
        .unwrap();
    assert_reported(bounce, "y@nomail.test", "failed", "5.1.10");
    assert!(
        bounce.contains("Content-Type: text/rfc822-headers\r\n"),
        "{bounce}"
    );
    assert!(bounce.contains("Subject: large\r\n"), "{bounce}");
    assert!(
        bounce.len() < 16 * 1024,
        "a bounce of {} octets",
        bounce.len()
    );
}
