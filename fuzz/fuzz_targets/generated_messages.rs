//! The messages Tern writes from what others sent or said: the vacation
//! response and the `mailto` notification a Sieve script sends about a
//! message (its subject, sender and message ids; RFC 5230, RFC 5436), the
//! report of a Sieve `reject` (RFC 8098) and the bounce carrying a remote
//! server's reply (RFC 3464). Whatever those hold, what Tern writes ends
//! every line with CRLF, keeps RFC 5322's 998-octet line limit (C-FZ11)
//! outside the copy of the original it returns, and its header section
//! holds only the fields Tern writes, each once.
//!
//! Input: the words (a reason, a notification's message, a remote's
//! reply), a `mailto:` URI and the original's header fields, `\x01`
//! between them.
#![no_main]
use message::compose::{MAX_LINE, longest_line};
use message::dsn::{Action, Recipient, Report, Reported};
use message::header::find;
use sieve::mail::Mail;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{1}');
    let words = parts.next().unwrap_or("");
    let uri = parts.next().unwrap_or("");
    let fields = parts.next().unwrap_or("");
    let original = format!("To: bob@a.test\r\n{fields}\r\n\r\nbody\r\n").into_bytes();
    let mail = Mail::new(original.clone());
    let ctx = sieve::Context::new("bob@a.test", "carol@c.test", "bob@a.test", 0);

    let request = sieve::vacation::Request {
        seconds: 86_400,
        subject: None,
        from: None,
        addresses: Vec::new(),
        mime: false,
        handle: None,
        reason: words.to_string(),
    };
    if let Some(reply) = sieve::vacation::decide(&request, &ctx, &mail) {
        check(&sieve::respond::vacation(&reply, 0, "v.1@mx.a.test"), None);
    }
    if let Ok(target) = sieve::mailto::parse(uri) {
        let said = (!words.is_empty()).then(|| words.to_string());
        let n = sieve::mailto::notification(target, "bob@a.test".into(), 2, said, &mail);
        check(&sieve::respond::notification(&n, 0, "n.1@mx.a.test"), None);
    }

    let rejection = message::mdn::Rejection {
        host: "mx.a.test",
        to: "carol@c.test",
        recipient: "bob@a.test",
        reason: words,
        now: 0,
        message_id: "mdn.1@mx.a.test".into(),
        original: &original,
    };
    check(
        &rejection.build(),
        Some(b"Content-Type: text/rfc822-headers"),
    );

    let report = Report {
        reporting_mta: "mx.a.test",
        sender: "carol@c.test",
        envid: None,
        ret: Some("HDRS"),
        arrival: 0,
        now: 0,
        message_id: "dsn.1@mx.a.test".into(),
        retry_until: None,
        recipients: vec![Reported {
            recipient: Recipient {
                address: "bob@b.test",
                orcpt: None,
                status: "5.0.0",
                reply: words,
                remote_mta: Some("mx.b.test"),
            },
            action: Action::Failed,
        }],
        original: &original,
    };
    check(&report.build(), Some(b"Content-Type: text/rfc822-headers"));
});

/// The fields Tern writes at the top of these messages.
const OURS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "auto-submitted",
    "precedence",
    "importance",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    // What a mailto URI may set (RFC 5436 §2.2).
    "keywords",
    "comments",
];

/// Fail unless `message` (up to `copy`, where the original's copy starts:
/// that is as the original came) keeps the line limits and ends its lines
/// with CRLF, and its header section holds our fields only, none twice.
fn check(message: &[u8], copy: Option<&[u8]>) {
    let ours = match copy {
        Some(marker) => &message[..find(message, marker).expect("the copy's part")],
        None => message,
    };
    assert!(
        longest_line(ours) <= MAX_LINE,
        "a line of {} octets",
        longest_line(ours)
    );
    for (i, &b) in ours.iter().enumerate() {
        match b {
            b'\n' => assert!(i > 0 && ours[i - 1] == b'\r', "a bare LF at {i}"),
            b'\r' => assert_eq!(ours.get(i + 1), Some(&b'\n'), "a bare CR at {i}"),
            _ => {}
        }
    }
    let head = &message[..message::header::header_end(message)];
    let mut seen: Vec<String> = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.starts_with(b" ") || line.starts_with(b"\t") {
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').expect("a field name");
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        assert!(OURS.contains(&name.as_str()), "a field {name:?}");
        assert!(!seen.contains(&name), "{name:?} twice");
        seen.push(name);
    }
}
