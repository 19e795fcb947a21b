//! S/MIME in the webmail (tests/clients/webmail_smime.mjs, Debian's
//! Chromium under Playwright): Alice keeps her PKCS #12 key in the
//! browser, signs a message to Bob and signs and encrypts another; Bob
//! keeps his and decrypts it in the page. On the receiving side, openssl
//! checks what the browser made: Tern's own verdict on the signed one is
//! `smime=pass` (Alice's certificate is published here), the encrypted
//! one holds no clear text, `openssl cms -decrypt` with Bob's key opens
//! it and `openssl cms -verify` checks Alice's signature inside. Alice's
//! key never reaches the server. Screenshots in
//! `target/test-artefacts/webmail-smime/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

const PASSPHRASE: &str = "correct horse battery";

/// A PKCS #12 file of `cert` and `key`, with [`PASSPHRASE`].
fn p12(dir: &Path, cert: &Path, key: &Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    let made = Command::new("openssl")
        .args(["pkcs12", "-export", "-passout"])
        .arg(format!("pass:{PASSPHRASE}"))
        .arg("-in")
        .arg(cert)
        .arg("-inkey")
        .arg(key)
        .arg("-out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    out
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_webmail_signs_encrypts_and_decrypts_with_keys_only_it_holds() {
    let listeners = testkit::ephemeral_listeners(&["smtp", "imap", "http"]);
    let server = common::smtp_server_with(&listeners, "[imap]\nplaintext_on_loopback = true\n");
    let dir = common::repo("target/test-artefacts/webmail-smime");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (alice_cert, alice_key) =
        common::smime_certificate(keys.path(), "alice.pem", "alice@a.test", false);
    let (bob_cert, bob_key) =
        common::smime_certificate(keys.path(), "bob.pem", "bob@a.test", false);
    for (address, cert) in [("alice@a.test", &alice_cert), ("bob@a.test", &bob_cert)] {
        server.admin_ok(&["key", "put", address, cert.to_str().unwrap()]);
    }
    // A message the server encrypted at rest to Bob's certificate.
    server.admin_ok(&["key", "encrypt", "bob@a.test", "on"]);
    testkit::send_smtp(
        server.addr("smtp"),
        "carol@far.test",
        "bob@a.test",
        "From: carol@far.test\r\nTo: bob@a.test\r\nSubject: Stored sealed\r\n\r\nKept from prying eyes.\r\n",
    );
    server.admin_ok(&["key", "encrypt", "bob@a.test", "off"]);
    let alice_p12 = p12(keys.path(), &alice_cert, &alice_key, "alice.p12");
    let bob_p12 = p12(keys.path(), &bob_cert, &bob_key, "bob.p12");

    let out = Command::new("node")
        .arg(common::repo("tests/clients/webmail_smime.mjs"))
        .arg(format!("http://{}", server.addr("http")))
        .arg(&dir)
        .arg(&alice_p12)
        .arg(&bob_p12)
        .arg(PASSPHRASE)
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "webmail_smime.mjs: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(r.get("error").is_none(), "{r}");
    assert_eq!(r["external"], serde_json::json!([]), "{r}");
    assert_eq!(r["pageErrors"], serde_json::json!([]), "{r}");
    assert_eq!(r["a11y"], serde_json::json!([]), "{r}");
    assert!(
        r["aliceWrongPassphrase"]
            .as_str()
            .unwrap()
            .contains("wrong passphrase"),
        "{r}"
    );
    assert!(
        r["aliceStatus"]
            .as_str()
            .unwrap()
            .contains("keeps your S/MIME key"),
        "{r}"
    );
    assert!(
        r["noCertificate"]
            .as_str()
            .unwrap()
            .contains("no certificate found for nobody@far.test"),
        "{r}"
    );
    assert_eq!(
        r["decrypted"]["Sealed in the browser"], "The vault code is 4711.\n",
        "{r}"
    );
    assert_eq!(r["decryptedSent"], "The vault code is 4711.\n", "{r}");
    assert_eq!(
        r["decrypted"]["Stored sealed"],
        "Kept from prying eyes.\n\n", // send_smtp adds a line break
        "{r}"
    );

    let inbox = common::imap_mailbox(&server, ("bob@a.test", "bob-pw"), "INBOX");
    let find = |subject: &str| common::with_subject(&inbox, subject);
    // Signed in the browser: Tern checks it at delivery.
    let signed = find("Signed in the browser");
    assert!(
        signed.contains("smime=pass header.from=alice@a.test"),
        "{signed}"
    );
    // Signed and encrypted: nothing in clear; openssl opens and checks it.
    let sealed = find("Sealed in the browser");
    assert!(!sealed.contains("4711"), "{sealed}");
    assert!(
        sealed.contains("application/pkcs7-mime; smime-type=enveloped-data"),
        "{sealed}"
    );
    let der = common::enveloped_der(&sealed);
    let sealed_file = keys.path().join("sealed.p7m");
    std::fs::write(&sealed_file, der).unwrap();
    let inner_file = keys.path().join("inner.eml");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    openssl(&[
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-binary",
        "-in",
        &p(&sealed_file),
        "-recip",
        &p(&bob_cert),
        "-inkey",
        &p(&bob_key),
        "-out",
        &p(&inner_file),
    ]);
    let inner = std::fs::read_to_string(&inner_file).unwrap();
    assert!(inner.contains("multipart/signed"), "{inner}");
    let content = openssl(&[
        "cms",
        "-verify",
        "-in",
        &p(&inner_file),
        "-CAfile",
        &p(&alice_cert),
        "-purpose",
        "any",
    ]);
    let content = String::from_utf8(content).unwrap();
    assert!(content.contains("The vault code is 4711."), "{content}");
    // The attachment went inside, signed and encrypted with the text.
    use base64::Engine;
    let attached = base64::engine::general_purpose::STANDARD.encode("Floor plans, page 1.\n");
    assert!(
        content.contains("filename=\"plans.txt\"") && content.contains(&attached),
        "{content}"
    );
    // Alice's Sent copy is encrypted to her own certificate too.
    let sent = common::imap_mailbox(&server, ("alice@a.test", "alice-pw"), "Sent");
    let copy = sent
        .iter()
        .find(|m| m.contains("Subject: Sealed in the browser"))
        .unwrap_or_else(|| panic!("{sent:?}"));
    assert!(!copy.contains("4711"), "{copy}");
}
