//! Large messages are read from the store as a stream (hardening.md C-FT9):
//! their structure from an outline made in one pass, their parts copied or
//! decoded piece by piece. Here every FETCH item is asked of the same
//! messages twice, of a session that reads every message whole and of one
//! that streams every message, and the two answers must be the same, octet
//! for octet: BODYSTRUCTURE, ENVELOPE, sections of nested parts, BINARY of
//! base64 and quoted-printable parts across the store's 64 KiB pieces,
//! partial ranges, missing parts, an unknown encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::BytesMut;
use imap::{ImapConfig, ImapSession};
use net::{Flow, Session};
use testkit::fixture;
use testkit::memory::conn_info;

/// A session on a store of its own holding `messages` in alice's INBOX.
async fn session(stream_over: u64, messages: &[Vec<u8>]) -> (ImapSession, tempfile::TempDir) {
    let (dir, _store, services) = common::world().await;
    let mut config = ImapConfig::new(fixture::HOST, 50 << 20);
    config.plaintext_on_loopback = true;
    config.stream_over = stream_over;
    let mut s = ImapSession::new(Arc::new(config), services, &conn_info(false));
    let mut greeting = Vec::new();
    s.greeting(&mut greeting);
    say(&mut s, b"a LOGIN alice@a.test alice-pw\r\n").await;
    for m in messages {
        let mut append = format!("b APPEND INBOX {{{}+}}\r\n", m.len()).into_bytes();
        append.extend_from_slice(m);
        append.extend_from_slice(b"\r\n");
        let out = say(&mut s, &append).await;
        assert!(
            String::from_utf8_lossy(&out).contains("b OK"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    say(&mut s, b"c SELECT INBOX\r\n").await;
    (s, dir)
}

/// Everything the session answers to one command.
async fn say(s: &mut ImapSession, command: &[u8]) -> Vec<u8> {
    let mut input = BytesMut::from(command);
    let mut out = Vec::new();
    let mut flow = s.receive(&mut input, &mut out).await;
    while flow == Flow::Continue && s.has_more() {
        flow = s.resume(&mut input, &mut out).await;
    }
    assert_eq!(flow, Flow::Continue, "{}", String::from_utf8_lossy(&out));
    out
}

fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    text.as_bytes()
        .chunks(76)
        .map(|l| format!("{}\r\n", std::str::from_utf8(l).unwrap()))
        .collect()
}

fn messages() -> Vec<Vec<u8>> {
    // Octets of every value, NUL included, in a pattern that does not repeat soon.
    let binary: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let qp: String = (0..4000)
        .map(|i| format!("Line {i} caf=C3=A9 and a long soft break here=\r\n continues=3D{i}\r\n"))
        .collect();
    let nested = format!(
        "From: Inner <inner@b.test>\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\n{}\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n<p>caf\u{e9}</p>\r\n--inner--\r\n",
        "plain inner text\r\n".repeat(5000)
    );
    let first = format!(
        "From: Alice <alice@a.test>\r\nTo: bob@a.test, \"Carol\" <carol@c.test>\r\nSubject: =?utf-8?q?caf=C3=A9?= large\r\nDate: Thu, 3 Dec 2026 10:00:00 +0000\r\nMessage-ID: <big@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n--outer\r\nContent-Type: application/octet-stream; name=\"blob.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC.bin\r\nContent-ID: <blob@a.test>\r\n\r\n{}\r\n--outer\r\nContent-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n{nested}\r\n--outer\r\nContent-Type: text/plain\r\n\r\nbare\nLF lines\nhere\r\n--outer\r\nContent-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--outer--\r\nepilogue\r\n",
        base64_lines(&binary)
    );
    let second = format!(
        "Subject: single part\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        base64_lines(&binary[..100_000])
    );
    let third = format!(
        "Subject: plain\r\n\r\n{}",
        "seven bit text\r\n".repeat(30_000)
    );
    vec![first.into_bytes(), second.into_bytes(), third.into_bytes()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_answers_equal_whole_ones() {
    let messages = messages();
    let (mut whole, _d1) = session(u64::MAX, &messages).await;
    let (mut streamed, _d2) = session(0, &messages).await;
    let commands: [&[u8]; 9] = [
        b"f1 FETCH 1:3 (BODYSTRUCTURE BODY ENVELOPE RFC822.SIZE)\r\n",
        b"f2 FETCH 1 (BODY.PEEK[1] BODY.PEEK[2.MIME] BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.SIZE[2])\r\n",
        b"f3 FETCH 1 (BINARY.PEEK[2]<100000.70000> BINARY.PEEK[1]<5.100> BINARY.PEEK[2]<299990.100> BINARY.PEEK[2]<400000.10>)\r\n",
        b"f4 FETCH 1 (BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[3.1] BODY.PEEK[3.2.MIME] BODY.PEEK[3.2] BINARY.PEEK[3.2])\r\n",
        b"f5 FETCH 1 (BODY.PEEK[3.HEADER.FIELDS (Subject From)] BODY.PEEK[HEADER.FIELDS.NOT (Subject)] RFC822.HEADER BODY.PEEK[TEXT]<70000.100> BODY.PEEK[4])\r\n",
        b"f6 FETCH 1 (BODY.PEEK[9] BINARY.PEEK[9] BODY.PEEK[4]<1000000.5> BINARY.SIZE[3])\r\n",
        b"f7 FETCH 1 BINARY.PEEK[5]\r\n",
        b"f8 FETCH 2:3 (BODY.PEEK[1] BINARY.PEEK[1] BINARY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[1.MIME])\r\n",
        b"f9 FETCH 1:3 (RFC822.TEXT BODY[] FLAGS)\r\n",
    ];
    for command in commands {
        let a = say(&mut whole, command).await;
        let b = say(&mut streamed, command).await;
        assert!(
            a == b,
            "{}: whole and streamed answers differ:\n{}\n----\n{}",
            String::from_utf8_lossy(command).trim_end(),
            String::from_utf8_lossy(&a[..a.len().min(3000)]),
            String::from_utf8_lossy(&b[..b.len().min(3000)])
        );
        assert!(a.len() > 40, "{}", String::from_utf8_lossy(&a));
    }
    // The answers are the ones expected, not only the same.
    let a = say(
        &mut streamed,
        b"g FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&a);
    assert!(text.contains("BINARY[2] ~{300000}\r\n"), "{}", &text[..200]);
    assert!(text.contains("BINARY.SIZE[2] 300000"), "{}", &text[..200]);
    let b = say(&mut streamed, b"h FETCH 1 BODYSTRUCTURE\r\n").await;
    let text = String::from_utf8_lossy(&b);
    assert!(
        text.contains("(\"MESSAGE\" \"RFC822\" NIL NIL \"forwarded\" \"7BIT\""),
        "{text}"
    );
    assert!(text.contains("\"X-UUENCODE\""), "{text}");
    let c = say(&mut streamed, b"i FETCH 1 BINARY.PEEK[5]\r\n").await;
    let text = String::from_utf8_lossy(&c);
    assert!(text.contains("i NO [UNKNOWN-CTE]"), "{text}");
}
