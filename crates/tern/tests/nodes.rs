//! Several Tern nodes on one PostgreSQL database (docs/scale.md): each
//! node runs every listener on its own address; any node accepts mail,
//! a user's IMAP IDLE on one node hears what another node delivered, and
//! a node killed with SIGKILL in the middle of SMTP load loses nothing it
//! acknowledged. The database is a private server the test starts
//! (`testkit::postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::postgres::Postgres;
use testkit::{TcpWire, TernServer, Wire, ephemeral_listeners};

/// The nodes' shared settings: the store in `db`, IMAP without TLS on
/// loopback (the test's client speaks plain text).
fn node_config(db: &Postgres) -> String {
    format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n[imap]\nplaintext_on_loopback = true\n[pop3]\nplaintext_on_loopback = true\n",
        db.url()
    )
}

/// The first node creates the test world through its CLI (into the
/// database); the others find it there.
fn start_nodes(db: &Postgres, count: usize) -> Vec<TernServer> {
    start_nodes_with(db, count, "")
}

/// The same, with `extra` TOML merged into every node's settings.
fn start_nodes_with(db: &Postgres, count: usize, extra: &str) -> Vec<TernServer> {
    let shared = common::merge_toml(&[&node_config(db), extra]);
    let mut nodes = vec![common::full_server(&shared)];
    for _ in 1..count {
        let listeners = ephemeral_listeners(&["smtp", "imap", "pop3"]);
        let config = common::merge_toml(&[&listeners, common::FAST, &shared]);
        nodes.push(TernServer::start(
            common::BIN.as_ref(),
            testkit::fixture::HOST,
            &config,
        ));
    }
    nodes
}

async fn line(w: &mut TcpWire) -> String {
    w.read_line()
        .await
        .unwrap()
        .expect("the server closed the connection")
}

/// Send an IMAP command and read up to its tagged reply; the lines before it.
async fn imap(w: &mut TcpWire, tag: &str, command: &str) -> Vec<String> {
    w.send(format!("{tag} {command}\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let l = line(w).await;
        if l.starts_with(&format!("{tag} ")) {
            assert!(l.starts_with(&format!("{tag} OK")), "{command}: {l}");
            return lines;
        }
        lines.push(l);
    }
}

/// One message to `rcpt` over SMTP; panics unless it is acknowledged.
async fn send(addr: std::net::SocketAddr, rcpt: &str, subject: &str) {
    let mut w = TcpWire::connect(addr).await.unwrap();
    let mut replies = Vec::new();
    let script =
        format!("EHLO nodes.test\r\nMAIL FROM:<far@far.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n");
    line(&mut w).await;
    w.send(script.as_bytes()).await.unwrap();
    loop {
        let l = line(&mut w).await;
        if l.starts_with("354") {
            break;
        }
        replies.push(l);
    }
    w.send(format!("Subject: {subject}\r\n\r\nhello\r\n.\r\nQUIT\r\n").as_bytes())
        .await
        .unwrap();
    let done = line(&mut w).await;
    assert!(done.starts_with("250 "), "{replies:?} {done}");
}

/// IDLE on node A hears a message node B accepted (the change crosses
/// the database: NOTIFY at B's commit, A's listening connection); and a
/// flag set on node B is seen by a session on node A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_on_one_node_hears_another_nodes_delivery() {
    let db = Postgres::start();
    let nodes = tokio::task::spawn_blocking(move || {
        let nodes = start_nodes(&db, 2);
        (db, nodes)
    })
    .await
    .unwrap();
    let (_db, nodes) = nodes;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut w = TcpWire::connect(a.addr("imap")).await.unwrap();
    line(&mut w).await;
    imap(&mut w, "a", "LOGIN alice@a.test alice-pw").await;
    imap(&mut w, "b", "SELECT INBOX").await;
    w.send(b"c IDLE\r\n").await.unwrap();
    assert!(line(&mut w).await.starts_with('+'));
    let sent = Instant::now();
    send(b.addr("smtp"), "alice@a.test", "across nodes").await;
    let acked = sent.elapsed();
    w.timeout = Duration::from_secs(10);
    loop {
        let l = line(&mut w).await;
        if l == "* 1 EXISTS" {
            break;
        }
    }
    eprintln!(
        "IDLE on node A heard node B's delivery {:?} after the SMTP session began ({acked:?} to its 250)",
        sent.elapsed()
    );
    w.send(b"DONE\r\n").await.unwrap();
    while !line(&mut w).await.starts_with("c OK") {}
    // A flag set through node B, read on node A.
    let mut other = TcpWire::connect(b.addr("imap")).await.unwrap();
    line(&mut other).await;
    imap(&mut other, "a", "LOGIN alice@a.test alice-pw").await;
    imap(&mut other, "b", "SELECT INBOX").await;
    imap(&mut other, "c", "STORE 1 +FLAGS (\\Flagged)").await;
    let fetched = imap(
        &mut w,
        "d",
        "FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    )
    .await;
    let text = fetched.join("\n");
    assert!(text.contains("\\Flagged"), "{text}");
    assert!(text.contains("across nodes"), "{text}");
}

/// SMTP load spread over three nodes; one is killed with SIGKILL in the
/// middle. Every message any node acknowledged is in its mailbox exactly
/// once; the surviving nodes go on accepting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let db = Postgres::start();
    let (db, mut nodes) = tokio::task::spawn_blocking(move || {
        let nodes = start_nodes(&db, 3);
        (db, nodes)
    })
    .await
    .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for id in 0..4 {
            tasks.push(tokio::spawn(common::load_sender(
                node.addr("smtp"),
                format!("node{n}-{id}"),
                acked.clone(),
            )));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nodes[1].kill();
    let at_kill = acked.lock().unwrap().len();
    // The other nodes go on: their senders keep their sessions.
    while acked.lock().unwrap().len() < at_kill + 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nodes[0].kill();
    nodes[2].kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let from_b = acked.iter().filter(|s| s.contains("node1-")).count();
    assert!(from_b >= 20, "too little load on the killed node: {from_b}");
    assert!(acked.len() >= at_kill + 100, "the surviving nodes stopped");
    let store = store::connect(
        &store::Backend::Postgres {
            url: db.url(),
            tls: None,
        },
        &Default::default(),
    )
    .await
    .unwrap();
    let stored = common::subjects_stored_once(&store).await;
    let lost: Vec<&String> = acked.iter().filter(|s| !stored.contains(*s)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "three nodes, one killed: {} acknowledged ({from_b} by the killed node), {} stored, 0 lost, 0 twice",
        acked.len(),
        stored.len()
    );
}

/// RFC 1939's exclusive-access lock holds across nodes: a second POP3
/// session for the same maildrop, on another node, is refused with
/// `[IN-USE]` until the first one QUITs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_maildrop_lock_holds_across_nodes() {
    let db = Postgres::start();
    let (_db, nodes) = tokio::task::spawn_blocking(move || {
        let nodes = start_nodes(&db, 2);
        (db, nodes)
    })
    .await
    .unwrap();
    let login = async |node: &TernServer| {
        let mut w = TcpWire::connect(node.addr("pop3")).await.unwrap();
        assert!(line(&mut w).await.starts_with("+OK"));
        w.send(b"USER alice@a.test\r\nPASS alice-pw\r\n")
            .await
            .unwrap();
        assert!(line(&mut w).await.starts_with("+OK"));
        let reply = line(&mut w).await;
        (w, reply)
    };
    let (mut first, reply) = login(&nodes[0]).await;
    assert!(reply.starts_with("+OK"), "{reply}");
    let (_, refused) = login(&nodes[1]).await;
    assert!(refused.starts_with("-ERR [IN-USE]"), "{refused}");
    first.send(b"QUIT\r\n").await.unwrap();
    assert!(line(&mut first).await.starts_with("+OK"));
    let (_, after) = login(&nodes[1]).await;
    assert!(after.starts_with("+OK"), "{after}");
}

/// C-AU1 across nodes: password guesses from one address count together
/// whichever node they reach (`store::logins`), so spreading them over
/// the nodes buys no more tries; the block holds on every node, even for
/// the right password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guesses_count_across_nodes() {
    let db = Postgres::start();
    let (_db, nodes) = tokio::task::spawn_blocking(move || {
        let nodes = start_nodes_with(&db, 2, "[auth]\nmax_failures_per_ip = 3\n");
        (db, nodes)
    })
    .await
    .unwrap();
    let login = async |node: &TernServer, password: &str| {
        let mut w = TcpWire::connect(node.addr("imap")).await.unwrap();
        line(&mut w).await;
        w.send(format!("a LOGIN alice@a.test {password}\r\n").as_bytes())
            .await
            .unwrap();
        line(&mut w).await
    };
    const FAILED: &str = "a NO [AUTHENTICATIONFAILED] Authentication failed";
    const BLOCKED: &str = "* BYE [UNAVAILABLE] Too many authentication failures; try again later";
    assert_eq!(login(&nodes[0], "guess1").await, FAILED);
    assert_eq!(login(&nodes[0], "guess2").await, FAILED);
    assert_eq!(
        login(&nodes[1], "guess3").await,
        BLOCKED,
        "node B counts node A's failures"
    );
    assert_eq!(login(&nodes[0], "alice-pw").await, BLOCKED);
    assert_eq!(login(&nodes[1], "alice-pw").await, BLOCKED);
}

/// A node reaches its database over TLS (`sslmode=require`), the server's
/// certificate checked against `[store] ca_file`; with a CA that did not
/// sign it, the node refuses to start rather than talk to an unproven
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reaches_its_database_over_verified_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate(certs.path(), &["127.0.0.1"]);
    let other = tempfile::tempdir().unwrap();
    let (stranger, _) = common::certificate(other.path(), &["127.0.0.1"]);
    let db = Postgres::start_with_tls(cert.as_ref(), key.as_ref());
    let config = |ca: &str| {
        format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{}\"\nca_file = \"{ca}\"\n",
            db.tls_url()
        )
    };
    let good = config(&cert);
    let node = tokio::task::spawn_blocking(move || common::smtp_server(&good))
        .await
        .unwrap();
    send(node.addr("smtp"), "alice@a.test", "over tls").await;
    let tls_sessions = db.psql(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE s.ssl AND a.client_addr IS NOT NULL",
    );
    assert!(
        tls_sessions.parse::<u32>().unwrap() >= 2,
        "pool and change feed over TLS: {tls_sessions}"
    );
    let plain = db.psql(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE NOT s.ssl AND a.client_addr IS NOT NULL",
    );
    assert_eq!(plain, "0");
    // The same database, a CA that did not sign its certificate.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tern.toml");
    std::fs::write(
        &path,
        format!(
            "hostname = \"mx.a.test\"\ndata_dir = \"{}\"\n{}",
            dir.path().join("data").display(),
            config(&stranger)
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::BIN)
        .arg("--config")
        .arg(&path)
        .args(["account", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("store unreachable"), "{err}");
}

/// What an IMAP client knows of alice's mail: each mailbox's UIDVALIDITY,
/// UIDNEXT and HIGHESTMODSEQ, every message's UID, flags (but \Recent),
/// EMAILID and THREADID.
async fn what_alice_sees(node: &TernServer) -> Vec<String> {
    let mut w = TcpWire::connect(node.addr("imap")).await.unwrap();
    line(&mut w).await;
    imap(&mut w, "a", "LOGIN alice@a.test alice-pw").await;
    let mut seen = Vec::new();
    for mailbox in ["INBOX", "Kept"] {
        seen.extend(
            imap(
                &mut w,
                "b",
                &format!("STATUS {mailbox} (UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)"),
            )
            .await,
        );
        imap(&mut w, "c", &format!("SELECT {mailbox}")).await;
        // \Recent is claimed by the first session that sees a message.
        let fetched = imap(&mut w, "d", "FETCH 1:* (UID FLAGS EMAILID THREADID)").await;
        seen.extend(
            fetched
                .iter()
                .map(|l| l.replace(" \\Recent", "").replace("(\\Recent)", "()")),
        );
    }
    seen
}

/// `tern migrate --to postgres` moves a SQLite store into PostgreSQL
/// unchanged for the clients: the same UIDVALIDITY, UIDs, flags, MODSEQs,
/// EMAILIDs and THREADIDs, the same passwords, the queue; new mail takes
/// UIDs above the old ones; a second copy into the same database is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_moves_to_postgres_unchanged() {
    let plain = "[imap]\nplaintext_on_loopback = true\n";
    let mut before = tokio::task::spawn_blocking(move || common::full_server(plain))
        .await
        .unwrap();
    for i in 0..5 {
        send(before.addr("smtp"), "alice@a.test", &format!("kept {i}")).await;
    }
    let mut w = TcpWire::connect(before.addr("imap")).await.unwrap();
    line(&mut w).await;
    imap(&mut w, "a", "LOGIN alice@a.test alice-pw").await;
    imap(&mut w, "b", "CREATE Kept").await;
    imap(&mut w, "c", "SELECT INBOX").await;
    imap(&mut w, "d", "STORE 2 +FLAGS (\\Seen $Work)").await;
    imap(&mut w, "e", "COPY 2:3 Kept").await;
    imap(&mut w, "f", "STORE 1 +FLAGS (\\Deleted)").await;
    imap(&mut w, "g", "EXPUNGE").await;
    imap(&mut w, "h", "LOGOUT").await;
    // Forwarded off-site: it waits in the queue (the test's DNS answers nothing).
    send(before.addr("smtp"), "fwd@a.test", "forwarded").await;
    let queued = before.admin_ok(&["queue", "list"]);
    assert!(queued.contains("carol@far.test"), "{queued}");
    let seen = what_alice_sees(&before).await;
    before.stop(Duration::from_secs(10));

    let db = Postgres::start();
    let original = std::fs::read_to_string(before.config_path()).unwrap();
    let store = format!("[store]\nbackend = \"postgres\"\nurl = \"{}\"\n", db.url());
    let moved = before.config_path().with_file_name("moved.toml");
    std::fs::write(&moved, common::merge_toml(&[&original, &store])).unwrap();
    let migrate = || {
        std::process::Command::new(common::BIN)
            .arg("--config")
            .arg(&moved)
            .args(["migrate", "--to", "postgres"])
            .output()
            .unwrap()
    };
    let out = migrate();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("checksums checked"), "{text}");
    eprintln!("{text}");
    let again = migrate();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let node_config = {
        let listeners = ephemeral_listeners(&["smtp", "imap"]);
        common::merge_toml(&[&listeners, common::FAST, &node_config(&db)])
    };
    let after = tokio::task::spawn_blocking(move || {
        TernServer::start(common::BIN.as_ref(), testkit::fixture::HOST, &node_config)
    })
    .await
    .unwrap();
    assert_eq!(what_alice_sees(&after).await, seen);
    let still = after.admin_ok(&["queue", "list"]);
    assert!(still.contains("carol@far.test"), "{still}");
    assert_eq!(
        still.split_whitespace().next(),
        queued.split_whitespace().next(),
        "the same queue id"
    );
    send(after.addr("smtp"), "alice@a.test", "after the move").await;
    let now = what_alice_sees(&after).await;
    let last = now.iter().find(|l| l.contains("UIDNEXT")).unwrap();
    let was = seen.iter().find(|l| l.contains("UIDNEXT")).unwrap();
    assert_ne!(last, was, "{now:?}");
    assert!(now.iter().any(|l| l.contains("UID 6 ")), "{now:?}");
}

/// A node that dies in the middle of a delivery leaves its recipient
/// leased; another node takes it over once the lease runs out (`[queue]
/// lease`, 4 s here) and delivers it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_delivery_is_taken_over() {
    let dns = testkit::dns::TestDns::start().await;
    let mx = std::net::Ipv4Addr::new(127, 0, 180, 50);
    dns.mx("far.test", 10, "mx.far.test").a("mx.far.test", mx);
    let port = common::mx_port();
    // At first the far MX accepts connections and says nothing: the
    // delivery hangs there with its recipient leased.
    let staller = std::net::TcpListener::bind((mx, port)).unwrap();
    staller.set_nonblocking(true).unwrap();
    let db = Postgres::start();
    let shared = format!(
        "{}[dns]\nnameservers = [\"{}\"]\n[outbound]\nport = {port}\n[queue]\nretry = [\"1s\"]\nlease = \"4s\"\n",
        node_config(&db),
        dns.addr()
    );
    let config = shared.clone();
    let mut a = tokio::task::spawn_blocking(move || common::full_server(&config))
        .await
        .unwrap();
    send(a.addr("smtp"), "fwd@a.test", "taken over").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let hung = loop {
        match staller.accept() {
            Ok((stream, _)) => break stream,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("node A never tried the far MX: {e}\n{}", a.log()),
        }
    };
    a.kill();
    let killed = Instant::now();
    drop(hung);
    drop(staller);
    let sink = common::Sink::start(mx, port, &[]);
    let b = tokio::task::spawn_blocking(move || {
        let listeners = ephemeral_listeners(&["smtp", "imap"]);
        let config = common::merge_toml(&[&listeners, common::FAST, &shared]);
        TernServer::start(common::BIN.as_ref(), testkit::fixture::HOST, &config)
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.messages().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken_after = killed.elapsed();
    assert_eq!(sink.messages().len(), 1, "not taken over:\n{}", b.log());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = sink.messages();
    assert_eq!(got.len(), 1, "delivered twice");
    assert!(String::from_utf8_lossy(&got[0].1).contains("taken over"));
    let queue = b.admin_ok(&["queue", "list"]);
    assert!(!queue.contains("carol@far.test"), "{queue}");
    eprintln!("node A killed mid-delivery; node B delivered it {taken_after:?} later (lease 4 s)");
}

/// JMAP push across nodes (RFC 8620 §7.3): an event source on node A
/// gets a StateChange for Email when node B accepts a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jmap_push_on_one_node_hears_another_nodes_delivery() {
    use std::io::BufRead;
    let db = Postgres::start();
    let (_db, a, b) = tokio::task::spawn_blocking(move || {
        let shared = node_config(&db);
        let listeners = ephemeral_listeners(&["smtp", "http"]);
        let a = common::smtp_server_with(&listeners, &shared);
        let listeners = ephemeral_listeners(&["smtp"]);
        let config = common::merge_toml(&[&listeners, common::FAST, &shared]);
        let b = TernServer::start(common::BIN.as_ref(), testkit::fixture::HOST, &config);
        (db, a, b)
    })
    .await
    .unwrap();
    let url = format!(
        "http://{}/jmap/eventsource?types=Email&closeafter=state&ping=0",
        a.addr("http")
    );
    let mut child = std::process::Command::new("python3")
        .arg(common::repo("tests/clients/jmap_events.py"))
        .args([url.as_str(), "alice@a.test", "alice-pw", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (opened, mut lines) = tokio::task::spawn_blocking(move || (lines.next(), lines))
        .await
        .unwrap();
    assert_eq!(opened.unwrap().unwrap(), "open");
    send(b.addr("smtp"), "alice@a.test", "pushed across").await;
    let event = tokio::task::spawn_blocking(move || lines.next())
        .await
        .unwrap()
        .expect("no event")
        .unwrap();
    assert!(event.contains("StateChange"), "{event}");
    assert!(event.contains("\"Email\""), "{event}");
    assert!(child.wait().unwrap().success());
}
