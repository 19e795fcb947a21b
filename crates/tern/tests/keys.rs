//! Published keys: an OpenPGP key made by Debian's gpg and an S/MIME
//! certificate made by openssl, published with `tern key put`; the Web
//! Key Directory serves the key at the path gpg itself computes
//! (`--with-wkd-hash`) and gpg imports what it serves; `tern dns
//! records` prints the OPENPGPKEY record gpg prints (`export-dane`), byte
//! for byte, and the SMIMEA record of the certificate's DER.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::Gpg;
use testkit::TernServer;

fn server() -> TernServer {
    let listeners = testkit::ephemeral_listeners(&["smtp", "imap", "http"]);
    common::smtp_server_with(&listeners, "[imap]\nplaintext_on_loopback = true\n")
}

/// Alice makes a signing key with gpg and publishes it (`tern key put`):
/// her gpg and the fingerprint `tern key list` shows.
fn alice_publishes(server: &TernServer, dir: &Path) -> (Gpg, String) {
    let alice = Gpg::new();
    alice.generate("Alice <alice@a.test>", "ed25519", "sign");
    let armored = alice.run(&["--armor", "--export", "alice@a.test"]);
    server.admin_ok(&["key", "put", "alice@a.test", &write(dir, "a.asc", &armored)]);
    let fingerprint = server
        .admin_ok(&["key", "list", "alice@a.test"])
        .split('\t')
        .nth(1)
        .unwrap()
        .to_string();
    (alice, fingerprint)
}

/// The verdict badges the webmail shows Bob for each subject (Chromium
/// under Playwright, tests/clients/webmail_read.mjs).
fn verdicts_shown(server: &TernServer, subjects: &[&str]) -> serde_json::Value {
    let out = Command::new("node")
        .arg(common::repo("tests/clients/webmail_read.mjs"))
        .arg(format!("http://{}", server.addr("http")))
        .args(["bob@a.test", "bob-pw"])
        .args(subjects)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

/// GET `path` with this Host: (status, body).
fn get(server: &TernServer, host: &str, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(server.addr("http")).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path.to_str().unwrap().to_string()
}

/// gpg's own record lines: (owner label, the key's octets).
fn dane_record(text: &str) -> (String, Vec<u8>) {
    let mut lines = text.lines().skip_while(|l| !l.contains("TYPE61"));
    let first = lines.next().unwrap();
    let label = first.split(' ').next().unwrap().to_string();
    let hex: String = lines
        .take_while(|l| !l.trim().starts_with(')'))
        .map(str::trim)
        .collect();
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    (label, bytes)
}

#[test]
fn an_openpgp_key_is_published_by_wkd_and_openpgpkey() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let alice = Gpg::new();
    alice.generate("Alice <alice@a.test>", "ed25519", "sign");
    let armored = alice.run(&["--armor", "--export", "alice@a.test"]);
    let binary = alice.run(&["--export", "alice@a.test"]);
    let secret = alice.run(&[
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--armor",
        "--export-secret-keys",
        "alice@a.test",
    ]);
    let bob = Gpg::new();
    bob.generate("Bob <bob@a.test>", "ed25519", "sign");
    let bobs = bob.run(&["--export", "bob@a.test"]);

    // Only a public key naming the address.
    let e = server.admin_err(&[
        "key",
        "put",
        "alice@a.test",
        &write(dir.path(), "s.asc", &secret),
    ]);
    assert!(e.contains("private key"), "{e}");
    let e = server.admin_err(&[
        "key",
        "put",
        "alice@a.test",
        &write(dir.path(), "b.gpg", &bobs),
    ]);
    assert!(e.contains("no user ID for alice@a.test"), "{e}");
    let e = server.admin_err(&[
        "key",
        "put",
        "alice@a.test",
        &write(dir.path(), "x", b"hello"),
    ]);
    assert!(e.contains("neither"), "{e}");
    let out = server.admin_ok(&[
        "key",
        "put",
        "alice@a.test",
        &write(dir.path(), "a.asc", &armored),
    ]);
    let fingerprint = alice
        .text(&["--with-colons", "--list-keys", "alice@a.test"])
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .unwrap()
        .split(':')
        .nth(9)
        .unwrap()
        .to_string();
    assert!(out.contains(&fingerprint), "{out}");
    let listed = server.admin_ok(&["key", "list", "alice@a.test"]);
    assert!(
        listed.starts_with(&format!("openpgp\t{fingerprint}")),
        "{listed}"
    );

    // WKD at the path gpg computes, both methods; gpg imports what it gets.
    let hash = alice
        .text(&["--with-wkd-hash", "--list-keys", "alice@a.test"])
        .lines()
        .find_map(|l| l.trim().strip_suffix("@a.test").map(str::to_string))
        .unwrap();
    let (status, advanced) = get(
        &server,
        "openpgpkey.a.test",
        &format!("/.well-known/openpgpkey/a.test/hu/{hash}?l=alice"),
    );
    assert_eq!(status, 200);
    assert_eq!(advanced, binary, "the key as gpg exports it");
    let (status, direct) = get(
        &server,
        "a.test",
        &format!("/.well-known/openpgpkey/hu/{hash}"),
    );
    assert_eq!((status, direct), (200, binary.clone()));
    assert_eq!(
        get(
            &server,
            "openpgpkey.a.test",
            "/.well-known/openpgpkey/a.test/policy"
        )
        .0,
        200
    );
    assert_eq!(
        get(
            &server,
            "a.test",
            "/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q"
        )
        .0,
        404
    );
    assert_eq!(
        get(&server, "x.test", "/.well-known/openpgpkey/x.test/policy").0,
        404
    );
    let reader = Gpg::new();
    let fetched = write(dir.path(), "fetched.gpg", &advanced);
    reader.run(&["--import", &fetched]);
    assert!(
        reader
            .text(&["--with-colons", "--list-keys"])
            .contains(&fingerprint)
    );

    // The OPENPGPKEY record: the owner and the octets gpg's export-dane gives.
    let (label, octets) = dane_record(&alice.text(&[
        "--export-options",
        "export-dane",
        "--export",
        "alice@a.test",
    ]));
    assert_eq!(octets, binary);
    let records = server.admin_ok(&["dns", "records", "a.test"]);
    let line = records
        .lines()
        .find(|l| l.contains(" OPENPGPKEY "))
        .unwrap_or_else(|| panic!("{records}"));
    assert!(
        line.starts_with(&format!("{label}._openpgpkey.a.test. 3600 IN OPENPGPKEY ")),
        "{line}"
    );
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(line.rsplit(' ').next().unwrap())
        .unwrap();
    assert_eq!(data, binary);

    // Withdrawn: WKD and the records forget it.
    server.admin_ok(&["key", "remove", "alice@a.test", "openpgp"]);
    assert_eq!(
        get(
            &server,
            "a.test",
            &format!("/.well-known/openpgpkey/hu/{hash}")
        )
        .0,
        404
    );
    assert!(
        !server
            .admin_ok(&["dns", "records", "a.test"])
            .contains("OPENPGPKEY")
    );
    let e = server.admin_err(&["key", "remove", "alice@a.test", "openpgp"]);
    assert!(e.contains("has no openpgp key"), "{e}");

    // The same from the webmail's Settings (its own session and checks).
    let (cookie, csrf) = common::sign_in(&server, ("alice@a.test", "alice-pw"));
    let with = format!("Cookie: {cookie}\r\nX-Tern-CSRF: {csrf}\r\n");
    let publish = |data: &[u8]| {
        let body =
            serde_json::json!({"data": base64::engine::general_purpose::STANDARD.encode(data)});
        common::http1(
            &server,
            &common::post("/webmail/keys/publish", &with, &body.to_string()),
        )
    };
    let (status, _, body) = publish(&bobs);
    assert_eq!(status, 400);
    assert!(body.contains("no user ID for alice@a.test"), "{body}");
    let (status, _, body) = publish(&armored);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&fingerprint), "{body}");
    assert_eq!(
        get(
            &server,
            "a.test",
            &format!("/.well-known/openpgpkey/hu/{hash}")
        )
        .1,
        binary
    );
    let withdraw = common::post("/webmail/keys/withdraw", &with, r#"{"kind":"openpgp"}"#);
    assert_eq!(common::http1(&server, &withdraw).0, 200);
    assert_eq!(common::http1(&server, &withdraw).0, 404);
}

#[test]
fn an_smime_certificate_is_published_as_smimea() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::smime_certificate(dir.path(), "alice.pem", "alice@a.test", false);
    let (other, _) = common::smime_certificate(dir.path(), "other.pem", "carol@c.test", false);
    let e = server.admin_err(&["key", "put", "alice@a.test", other.to_str().unwrap()]);
    assert!(e.contains("carol@c.test, not alice@a.test"), "{e}");
    let e = server.admin_err(&["key", "put", "alice@a.test", key.to_str().unwrap()]);
    assert!(e.contains("private key"), "{e}");
    server.admin_ok(&["key", "put", "alice@a.test", cert.to_str().unwrap()]);
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap()
        .stdout;
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    use sha2::Digest;
    let label: String = sha2::Sha256::digest(b"alice")[..28]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let records = server.admin_ok(&["dns", "records", "a.test"]);
    assert!(
        records.contains(&format!(
            "{label}._smimecert.a.test. 3600 IN SMIMEA 3 0 0 {hex}"
        )),
        "{records}"
    );
    let listed = server.admin_ok(&["key", "list", "alice@a.test"]);
    assert!(listed.starts_with("smime\t"), "{listed}");
}

/// A PGP/MIME message (RFC 3156 §5) signed by gpg with Alice's key: with
/// her key published, Bob's copy says `x-pgp=pass` with its fingerprint;
/// a message changed after signing says `fail`; a sender with no key
/// published here, `neutral`.
#[test]
fn a_pgp_mime_signature_is_checked_at_delivery() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let (alice, fingerprint) = alice_publishes(&server, dir.path());
    let part = "Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob, this is really me.\r\n";
    let signature = common::pgp_signature(&alice, dir.path(), "alice@a.test", part);
    let message = |from: &str, subject: &str, part: &str| {
        common::pgp_signed(from, "bob@a.test", subject, part, &signature)
    };
    let send = |from: &str, subject: &str, part: &str| {
        testkit::send_smtp(
            server.addr("smtp"),
            from,
            "bob@a.test",
            &message(from, subject, part),
        );
    };
    send("alice@a.test", "Signed", part);
    send(
        "alice@a.test",
        "Changed",
        &part.replace("really me", "really him"),
    );
    send("carol@far.test", "Unknown signer", part);
    let inbox = common::imap_mailbox(&server, ("bob@a.test", "bob-pw"), "INBOX");
    let find = |subject: &str| common::with_subject(&inbox, subject);
    let signed = find("Signed");
    assert!(
        signed.contains(&format!(
            "Authentication-Results: mx.a.test; x-pgp=pass header.from=alice@a.test (signed with key {fingerprint})"
        )),
        "{signed}"
    );
    assert!(
        find("Changed").contains(
            "x-pgp=fail header.from=alice@a.test (the signature does not match the message)"
        ),
        "{inbox:?}"
    );
    assert!(
        find("Unknown signer").contains("x-pgp=neutral header.from=carol@far.test"),
        "{inbox:?}"
    );

    // The webmail shows each verdict (Chromium under Playwright).
    let shown = verdicts_shown(&server, &["Signed", "Changed", "Unknown signer"]);
    assert_eq!(
        shown["Signed"],
        serde_json::json!(["Signed by alice@a.test (OpenPGP), verified"]),
        "{shown}"
    );
    assert!(
        shown["Changed"][0]
            .as_str()
            .unwrap()
            .starts_with("OpenPGP signature invalid"),
        "{shown}"
    );
    assert!(
        shown["Unknown signer"][0]
            .as_str()
            .unwrap()
            .contains("not verified (signed; no key published for the sender"),
        "{shown}"
    );
}

/// Bob publishes a key that encrypts and turns encryption at rest on;
/// his gpg.
fn bob_encrypts_at_rest(server: &TernServer, dir: &Path) -> Gpg {
    let bob = Gpg::new();
    bob.generate("Bob <bob@a.test>", "future-default", "default");
    let key = bob.run(&["--export", "bob@a.test"]);
    server.admin_ok(&["key", "put", "bob@a.test", &write(dir, "b.gpg", &key)]);
    server.admin_ok(&["key", "encrypt", "bob@a.test", "on"]);
    bob
}

/// The armored PGP message in a stored message, decrypted by `gpg`.
fn decrypted(gpg: &Gpg, dir: &Path, stored: &str) -> Vec<u8> {
    const END: &str = "-----END PGP MESSAGE-----";
    let start = stored.find("-----BEGIN PGP MESSAGE-----").unwrap();
    let end = stored.find(END).unwrap() + END.len();
    let armored = write(dir, "m.asc", &stored.as_bytes()[start..end]);
    gpg.run(&["--decrypt", &armored])
}

/// Encryption at rest (opt-in): with it on, Bob's new mail is stored as
/// PGP/MIME encrypted to his key (RFC 3156 §4), From/To/Subject/Date
/// readable outside; gpg with Bob's private key gives back the message as
/// it came, byte for byte. Mail already encrypted is stored as it came;
/// turned off, mail is stored in clear again.
#[test]
fn mail_is_encrypted_at_rest_to_the_users_key() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let e = server.admin_err(&["key", "encrypt", "bob@a.test", "on"]);
    assert!(e.contains("has no key to encrypt to"), "{e}");
    let signing_only = Gpg::new();
    signing_only.generate("Bob <bob@a.test>", "ed25519", "sign");
    let key = signing_only.run(&["--export", "bob@a.test"]);
    server.admin_ok(&[
        "key",
        "put",
        "bob@a.test",
        &write(dir.path(), "s.gpg", &key),
    ]);
    let e = server.admin_err(&["key", "encrypt", "bob@a.test", "on"]);
    assert!(e.contains("has no key to encrypt to"), "{e}");
    let bob = bob_encrypts_at_rest(&server, dir.path());

    let original = "From: Carol <carol@far.test>\r\nTo: bob@a.test\r\nSubject: The plans\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <plans@far.test>\r\n\r\nThe vault code is 4711.\r\n";
    testkit::send_smtp(
        server.addr("smtp"),
        "carol@far.test",
        "bob@a.test",
        original,
    );
    let already = "From: Carol <carol@far.test>\r\nTo: bob@a.test\r\nSubject: Sealed\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=x\r\n\r\n--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--x\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nopaque\r\n-----END PGP MESSAGE-----\r\n--x--\r\n";
    testkit::send_smtp(server.addr("smtp"), "carol@far.test", "bob@a.test", already);
    let inbox = common::imap_mailbox(&server, ("bob@a.test", "bob-pw"), "INBOX");
    let stored = inbox
        .iter()
        .find(|m| m.contains("Subject: The plans"))
        .unwrap();
    assert!(
        !stored.contains("4711"),
        "the body is not in clear: {stored}"
    );
    for clear in [
        "From: Carol <carol@far.test>",
        "Date: Thu, 03 Dec 2026",
        "Message-ID: <plans@far.test>",
        "Delivered-To: bob@a.test",
    ] {
        assert!(stored.contains(clear), "{clear}: {stored}");
    }
    assert!(
        stored.contains("multipart/encrypted; protocol=\"application/pgp-encrypted\""),
        "{stored}"
    );
    let plain = decrypted(&bob, dir.path(), stored);
    let plain = String::from_utf8(plain).unwrap();
    assert!(plain.starts_with("Received: "), "{plain}");
    // send_smtp ends the content with CRLF before the final dot.
    assert!(
        plain.ends_with(&format!("{original}\r\n")),
        "byte for byte after our Received line: {plain:?}"
    );
    let sealed = inbox
        .iter()
        .find(|m| m.contains("Subject: Sealed"))
        .unwrap();
    assert!(
        sealed.contains("-----BEGIN PGP MESSAGE-----\r\nopaque"),
        "not encrypted twice: {sealed}"
    );

    server.admin_ok(&["key", "encrypt", "bob@a.test", "off"]);
    testkit::send_smtp(
        server.addr("smtp"),
        "carol@far.test",
        "bob@a.test",
        &original.replace("The plans", "Later"),
    );
    let inbox = common::imap_mailbox(&server, ("bob@a.test", "bob-pw"), "INBOX");
    assert!(
        inbox
            .iter()
            .any(|m| m.contains("Subject: Later") && m.contains("4711"))
    );
    // The webmail's Settings turn it on again, as the CLI does.
    let (cookie, csrf) = common::sign_in(&server, ("bob@a.test", "bob-pw"));
    let with = format!("Cookie: {cookie}\r\nX-Tern-CSRF: {csrf}\r\n");
    let (status, _, body) = common::http1(
        &server,
        &common::post("/webmail/keys/encrypt", &with, r#"{"on":true}"#),
    );
    assert_eq!(status, 200, "{body}");
    testkit::send_smtp(
        server.addr("smtp"),
        "carol@far.test",
        "bob@a.test",
        &original.replace("The plans", "Again"),
    );
    let inbox = common::imap_mailbox(&server, ("bob@a.test", "bob-pw"), "INBOX");
    let again = inbox.iter().find(|m| m.contains("Subject: Again")).unwrap();
    assert!(
        !again.contains("4711") && again.contains("multipart/encrypted"),
        "{again}"
    );
}

/// C-FT9 for encryption at rest: a 40 MB message for an account that
/// encrypts at rest is read from its spool and its armored ciphertext
/// written into the spool a piece at a time, so the server's peak memory
/// hardly moves (encrypted whole, it held the message five times over);
/// gpg gives the message back.
#[test]
fn a_large_message_is_encrypted_at_rest_as_a_stream() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let bob = bob_encrypts_at_rest(&server, dir.path());
    let (sent, stored) = large_secret_stored(&server);
    assert!(stored.contains("multipart/encrypted"), "not encrypted");
    let plain = decrypted(&bob, dir.path(), &stored);
    assert!(
        plain.ends_with(sent.as_bytes()),
        "gpg does not give the message back"
    );
}

/// The same the S/MIME way: the ContentInfo's lengths are all known before
/// the message is read, so it is written as it is encrypted (it was built
/// whole, at most 64 MiB, larger ones stored in clear); `openssl cms
/// -decrypt` gives the message back.
#[test]
fn a_large_message_is_encrypted_at_rest_the_smime_way_as_a_stream() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::smime_certificate(dir.path(), "bob.pem", "bob@a.test", false);
    server.admin_ok(&["key", "put", "bob@a.test", cert.to_str().unwrap()]);
    server.admin_ok(&["key", "encrypt", "bob@a.test", "on"]);
    let (sent, stored) = large_secret_stored(&server);
    assert!(
        stored.contains("Content-Type: application/pkcs7-mime; smime-type=enveloped-data"),
        "not encrypted"
    );
    let plain = smime_decrypted(dir.path(), &stored, &cert, &key);
    assert!(
        plain.ends_with(sent.as_bytes()),
        "openssl does not give the message back"
    );
}

/// A 40 MB message sent to Bob, who encrypts at rest: what was sent (as
/// the store has it after our trace fields) and what his INBOX holds.
/// Fails unless the server's peak memory grew by less than 24 MiB.
fn large_secret_stored(server: &TernServer) -> (String, String) {
    let (_, message, _) = common::with_large_attachment(
        "From: carol@far.test\r\nTo: bob@a.test\r\nSubject: large secret\r\n",
    );
    let message = String::from_utf8(message).unwrap();
    let stored = sent_to_bob_within(server, "carol@far.test", &message, "large secret");
    // send_smtp ends the content with CRLF before the final dot.
    (format!("{message}\r\n"), stored)
}

/// `message` sent to Bob by `from`, and as his INBOX holds it (found by
/// `subject`). Fails unless the server's peak memory grew by less than
/// 24 MiB while it took and delivered it.
fn sent_to_bob_within(server: &TernServer, from: &str, message: &str, subject: &str) -> String {
    let before = common::peak_rss_kib(server.pid().unwrap());
    testkit::send_smtp(server.addr("smtp"), from, "bob@a.test", message);
    common::assert_peak_within(server.pid().unwrap(), before, &format!("{subject:?}"));
    let inbox = common::imap_mailbox(server, ("bob@a.test", "bob-pw"), "INBOX");
    inbox
        .into_iter()
        .find(|m| m.contains(&format!("Subject: {subject}")))
        .unwrap()
}

/// A 40 MB MIME entity to sign: a multipart with a 30 MB attachment.
fn large_part() -> String {
    String::from_utf8(common::with_large_attachment("").1).unwrap()
}

/// C-FT9 for signature checks: a 40 MB PGP/MIME signed message has its
/// signed part hashed from the spool a piece at a time, so it is checked
/// (`pass`) while the server's peak memory hardly moves. It was "too large
/// to check" over 25 MB, and read whole under that.
#[test]
fn a_large_pgp_signed_message_is_checked_as_a_stream() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let (alice, fingerprint) = alice_publishes(&server, dir.path());
    let part = large_part();
    let signature = common::pgp_signature(&alice, dir.path(), "alice@a.test", &part);
    let message = common::pgp_signed("alice@a.test", "bob@a.test", "Large", &part, &signature);
    let stored = sent_to_bob_within(&server, "alice@a.test", &message, "Large");
    let verdict = format!(
        "Authentication-Results: mx.a.test; x-pgp=pass header.from=alice@a.test (signed with key {fingerprint})"
    );
    assert!(stored.contains(&verdict), "{}", &stored[..2000]);
}

/// The same for S/MIME (multipart/signed, RFC 8551 §3.5.3): the digest of
/// a 40 MB signed part is made from the spool a piece at a time.
#[test]
fn a_large_smime_signed_message_is_checked_as_a_stream() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::smime_certificate(dir.path(), "alice.pem", "alice@a.test", false);
    server.admin_ok(&["key", "put", "alice@a.test", cert.to_str().unwrap()]);
    let part = large_part();
    let signature = common::smime_signature(&cert, &key, dir.path(), &part, false);
    let message = common::smime_signed("alice@a.test", "bob@a.test", "Large", &part, &signature);
    let stored = sent_to_bob_within(&server, "alice@a.test", &message, "Large");
    assert!(
        stored.contains("Authentication-Results: mx.a.test; smime=pass header.from=alice@a.test"),
        "{}",
        &stored[..2000]
    );
}

/// An S/MIME enveloped-data message as `openssl cms -decrypt` reads it
/// with the recipient's certificate and key.
fn smime_decrypted(dir: &Path, stored: &str, cert: &Path, key: &Path) -> Vec<u8> {
    let sealed = write(dir, "m.p7m", &common::enveloped_der(stored));
    let out = Command::new("openssl")
        .args([
            "cms", "-decrypt", "-inform", "DER", "-in", &sealed, "-binary",
        ])
        .arg("-recip")
        .arg(cert)
        .arg("-inkey")
        .arg(key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An S/MIME signed message (RFC 8551 §3.5.3) signed by openssl: with
/// the signer's certificate published for the sender, `smime=pass`; the
/// message changed after signing, `fail`; signed with a certificate for
/// the sender that is not the published one, `neutral`; the webmail says
/// which.
#[test]
fn an_smime_signature_is_checked_at_delivery() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::smime_certificate(dir.path(), "alice.pem", "alice@a.test", false);
    server.admin_ok(&["key", "put", "alice@a.test", cert.to_str().unwrap()]);
    // Another certificate for the same address, RSA this time.
    let (other, other_key) = (dir.path().join("other.pem"), dir.path().join("other.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=Alice",
        ])
        .args(["-addext", "subjectAltName=email:alice@a.test"])
        .arg("-keyout")
        .arg(&other_key)
        .arg("-out")
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let part =
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob, signed the S/MIME way.\r\n";
    let sign =
        |cert: &Path, key: &Path| common::smime_signature(cert, key, dir.path(), part, false);
    let message = |subject: &str, part: &str, signature: &str| {
        common::smime_signed("alice@a.test", "bob@a.test", subject, part, signature)
    };
    let good = sign(&cert, &key);
    let send = |subject: &str, part: &str, signature: &str| {
        testkit::send_smtp(
            server.addr("smtp"),
            "alice@a.test",
            "bob@a.test",
            &message(subject, part, signature),
        );
    };
    send("Signed", part, &good);
    send("Changed", &part.replace("signed", "changed"), &good);
    send("Other certificate", part, &sign(&other, &other_key));
    // Opaque signed-data (RFC 8551 §3.5.2): the part inside the signature.
    let opaque = common::smime_signature(&cert, &key, dir.path(), part, true);
    testkit::send_smtp(
        server.addr("smtp"),
        "alice@a.test",
        "bob@a.test",
        &format!(
            "From: alice@a.test\r\nTo: bob@a.test\r\nSubject: Opaque\r\nMIME-Version: 1.0\r\n\
             Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{opaque}\r\n"
        ),
    );
    let inbox = common::imap_mailbox(&server, ("bob@a.test", "bob-pw"), "INBOX");
    let find = |subject: &str| common::with_subject(&inbox, subject);
    let fingerprint = server
        .admin_ok(&["key", "list", "alice@a.test"])
        .split('\t')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        find("Opaque").contains(&format!("Authentication-Results: mx.a.test; smime=pass header.from=alice@a.test (signed with key {fingerprint})")),
        "{inbox:?}"
    );
    let signed = find("Signed");
    assert!(
        signed.contains(&format!("Authentication-Results: mx.a.test; smime=pass header.from=alice@a.test (signed with key {fingerprint})")),
        "{signed}"
    );
    assert!(
        find("Changed").contains(
            "smime=fail header.from=alice@a.test (the message was changed after it was signed)"
        ),
        "{inbox:?}"
    );
    assert!(
        find("Other certificate").contains("smime=neutral header.from=alice@a.test (valid signature; the certificate is not one published here)"),
        "{inbox:?}"
    );
    let shown = verdicts_shown(&server, &["Signed", "Changed"]);
    assert_eq!(
        shown["Signed"],
        serde_json::json!(["Signed by alice@a.test (S/MIME), verified"]),
        "{shown}"
    );
    assert!(
        shown["Changed"][0]
            .as_str()
            .unwrap()
            .starts_with("S/MIME signature invalid"),
        "{shown}"
    );
}

/// Encryption at rest the S/MIME way (RFC 8551 §3.3): an account whose
/// only key is an S/MIME certificate gets its new mail as enveloped-data
/// to it, which `openssl cms -decrypt` with the private key turns back
/// into the message as it came, byte for byte: an EC P-256 certificate
/// (key agreement, RFC 5753) for Bob, an RSA one (key transport) for
/// Alice.
#[test]
fn mail_is_encrypted_at_rest_the_smime_way() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let (bob_cert, bob_key) = common::smime_certificate(dir.path(), "bob.pem", "bob@a.test", false);
    let (alice_cert, alice_key) = (dir.path().join("alice.pem"), dir.path().join("alice.key"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args([
            "-subj",
            "/CN=Alice",
            "-addext",
            "subjectAltName=email:alice@a.test",
        ])
        .arg("-keyout")
        .arg(&alice_key)
        .arg("-out")
        .arg(&alice_cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    for (address, cert) in [("bob@a.test", &bob_cert), ("alice@a.test", &alice_cert)] {
        server.admin_ok(&["key", "put", address, cert.to_str().unwrap()]);
        let said = server.admin_ok(&["key", "encrypt", address, "on"]);
        assert!(
            said.contains("encrypted to its S/MIME certificate"),
            "{said}"
        );
    }
    for (address, password, cert, key) in [
        ("bob@a.test", "bob-pw", &bob_cert, &bob_key),
        ("alice@a.test", "alice-pw", &alice_cert, &alice_key),
    ] {
        let original = format!(
            "From: Carol <carol@far.test>\r\nTo: {address}\r\nSubject: For {address}\r\n\
             Message-ID: <{address}.plans@far.test>\r\n\r\nThe vault code is 4711.\r\n"
        );
        testkit::send_smtp(server.addr("smtp"), "carol@far.test", address, &original);
        let inbox = common::imap_mailbox(&server, (address, password), "INBOX");
        let stored = inbox
            .iter()
            .find(|m| m.contains(&format!("Subject: For {address}")))
            .unwrap_or_else(|| panic!("{inbox:?}"));
        assert!(
            !stored.contains("4711"),
            "the body is not in clear: {stored}"
        );
        assert!(
            stored.contains("Content-Type: application/pkcs7-mime; smime-type=enveloped-data"),
            "{stored}"
        );
        let plain = String::from_utf8(smime_decrypted(dir.path(), stored, cert, key)).unwrap();
        assert!(plain.starts_with("Received: "), "{plain}");
        assert!(
            plain.ends_with(&format!("{original}\r\n")),
            "byte for byte after our Received line: {plain:?}"
        );
    }
}

/// gpg itself finds a key published here with `--locate-keys`: by the Web
/// Key Directory (dirmngr fetching it from Tern over HTTPS) and by DANE
/// (the OPENPGPKEY record `tern dns records` prints, served by a test
/// DNS). dirmngr knows only port 443 and 53, /etc/hosts, /etc/resolv.conf
/// and the system's CA bundle: gpg runs in a mount namespace of its own
/// (`unshare -m`) where those three files are the test's. Root only (the
/// ports, the namespace); elsewhere it says so and passes.
#[test]
fn gpg_locates_published_keys_by_wkd_and_dane() {
    if common::mx_port() != 25 {
        eprintln!("skipped: gpg --locate-keys needs root (ports 443 and 53, unshare -m)");
        return;
    }
    let net = common::MailNet::new(172);
    let dir = tempfile::tempdir().unwrap();
    let ip = net.ip(10);
    let (cert, key) = common::certificate(dir.path(), &["openpgpkey.a.test", "a.test"]);
    let server = net.tern(
        10,
        "a.test",
        &[],
        &format!("[listeners]\nhttps = \"{ip}:443\"\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n"),
    );
    let (_alice, fingerprint) = alice_publishes(&server, dir.path());

    // The OPENPGPKEY record as `tern dns records` prints it, on port 53.
    let records = server.admin_ok(&["dns", "records", "a.test"]);
    let line = records
        .lines()
        .find(|l| l.contains(" OPENPGPKEY "))
        .unwrap_or_else(|| panic!("{records}"));
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(line.rsplit(' ').next().unwrap())
        .unwrap();
    let owner = line.split(' ').next().unwrap().trim_end_matches('.');
    let dns_ip = net.ip(53);
    let dns = net
        .rt
        .block_on(testkit::dns::TestDns::start_at((dns_ip, 53).into()))
        .unwrap();
    dns.openpgpkey(owner, &data);

    let hosts = write(
        dir.path(),
        "hosts",
        format!("127.0.0.1 localhost\n{ip} openpgpkey.a.test a.test\n").as_bytes(),
    );
    let resolv = write(
        dir.path(),
        "resolv.conf",
        format!("nameserver {dns_ip}\n").as_bytes(),
    );
    for method in ["wkd", "dane"] {
        let reader = Gpg::new();
        let home = reader.home().display().to_string();
        let script = format!(
            "mount --bind {hosts} /etc/hosts && mount --bind {resolv} /etc/resolv.conf && \
             mount --bind {cert} /etc/ssl/certs/ca-certificates.crt && \
             GNUPGHOME={home} gpg --batch --auto-key-locate clear,nodefault,{method} \
             --locate-keys alice@a.test; r=$?; GNUPGHOME={home} gpgconf --kill dirmngr; exit $r"
        );
        let out = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{method}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            reader
                .text(&["--with-colons", "--list-keys"])
                .contains(&fingerprint),
            "{method}: the key gpg found is Alice's"
        );
    }
    drop(dns);
}
