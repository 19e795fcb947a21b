//! Forwarding that survives SPF and DMARC: SRS and ARC sealing, with three
//! Tern servers (a.test sends, b.test forwards, c.test receives) and the test
//! DNS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MailNet, auth_results, submit, text};

fn message(subject: &str, to: &str) -> String {
    format!(
        "From: <alice@a.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@a.test>\r\n\r\nHello.\r\n"
    )
}

/// a.test publishes p=reject; b.test forwards to c.test, which trusts b.test's
/// ARC seal. With a's DKIM intact, DMARC passes at c on DKIM; with a's keys
/// gone from DNS, only b's seal carries it through. Either way SPF at c
/// passes for b's SRS address. A bounce from c comes back through b to alice,
/// and a forged SRS address is refused at b. Through a second forwarder
/// (d.test) the ARC chain grows to i=2 and the SRS0 address becomes SRS1;
/// bounces still find their way back.
#[test]
fn forwarded_mail_keeps_passing_and_bounces_come_back() {
    let net = MailNet::new(130);
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(20, "b.test", &[], "");
    let c = net.tern(
        30,
        "c.test",
        &[("carol@c.test", "carol-pw")],
        "[policy]\ntrusted_arc_sealers = [\"b.test\", \"d.test\"]\n",
    );
    for (server, host, domain) in [(&a, 10, "a.test"), (&b, 20, "b.test"), (&c, 30, "c.test")] {
        net.publish(server, host, domain);
    }
    net.dns.remove("_dmarc.a.test");
    net.dns.txt("_dmarc.a.test", "v=DMARC1; p=reject");
    b.admin_ok(&["alias", "add", "fwd@b.test", "carol@c.test"]);
    b.admin_ok(&["alias", "add", "fwd2@b.test", "nobody@c.test"]);

    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["fwd@b.test"],
        &message("intact", "fwd@b.test"),
    );
    net.wait(30, "the forwarded message", &[&a, &b, &c], || {
        net.inbox(&c, "carol@c.test").len() == 1
    });
    let got = text(&net.inbox(&c, "carol@c.test")[0]);
    let ar = auth_results(&got);
    assert!(ar.contains("spf=pass smtp.mailfrom=SRS0="), "{ar}");
    assert!(ar.contains("@b.test"), "{ar}");
    assert!(ar.contains("dkim=pass header.d=a.test"), "{ar}");
    assert!(
        ar.contains("arc=pass (chain of 1, sealed last by b.test)"),
        "{ar}"
    );
    assert!(
        ar.contains("dmarc=pass (p=REJECT) header.from=a.test"),
        "{ar}"
    );
    for field in [
        "ARC-Seal: i=1; a=rsa-sha256; ",
        "ARC-Message-Signature: i=1; ",
        "ARC-Authentication-Results: i=1; mx.b.test;",
    ] {
        assert!(got.contains(field), "no {field} in\n{got}");
    }
    // RFC 8617 §4.1.1: the seal carries every result b verified, DMARC too.
    let aar_start = got.find("ARC-Authentication-Results: i=1;").unwrap();
    let aar: String = got[aar_start..]
        .split("\r\n")
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with([' ', '\t']))
        .map(|(_, l)| l.trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(aar.contains("dmarc=pass header.from=a.test"), "{aar}");
    assert!(
        aar.contains("spf=pass") && aar.contains("dkim=pass"),
        "{aar}"
    );

    // Without a's DKIM keys in DNS, DMARC at c fails; b's trusted seal carries it.
    for name in a
        .admin_ok(&["dns", "records", "a.test"])
        .lines()
        .filter(|l| l.contains("._domainkey."))
    {
        net.dns.remove(name.split(". ").next().unwrap());
    }
    // Cached answers expire (testkit::dns::TTL).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["fwd@b.test"],
        &message("keyless", "fwd@b.test"),
    );
    net.wait(30, "the second message", &[&a, &b, &c], || {
        net.inbox(&c, "carol@c.test").len() == 2
    });
    let ar = auth_results(&text(&net.inbox(&c, "carol@c.test")[1]));
    assert!(ar.contains("arc=pass"), "{ar}");
    assert!(
        ar.contains("dmarc=fail (p=REJECT; overridden by the ARC chain of trusted forwarder b.test) header.from=a.test"),
        "{ar}"
    );

    // c.test has no nobody@: b's bounce goes to the SRS address, which b
    // routes back to alice.
    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["fwd2@b.test"],
        &message("bounce", "fwd2@b.test"),
    );
    net.wait(30, "the bounce at alice", &[&a, &b, &c], || {
        net.inbox(&a, "alice@a.test").len() == 1
    });
    let bounce = text(&net.inbox(&a, "alice@a.test")[0]);
    assert!(
        bounce.contains("Final-Recipient: rfc822; nobody@c.test"),
        "{bounce}"
    );
    assert!(
        bounce.contains("Original-Recipient: rfc822; fwd2@b.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Subject: bounce"), "{bounce}");

    // Two forwarders: b.test, then d.test. d seals the chain at i=2 and
    // rewrites b's SRS0 address to SRS1; c trusts d; a bounce from c walks
    // back through d and b to alice.
    // (a's keys are still gone: d lets the message in on b's seal, too.)
    let d = net.tern(
        40,
        "d.test",
        &[],
        "[policy]\ntrusted_arc_sealers = [\"b.test\"]\n",
    );
    net.publish(&d, 40, "d.test");
    b.admin_ok(&["alias", "add", "fwd3@b.test", "relay@d.test"]);
    b.admin_ok(&["alias", "add", "fwd4@b.test", "relay2@d.test"]);
    d.admin_ok(&["alias", "add", "relay@d.test", "carol@c.test"]);
    d.admin_ok(&["alias", "add", "relay2@d.test", "nobody@c.test"]);
    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["fwd3@b.test"],
        &message("twice", "fwd3@b.test"),
    );
    net.wait(30, "the twice-forwarded message", &[&a, &b, &c, &d], || {
        net.inbox(&c, "carol@c.test").len() == 3
    });
    let got = text(&net.inbox(&c, "carol@c.test")[2]);
    let ar = auth_results(&got);
    assert!(ar.contains("spf=pass smtp.mailfrom=SRS1="), "{ar}");
    assert!(ar.contains("=b.test==") && ar.contains("@d.test"), "{ar}");
    assert!(
        ar.contains("arc=pass (chain of 2, sealed last by d.test)"),
        "{ar}"
    );
    for field in [
        "ARC-Seal: i=2; ",
        "ARC-Seal: i=1; ",
        "ARC-Authentication-Results: i=2; mx.d.test;",
    ] {
        assert!(got.contains(field), "no {field} in\n{got}");
    }
    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["fwd4@b.test"],
        &message("bounce-twice", "fwd4@b.test"),
    );
    net.wait(30, "the second bounce at alice", &[&a, &b, &c, &d], || {
        net.inbox(&a, "alice@a.test").len() == 2
    });
    let bounce = text(&net.inbox(&a, "alice@a.test")[1]);
    assert!(
        bounce.contains("Final-Recipient: rfc822; nobody@c.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Subject: bounce-twice"), "{bounce}");

    // A forged SRS address (wrong hash) and a malformed one: no user here.
    let mx = b.addr("smtp");
    for forged in ["SRS0=abcd=aa=a.test=alice@b.test", "SRS0=broken@b.test"] {
        let r = net.send_from(
            40,
            mx,
            "client.test",
            "",
            forged,
            b"From: <x@client.test>\r\n\r\nx\r\n",
        );
        assert!(r[1].starts_with("550 5.1.1 "), "{forged}: {r:?}");
    }
}

/// A sender long enough that its SRS address passes 64 octets (here 70):
/// the address is written as a path, and the bounce to it is taken by the
/// forwarder's MX and goes back to the sender (it was refused for its
/// length, and the sender never heard). Found while fuzzing the SRS
/// round trip (`fuzz/fuzz_targets/address.rs`).
#[test]
fn a_long_sender_s_bounce_comes_back_through_its_srs_address() {
    let net = MailNet::new(134);
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(20, "b.test", &[], "");
    let c = net.tern(30, "c.test", &[("carol@c.test", "carol-pw")], "");
    for (server, host, domain) in [(&a, 10, "a.test"), (&b, 20, "b.test"), (&c, 30, "c.test")] {
        net.publish(server, host, domain);
    }
    let sender = "newsletter-bounces-0123456789-abcdefghijklmnopqrst@a.test";
    a.admin_ok(&["account", "add", sender, "--password", "news-pw"]);
    b.admin_ok(&["alias", "add", "fwd@b.test", "nobody@c.test"]);
    submit(
        &a,
        sender,
        "news-pw",
        &["fwd@b.test"],
        &message("long", "fwd@b.test").replace("alice@a.test", sender),
    );
    net.wait(30, "the bounce at the long sender", &[&a, &b, &c], || {
        net.inbox(&a, sender).len() == 1
    });
    let bounce = text(&net.inbox(&a, sender)[0]);
    assert!(
        bounce.contains("Final-Recipient: rfc822; nobody@c.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Subject: long"), "{bounce}");
}

/// C-RL9: aliases that forward to each other across two servers (b.test and
/// d.test) stop at the Received limit; the bounce finds its way back to the
/// original sender through the SRS addresses.
#[test]
fn forwarding_loops_end_in_a_bounce() {
    let net = MailNet::new(133);
    let limit = "[smtp]\nmax_received = 12\n";
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(20, "b.test", &[], limit);
    let d = net.tern(40, "d.test", &[], limit);
    for (server, host, domain) in [(&a, 10, "a.test"), (&b, 20, "b.test"), (&d, 40, "d.test")] {
        net.publish(server, host, domain);
    }
    b.admin_ok(&["alias", "add", "loop@b.test", "loop@d.test"]);
    d.admin_ok(&["alias", "add", "loop@d.test", "loop@b.test"]);
    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["loop@b.test"],
        &message("looping", "loop@b.test"),
    );
    net.wait(60, "the loop's bounce at alice", &[&a, &b, &d], || {
        net.inbox(&a, "alice@a.test").len() == 1
    });
    let bounce = text(&net.inbox(&a, "alice@a.test")[0]);
    assert!(bounce.contains("Status: 5.4.6"), "{bounce}");
    assert!(bounce.contains("Subject: looping"), "{bounce}");
}
