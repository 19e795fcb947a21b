//! Delivery status notifications built from what others control: the
//! remote's reply, the client's ORCPT and ENVID (xtext), the original
//! message (RFC 3464, RFC 3461). Whatever they hold, the report keeps its
//! shape: one block of fields per recipient, no field smuggled in.
#![no_main]
use message::dsn::{Action, Recipient, Report, Reported};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\u{1}');
    let reply = parts.next().unwrap_or("");
    let orcpt = parts.next().unwrap_or("");
    let envid = parts.next().unwrap_or("");
    let original = parts.next().unwrap_or("").as_bytes();
    if !message::xtext::is_valid(orcpt) || !message::xtext::is_valid(envid) {
        return;
    }
    let recipient = |address| Reported {
        recipient: Recipient {
            address,
            orcpt: Some(orcpt),
            status: "5.1.1",
            reply,
            remote_mta: Some("mx.b.test"),
        },
        action: Action::Failed,
    };
    let report = Report {
        reporting_mta: "mx.a.test",
        sender: "s@a.test",
        envid: Some(envid),
        ret: None,
        arrival: 0,
        now: 0,
        message_id: "dsn.1@mx.a.test".into(),
        retry_until: None,
        recipients: vec![recipient("x@b.test"), recipient("y@b.test")],
        original,
    };
    let built = report.build();
    let built = String::from_utf8_lossy(&built);
    let status_start =
        "\r\n--tern-dsn-dsn1mxatest\r\nContent-Type: message/delivery-status\r\n\r\n";
    let start = built.find(status_start).expect("a delivery-status part") + status_start.len();
    let end = start + built[start..].find("\r\n--tern-dsn-").expect("its end");
    let fields: Vec<&str> = built[start..end]
        .split("\r\n")
        // A line that starts with a space continues a folded field (C-FZ11).
        .filter(|l| !l.is_empty() && !l.starts_with(' '))
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    let expected = [
        "Reporting-MTA",
        "Original-Envelope-Id",
        "Arrival-Date",
        "Original-Recipient",
        "Final-Recipient",
        "Action",
        "Status",
        "Remote-MTA",
        "Diagnostic-Code",
        "Last-Attempt-Date",
    ];
    for f in &fields {
        assert!(expected.contains(f), "a field smuggled in: {f:?}");
    }
    assert_eq!(
        fields.iter().filter(|f| **f == "Final-Recipient").count(),
        2
    );
});
