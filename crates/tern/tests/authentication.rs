//! Sender authentication end to end: Tern servers on 127.0.N.x, the test DNS,
//! other MTAs played by the test from their own addresses, and dkimpy as an
//! independent DKIM and ARC implementation (both directions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{MailNet, auth_results, dkim_records_json, dkim_tool, submit, text};
use testkit::TernServer;

const CAROL: (&str, &str) = ("carol@b.test", "carol-pw");

/// The receiving Tern: b.test with carol, at 127.0.N.20.
fn receiver(net: &MailNet, extra: &str) -> TernServer {
    net.tern(20, "b.test", &[CAROL], extra)
}

/// Messages for carol, keyed by Subject.
fn by_subject(net: &MailNet, b: &TernServer, folder: &str) -> HashMap<String, String> {
    net.mailbox(b, "carol@b.test", folder)
        .iter()
        .map(|m| {
            let t = text(m);
            let subject = t
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default()
                .to_string();
            (subject, t)
        })
        .collect()
}

fn simple_message(from: &str, subject: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <carol@b.test>\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{subject}@test>\r\n\r\nHello.\r\n"
    )
}

/// The DKIM records `tern dns records` prints, as dkim_tool.py's JSON.
/// Mail from one Tern to another with everything published: iprev, SPF, both
/// DKIM signatures and DMARC pass; dkimpy verifies Tern's signatures on the
/// stored message, including one whose body ends with whitespace-only lines
/// (the mail-auth 0.13 relaxed-body bug, dependencies.md) and one large
/// enough to be spooled.
#[test]
fn tern_to_tern_passes_every_check() {
    let net = MailNet::new(120);
    let a = net.tern(10, "a.test", &[], "");
    let b = receiver(&net, "");
    net.publish(&a, 10, "a.test");
    let body_ws = "From: Alice <alice@a.test>\r\nTo: carol@b.test\r\nSubject: trailing\r\n\r\nHello.\r\n  \r\n\t\r\n";
    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["carol@b.test"],
        &simple_message("alice@a.test", "plain"),
    );
    submit(&a, "alice@a.test", "alice-pw", &["carol@b.test"], body_ws);
    // 3 MB: received through the spool file on both sides, its body
    // hashes streamed (hardening.md C-FT9).
    let mut large =
        String::from("From: Alice <alice@a.test>\r\nTo: carol@b.test\r\nSubject: large\r\n\r\n");
    for i in 0..40_000 {
        large += &format!("line {i}  with \t runs   of  whitespace \t\r\n");
        if i % 1000 == 0 {
            large += "\r\n \r\n";
        }
    }
    large += "\r\n  \r\n";
    assert!(large.len() > 1_500_000);
    submit(&a, "alice@a.test", "alice-pw", &["carol@b.test"], &large);
    net.wait(30, "three messages", &[&a, &b], || {
        net.inbox(&b, "carol@b.test").len() == 3
    });
    let got = by_subject(&net, &b, "INBOX");
    assert!(got["large"].ends_with(&large[large.find("\r\n\r\n").unwrap()..]));
    let ip = net.ip(10);
    for subject in ["plain", "trailing", "large"] {
        let ar = auth_results(&got[subject]);
        for want in [
            "Authentication-Results: mx.b.test;".to_string(),
            format!("iprev=pass (mx.a.test) policy.iprev={ip}"),
            "spf=pass smtp.mailfrom=alice@a.test".to_string(),
            "dkim=pass header.d=a.test header.s=t2".to_string(),
            "dmarc=pass (p=QUARANTINE) header.from=a.test".to_string(),
            "arc=none".to_string(),
        ] {
            assert!(ar.contains(&want), "{subject}: no {want:?} in {ar}");
        }
        assert_eq!(ar.matches("dkim=pass").count(), 2, "RSA and Ed25519: {ar}");
        // dkimpy checks both signatures on the message as stored.
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("records.json");
        dkim_records_json(&a, "a.test", &records);
        let verdict = text(&dkim_tool(
            &["verify", records.to_str().unwrap()],
            got[subject].as_bytes(),
        ));
        assert_eq!(
            verdict.matches(" pass").count(),
            2,
            "{subject}: dkimpy says {verdict}"
        );
    }
}

/// Every SPF result (RFC 7208 §2.6) and mechanism (but `ptr`: the resolver
/// answers `localhost` for 127.0.0.0/8 itself, RFC 6761), the lookup limits
/// (C-OB10), iprev pass and fail, and a forged Authentication-Results that
/// claims our authserv-id (RFC 8601 §5).
#[test]
fn spf_results_iprev_and_forged_results() {
    let net = MailNet::new(121);
    let b = receiver(&net, "");
    let ip = net.ip(30);
    let d = &net.dns;
    d.ptr(ip, "h.client.test").a("h.client.test", ip);
    d.ptr(net.ip(31), "liar.test").a("liar.test", net.ip(99));
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("pass.test", Some(format!("v=spf1 ip4:{ip} -all")), "pass"),
        (
            "fail.test",
            Some("v=spf1 ip4:192.0.2.1 -all".into()),
            "fail",
        ),
        ("soft.test", Some("v=spf1 ~all".into()), "softfail"),
        ("neutral.test", Some("v=spf1 ?all".into()), "neutral"),
        ("none.test", None, "none"),
        (
            "perm.test",
            Some("v=spf1 ip4:not-an-ip -all".into()),
            "permerror",
        ),
        (
            "inc.test",
            Some("v=spf1 include:pass.test -all".into()),
            "pass",
        ),
        ("arec.test", Some("v=spf1 a -all".into()), "pass"),
        ("mxrec.test", Some("v=spf1 mx -all".into()), "pass"),
        (
            "macro.test",
            Some("v=spf1 exists:%{i}.ex.macro.test -all".into()),
            "pass",
        ),
        (
            "redir.test",
            Some("v=spf1 redirect=pass.test".into()),
            "pass",
        ),
        (
            "limit.test",
            Some("v=spf1 include:l1.limit.test -all".into()),
            "permerror",
        ),
        (
            "void.test",
            Some(format!(
                "v=spf1 a:v1.void.test a:v2.void.test a:v3.void.test ip4:{ip} -all"
            )),
            "permerror",
        ),
        ("temp.test", Some("v=spf1 -all".into()), "temperror"),
        (
            "explained.test",
            Some("v=spf1 -all exp=why.explained.test".into()),
            "fail",
        ),
    ];
    for (domain, spf, _) in &cases {
        d.a(domain, net.ip(98));
        if let Some(spf) = spf {
            d.txt(domain, spf);
        }
    }
    d.a("arec.test", ip);
    d.mx("mxrec.test", 10, "mx.mxrec.test")
        .a("mx.mxrec.test", ip);
    d.a(&format!("{ip}.ex.macro.test"), net.ip(2));
    // Eleven nested includes: more than the 10 DNS-querying terms allowed.
    for i in 1..=11 {
        d.txt(
            &format!("l{i}.limit.test"),
            &format!("v=spf1 include:l{}.limit.test -all", i + 1),
        );
    }
    d.txt("l12.limit.test", "v=spf1 +all");
    d.servfail("temp.test");
    d.txt("why.explained.test", "%{i} may not send for %{d}");
    let mx = b.addr("smtp");
    for (domain, _, _) in &cases {
        let from = format!("x@{domain}");
        let replies = net.send_from(
            30,
            mx,
            "h.client.test",
            &from,
            "carol@b.test",
            simple_message(&from, domain).as_bytes(),
        );
        assert!(
            replies.last().unwrap().starts_with("250"),
            "{domain}: {replies:?}"
        );
    }
    // From an address whose PTR does not lead back, with a forged result.
    let forged = format!(
        "Authentication-Results: mx.b.test; dkim=pass header.d=bank.test\r\n{}",
        simple_message("x@pass.test", "iprev-fail")
    );
    let replies = net.send_from(
        31,
        mx,
        "liar.test",
        "x@none.test",
        "carol@b.test",
        forged.as_bytes(),
    );
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");

    let got = by_subject(&net, &b, "INBOX");
    for (domain, _, want) in &cases {
        let ar = auth_results(&got[*domain]);
        assert!(
            ar.contains(&format!("spf={want} ")),
            "{domain}: want spf={want} in {ar}"
        );
        assert!(ar.contains(&format!("smtp.mailfrom=x@{domain}")), "{ar}");
        assert!(
            ar.contains(&format!("iprev=pass (h.client.test) policy.iprev={ip}")),
            "{ar}"
        );
    }
    let explained = auth_results(&got["explained.test"]);
    assert!(
        explained.contains(&format!("{ip} may not send for explained.test")),
        "{explained}"
    );
    let liar = &got["iprev-fail"];
    assert!(auth_results(liar).contains("iprev=fail"), "{liar}");
    assert_eq!(
        liar.matches("Authentication-Results:").count(),
        1,
        "the forged field is gone:\n{liar}"
    );
    assert!(!liar.contains("bank.test"), "{liar}");
}

/// `[policy] spf_reject`: SPF fail refused at MAIL FROM (RFC 7372 5.7.23), a
/// DNS failure deferred (4.7.24), a pass accepted.
#[test]
fn spf_fail_refused_when_configured() {
    let net = MailNet::new(122);
    let b = receiver(&net, "[policy]\nspf_reject = true\n");
    net.dns
        .txt("fail.test", "v=spf1 -all")
        .servfail("temp.test");
    net.dns
        .txt("pass.test", &format!("v=spf1 ip4:{} -all", net.ip(30)));
    let mx = b.addr("smtp");
    let send = |from: &str| {
        net.send_from(
            30,
            mx,
            "client.test",
            from,
            "carol@b.test",
            simple_message(from, "spf").as_bytes(),
        )
    };
    assert!(
        send("x@fail.test")[0].starts_with("550 5.7.23 "),
        "{:?}",
        send("x@fail.test")
    );
    assert!(send("x@temp.test")[0].starts_with("451 4.7.24 "));
    assert!(send("x@pass.test").last().unwrap().starts_with("250"));
}

/// DKIM with keys and signatures made by dkimpy (RSA and Ed25519, relaxed and
/// simple): pass; a changed body, a changed signed header, a missing key, a
/// revoked key: no pass; `l=` with more body than signed is not trusted; at
/// most 5 signatures are checked (C-OB11).
#[test]
fn dkim_results_with_dkimpy_signatures() {
    let net = MailNet::new(123);
    let b = receiver(&net, "");
    let dir = tempfile::tempdir().unwrap();
    let key = |name: &str, kind: &str| {
        let path = dir.path().join(name);
        let record = text(&dkim_tool(&["keygen", kind, path.to_str().unwrap()], b""));
        (
            path.to_str().unwrap().to_string(),
            record.trim().to_string(),
        )
    };
    let (rsa, rsa_txt) = key("rsa.key", "rsa");
    let (ed, ed_txt) = key("ed.key", "ed25519");
    net.dns
        .txt("r1._domainkey.d.test", &rsa_txt)
        .txt("e1._domainkey.d.test", &ed_txt);
    net.dns.txt("gone1._domainkey.d.test", "v=DKIM1; k=rsa; p=");
    // RFC 8301: a 512-bit key; a key record that allows SHA-1 only.
    let (weak, weak_txt) = key("weak.key", "rsa512");
    net.dns.txt("w1._domainkey.d.test", &weak_txt);
    net.dns.txt(
        "h1._domainkey.d.test",
        &rsa_txt.replace("v=DKIM1; ", "v=DKIM1; h=sha1; "),
    );
    net.dns.a("d.test", net.ip(98));
    let sign = |msg: &str, selector: &str, key: &str, kind: &str, canon: &str| {
        text(&dkim_tool(
            &["sign", "d.test", selector, key, kind, canon],
            msg.as_bytes(),
        ))
    };
    let mut messages: Vec<(String, String)> = Vec::new();
    for (kind, key, selector) in [("rsa", &rsa, "r1"), ("ed25519", &ed, "e1")] {
        for canon in ["relaxed", "simple"] {
            let subject = format!("{kind}-{canon}");
            messages.push((
                subject.clone(),
                sign(
                    &simple_message("x@d.test", &subject),
                    selector,
                    key,
                    kind,
                    canon,
                ),
            ));
        }
    }
    let signed = sign(
        &simple_message("x@d.test", "body-changed"),
        "r1",
        &rsa,
        "rsa",
        "relaxed",
    );
    messages.push(("body-changed".into(), signed.replace("Hello.", "Hello!")));
    let signed = sign(
        &simple_message("x@d.test", "header-changed"),
        "r1",
        &rsa,
        "rsa",
        "relaxed",
    );
    messages.push((
        "header-changed".into(),
        signed.replace("To: <carol@b.test>", "To: <mallory@b.test>"),
    ));
    messages.push((
        "key-missing".into(),
        sign(
            &simple_message("x@d.test", "key-missing"),
            "nokey",
            &rsa,
            "rsa",
            "relaxed",
        ),
    ));
    messages.push((
        "key-revoked".into(),
        sign(
            &simple_message("x@d.test", "key-revoked"),
            "gone1",
            &rsa,
            "rsa",
            "relaxed",
        ),
    ));
    messages.push((
        "weak-key".into(),
        sign(
            &simple_message("x@d.test", "weak-key"),
            "w1",
            &weak,
            "rsa",
            "relaxed",
        ),
    ));
    messages.push((
        "sha1-only-key".into(),
        sign(
            &simple_message("x@d.test", "sha1-only-key"),
            "h1",
            &rsa,
            "rsa",
            "relaxed",
        ),
    ));
    let trailing =
        simple_message("x@d.test", "trailing-ws").replace("Hello.\r\n", "Hello.\r\n \r\n\t\r\n");
    messages.push((
        "trailing-ws".into(),
        sign(&trailing, "e1", &ed, "ed25519", "relaxed"),
    ));
    let mut many = simple_message("x@d.test", "many");
    for _ in 0..7 {
        many = sign(&many, "e1", &ed, "ed25519", "relaxed");
    }
    messages.push(("many".into(), many));
    let mx = b.addr("smtp");
    for (subject, msg) in &messages {
        let replies = net.send_from(
            30,
            mx,
            "client.test",
            "x@d.test",
            "carol@b.test",
            msg.as_bytes(),
        );
        assert!(
            replies.last().unwrap().starts_with("250"),
            "{subject}: {replies:?}"
        );
    }
    let got = by_subject(&net, &b, "INBOX");
    for subject in [
        "rsa-relaxed",
        "rsa-simple",
        "ed25519-relaxed",
        "ed25519-simple",
        "trailing-ws",
    ] {
        let ar = auth_results(&got[subject]);
        assert!(ar.contains("dkim=pass header.d=d.test"), "{subject}: {ar}");
    }
    for subject in [
        "body-changed",
        "header-changed",
        "key-missing",
        "key-revoked",
        "weak-key",
        "sha1-only-key",
    ] {
        let ar = auth_results(&got[subject]);
        assert!(
            ar.contains("dkim=") && !ar.contains("dkim=pass"),
            "{subject}: {ar}"
        );
    }
    assert!(auth_results(&got["body-changed"]).contains("dkim=fail"));
    let many = auth_results(&got["many"]);
    assert_eq!(many.matches("dkim=").count(), 5, "{many}");
}

/// `l=`: the signature covers less than the body; the rest is not vouched for
/// (hardening.md C-OB11).
#[test]
fn dkim_body_length_is_not_trusted() {
    let net = MailNet::new(127);
    let b = receiver(&net, "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ed.key");
    let record = text(&dkim_tool(
        &["keygen", "ed25519", path.to_str().unwrap()],
        b"",
    ));
    net.dns.txt("e1._domainkey.d.test", record.trim());
    let signed = text(&dkim_tool(
        &["sign-l", "d.test", "e1", path.to_str().unwrap()],
        simple_message("x@d.test", "partial").as_bytes(),
    ));
    let tampered = format!("{signed}Click here: http://evil.test/\r\n");
    let replies = net.send_from(
        30,
        b.addr("smtp"),
        "client.test",
        "x@d.test",
        "carol@b.test",
        tampered.as_bytes(),
    );
    assert!(replies.last().unwrap().starts_with("250"), "{replies:?}");
    let got = by_subject(&net, &b, "INBOX");
    let ar = auth_results(&got["partial"]);
    // mail-auth does not trust a partial body hash at all: neutral, reported.
    assert!(
        ar.contains("dkim=neutral (Insecure 'l=' tag found in Signature)"),
        "{ar}"
    );
}

/// DMARC (RFC 7489): reject at the end of DATA, quarantine into Junk, none;
/// aligned and unaligned, relaxed and strict, subdomains under sp=, pct=0, a
/// DNS failure (451), several From: fields; and an operator who only marks.
#[test]
fn dmarc_policies() {
    let net = MailNet::new(124);
    let b = receiver(&net, "");
    let marker = net.tern(
        21,
        "c.test",
        &[("dave@c.test", "dave-pw")],
        "[policy]\ndmarc_enforce = false\nrequire_from = false\n",
    );
    let ip = net.ip(30);
    let d = &net.dns;
    for (domain, dmarc) in [
        ("rej.test", "v=DMARC1; p=reject"),
        ("quar.test", "v=DMARC1; p=quarantine"),
        ("none.test", "v=DMARC1; p=none"),
        ("strict.test", "v=DMARC1; p=reject; aspf=s"),
        ("rel.test", "v=DMARC1; p=reject"),
        ("org.test", "v=DMARC1; p=none; sp=reject"),
        ("pct.test", "v=DMARC1; p=reject; pct=0"),
    ] {
        d.txt(&format!("_dmarc.{domain}"), dmarc)
            .a(domain, net.ip(98));
    }
    d.servfail("_dmarc.tmp.test").a("tmp.test", net.ip(98));
    // SPF passes for these MAIL FROM domains.
    for domain in [
        "other.test",
        "rej.test",
        "bounce.strict.test",
        "bounce.rel.test",
    ] {
        d.txt(domain, &format!("v=spf1 ip4:{ip} -all"));
    }
    let mx = b.addr("smtp");
    let send = |mail_from: &str, from: &str, subject: &str| {
        net.send_from(
            30,
            mx,
            "client.test",
            mail_from,
            "carol@b.test",
            simple_message(from, subject).as_bytes(),
        )
    };
    let last = |r: Vec<String>| r.last().cloned().unwrap_or_default();
    assert!(
        last(send("x@other.test", "x@rej.test", "reject"))
            .starts_with("550 5.7.1 rejected by the DMARC policy of rej.test")
    );
    assert!(last(send("x@rej.test", "x@rej.test", "aligned")).starts_with("250"));
    assert!(last(send("x@other.test", "x@quar.test", "quarantine")).starts_with("250"));
    assert!(last(send("x@other.test", "x@none.test", "none")).starts_with("250"));
    assert!(last(send("x@bounce.strict.test", "x@strict.test", "strict")).starts_with("550 5.7.1"));
    assert!(last(send("x@bounce.rel.test", "x@rel.test", "relaxed")).starts_with("250"));
    assert!(
        last(send("x@other.test", "x@news.org.test", "subdomain"))
            .starts_with("550 5.7.1 rejected by the DMARC policy of news.org.test")
    );
    assert!(last(send("x@other.test", "x@pct.test", "pct")).starts_with("250"));
    assert!(last(send("x@other.test", "x@tmp.test", "temp")).starts_with("451 4.7.5"));
    let two_froms = format!(
        "From: <x@other.test>\r\n{}",
        simple_message("x@rej.test", "two-froms")
    );
    let r = net.send_from(
        30,
        mx,
        "client.test",
        "x@other.test",
        "carol@b.test",
        two_froms.as_bytes(),
    );
    assert_eq!(
        last(r),
        "550 5.7.1 a message needs exactly one From: field (RFC 5322 §3.6); this one has 2"
    );

    let inbox = by_subject(&net, &b, "INBOX");
    let junk = by_subject(&net, &b, "Junk");
    assert!(auth_results(&inbox["aligned"]).contains("dmarc=pass (p=REJECT) header.from=rej.test"));
    assert!(auth_results(&inbox["relaxed"]).contains("dmarc=pass"));
    assert!(auth_results(&inbox["none"]).contains("dmarc=fail (p=NONE) header.from=none.test"));
    assert!(
        auth_results(&junk["quarantine"])
            .contains("dmarc=fail (p=QUARANTINE) header.from=quar.test")
    );
    assert!(junk.contains_key("pct"), "pct=0: reject becomes quarantine");
    assert!(!inbox.contains_key("quarantine") && !inbox.contains_key("reject"));

    // Mark only: the same reject policy, delivered, and said so.
    let r = net.send_from(
        30,
        marker.addr("smtp"),
        "client.test",
        "x@other.test",
        "dave@c.test",
        simple_message("x@rej.test", "marked").as_bytes(),
    );
    assert!(last(r).starts_with("250"));
    let marked = text(&net.inbox(&marker, "dave@c.test")[0]);
    assert!(
        auth_results(&marked).contains("dmarc=fail (p=REJECT; not enforced here)"),
        "{marked}"
    );
    // `require_from = false`: no usable From: is accepted, and the header says why.
    let r = net.send_from(
        30,
        marker.addr("smtp"),
        "client.test",
        "x@other.test",
        "dave@c.test",
        two_froms.as_bytes(),
    );
    assert!(last(r).starts_with("250"));
    let unevaluated = text(&net.inbox(&marker, "dave@c.test")[1]);
    assert!(
        auth_results(&unevaluated).contains(
            "dmarc=none (a message needs exactly one From: field [RFC 5322 §3.6]; this one has 2)"
        ),
        "{unevaluated}"
    );
}

/// ARC (RFC 8617): a forwarder's sealed chain is verified; when the
/// forwarder is trusted it overrides the DMARC failure forwarding caused.
#[test]
fn arc_chain_from_a_trusted_forwarder() {
    let net = MailNet::new(125);
    let trusting = receiver(&net, "[policy]\ntrusted_arc_sealers = [\"fwd.test\"]\n");
    let strict = net.tern(21, "c.test", &[("dave@c.test", "dave-pw")], "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fwd.key");
    let record = text(&dkim_tool(&["keygen", "rsa", path.to_str().unwrap()], b""));
    let d = &net.dns;
    d.txt("arc1._domainkey.fwd.test", record.trim());
    d.txt("_dmarc.orig.test", "v=DMARC1; p=reject")
        .a("orig.test", net.ip(98));
    d.txt("fwd.test", &format!("v=spf1 ip4:{} -all", net.ip(40)));
    // What the forwarder saw on arrival, then its seal.
    let original = format!(
        "Authentication-Results: fwd.test; spf=pass smtp.mailfrom=x@orig.test; dmarc=pass header.from=orig.test\r\n{}",
        simple_message("x@orig.test", "forwarded")
    );
    let sealed = dkim_tool(
        &[
            "arc-seal",
            "fwd.test",
            "arc1",
            path.to_str().unwrap(),
            "fwd.test",
        ],
        original.as_bytes(),
    );
    let r = net.send_from(
        40,
        trusting.addr("smtp"),
        "mx.fwd.test",
        "bounce@fwd.test",
        "carol@b.test",
        &sealed,
    );
    assert!(r.last().unwrap().starts_with("250"), "{r:?}");
    let got = text(&net.inbox(&trusting, "carol@b.test")[0]);
    let ar = auth_results(&got);
    assert!(
        ar.contains("arc=pass (chain of 1, sealed last by fwd.test)"),
        "{ar}"
    );
    assert!(
        ar.contains(
            "dmarc=fail (p=REJECT; overridden by the ARC chain of trusted forwarder fwd.test)"
        ),
        "{ar}"
    );
    // A receiver that does not trust fwd.test applies the policy.
    let r = net.send_from(
        40,
        strict.addr("smtp"),
        "mx.fwd.test",
        "bounce@fwd.test",
        "dave@c.test",
        &sealed,
    );
    assert!(r.last().unwrap().starts_with("550 5.7.1"), "{r:?}");
}
