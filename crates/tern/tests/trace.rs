//! `tern trace`: a message delivered over SMTP, traced by its EMAILID (the
//! hop into our server, Return-Path against From, the recorded verdicts,
//! where it is stored), the same as JSON, and a file with two older hops
//! and their delay; an unknown id and a missing file are errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[test]
fn a_stored_message_and_a_file() {
    let server = common::smtp_server("");
    testkit::send_smtp(
        server.addr("smtp"),
        "bounces@far.test",
        "alice@a.test",
        "From: Carol <carol@far.test>\r\nTo: alice@a.test\r\nSubject: traced\r\nMessage-ID: <t1@far.test>\r\n\r\nhello",
    );
    let out = server.admin_ok(&["trace", "E1"]);
    for want in [
        "Message <t1@far.test>",
        "Subject: traced",
        "Return-Path:  <bounces@far.test>",
        "From:         Carol <carol@far.test>",
        "Delivered-To: alice@a.test",
        "Hops, from the first server to the last (1 Received fields):",
        "-> mx.a.test  ESMTP",
        "(no Authentication-Results: no server on the way checked SPF, DKIM or DMARC)",
        "X-Spam-Status: No, score=",
        "alice@a.test INBOX UID 1",
    ] {
        assert!(out.contains(want), "{want:?} missing in:\n{out}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&server.admin_ok(&["trace", "E1", "--json"])).unwrap();
    assert_eq!(json["subject"], "traced");
    assert_eq!(json["hops"][0]["by"], "mx.a.test");
    assert_eq!(json["stored"][0]["mailbox"], "INBOX");
    assert_eq!(json["envelope"]["return_path"][0], "<bounces@far.test>");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(
        &file,
        "Received: from mx.b.test (mx.b.test [192.0.2.2]) by mx.a.test with ESMTPS id 1; Mon, 23 Nov 2026 12:00:07 +0000\r\n\
Received: from laptop (laptop [198.51.100.7]) by mx.b.test with ESMTPSA id 2; Mon, 23 Nov 2026 12:00:00 +0000\r\n\
From: b@b.test\r\nSubject: two hops\r\n\r\nx\r\n",
    )
    .unwrap();
    let out = server.admin_ok(&["trace", file.to_str().unwrap()]);
    assert!(out.contains("(2 Received fields)"), "{out}");
    assert!(
        out.contains("laptop [198.51.100.7] -> mx.b.test  ESMTPSA"),
        "{out}"
    );
    assert!(out.contains("+7s"), "{out}");

    let err = server.admin_err(&["trace", "E999"]);
    assert!(err.contains("no stored message E999"), "{err}");
    let err = server.admin_err(&["trace", "/nonexistent.eml"]);
    assert!(err.contains("/nonexistent.eml"), "{err}");
}
