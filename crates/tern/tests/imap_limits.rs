//! IMAP limits that need more than a transcript (hardening.md C-IM8, C-AU1 over IMAP, C-SL2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use testkit::{TcpWire, Wire};

async fn login(addr: std::net::SocketAddr, password: &str) -> (TcpWire, String) {
    let mut w = TcpWire::connect(addr).await.unwrap();
    w.read_line().await.unwrap();
    w.send(format!("a LOGIN alice@a.test {password}\r\n").as_bytes())
        .await
        .unwrap();
    let reply = w.read_line().await.unwrap().unwrap_or_default();
    (w, reply)
}

/// C-IM8: at most N sessions of one user from one address; others are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_user_and_address() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server(
            "[imap]\nplaintext_on_loopback = true\nmax_connections_per_user_ip = 2\n",
        )
    })
    .await
    .unwrap();
    let addr = server.addr("imap");
    let (_a, r1) = login(addr, "alice-pw").await;
    let (_b, r2) = login(addr, "alice-pw").await;
    assert!(
        r1.starts_with("a OK") && r2.starts_with("a OK"),
        "{r1} {r2}"
    );
    let (mut c, r3) = login(addr, "alice-pw").await;
    assert_eq!(
        r3,
        "a NO [LIMIT] Too many sessions for this user from this address"
    );
    // The refused session may still log in as someone else.
    c.send(b"b LOGIN bob@a.test bob-pw\r\n").await.unwrap();
    assert!(c.read_line().await.unwrap().unwrap().starts_with("b OK"));
    drop(_a);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_d, r4) = login(addr, "alice-pw").await;
    assert!(r4.starts_with("a OK"), "a freed place is given back: {r4}");
}

/// C-AU1 over IMAP: after the failure limit the client is told BYE and blocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_password_guessing() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server(
            "[imap]\nplaintext_on_loopback = true\n[auth]\nmax_failures_per_ip = 2\n",
        )
    })
    .await
    .unwrap();
    let addr = server.addr("imap");
    let (mut w, r1) = login(addr, "guess").await;
    assert_eq!(r1, "a NO [AUTHENTICATIONFAILED] Authentication failed");
    w.send(b"b LOGIN alice@a.test guess2\r\n").await.unwrap();
    assert_eq!(
        w.read_line().await.unwrap().as_deref(),
        Some("* BYE [UNAVAILABLE] Too many authentication failures; try again later")
    );
    assert_eq!(w.read_line().await.unwrap(), None);
    let (_w, r) = login(addr, "alice-pw").await;
    assert_eq!(
        r,
        "* BYE [UNAVAILABLE] Too many authentication failures; try again later"
    );
}

/// Read one response line; when it ends in a literal `{n}`, the literal's
/// octets and the rest of the line are read too. Returns the line's text
/// and the literals in it.
fn read_response(r: &mut impl std::io::BufRead) -> (String, Vec<Vec<u8>>) {
    let mut text = String::new();
    let mut literals = Vec::new();
    loop {
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line).unwrap();
        assert!(!line.is_empty(), "connection closed after {text:?}");
        let line = String::from_utf8_lossy(&line).into_owned();
        text.push_str(&line);
        let trimmed = line.trim_end();
        let Some(n) = trimmed
            .strip_suffix('}')
            .and_then(|t| t.rsplit_once('{'))
            .and_then(|(_, n)| n.parse::<usize>().ok())
        else {
            return (text, literals);
        };
        let mut lit = vec![0; n];
        r.read_exact(&mut lit).unwrap();
        literals.push(lit);
    }
}

/// A plain connection where alice has logged in and selected INBOX.
fn alice_in_inbox(
    addr: std::net::SocketAddr,
) -> (std::net::TcpStream, std::io::BufReader<std::net::TcpStream>) {
    use std::io::Write;
    let (mut w, mut r) = common::raw_client(addr);
    w.write_all(b"a LOGIN alice@a.test alice-pw\r\nb SELECT INBOX\r\n")
        .unwrap();
    loop {
        let (text, _) = read_response(&mut r);
        if text.starts_with("b OK") {
            return (w, r);
        }
    }
}

/// C-SL2 and C-FT9: a client asks for 48 MB (twelve 4 MB messages) and
/// reads nothing for two seconds: the server makes its answer a piece at a
/// time as the client reads, so its memory hardly moves (the answer made
/// whole, before, took its size several times over). Read afterwards, every
/// message arrives byte for byte (large ones streamed from the store), a
/// partial range of a large one is right, and the command pipelined behind
/// the FETCH is answered after it. Many FETCHes pipelined wait likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_answers_at_the_pace_of_the_reader() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server("[imap]\nplaintext_on_loopback = true\n")
    })
    .await
    .unwrap();
    let mut sent = Vec::new();
    for i in 0..12u8 {
        let line = format!("{i:02} {}\r\n", "x".repeat(70));
        let body = line.repeat(4 * 1024 * 1024 / line.len());
        sent.push(format!("Subject: big {i}\r\n\r\n{body}").into_bytes());
    }
    let small = format!("Subject: small\r\n\r\n{}", "hello world\r\n".repeat(15_000));
    sent.push(small.into_bytes());
    common::append_to_alice(&server, &sent).await;
    let pid = server.pid().unwrap();
    let addr = server.addr("imap");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let (mut w, mut r) = alice_in_inbox(addr);
        let before = common::rss_kib(pid);
        w.write_all(b"c FETCH 1:* (UID BODY.PEEK[])\r\nd NOOP\r\n")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs(2));
        let during = common::rss_kib(pid);
        eprintln!("server RSS {before} KiB before the FETCH, {during} KiB with it unread");
        assert!(
            during < before + 24 * 1024,
            "server memory grew from {before} KiB to {during} KiB with a 48 MB answer unread"
        );
        let mut got = Vec::new();
        let tagged = loop {
            let (text, mut literals) = read_response(&mut r);
            if text.starts_with("* ") {
                assert_eq!(literals.len(), 1, "{text}");
                got.push(literals.remove(0));
                continue;
            }
            break text;
        };
        assert!(tagged.starts_with("c OK FETCH completed"), "{tagged}");
        assert_eq!(got.len(), sent.len());
        for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
            assert!(
                g == s,
                "message {} differs ({} vs {} octets)",
                i + 1,
                g.len(),
                s.len()
            );
        }
        let (noop, _) = read_response(&mut r);
        assert!(noop.starts_with("d OK"), "{noop}");
        // A range of a large message, and RFC822, streamed as well.
        w.write_all(b"e FETCH 3 (BODY.PEEK[]<1000000.300000> RFC822)\r\n")
            .unwrap();
        let (text, literals) = read_response(&mut r);
        assert!(text.contains("BODY[]<1000000> {300000}"), "{text}");
        assert_eq!(literals[0], sent[2][1_000_000..1_300_000]);
        assert_eq!(literals[1], sent[2]);
        let (done, _) = read_response(&mut r);
        assert!(done.starts_with("e OK"), "{done}");
        // RFC822 sets \Seen, reported with the data.
        assert!(text.contains("FLAGS (\\Seen"), "{text}");
        // 200 FETCHes of a 200 KB message pipelined, 40 MB unread: the
        // commands wait while the answers so far are unwritten.
        let before = common::rss_kib(pid);
        let pipelined: String = (0..200)
            .map(|i| format!("p{i} FETCH 13 (BODY.PEEK[])\r\n"))
            .collect();
        w.write_all(pipelined.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(2));
        let during = common::rss_kib(pid);
        eprintln!("server RSS {before} KiB before 200 FETCHes, {during} KiB with them unread");
        assert!(
            during < before + 24 * 1024,
            "server memory grew from {before} KiB to {during} KiB with 40 MB unread"
        );
        for i in 0..200 {
            let (text, literals) = read_response(&mut r);
            assert_eq!(literals[0], sent[12], "{text}");
            let (done, _) = read_response(&mut r);
            assert!(done.starts_with(&format!("p{i} OK")), "{done}");
        }
    })
    .await
    .unwrap();
}

/// C-FT9 for APPEND: a 24 MB message is spooled as it arrives. Two thirds
/// in, the server holds little more memory than before (the literal was
/// collected whole in the command, then copied, before); the stored
/// message is the one sent, octet for octet, and the spool is left empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_append_is_spooled_as_it_arrives() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server("[imap]\nplaintext_on_loopback = true\n")
    })
    .await
    .unwrap();
    let pid = server.pid().unwrap();
    let addr = server.addr("imap");
    let spool_dir = server.data_dir().join("spool");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let (mut w, mut r) = common::raw_client(addr);
        w.write_all(b"a LOGIN alice@a.test alice-pw\r\n").unwrap();
        let (login, _) = read_response(&mut r);
        assert!(login.starts_with("a OK"), "{login}");
        let line = format!("{} an appended line\r\n", "z".repeat(60));
        let message = format!(
            "Subject: appended\r\n\r\n{}",
            line.repeat(24 * 1024 * 1024 / line.len())
        )
        .into_bytes();
        let before = common::rss_kib(pid);
        w.write_all(format!("b APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes())
            .unwrap();
        let two_thirds = message.len() * 2 / 3;
        w.write_all(&message[..two_thirds]).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(1));
        let during = common::rss_kib(pid);
        eprintln!(
            "server RSS {before} KiB before the APPEND, {during} KiB with 16 MB of it received"
        );
        assert!(
            during < before + 8 * 1024,
            "server memory grew from {before} KiB to {during} KiB while receiving the literal"
        );
        w.write_all(&message[two_thirds..]).unwrap();
        w.write_all(b"\r\nc SELECT INBOX\r\n").unwrap();
        let (appended, _) = read_response(&mut r);
        assert!(appended.starts_with("b OK [APPENDUID"), "{appended}");
        loop {
            let (text, _) = read_response(&mut r);
            if text.starts_with("c OK") {
                break;
            }
        }
        w.write_all(b"d FETCH 1 BODY.PEEK[]\r\n").unwrap();
        let (_, literals) = read_response(&mut r);
        assert!(literals[0] == message, "the stored message differs");
        let (done, _) = read_response(&mut r);
        assert!(done.starts_with("d OK"), "{done}");
        assert_eq!(std::fs::read_dir(&spool_dir).unwrap().count(), 0);
    })
    .await
    .unwrap();
}

/// C-FT9 for the structure and parts of a large message: a 40 MB message
/// with a 30 MB base64 attachment, asked for its BODYSTRUCTURE, the
/// attachment's decoded size and the attachment decoded (BINARY), not read
/// for two seconds. Its structure comes from an outline made in one pass
/// and the attachment is decoded from the store a piece at a time as it is
/// written, so the server's memory hardly moves (read whole, parsed and
/// decoded, it grew by several times the message). The attachment arrives
/// decoded, octet for octet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_of_a_large_message_are_streamed() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server("[imap]\nplaintext_on_loopback = true\n")
    })
    .await
    .unwrap();
    let (attachment, message, body_len) =
        common::with_large_attachment("Subject: large attachment\r\n");
    common::append_to_alice(&server, &[message]).await;
    let pid = server.pid().unwrap();
    let addr = server.addr("imap");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let (mut w, mut r) = alice_in_inbox(addr);
        let before = common::rss_kib(pid);
        w.write_all(b"c FETCH 1 (BODYSTRUCTURE BINARY.SIZE[2] BINARY.PEEK[2])\r\n")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs(2));
        let during = common::rss_kib(pid);
        eprintln!("server RSS {before} KiB before the FETCH, {during} KiB with it unread");
        assert!(
            during < before + 12 * 1024,
            "server memory grew from {before} KiB to {during} KiB for the parts of a 40 MB message"
        );
        let (text, literals) = read_response(&mut r);
        assert!(text.contains(&format!("\"BASE64\" {body_len} ")), "{text}");
        assert!(text.contains("BINARY.SIZE[2] 30000000"), "{text}");
        assert!(text.contains("BINARY[2] ~{30000000}"), "{text}");
        assert!(literals[0] == attachment, "the decoded attachment differs");
        let (done, _) = read_response(&mut r);
        assert!(done.starts_with("c OK"), "{done}");
    })
    .await
    .unwrap();
}

/// C-FT9 for SEARCH HEADER on a field the search index does not keep:
/// each message's header section is read, a large message's alone and a
/// piece at a time, so searching a mailbox holding a 40 MB message hardly
/// moves the server's memory (its batch of contents was read whole
/// before); the field is found in the large message and not elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searching_an_unindexed_header_reads_header_sections() {
    let server = tokio::task::spawn_blocking(|| {
        common::full_server("[imap]\nplaintext_on_loopback = true\n")
    })
    .await
    .unwrap();
    let (_, large, _) = common::with_large_attachment("Subject: large\r\nX-Project: zephyr-42\r\n");
    let small = b"Subject: small\r\nX-Project: other\r\n\r\nhello\r\n".to_vec();
    common::append_to_alice(&server, &[small, large]).await;
    let pid = server.pid().unwrap();
    let addr = server.addr("imap");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let (mut w, mut r) = alice_in_inbox(addr);
        let before = common::peak_rss_kib(pid);
        w.write_all(b"c SEARCH HEADER X-Project zephyr\r\n")
            .unwrap();
        let (found, _) = read_response(&mut r);
        let (done, _) = read_response(&mut r);
        let peak = common::peak_rss_kib(pid);
        eprintln!("server peak RSS {before} KiB before the SEARCH, {peak} KiB after");
        assert_eq!(found.trim_end(), "* SEARCH 2");
        assert!(done.starts_with("c OK"), "{done}");
        assert!(
            peak < before + 12 * 1024,
            "server memory grew from {before} KiB to {peak} KiB searching a 40 MB message's header"
        );
    })
    .await
    .unwrap();
}
