//! `tern dns check` against the test DNS: a zone published as `tern dns
//! records` prints it is all OK; then each record is broken in turn and
//! the check names it, says what is wrong, prints the line to publish and
//! exits non-zero (a DMARC p=none only warns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::MailNet;
use testkit::TernServer;

/// Publish the TXT lines `tern dns records` prints (MX is already there),
/// those of `only` when given.
fn publish(net: &MailNet, server: &TernServer, only: Option<&str>) {
    for line in server.admin_ok(&["dns", "records", "b.test"]).lines() {
        let mut fields = line.splitn(5, ' ');
        let owner = fields.next().unwrap().trim_end_matches('.');
        let kind = fields.nth(2).unwrap();
        let data = fields.next().unwrap();
        if kind == "TXT" && only.is_none_or(|o| o == owner) {
            // "part" "part": each quoted string as one TXT string.
            let parts: Vec<&[u8]> = data
                .split('"')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s.as_bytes())
                .collect();
            net.dns.txt_strings(owner, &parts);
        }
    }
}

/// (exit status, stdout).
fn check(server: &TernServer) -> (bool, String) {
    let out = server.admin(&["dns", "check", "b.test"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_published_zone_passes_and_each_broken_record_is_named() {
    let net = MailNet::new(151);
    let ip = net.ip(20);
    // A certificate for the MX and the MTA-STS host, trusted by the
    // policy fetch (`[outbound] ca_file`).
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate(dir.path(), &["mx.b.test", "mta-sts.b.test"]);
    let port = common::https_port();
    let extra = format!(
        "[listeners]\nimaps = \"{ip}:1993\"\nhttps = \"{ip}:{port}\"\n\
         [tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\
         [outbound]\nca_file = \"{cert}\"\nmta_sts_port = {port}\n"
    );
    let server = net.tern(20, "b.test", &[], &extra);
    net.dns.a("mta-sts.b.test", ip);
    publish(&net, &server, None);
    net.dns.ptr(ip, "mx.b.test");

    let (ok, out) = check(&server);
    assert!(ok, "{out}\n{}", server.log());
    for what in [
        "OK    MX b.test -> mx.b.test",
        &format!("OK    A/AAAA mx.b.test -> {ip}"),
        &format!("OK    PTR {ip} -> mx.b.test -> {ip}"),
        &format!("OK    SPF b.test for {ip}"),
        "OK    DMARC _dmarc.b.test",
        "OK    MTA-STS _mta-sts.b.test",
        "OK    TLS-RPT _smtp._tls.b.test",
        "OK    MTA-STS policy https://mta-sts.b.test/.well-known/mta-sts.txt: mode testing",
    ] {
        assert!(out.contains(what), "{what:?} missing in:\n{out}");
    }
    assert_eq!(out.matches("OK    DKIM ").count(), 2, "{out}");
    // Client SRV records only warn when missing (RFC 6186).
    assert!(
        out.contains("WARN  SRV _imaps._tcp.b.test: not published"),
        "{out}"
    );
    assert!(
        out.contains("fix: _imaps._tcp.b.test. 3600 IN SRV 0 1 1993 mx.b.test."),
        "{out}"
    );
    net.dns.srv("_imaps._tcp.b.test", 1993, "mx.b.test");
    let (ok, out) = check(&server);
    assert!(ok && out.contains("OK    SRV _imaps._tcp.b.test"), "{out}");
    // The names clients ask for their settings: warnings until they lead here.
    assert!(
        out.contains("WARN  autoconfig autoconfig.b.test: not published")
            && out.contains("fix: autodiscover.b.test. 3600 IN CNAME mx.b.test."),
        "{out}"
    );
    net.dns
        .a("autoconfig.b.test", ip)
        .a("autodiscover.b.test", net.ip(99));
    let (ok, out) = check(&server);
    assert!(
        ok && out.contains("OK    autoconfig autoconfig.b.test"),
        "{out}"
    );
    assert!(
        out.contains("WARN  autoconfig autodiscover.b.test: leads to another server"),
        "{out}"
    );

    // DANE: no TLSA warns; the one `dns records` prints matches the
    // certificate served (checked here against openssl's own hash of it);
    // a TLSA for another key fails (DANE senders could not deliver).
    assert!(
        out.contains("WARN  TLSA _25._tcp.mx.b.test: not published"),
        "{out}"
    );
    let records = server.admin_ok(&["dns", "records", "b.test"]);
    let tlsa = records
        .lines()
        .find(|l| l.starts_with("_25._tcp.mx.b.test. 3600 IN TLSA 3 1 1 "))
        .unwrap_or_else(|| panic!("no TLSA line in:\n{records}"));
    let hex = tlsa.rsplit(' ').next().unwrap();
    let openssl = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in {cert} -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"
        ))
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&openssl.stdout);
    assert_eq!(expected.split_whitespace().next(), Some(hex), "{expected}");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    net.dns.tlsa("_25._tcp.mx.b.test", 3, 1, 1, &[0u8; 32]);
    let (ok, out) = check(&server);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  TLSA _25._tcp.mx.b.test: no record matches the certificate served now"),
        "{out}"
    );
    assert!(out.contains(&format!("fix: {tlsa}")), "{out}");
    net.dns.remove("_25._tcp.mx.b.test");
    net.dns.tlsa("_25._tcp.mx.b.test", 3, 1, 1, &bytes);
    let (ok, out) = check(&server);
    assert!(ok && out.contains("OK    TLSA _25._tcp.mx.b.test"), "{out}");

    // MTA-STS: a record with another id (senders would keep an old
    // policy), then a policy host that does not resolve.
    let mta_sts_line = records
        .lines()
        .find(|l| l.starts_with("_mta-sts.b.test. 3600 IN TXT \"v=STSv1; id="))
        .unwrap_or_else(|| panic!("no _mta-sts line in:\n{records}"));
    assert!(
        records.contains("mta-sts.b.test. 3600 IN CNAME mx.b.test."),
        "{records}"
    );
    net.dns
        .remove("_mta-sts.b.test")
        .txt("_mta-sts.b.test", "v=STSv1; id=old1");
    let (ok, out) = check(&server);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  MTA-STS _mta-sts.b.test: id=old1, not the id"),
        "{out}"
    );
    assert!(out.contains(&format!("fix: {mta_sts_line}")), "{out}");
    net.dns.remove("_mta-sts.b.test");
    publish(&net, &server, Some("_mta-sts.b.test"));
    net.dns.remove("mta-sts.b.test");
    let (ok, out) = check(&server);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  MTA-STS policy https://mta-sts.b.test/.well-known/mta-sts.txt: senders cannot fetch it"),
        "{out}"
    );
    net.dns.a("mta-sts.b.test", ip);

    // TLS-RPT to someone else's address: a warning.
    net.dns.remove("_smtp._tls.b.test").txt(
        "_smtp._tls.b.test",
        "v=TLSRPTv1; rua=mailto:tls@elsewhere.test",
    );
    let (ok, out) = check(&server);
    assert!(ok, "{out}");
    assert!(
        out.contains("WARN  TLS-RPT _smtp._tls.b.test: reports go elsewhere, not to mailto:tls-reports@b.test"),
        "{out}"
    );
    net.dns.remove("_smtp._tls.b.test");
    publish(&net, &server, Some("_smtp._tls.b.test"));

    // No PTR: FCrDNS fails.
    net.dns
        .remove(&format!("20.{}.0.127.in-addr.arpa", ip.octets()[2]));
    let (ok, out) = check(&server);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("FAIL  PTR {ip}: names none, not mx.b.test")),
        "{out}"
    );
    assert!(
        out.contains("set its reverse DNS (PTR) to mx.b.test"),
        "{out}"
    );
    net.dns.ptr(ip, "mx.b.test");

    // SPF gone (the MX stays).
    net.dns.remove("b.test");
    net.dns.mx("b.test", 10, "mx.b.test");
    let (ok, out) = check(&server);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("FAIL  SPF b.test for {ip}: none")),
        "{out}"
    );
    assert!(
        out.contains("fix: b.test. 3600 IN TXT \"v=spf1 mx"),
        "{out}"
    );
    net.dns.txt("b.test", "v=spf1 mx -all");

    // A DKIM key replaced by another one.
    let records = server.admin_ok(&["dns", "records", "b.test"]);
    let dkim_owner = records
        .lines()
        .find(|l| l.contains("._domainkey.") && l.contains("k=ed25519"))
        .and_then(|l| l.split(". ").next())
        .unwrap()
        .to_string();
    net.dns.remove(&dkim_owner);
    net.dns.txt(
        &dkim_owner,
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    );
    let (ok, out) = check(&server);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL  DKIM {dkim_owner}: published with another key"
        )),
        "{out}"
    );
    net.dns.remove(&dkim_owner);
    publish(&net, &server, Some(&dkim_owner));

    // DMARC p=none: a warning, the check still passes.
    net.dns.remove("_dmarc.b.test");
    net.dns.txt("_dmarc.b.test", "v=DMARC1; p=none");
    let (ok, out) = check(&server);
    assert!(ok, "{out}");
    assert!(out.contains("WARN  DMARC _dmarc.b.test: p=none"), "{out}");

    // MX elsewhere.
    net.dns.remove("b.test");
    net.dns.mx("b.test", 10, "mx.elsewhere.test");
    net.dns.txt("b.test", "v=spf1 mx -all");
    let (ok, out) = check(&server);
    assert!(!ok, "{out}");
    assert!(
        out.contains("FAIL  MX b.test: points at mx.elsewhere.test"),
        "{out}"
    );
    assert!(
        out.contains("fix: b.test. 3600 IN MX 10 mx.b.test."),
        "{out}"
    );

    // A domain we do not serve.
    let err = server.admin_err(&["dns", "check", "nowhere.test"]);
    assert!(err.contains("domain nowhere.test not found"), "{err}");
}

/// A user's published certificate: its SMIMEA record warns until
/// published, is OK as `dns records` prints it, and fails when the DNS
/// holds another certificate (senders would encrypt to a stale one).
#[test]
fn published_keys_are_checked_in_the_dns() {
    let net = MailNet::new(152);
    let server = net.tern(20, "b.test", &[("ann@b.test", "ann-pw")], "");
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let (path, _) = common::smime_certificate(dir.path(), name, "ann@b.test", true);
        std::fs::read(path).unwrap()
    };
    let old = make("old.der");
    let new = make("new.der");
    let path = dir.path().join("new.der");
    server.admin_ok(&["key", "put", "ann@b.test", path.to_str().unwrap()]);
    let records = server.admin_ok(&["dns", "records", "b.test"]);
    let line = records
        .lines()
        .find(|l| l.contains(" SMIMEA "))
        .unwrap_or_else(|| panic!("{records}"));
    let owner = line.split(". ").next().unwrap().to_string();
    let (_, out) = check(&server);
    assert!(
        out.contains(&format!("WARN  SMIMEA {owner}: not published")),
        "{out}"
    );
    net.dns.smimea(&owner, 3, 0, 0, &old);
    let (_, out) = check(&server);
    assert!(
        out.contains(&format!("FAIL  SMIMEA {owner}: another key is published")),
        "{out}"
    );
    net.dns.remove(&owner);
    net.dns.smimea(&owner, 3, 0, 0, &new);
    let (_, out) = check(&server);
    assert!(out.contains(&format!("OK    SMIMEA {owner}")), "{out}");
}
