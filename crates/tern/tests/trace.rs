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
    let out = server.admin_ok(&["trace", "E1", "--no-recheck"]);
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
        serde_json::from_str(&server.admin_ok(&["trace", "E1", "--json", "--no-recheck"])).unwrap();
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
    let out = server.admin_ok(&["trace", file.to_str().unwrap(), "--no-recheck"]);
    assert!(out.contains("(2 Received fields)"), "{out}");
    assert!(
        out.contains("laptop [198.51.100.7] -> mx.b.test  ESMTPSA"),
        "{out}"
    );
    assert!(out.contains("+7s"), "{out}");

    let err = server.admin_err(&["trace", "E999", "--no-recheck"]);
    assert!(err.contains("no stored message E999"), "{err}");
    let err = server.admin_err(&["trace", "/nonexistent.eml", "--no-recheck"]);
    assert!(err.contains("/nonexistent.eml"), "{err}");
}

/// Verdicts as recorded and as re-checked now: SPF passed when the message
/// came; the domain has since published `-all`, and the re-check says
/// fail. The delivery history says where the message went and why.
#[test]
fn recorded_and_rechecked_verdicts_with_the_history() {
    let net = common::MailNet::new(162);
    let a = net.tern(10, "a.test", &[], "");
    let client = net.ip(30);
    net.dns
        .txt("far.test", &format!("v=spf1 ip4:{client} -all"))
        .ptr(client, "client.far.test")
        .a("client.far.test", client);
    let replies = net.send_from(
        30,
        a.addr("smtp"),
        "client.far.test",
        "x@far.test",
        "alice@a.test",
        b"From: x@far.test\r\nTo: alice@a.test\r\nSubject: spf\r\nMessage-ID: <spf-1@far.test>\r\n\r\nhi\r\n",
    );
    assert!(
        replies.last().is_some_and(|r| r.starts_with("250")),
        "{replies:?}"
    );
    net.dns.remove("far.test").txt("far.test", "v=spf1 -all");
    let json: serde_json::Value =
        serde_json::from_str(&a.admin_ok(&["trace", "E1", "--json"])).unwrap();
    let recorded = json["authentication_results"][0].as_str().unwrap();
    assert!(recorded.contains("spf=pass"), "{recorded}");
    let now = json["rechecked_now"].as_str().unwrap();
    assert!(now.contains("spf=fail"), "{now}");
    let history: Vec<&str> = json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["accepted", "filed"]);
    let text = a.admin_ok(&["trace", "E1"]);
    assert!(text.contains("Verdicts re-checked now"), "{text}");
    assert!(
        text.contains("filed") && text.contains("into INBOX"),
        "{text}"
    );
}
