//! DANE on send (RFC 7672) over a DNSSEC-validating resolver (RFC 4035):
//! the test DNS signs its root (whose key is a's trust anchor) and the
//! destination zones; each destination's MX is a server that is not Tern.
//!
//! - secure TLSA matching the MX's key: delivered, the attempt says DANE;
//! - TLSA that match nothing: deferred (4.7.5), never plaintext, and the
//!   failure in the TLS report (tlsa-invalid) POSTed to c.test's https
//!   report endpoint (RFC 8460 §3);
//! - the MX without STARTTLS (stripped): deferred;
//! - a forged (bogus) TLSA answer: deferred;
//! - an unsigned zone: its TLSA mean nothing, opportunistic TLS delivers.
//!
//! REQUIRETLS (RFC 8689): a message marked so goes to a Tern whose TLS
//! DANE authenticates and that offers REQUIRETLS; to a destination without
//! DANE or MTA-STS it comes back at once (5.7.30, its header only); a
//! message with `TLS-Required: No` goes where DANE would have refused it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MailNet, Sink, attempts, mx_port, send_from_alice, submit, submit_with};

/// An MX for `domain` at 127.0.N.`host` with TLSA records `3 1 1 hash`.
fn destination(net: &MailNet, domain: &str, host: u8, hash: &[u8]) {
    let mx = format!("mx.{domain}");
    net.dns.mx(domain, 10, &mx).a(&mx, net.ip(host)).tlsa(
        &format!("_{}._tcp.{mx}", mx_port()),
        3,
        1,
        1,
        hash,
    );
}

#[test]
fn dane_is_enforced_where_dnssec_proves_it() {
    let net = MailNet::new(166);
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("root.key");
    std::fs::write(&anchor, net.dns.dnssec()).unwrap();
    for zone in ["b.test", "c.test", "d.test", "e.test"] {
        net.dns.signed_zone(zone);
    }
    net.dns.unsigned_zone("plain.test");
    // A self-signed certificate: only DANE-EE can vouch for it.
    let (cert, key) = common::certificate(dir.path(), &["mx.b.test"]);
    let hash = net::tls::dane_ee_spki_sha256(std::path::Path::new(&cert)).unwrap();
    destination(&net, "b.test", 30, &hash);
    destination(&net, "c.test", 31, &[0u8; 32]);
    destination(&net, "d.test", 32, &hash);
    destination(&net, "e.test", 33, &hash);
    net.dns.bogus(&format!("_{}._tcp.mx.e.test", mx_port()));
    destination(&net, "plain.test", 34, &[0u8; 32]);
    // c.test takes TLS reports over https.
    let rpt_dir = dir.path().join("rpt");
    std::fs::create_dir(&rpt_dir).unwrap();
    let (rpt_cert, rpt_key) = common::certificate(&rpt_dir, &["rpt.c.test"]);
    let port = common::https_port();
    net.dns.a("rpt.c.test", net.ip(40)).txt(
        "_smtp._tls.c.test",
        &format!("v=TLSRPTv1; rua=https://rpt.c.test:{port}/tlsrpt"),
    );
    let reports = HttpsSink::start(&net.ip(40).to_string(), port, &rpt_cert, &rpt_key);
    let a = net.tern(
        10,
        "a.test",
        &[],
        &format!(
            "[dns]\ntrust_anchor = \"{}\"\n[outbound]\nca_file = \"{rpt_cert}\"\n\
             [reports]\ntls_rpt_interval = \"2s\"\n",
            anchor.display()
        ),
    );
    let tls = ["--tls", cert.as_str(), key.as_str()];

    // The TLSA record names the MX's key: delivered, under DANE.
    let b = Sink::start(net.ip(30), mx_port(), &tls);
    send_from_alice(&a, "carol@b.test", "matched");
    net.wait(30, "the message at b's MX", &[&a], || {
        b.messages().len() == 1
    });
    let tried = attempts(&net, &a, "matched", 1);
    assert!(
        tried[0].contains("certificate verified (dane)") && tried[0].contains("250"),
        "{tried:?}"
    );

    // TLSA that match nothing: deferred, the handshake refused.
    let c = Sink::start(net.ip(31), mx_port(), &tls);
    send_from_alice(&a, "carol@c.test", "mismatch");
    let tried = attempts(&net, &a, "mismatch", 2);
    assert!(
        tried
            .iter()
            .all(|t| t.contains("DANE: no TLSA record matches")),
        "{tried:?}"
    );
    assert!(c.messages().is_empty(), "delivered despite DANE");
    // The TLS report about c.test, POSTed gzipped: the TLSA policy and why.
    net.wait(30, "a TLS report POSTed for c.test", &[&a], || {
        reports
            .posted()
            .iter()
            .any(|(_, json)| json.contains("\"c.test\""))
    });
    let (meta, json) = reports
        .posted()
        .into_iter()
        .find(|(_, json)| json.contains("\"c.test\""))
        .unwrap();
    assert!(
        meta.contains("application/tlsrpt+gzip") && meta.contains("/tlsrpt"),
        "{meta}"
    );
    assert!(
        json.contains("\"policy-type\":\"tlsa\"")
            && json.contains("\"result-type\":\"tlsa-invalid\""),
        "{json}"
    );

    // STARTTLS stripped (the MX offers none): deferred, nothing in plaintext.
    let d = Sink::start(net.ip(32), mx_port(), &[]);
    send_from_alice(&a, "carol@d.test", "stripped");
    let tried = attempts(&net, &a, "stripped", 2);
    assert!(
        tried
            .iter()
            .all(|t| t.contains("4.7.5") && t.contains("STARTTLS is not offered")),
        "{tried:?}"
    );
    assert!(d.messages().is_empty(), "sent in plaintext");

    // A forged TLSA answer: bogus, the host is not used at all.
    let e = Sink::start(net.ip(33), mx_port(), &tls);
    send_from_alice(&a, "carol@e.test", "forged");
    let tried = attempts(&net, &a, "forged", 2);
    assert!(
        tried
            .iter()
            .all(|t| t.contains("451 4.7.5 DANE") && t.contains("DNSSEC validation failed")),
        "{tried:?}"
    );
    assert!(e.messages().is_empty());

    // An unsigned zone: its TLSA records prove nothing; opportunistic TLS.
    let plain = Sink::start(net.ip(34), mx_port(), &tls);
    send_from_alice(&a, "carol@plain.test", "insecure");
    net.wait(30, "the message at plain's MX", &[&a], || {
        plain.messages().len() == 1
    });
    let tried = attempts(&net, &a, "insecure", 1);
    assert!(
        !tried[0].contains("dane") && tried[0].contains("250"),
        "{tried:?}"
    );
    assert_eq!(net.queue(&a).len(), 3, "mismatch, stripped, forged wait");
}

#[test]
fn requiretls_goes_only_where_tls_is_authenticated() {
    let net = MailNet::new(167);
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("root.key");
    // The root's key named by its DS record, as IANA publishes it.
    net.dns.dnssec();
    std::fs::write(&anchor, net.dns.ds_anchor()).unwrap();
    net.dns
        .signed_zone("b.test")
        .signed_zone("c.test")
        .unsigned_zone("plain.test");
    let (cert, key) = common::certificate(dir.path(), &["mx.b.test"]);
    let hash = net::tls::dane_ee_spki_sha256(std::path::Path::new(&cert)).unwrap();
    let b = net.tern(
        20,
        "b.test",
        &[("carol@b.test", "carol-pw")],
        &format!("[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n"),
    );
    net.dns
        .tlsa(&format!("_{}._tcp.mx.b.test", mx_port()), 3, 1, 1, &hash);
    destination(&net, "plain.test", 34, &hash);
    destination(&net, "c.test", 31, &[0u8; 32]);
    let a = net.tern(
        10,
        "a.test",
        &[],
        &format!("[dns]\ntrust_anchor = \"{}\"\n", anchor.display()),
    );
    let message = |to: &str, subject: &str, extra: &str| {
        format!(
            "From: <alice@a.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n{extra}\
             Message-ID: <{subject}@a.test>\r\n\r\nThe secret body.\r\n"
        )
    };
    let required = ["MAIL:REQUIRETLS"];

    // DANE-authenticated TLS to a server that offers REQUIRETLS: delivered.
    let sent = message("carol@b.test", "rt-dane", "");
    assert_eq!(
        submit_with(
            &a,
            "alice@a.test",
            "alice-pw",
            &["carol@b.test"],
            &required,
            &sent
        ),
        "{}"
    );
    net.wait_for(&b, "carol@b.test", |m| m.contains("rt-dane"));
    let tried = attempts(&net, &a, "rt-dane", 1);
    assert!(tried[0].contains("(dane, REQUIRETLS)"), "{tried:?}");

    // No DANE (unsigned zone), no MTA-STS: returned, 5.7.30, header only.
    let tls = ["--tls", cert.as_str(), key.as_str()];
    let plain = Sink::start(net.ip(34), mx_port(), &tls);
    let sent = message("carol@plain.test", "rt-plain", "");
    assert_eq!(
        submit_with(
            &a,
            "alice@a.test",
            "alice-pw",
            &["carol@plain.test"],
            &required,
            &sent
        ),
        "{}"
    );
    let bounce = net.wait_for(&a, "alice@a.test", |m| m.contains("rt-plain@a.test"));
    assert!(bounce.contains("5.7.30"), "{bounce}");
    assert!(!bounce.contains("The secret body"), "{bounce}");
    assert!(plain.messages().is_empty());

    // TLS-Required: No: c.test's TLSA match nothing, it goes anyway.
    let c = Sink::start(net.ip(31), mx_port(), &tls);
    let sent = message("carol@c.test", "no-policy", "TLS-Required: No\r\n");
    assert_eq!(
        submit(&a, "alice@a.test", "alice-pw", &["carol@c.test"], &sent),
        "{}"
    );
    net.wait(30, "the message at c's MX", &[&a], || {
        c.messages().len() == 1
    });
    let tried = attempts(&net, &a, "no-policy", 1);
    assert!(!tried[0].contains("dane"), "{tried:?}");
}

/// An HTTPS server that keeps what is POSTed (tests/clients/https_sink.py).
struct HttpsSink {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl HttpsSink {
    fn start(ip: &str, port: u16, cert: &str, key: &str) -> HttpsSink {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("python3")
            .arg(common::repo("tests/clients/https_sink.py"))
            .args([ip, &port.to_string(), cert, key])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "https_sink.py did not start");
        HttpsSink { child, dir }
    }

    /// (Content-Type and path as JSON, the body gunzipped) of each POST.
    fn posted(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for n in 1.. {
            let base = self.dir.path().join(n.to_string());
            let Ok(meta) = std::fs::read_to_string(base.with_extension("json")) else {
                break;
            };
            let unzipped = std::process::Command::new("gzip")
                .args(["-dc"])
                .arg(base.with_extension("body"))
                .output()
                .unwrap();
            out.push((meta, String::from_utf8_lossy(&unzipped.stdout).into_owned()));
        }
        out
    }
}

impl Drop for HttpsSink {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
