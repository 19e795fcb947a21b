//! When the store cannot take a message, the client hears "try later", never 250
//! (hardening.md C-FT5, C-FT7), and the server carries on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use testkit::fixture::inbox;
use testkit::{TcpWire, Wire};

async fn send(w: &mut TcpWire, rcpt: &str, body_kib: usize) -> String {
    let mut last = String::new();
    for cmd in [
        "MAIL FROM:<s@far.test>".to_string(),
        format!("RCPT TO:<{rcpt}>"),
        "DATA".into(),
    ] {
        w.send(format!("{cmd}\r\n").as_bytes()).await.unwrap();
        last = w.read_line().await.unwrap().unwrap();
    }
    assert!(last.starts_with("354"), "{last}");
    let line = format!("{}\r\n", "z".repeat(998));
    let mut data = String::from("Subject: filler\r\n\r\n");
    for _ in 0..body_kib {
        data.push_str(&line);
    }
    data.push_str(".\r\n");
    w.send(data.as_bytes()).await.unwrap();
    w.read_line().await.unwrap().unwrap()
}

async fn session(server: &testkit::TernServer) -> TcpWire {
    let mut w = TcpWire::connect(server.addr("smtp")).await.unwrap();
    w.read_line().await.unwrap();
    w.send(b"HELO x\r\n").await.unwrap();
    w.read_line().await.unwrap();
    w
}

/// C-FT5: a full store answers 452 4.3.1, and takes mail again once space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_store_defers_and_recovers() {
    let server =
        tokio::task::spawn_blocking(|| common::smtp_server("[store]\nmax_size = 1500000\n"))
            .await
            .unwrap();
    let mut w = session(&server).await;
    let mut accepted = 0;
    let full = loop {
        let reply = send(&mut w, "bob@a.test", 64).await;
        if !reply.starts_with("250 ") {
            break reply;
        }
        accepted += 1;
        assert!(accepted < 100, "the size limit never applied");
    };
    assert_eq!(
        full,
        "452 4.3.1 Insufficient system storage",
        "{}",
        server.log()
    );
    assert!(accepted > 0);
    // Still alive, still refusing politely.
    assert_eq!(
        send(&mut w, "bob@a.test", 64).await,
        "452 4.3.1 Insufficient system storage"
    );
    let store = common::probe(&server).0.clone();
    assert_eq!(
        inbox(&store, "bob@a.test").await.unwrap().len(),
        accepted,
        "every 250 is stored, nothing else"
    );
    // Space comes back: the next message goes through, without a restart.
    server.admin_ok(&["account", "remove", "bob@a.test"]);
    assert!(
        send(&mut w, "alice@a.test", 64)
            .await
            .starts_with("250 2.0.0 Ok")
    );
}

/// C-FT7: the database locked by another process longer than the busy timeout gives
/// 451 4.3.0; once the lock is gone, mail flows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_store_defers() {
    let server =
        tokio::task::spawn_blocking(|| common::smtp_server("[store]\nbusy_timeout = \"1s\"\n"))
            .await
            .unwrap();
    let mut w = session(&server).await;
    let db = server.data_dir().join("tern.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    assert_eq!(
        send(&mut w, "alice@a.test", 1).await,
        "451 4.3.0 Local error in processing; try again later"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(
        send(&mut w, "alice@a.test", 1)
            .await
            .starts_with("250 2.0.0 Ok")
    );
    let store = common::probe(&server).0.clone();
    assert_eq!(inbox(&store, "alice@a.test").await.unwrap().len(), 1);
}
