//! Signed mail from other domains, checked with the keys their domains
//! publish: an OpenPGP key in a DNSSEC-signed OPENPGPKEY record (pass),
//! the same in an unsigned zone (neutral: nothing vouches for it), a key
//! served by the sender's Web Key Directory (another Tern, over HTTPS
//! with a checked certificate: pass), a changed message (fail), a sender
//! that publishes nothing (neutral); an S/MIME certificate named by a
//! DNSSEC-signed SMIMEA record (pass), one issued by a CA the operator
//! trusts (`[policy] smime_ca_file`: pass), a self-signed one nothing
//! vouches for (neutral). Keys made by Debian's gpg, certificates and
//! signatures by openssl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Gpg, MailNet};

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA certificate and key (P-256), and an S/MIME certificate for
/// `address` it issued (emailProtection).
fn ca_issued(dir: &Path, address: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "30",
        "-subj",
        "/CN=Test Mail CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=Heidi",
        "-keyout",
        &p("heidi.key"),
        "-out",
        &p("heidi.csr"),
    ]);
    let extensions = format!(
        "subjectAltName=email:{address}\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n"
    );
    std::fs::write(dir.join("heidi.ext"), extensions).unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("heidi.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &p("heidi.ext"),
        "-out",
        &p("heidi.pem"),
    ]);
    (
        dir.join("ca.pem"),
        dir.join("heidi.pem"),
        dir.join("heidi.key"),
    )
}

/// The DER of a PEM certificate.
fn der(pem: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// The fingerprint `tern key list` and the verdicts print for a gpg key.
fn fingerprint(gpg: &Gpg, address: &str) -> String {
    gpg.text(&["--with-colons", "--fingerprint", address])
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .unwrap()
        .to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn signatures_from_other_domains_are_checked_with_their_published_keys() {
    let net = MailNet::new(171);
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("root.key");
    std::fs::write(&anchor, net.dns.dnssec()).unwrap();
    net.dns.signed_zone("far.test").unsigned_zone("plain.test");

    // wkd.test's Web Key Directory is another Tern's, over HTTPS.
    let (cert, key) = common::certificate(dir.path(), &["openpgpkey.wkd.test"]);
    let port = common::https_port();
    let w_ip = net.ip(20);
    let frank = Gpg::new();
    frank.generate("Frank <frank@wkd.test>", "ed25519", "sign");
    let w = net.tern(
        20,
        "wkd.test",
        &[("frank@wkd.test", "frank-pw")],
        &format!(
            "[listeners]\nhttps = \"{w_ip}:{port}\"\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n"
        ),
    );
    let frank_key = dir.path().join("frank.asc");
    std::fs::write(
        &frank_key,
        frank.run(&["--armor", "--export", "frank@wkd.test"]),
    )
    .unwrap();
    w.admin_ok(&["key", "put", "frank@wkd.test", frank_key.to_str().unwrap()]);
    net.dns.a("openpgpkey.wkd.test", w_ip);

    // far.test (signed) and plain.test (not) publish OPENPGPKEY records.
    let dave = Gpg::new();
    dave.generate("Dave <dave@far.test>", "ed25519", "sign");
    let erin = Gpg::new();
    erin.generate("Erin <erin@plain.test>", "ed25519", "sign");
    let ivan = Gpg::new();
    ivan.generate("Ivan <ivan@far.test>", "ed25519", "sign");
    for (gpg, local, domain) in [(&dave, "dave", "far.test"), (&erin, "erin", "plain.test")] {
        let binary = gpg.run(&["--export", &format!("{local}@{domain}")]);
        net.dns
            .openpgpkey(&policy::openpgp::openpgpkey_owner(local, domain), &binary);
    }
    // grace@far.test's certificate in a DNSSEC-signed SMIMEA record.
    let (grace_cert, grace_key) =
        common::smime_certificate(dir.path(), "grace.pem", "grace@far.test", false);
    net.dns.smimea(
        &policy::smime::smimea_owner("grace", "far.test"),
        3,
        0,
        0,
        &der(&grace_cert),
    );
    let (judy_cert, judy_key) =
        common::smime_certificate(dir.path(), "judy.pem", "judy@far.test", false);
    let ca_dir = dir.path().join("ca");
    std::fs::create_dir(&ca_dir).unwrap();
    let (ca, heidi_cert, heidi_key) = ca_issued(&ca_dir, "heidi@far.test");

    let a = net.tern(
        10,
        "a.test",
        &[],
        &format!(
            "[dns]\ntrust_anchor = \"{}\"\n[outbound]\nca_file = \"{cert}\"\nmta_sts_port = {port}\n\
             [policy]\nsmime_ca_file = \"{}\"\n",
            anchor.display(),
            ca.display()
        ),
    );

    let part = "Content-Type: text/plain; charset=utf-8\r\n\r\nSigned far away.\r\n";
    let send = |from: &str, subject: &str, message: String| {
        let message = message.replace("Subject: x", &format!("Subject: {subject}"));
        testkit::send_smtp(a.addr("smtp"), from, "bob@a.test", &message);
    };
    let pgp = |gpg: &Gpg, from: &str, subject: &str, body: &str| {
        let signature = common::pgp_signature(gpg, dir.path(), from, part);
        send(
            from,
            subject,
            common::pgp_signed(from, "bob@a.test", "x", body, &signature),
        );
    };
    pgp(&dave, "dave@far.test", "Dave", part);
    pgp(
        &dave,
        "dave@far.test",
        "Dave changed",
        &part.replace("far", "near"),
    );
    pgp(&erin, "erin@plain.test", "Erin", part);
    pgp(&frank, "frank@wkd.test", "Frank", part);
    pgp(&ivan, "ivan@far.test", "Ivan", part);
    let smime = |cert: &Path, key: &Path, from: &str, subject: &str| {
        let signature = common::smime_signature(cert, key, dir.path(), part, false);
        send(
            from,
            subject,
            common::smime_signed(from, "bob@a.test", "x", part, &signature),
        );
    };
    smime(&grace_cert, &grace_key, "grace@far.test", "Grace");
    smime(&heidi_cert, &heidi_key, "heidi@far.test", "Heidi");
    smime(&judy_cert, &judy_key, "judy@far.test", "Judy");

    let verdict = |subject: &str| {
        let m = net.wait_for(&a, "bob@a.test", |m| {
            m.contains(&format!("Subject: {subject}\r\n"))
        });
        m.lines()
            .find(|l| l.contains("x-pgp=") || l.contains("smime="))
            .unwrap_or_else(|| panic!("{subject}: no verdict in {m}"))
            .to_string()
    };
    let expect = |subject: &str, wanted: &str| {
        let line = verdict(subject);
        assert!(line.contains(wanted), "{subject}: {line}\nwanted: {wanted}");
    };
    expect(
        "Dave",
        &format!(
            "x-pgp=pass header.from=dave@far.test (signed with key {} from a DNSSEC-signed OPENPGPKEY record)",
            fingerprint(&dave, "dave@far.test")
        ),
    );
    expect(
        "Dave changed",
        "x-pgp=fail header.from=dave@far.test (the signature does not match the message)",
    );
    expect(
        "Erin",
        &format!(
            "x-pgp=neutral header.from=erin@plain.test (valid signature with key {} from an OPENPGPKEY record without DNSSEC, which does not vouch for it)",
            fingerprint(&erin, "erin@plain.test")
        ),
    );
    expect(
        "Frank",
        &format!(
            "x-pgp=pass header.from=frank@wkd.test (signed with key {} from the sender's Web Key Directory)",
            fingerprint(&frank, "frank@wkd.test")
        ),
    );
    expect(
        "Ivan",
        "x-pgp=neutral header.from=ivan@far.test (signed; no key published for the sender)",
    );
    expect(
        "Grace",
        &format!(
            "smime=pass header.from=grace@far.test (signed with certificate {} from a DNSSEC-signed SMIMEA record)",
            sha256_hex(&der(&grace_cert))
        ),
    );
    expect(
        "Heidi",
        &format!(
            "smime=pass header.from=heidi@far.test (signed with certificate {} issued under a trusted authority)",
            sha256_hex(&der(&heidi_cert))
        ),
    );
    expect(
        "Judy",
        "smime=neutral header.from=judy@far.test (valid signature; the certificate is not published and does not chain to a trusted authority",
    );
}
