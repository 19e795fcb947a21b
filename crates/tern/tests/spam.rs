//! Spam defence end to end: greylisting against a client that does not
//! retry and a Tern peer that does, DNS block and allow lists served by the
//! test DNS, the pregreet test, training through IMAP, and the
//! compromised-account hold with its notice and release.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{MailNet, Sink, mx_port, submit, text};

fn message(from: &str, subject: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: <carol@b.test>\r\nSubject: {subject}\r\n\
         Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@x.test>\r\n\r\nHello.\r\n"
    )
}

/// RFC 6647 and RFC 5782 at b.test's MX: a listed client is refused at
/// RCPT naming the list; an allow-listed one skips greylisting; anyone else
/// is greylisted: a client that never retries never gets through, a Tern
/// peer retries after the delay and is delivered. `tern greylist list`
/// shows both triplets.
#[test]
fn greylisting_and_dns_lists() {
    let net = MailNet::new(140);
    let a = net.tern(10, "a.test", &[], "");
    let b = net.tern(
        20,
        "b.test",
        &[("carol@b.test", "carol-pw")],
        "[antispam]\ngreylist = true\ngreylist_delay = \"2s\"\ndnsbl = [\"bl.test\"]\ndnswl = [\"wl.test\"]\n",
    );
    net.dns
        .a(
            "30.140.0.127.bl.test",
            std::net::Ipv4Addr::new(127, 0, 0, 2),
        )
        .a(
            "31.140.0.127.wl.test",
            std::net::Ipv4Addr::new(127, 0, 0, 2),
        );
    let mx = b.addr("smtp");
    let send = |host: u8, from: &str, subject: &str| {
        net.send_from(
            host,
            mx,
            "client.test",
            from,
            "carol@b.test",
            message(from, subject).as_bytes(),
        )
    };
    let listed = send(30, "x@listed.test", "listed");
    assert_eq!(
        listed.get(1).map(String::as_str),
        Some("554 5.7.1 Client 127.0.140.30 is listed by bl.test"),
        "{listed:?}"
    );
    let allowed = send(31, "x@allowed.test", "allowed");
    assert!(allowed.last().unwrap().starts_with("250"), "{allowed:?}");
    let once = send(32, "x@once.test", "once");
    assert!(
        once[1].starts_with("451 4.7.1 Greylisted"),
        "a first attempt is greylisted: {once:?}"
    );
    // A Tern peer retries (every second in tests) and gets through after 2 s.
    submit(
        &a,
        "alice@a.test",
        "alice-pw",
        &["carol@b.test"],
        &message("alice@a.test", "peer"),
    );
    net.wait(20, "the peer's message", &[&a, &b], || {
        net.inbox(&b, "carol@b.test").len() == 2
    });
    assert!(
        a.log().contains("451 4.7.1 Greylisted"),
        "the first attempt was greylisted"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let subjects: Vec<String> = net
        .inbox(&b, "carol@b.test")
        .iter()
        .map(|m| text(m))
        .collect();
    assert!(subjects.iter().any(|m| m.contains("Subject: allowed")));
    assert!(subjects.iter().any(|m| m.contains("Subject: peer")));
    assert!(
        !subjects.iter().any(|m| m.contains("Subject: once")),
        "never retried, never delivered"
    );
    let list = b.admin_ok(&["greylist", "list"]);
    let line = |needle: &str| {
        list.lines()
            .find(|l| l.contains(needle))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        line("x@once.test|carol@b.test").ends_with("waiting"),
        "{list}"
    );
    assert!(
        line("alice@a.test|carol@b.test").contains("passed"),
        "{list}"
    );
}

/// Postscreen's pregreet test: a client that speaks before the greeting
/// has ended is refused and dropped; a patient one is served, and is not
/// made to wait again.
#[test]
fn early_talkers_are_refused() {
    let server = common::smtp_server("[antispam]\npregreet_wait = \"1s\"\n");
    let addr = server.addr("smtp");
    let first_line = |r: &mut BufReader<TcpStream>| {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        l
    };
    // Early: EHLO right after the first line of the greeting.
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert!(first_line(&mut r).starts_with("220-"));
    (&s).write_all(b"EHLO early.test\r\n").unwrap();
    assert_eq!(
        first_line(&mut r),
        "554 5.5.1 Protocol error: client spoke before the greeting\r\n"
    );
    assert_eq!(first_line(&mut r), "", "closed");
    // Patient: the greeting ends after the wait, and EHLO is answered.
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert!(first_line(&mut r).starts_with("220-"));
    assert!(first_line(&mut r).starts_with("220 "));
    (&s).write_all(b"EHLO patient.test\r\n").unwrap();
    assert!(first_line(&mut r).starts_with("250-"));
    // Known now: no wait this time.
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    assert!(first_line(&mut r).starts_with("220 "));
}

/// Run Python's imaplib lines `script` on `c`, logged in as alice with
/// her INBOX selected; fail if they do.
fn as_alice_in_inbox(server: &testkit::TernServer, script: &str) {
    let imap = server.addr("imap");
    let script = format!(
        "import imaplib\nc = imaplib.IMAP4('{}', {})\nc.login('alice@a.test', 'alice-pw')\nc.select('INBOX')\n{script}c.logout()\n",
        imap.ip(),
        imap.port()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The classifier learns from what the user does: messages moved into
/// Junk over IMAP make the next similar message spammier. (Three of them:
/// a word seen once is too weak a clue to count, as in SpamAssassin.)
#[test]
fn training_through_imap_move_into_junk() {
    let server = common::full_server("[imap]\nplaintext_on_loopback = true\n");
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let out = std::process::Command::new(common::repo("scripts/spam-corpus"))
        .arg(&corpus)
        .args(["--ham", "30", "--spam", "30", "--seed", "42"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for class in ["spam", "ham"] {
        let path = corpus.join(class);
        server.admin_ok(&[
            "spam",
            "train",
            "alice@a.test",
            &format!("--{class}"),
            path.to_str().unwrap(),
        ]);
    }
    let odd = |n: u32| {
        format!(
            "From: Offers <deal{n}@zyxel-offers.test>\r\nTo: alice@a.test\r\nSubject: quorvian blathermint {n}\r\n\
             Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <q{n}@zyxel-offers.test>\r\n\r\n\
             Quorvian blathermint zyxelon frobnicate wibbleton snorkack umbrage gloxinia {n}.\r\n"
        )
    };
    let probe = dir.path().join("probe.eml");
    std::fs::write(&probe, odd(2)).unwrap();
    let probability = || -> f64 {
        let out = server.admin_ok(&["spam", "classify", "alice@a.test", probe.to_str().unwrap()]);
        let p = out
            .split("bayes=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        p.parse().unwrap_or_else(|_| panic!("{out}"))
    };
    let before = probability();
    for n in [1, 3, 5] {
        testkit::send_smtp(
            server.addr("smtp"),
            "sender@far.test",
            "alice@a.test",
            &odd(n),
        );
    }
    as_alice_in_inbox(
        &server,
        "typ, data = c.uid('SEARCH', None, 'SUBJECT', 'quorvian')\nuids = b','.join(data[0].split()).decode()\n\
         assert len(data[0].split()) == 3, data\nprint(c.uid('MOVE', uids, 'Junk'))\n",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut after = before;
    while std::time::Instant::now() < deadline {
        after = probability();
        if after > before + 0.3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        after > before + 0.3,
        "before {before}, after {after}\n{}",
        server.log()
    );
    assert!(server.log().contains("spam filter trained by the user"));
}

/// C-FT9 for training: a 40 MB message moved into Junk over IMAP is
/// learned from its first MiB, as it is scored, read from the store
/// alone; the server's peak memory hardly moves (the messages were read
/// whole, up to a thousand at once, before).
#[test]
fn training_on_a_large_message_reads_its_beginning_only() {
    let server = common::full_server("[imap]\nplaintext_on_loopback = true\n");
    let (_, message, _) = common::with_large_attachment(
        "From: bob@far.test\r\nSubject: large offer\r\nMessage-ID: <large@far.test>\r\n",
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::append_to_alice(&server, &[message]));
    let pid = server.pid().unwrap();
    let before = common::peak_rss_kib(pid);
    as_alice_in_inbox(
        &server,
        "typ, data = c.uid('MOVE', '1', 'Junk')\nassert typ == 'OK', data\n",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.log().contains("spam filter trained by the user")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.log().contains("trained=1"), "{}", server.log());
    let peak = common::peak_rss_kib(pid);
    eprintln!("server peak RSS {before} KiB before training on a 40 MB message, {peak} KiB after");
    assert!(
        peak < before + 16 * 1024,
        "the server's peak memory grew from {before} KiB to {peak} KiB"
    );
}

/// C-FT9 for `tern spam train`: an mbox is read a message at a time as
/// it is trained on, so training on forty 1 MB messages takes no more
/// memory than training on one (they were all read first, before).
#[test]
fn training_on_a_large_mbox_reads_a_message_at_a_time() {
    let server = common::full_server("");
    let dir = tempfile::tempdir().unwrap();
    let mbox = |count: usize| {
        let body: String = (0..14_000)
            .map(|i| format!("word{} lorem ipsum dolor sit amet {i}\n", i % 97))
            .collect();
        (0..count)
            .map(|n| {
                format!(
                    "From sender@far.test Thu Dec  3 10:00:00 2026\nFrom: sender@far.test\n\
                     Subject: offer {n}\nMessage-ID: <m{n}@far.test>\n\n{body}\n"
                )
            })
            .collect::<String>()
    };
    let one = dir.path().join("one.mbox");
    std::fs::write(&one, mbox(1)).unwrap();
    let forty = dir.path().join("forty.mbox");
    std::fs::write(&forty, mbox(40)).unwrap();
    let train = |path: &std::path::Path| {
        common::admin_with_peak(
            &server,
            &[
                "spam",
                "train",
                "alice@a.test",
                "--spam",
                path.to_str().unwrap(),
            ],
        )
    };
    let (said_one, peak_one) = train(&one);
    let (said_forty, peak_forty) = train(&forty);
    eprintln!(
        "tern spam train peak RSS: {peak_one} KiB on one 1 MB message, {peak_forty} KiB on forty"
    );
    assert!(
        said_one.contains("trained 1 messages as spam"),
        "{said_one}"
    );
    assert!(
        said_forty.contains("trained 39 messages as spam"),
        "{said_forty}"
    );
    assert!(
        peak_forty < peak_one + 16 * 1024,
        "tern spam train took {peak_forty} KiB on forty 1 MB messages, {peak_one} KiB on one"
    );
}

/// A burst of submissions holds the account: what it sends waits in the
/// queue, the administrator (postmaster) is told by mail, and `tern account
/// release` lets it all go. The hourly hard limit answers 451 4.7.28.
#[test]
fn compromised_account_is_held_then_released() {
    let net = MailNet::new(141);
    let a = net.tern(
        10,
        "a.test",
        &[],
        "[limits]\nsubmission_per_hour = 3\nmessages_per_hour = 6\n",
    );
    let sink = Sink::start(net.ip(20), mx_port(), &[]);
    net.dns
        .mx("sink.test", 10, "mx.sink.test")
        .a("mx.sink.test", net.ip(20));
    let send = |n: u32| {
        let body = format!(
            "From: <alice@a.test>\r\nTo: <u@sink.test>\r\nSubject: burst {n}\r\n\r\nHello {n}.\r\n"
        );
        submit(&a, "alice@a.test", "alice-pw", &["u@sink.test"], &body)
    };
    for n in 1..=3 {
        assert_eq!(send(n), "{}");
    }
    net.wait(20, "three at the sink", &[&a], || {
        sink.messages().len() == 3
    });
    for n in 4..=5 {
        assert_eq!(send(n), "{}", "a held account's mail is still accepted");
    }
    let notice = net.wait_for(&a, "alice@a.test", |m| {
        m.contains("Subject: Outgoing mail of alice@a.test held")
    });
    assert!(
        notice.contains("4 messages in the last hour (the limit is 3)"),
        "{notice}"
    );
    assert!(a.log().contains("outgoing mail held"));
    let queued = a.admin_ok(&["queue", "list"]);
    assert!(queued.contains("u@sink.test(held)"), "{queued}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(sink.messages().len() < 5, "nothing held leaves");
    let released = a.admin_ok(&["account", "release", "alice@a.test"]);
    assert!(
        released.starts_with("released the outgoing mail of alice@a.test"),
        "{released}"
    );
    net.wait(20, "all five at the sink", &[&a], || {
        sink.messages().len() == 5
    });
    // Sixth message this hour: the hard limit.
    send(6);
    let said = common::submit_refused(&a, "alice@a.test", "alice-pw", "u@sink.test", &[]);
    assert!(said.contains("451") && said.contains("4.7.28"), "{said}");
}
