//! MTA-STS enforced on send (RFC 8461 §4, §5): b.test publishes an
//! enforce policy (served by a Tern over HTTPS); its MX is a server that
//! is not Tern. With STARTTLS and a certificate valid for the MX name, the
//! mail goes, and the attempt says the certificate was verified under the
//! policy. An MX without STARTTLS, then an MX the policy does not name:
//! the mail waits (4.7.5), never goes in plaintext or elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MailNet, Sink, attempts, mta_sts_record, mx_port, send_from_alice};

#[test]
fn an_enforce_policy_is_honoured() {
    let net = MailNet::new(164);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate(
        dir.path(),
        &["mx.b.test", "mta-sts.b.test", "mta-sts.c.test"],
    );
    let port = common::https_port();
    let b_ip = net.ip(20);
    let b = net.tern(
        20,
        "b.test",
        &[],
        &format!(
            "[listeners]\nhttps = \"{b_ip}:{port}\"\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\
             [mta_sts]\nmode = \"enforce\"\n"
        ),
    );
    // b.test's MX is a server that is not Tern, at .30; its policy is b's.
    let mx_ip = net.ip(30);
    net.dns
        .remove("mx.b.test")
        .a("mx.b.test", mx_ip)
        .a("mta-sts.b.test", b_ip);
    let txt = mta_sts_record(&b, "b.test");
    net.dns.txt("_mta-sts.b.test", &txt);
    let a = net.tern(
        10,
        "a.test",
        &[],
        &format!("[outbound]\nca_file = \"{cert}\"\nmta_sts_port = {port}\n"),
    );

    // STARTTLS with a certificate for mx.b.test: delivered, verified.
    let sink = Sink::start(mx_ip, mx_port(), &["--tls", &cert, &key]);
    send_from_alice(&a, "carol@b.test", "verified");
    net.wait(30, "the message at the MX", &[&a], || {
        sink.messages().len() == 1
    });
    let tried = attempts(&net, &a, "verified", 1);
    assert!(
        tried[0].contains("certificate verified (mta-sts)") && tried[0].contains("250"),
        "{tried:?}"
    );
    drop(sink);

    // The same MX without STARTTLS: enforce mode waits, nothing in plaintext.
    let plain = Sink::start(mx_ip, mx_port(), &[]);
    send_from_alice(&a, "carol@b.test", "no-starttls");
    let tried = attempts(&net, &a, "no-starttls", 2);
    assert!(
        tried
            .iter()
            .all(|t| t.contains("451 4.7.5") && t.contains("STARTTLS is not offered")),
        "{tried:?}"
    );
    assert!(plain.messages().is_empty(), "sent in plaintext");
    assert_eq!(net.queue(&a).len(), 1);

    // c.test (also b's, so the same policy: mx.b.test only) has an MX
    // host the policy does not name: it is not used at all.
    b.admin_ok(&["domain", "add", "c.test"]);
    net.dns
        .mx("c.test", 10, "other.c.test")
        .a("other.c.test", mx_ip);
    net.dns
        .a("mta-sts.c.test", b_ip)
        .txt("_mta-sts.c.test", &txt);
    send_from_alice(&a, "dave@c.test", "unnamed-mx");
    let tried = attempts(&net, &a, "unnamed-mx", 1);
    assert!(
        tried[0].contains("4.7.5 MTA-STS: no MX host of c.test is named by its policy"),
        "{tried:?}"
    );
    assert!(plain.messages().is_empty());
}

/// RFC 8460: a counts the TLS setups of its deliveries and, at the end of
/// each period, sends each domain that asks (`_smtp._tls`) a TLS report:
/// b.test (a Tern: STARTTLS, counted a success) and c.test (an MX without
/// STARTTLS: a failure, "starttls-not-supported"). Both reports go to b's
/// report address, where b reads them.
#[test]
fn tls_reports_go_to_the_domains_that_ask() {
    let net = MailNet::new(165);
    let a = net.tern(10, "a.test", &[], "[reports]\ntls_rpt_interval = \"2s\"\n");
    let b = net.tern(20, "b.test", &[("carol@b.test", "carol-pw")], "");
    let records = b.admin_ok(&["dns", "records", "b.test"]);
    let rua = records
        .lines()
        .find(|l| l.starts_with("_smtp._tls.b.test."))
        .and_then(|l| l.split('"').nth(1))
        .unwrap()
        .to_string();
    net.dns.txt("_smtp._tls.b.test", &rua);
    let mx_ip = net.ip(30);
    net.dns
        .mx("c.test", 10, "mx.c.test")
        .a("mx.c.test", mx_ip)
        .txt(
            "_smtp._tls.c.test",
            "v=TLSRPTv1; rua=mailto:tls-reports@b.test",
        );
    let sink = Sink::start(mx_ip, mx_port(), &[]);
    send_from_alice(&a, "carol@b.test", "to-b");
    send_from_alice(&a, "dave@c.test", "to-c");
    net.wait(30, "both delivered", &[&a, &b], || {
        sink.messages().len() == 1 && !net.inbox(&b, "carol@b.test").is_empty()
    });
    net.wait(30, "two TLS reports at b", &[&a, &b], || {
        b.admin_ok(&["report", "list"])
            .lines()
            .filter(|l| l.contains("\ttls\t"))
            .count()
            >= 2
    });
    let list = b.admin_ok(&["report", "list"]);
    let line = |domain: &str| {
        list.lines()
            .find(|l| l.contains(&format!("\ttls\t{domain}\ta.test\t")))
            .unwrap_or_else(|| panic!("no report about {domain} in\n{list}"))
            .to_string()
    };
    assert!(line("b.test").contains("TLS sessions, 0 failed"), "{list}");
    let c = line("c.test");
    assert!(c.contains("1 TLS sessions, 1 failed"), "{list}");
    let id = c.split('\t').next().unwrap();
    let shown = b.admin_ok(&["report", "show", id]);
    assert!(shown.contains("TLS report c.test."), "{shown}");
    assert!(
        shown.contains("StartTlsNotSupported: 1 session(s)"),
        "{shown}"
    );
    assert!(shown.contains("to mx.c.test"), "{shown}");
}

/// RFC 8461 §5.1: a cached policy is fetched again in the background once
/// half its max_age has passed (here 4 s, so every 2 s), with no mail
/// being sent, so that a policy in use never lapses. And testing mode
/// (§5): d.test shares the policy, its MX offers no STARTTLS; the mail is
/// delivered all the same, and the failure reported (RFC 8460).
#[test]
fn a_cached_policy_is_refreshed_before_it_expires() {
    let net = MailNet::new(170);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate(dir.path(), &["mx.b.test", "mta-sts.b.test"]);
    let port = common::https_port();
    let b_ip = net.ip(20);
    let b = net.tern(
        20,
        "b.test",
        &[("carol@b.test", "carol-pw")],
        &format!(
            "[listeners]\nhttps = \"{b_ip}:{port}\"\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\
             [mta_sts]\nmode = \"testing\"\nmax_age = \"4s\"\n"
        ),
    );
    net.dns.a("mta-sts.b.test", b_ip);
    let txt = mta_sts_record(&b, "b.test");
    net.dns.txt("_mta-sts.b.test", &txt);
    let a = net.tern(
        10,
        "a.test",
        &[],
        &format!(
            "[outbound]\nca_file = \"{cert}\"\nmta_sts_port = {port}\n\
             [reports]\ntls_rpt_interval = \"2s\"\n"
        ),
    );
    let fetches = || {
        b.log()
            .lines()
            .filter(|l| l.contains("proto=\"https\"") && l.ends_with("connected"))
            .count()
    };
    send_from_alice(&a, "carol@b.test", "fetches-the-policy");
    net.wait(30, "the message at b", &[&a, &b], || {
        !net.inbox(&b, "carol@b.test").is_empty()
    });
    let first = fetches();
    assert!(first >= 1, "the policy was fetched for the delivery");
    net.wait(15, "two background refreshes", &[&a, &b], || {
        fetches() >= first + 2
    });

    // Testing mode: an MX without STARTTLS still gets the mail; the
    // failure goes into d.test's TLS report, read at b.
    b.admin_ok(&["domain", "add", "d.test"]);
    let mx_ip = net.ip(30);
    net.dns
        .mx("d.test", 10, "mx.d.test")
        .a("mx.d.test", mx_ip)
        .a("mta-sts.d.test", b_ip)
        .txt("_mta-sts.d.test", &txt)
        .txt(
            "_smtp._tls.d.test",
            "v=TLSRPTv1; rua=mailto:tls-reports@b.test",
        );
    let sink = Sink::start(mx_ip, mx_port(), &[]);
    send_from_alice(&a, "dave@d.test", "testing-mode");
    net.wait(30, "the message at d's MX", &[&a], || {
        sink.messages().len() == 1
    });
    net.wait(30, "the TLS report about d.test at b", &[&a, &b], || {
        b.admin_ok(&["report", "list"])
            .lines()
            .any(|l| l.contains("\ttls\td.test\t") && l.contains("1 failed"))
    });
}
