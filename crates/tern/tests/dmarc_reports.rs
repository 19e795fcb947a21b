//! DMARC aggregate reports in both directions (RFC 7489 §7): c.test checks
//! mail from a.test, records each evaluation and reports them; a.test
//! receives and parses the report; an external destination gets it only when
//! it authorized it (§7.1), and its copy is validated against the RFC 7489
//! schema by Python's xmlschema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MailNet, Sink, mx_port, submit};
use testkit::TernServer;

fn message(subject: &str) -> String {
    format!(
        "From: <alice@a.test>\r\nTo: <carol@c.test>\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@a.test>\r\n\r\nHello.\r\n"
    )
}

/// a.test (alice) and c.test (carol, `reports` its [reports] settings), published.
fn sender_and_receiver(net: &MailNet, reports: &str) -> (TernServer, TernServer) {
    let a = net.tern(10, "a.test", &[], "");
    let c = net.tern(
        30,
        "c.test",
        &[("carol@c.test", "carol-pw")],
        &format!("[reports]\n{reports}"),
    );
    net.publish(&a, 10, "a.test");
    net.publish(&c, 30, "c.test");
    (a, c)
}

/// One reporting period (2 s here, standing in for a day): two messages
/// from a.test pass, a forged one is rejected; `tern report send` on c.test
/// then reports all three to a.test and to the authorized r.test, not to
/// s.test; a.test shows what the report says.
#[test]
fn a_reporting_period_is_reported_and_read_back() {
    let net = MailNet::new(131);
    let (a, c) = sender_and_receiver(&net, "dmarc_send = false\ndmarc_interval = \"2s\"\n");
    net.dns.remove("_dmarc.a.test");
    net.dns.txt(
        "_dmarc.a.test",
        "v=DMARC1; p=reject; rua=mailto:dmarc-reports@a.test,mailto:agg@r.test!10m,mailto:agg@s.test",
    );
    // r.test takes a.test's reports (RFC 7489 §7.1); s.test never said so.
    net.dns.txt("a.test._report._dmarc.r.test", "v=DMARC1");
    net.dns
        .mx("r.test", 10, "mx.r.test")
        .a("mx.r.test", net.ip(40));
    let sink = Sink::start(net.ip(40), mx_port(), &[]);

    for subject in ["one", "two"] {
        submit(
            &a,
            "alice@a.test",
            "alice-pw",
            &["carol@c.test"],
            &message(subject),
        );
    }
    net.wait(30, "the two messages at c", &[&a, &c], || {
        net.inbox(&c, "carol@c.test").len() == 2
    });
    // A forger at 127.0.131.50: rejected by a.test's policy, and reported.
    let forged = net.send_from(
        50,
        c.addr("smtp"),
        "forger.test",
        "alice@a.test",
        "carol@c.test",
        message("forged").as_bytes(),
    );
    assert!(forged[2].starts_with("550 5.7.1 "), "{forged:?}");

    // The period ends (and the background recording is in).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let sent = c.admin_ok(&["report", "send"]);
    assert!(sent.starts_with("a.test: 3 messages; sent to dmarc-reports@a.test, agg@r.test; not to agg@s.test: external destination not authorized (a.test._report._dmarc.s.test)"), "{sent}");
    assert_eq!(
        c.admin_ok(&["report", "send"]).trim(),
        "no DMARC aggregate reports due\nno TLS reports due",
        "reported once"
    );

    // a.test parses what arrived at its report address.
    net.wait(30, "the report at a", &[&a, &c], || {
        !a.admin_ok(&["report", "list"]).is_empty()
    });
    let list = a.admin_ok(&["report", "list"]);
    assert!(list.starts_with("1\tdmarc\ta.test\tc.test\t"), "{list}");
    assert!(list.contains("3 messages, 1 failing DMARC"), "{list}");
    let shown = a.admin_ok(&["report", "show", "1"]);
    for line in [
        "Policy: a.test p=reject sp=reject adkim=r aspf=r",
        "127.0.131.10: 2 message(s), header_from=a.test envelope_from=a.test",
        "dmarc=pass (dkim=pass spf=pass) disposition=none",
        "127.0.131.50: 1 message(s), header_from=a.test envelope_from=a.test",
        "dmarc=fail (dkim=fail spf=fail) disposition=reject",
        "spf: a.test (mfrom) fail",
    ] {
        assert!(shown.contains(line), "no {line:?} in\n{shown}");
    }
    let missing = a.admin(&["report", "show", "9"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("report 9 not found"));

    // The external copy: DKIM-signed by c.test, valid against the schema.
    net.wait(30, "the report at r.test", &[&c], || {
        sink.messages().len() == 1
    });
    let (envelope, report) = sink.messages().remove(0);
    assert!(envelope.contains("dmarc-reports@c.test"), "{envelope}");
    let text = String::from_utf8_lossy(&report).into_owned();
    assert!(
        text.contains("DKIM-Signature: ") && text.contains("d=c.test"),
        "{text}"
    );
    assert!(
        text.contains("Subject: Report Domain: a.test Submitter: c.test Report-ID: <a.test."),
        "{text}"
    );
    let checked = String::from_utf8(common::python("dmarc_report_check.py", &[], &report)).unwrap();
    let (file, xml) = checked.split_once('\n').unwrap();
    assert!(
        file.starts_with("c.test!a.test!") && file.ends_with(".xml.gz"),
        "{file}"
    );
    assert!(xml.contains("<source_ip>127.0.131.50</source_ip>"), "{xml}");
    assert!(xml.contains("<count>2</count>"), "{xml}");

    // The same report zipped (as some receivers send them), under another id.
    let zipped = common::python("dmarc_report_check.py", &["--rezip", "zipped-1"], &report);
    let r = net.send_from(
        60,
        a.addr("smtp"),
        "r.test",
        "agg@r.test",
        "dmarc-reports@a.test",
        &zipped,
    );
    assert!(r[2].starts_with("250 "), "{r:?}");
    let list = a.admin_ok(&["report", "list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.lines().nth(1).unwrap().ends_with("\tzipped-1"),
        "{list}"
    );

    // What reaches the report address and is no report is refused.
    let r = from_other_to_reports(
        &net,
        &a,
        b"From: <x@other.test>\r\nSubject: hello\r\n\r\nNot a report.\r\n",
    );
    assert!(r[2].starts_with("550 5.6.0 "), "{r:?}");
}

/// C-FT9: a message to the report address larger than a report can be
/// (10 MiB) is refused unread, so the server's peak memory hardly moves
/// (it was read whole, and copied, for the parse).
#[test]
fn a_huge_message_to_the_report_address_is_refused_unread() {
    let net = MailNet::new(174);
    let a = net.tern(10, "a.test", &[], "");
    let line = [b'x'; 76];
    let mut huge = b"From: <x@other.test>\r\nSubject: huge\r\n\r\n".to_vec();
    for _ in 0..400_000 {
        huge.extend_from_slice(&line);
        huge.extend_from_slice(b"\r\n");
    }
    let before = common::peak_rss_kib(a.pid().unwrap());
    let r = from_other_to_reports(&net, &a, &huge);
    let peak = common::peak_rss_kib(a.pid().unwrap());
    eprintln!("server peak RSS {before} KiB before a 31 MB non-report, {peak} KiB after");
    assert!(
        r[2].starts_with(
            "550 5.6.0 Not a DMARC aggregate or TLS report: a report message is at most 10 MiB"
        ),
        "{r:?}"
    );
    assert!(
        peak < before + 16 * 1024,
        "the server's peak memory grew from {before} KiB to {peak} KiB"
    );
}

/// `message` from x@other.test (127.0.N.60) to a.test's report address:
/// the server's replies.
fn from_other_to_reports(net: &MailNet, a: &TernServer, message: &[u8]) -> Vec<String> {
    net.send_from(
        60,
        a.addr("smtp"),
        "other.test",
        "x@other.test",
        "dmarc-reports@a.test",
        message,
    )
}

/// Without `tern report send`: the server sends at the end of each period.
#[test]
fn reports_go_out_on_schedule() {
    let net = MailNet::new(132);
    let (a, c) = sender_and_receiver(&net, "dmarc_interval = \"1s\"\n");
    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["carol@c.test"],
        &message("scheduled"),
    );
    net.wait(30, "the scheduled report at a", &[&a, &c], || {
        a.admin_ok(&["report", "list"])
            .contains("1 messages, 0 failing DMARC")
    });
}

/// RFC 8460: a TLS report (gzipped JSON in a multipart/report) sent to
/// the address `dns records` publishes in `_smtp._tls` is parsed and kept,
/// listed and shown beside the DMARC reports.
#[test]
fn tls_reports_are_received() {
    let net = MailNet::new(163);
    let a = net.tern(10, "a.test", &[], "");
    let records = a.admin_ok(&["dns", "records", "a.test"]);
    assert!(
        records.contains(
            "_smtp._tls.a.test. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:tls-reports@a.test\""
        ),
        "{records}"
    );
    let report = common::python("tlsrpt_message.py", &["a.test", "5065427c-23d3"], b"");
    let r = net.send_from(
        60,
        a.addr("smtp"),
        "company-x.example",
        "tls-reporting@company-x.example",
        "tls-reports@a.test",
        &report,
    );
    assert!(r[2].starts_with("250 "), "{r:?}");
    let list = a.admin_ok(&["report", "list"]);
    assert!(list.starts_with("1\ttls\ta.test\tCompany-X\t"), "{list}");
    assert!(
        list.contains("5629 TLS sessions, 303 failed\t5065427c-23d3"),
        "{list}"
    );
    let shown = a.admin_ok(&["report", "show", "1"]);
    for line in [
        "TLS report 5065427c-23d3 from Company-X <sts-reporting@company-x.example>",
        "Sessions: 5629 (303 failed)",
        "for a.test (MX mx.a.test): 5326 successful, 303 failed",
        "200 session(s) from 2001:db8:abcd:13::1 to mx.a.test",
    ] {
        assert!(shown.contains(line), "no {line:?} in\n{shown}");
    }
    // The same report again: kept once.
    net.send_from(
        60,
        a.addr("smtp"),
        "company-x.example",
        "tls-reporting@company-x.example",
        "tls-reports@a.test",
        &report,
    );
    assert_eq!(a.admin_ok(&["report", "list"]).lines().count(), 1);
}
