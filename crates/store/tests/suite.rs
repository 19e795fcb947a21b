//! The store's behaviour, written against `dyn Store` so that every backend runs
//! the same suite. Each test opens its own database in a fresh temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use message::spool::Spooled;

use store::*;

#[path = "suite/mailboxes.rs"]
mod mailboxes;
use mailboxes::*;
#[path = "suite/acl.rs"]
mod acl;
#[path = "suite/antispam.rs"]
mod antispam;
use acl::*;
use antispam::*;
#[path = "suite/changes.rs"]
mod changes;
use changes::*;
#[path = "suite/leases.rs"]
mod leases;
use leases::*;
#[path = "suite/logins.rs"]
mod logins;
use logins::*;
// The TLS server and psql are for the node tests.
#[allow(dead_code)]
#[path = "../../testkit/src/postgres.rs"]
mod pg_server;
#[path = "suite/postgres.rs"]
mod postgres;

/// What the mailbox tests need of a backend.
pub trait MailStore: DirectoryStore + DeliveryStore + MailboxStore {}
impl<T: DirectoryStore + DeliveryStore + MailboxStore + ?Sized> MailStore for T {}

fn creds(tag: &str) -> Credentials {
    Credentials {
        password_hash: format!("hash-{tag}"),
        scram_sha256: format!("scram-{tag}"),
    }
}

/// A plain queue entry from `sender` to x@b.test.
fn to_x(sender: &str) -> QueueInsert {
    QueueInsert {
        sender: sender.into(),
        recipients: vec![QueueRecipient {
            address: "x@b.test".into(),
            orcpt: None,
            notify: None,
        }],
        envid: None,
        ret: None,
        smtputf8: false,
        eight_bit: false,
        options: Default::default(),
        submitter: None,
    }
}

fn open_sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    store::open(&Backend::Sqlite(dir.path().to_path_buf())).unwrap()
}

/// The SQLite arm of a suite test, in a fresh temporary directory.
macro_rules! sqlite_test {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sqlite() {
            let dir = tempfile::tempdir().unwrap();
            super::$name(super::open_sqlite(&dir)).await;
        }
    };
}

async fn open_postgres(server: &pg_server::Postgres) -> Arc<PostgresStore> {
    Arc::new(PostgresStore::connect(&server.url()).await.unwrap())
}

/// Runs one suite function against every backend: SQLite, and PostgreSQL
/// (a private server each test, started by `pg_server`).
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            sqlite_test!($name);
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let server = super::pg_server::Postgres::start();
                super::$name(super::open_postgres(&server).await).await;
            }
        }
    )*};
}

on_every_backend!(
    domains,
    dkim_keys,
    aliases_and_lookup,
    dmarc_reporting,
    tls_results,
    tokens,
    push_subscriptions,
    public_keys,
    accounts,
    delivery_assigns_ascending_uids,
    content_in_pieces,
    header_section_in_pieces,
    mailbox_names_and_subscriptions,
    flags_expunge_and_changes,
    recent_is_claimed_once,
    copy_and_move,
    quota_and_annotations,
    change_feed,
    concurrent_writers,
    queue_lifecycle,
    bounce_content_is_bounded,
    queue_entries,
    queue_priorities_and_holds,
    removing_an_account_frees_its_mail,
    delivery_versions_and_created_folders,
    leases_are_exclusive_and_expire,
    shared_mailbox_rights,
    submissions,
    submissions_canceled_while_held,
    delivery_history,
    sieve_scripts,
    sieve_tracking,
    greylisting_state,
    bayes_training,
    held_accounts_hold_their_queue,
    sending_pace,
    search_index,
    change_log,
    change_log_pruned,
    index_keeps_any_text,
    change_states_follow_commits,
    named_leases,
    a_failed_delivery_spares_the_others,
    login_failures,
    login_failures_counted_at_once,
);

/// A message's header section read a piece at a time (SEARCH HEADER and
/// JMAP header properties of large messages): through the empty line even
/// when it straddles two pieces, cut at the most asked for, the whole of
/// a message that has no body.
async fn header_section_in_pieces(s: Arc<dyn Store>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap();
    let inbox = s.mailbox(a.id, "INBOX").await.unwrap().unwrap().id;
    // The empty line's CRLF CRLF begins two octets before the first piece ends.
    let field = format!("X-A: {}\r\n\r\n", "a".repeat(stream::PIECE - 7));
    let raw = format!("{field}hello\r\n").into_bytes();
    let uid = s
        .append(inbox, Spooled::from_vec(raw.clone()), vec![], 1)
        .await
        .unwrap();
    let size = raw.len() as u64;
    let read = |max| stream::header_section(s.as_ref(), inbox, uid, size, max);
    assert_eq!(read(1 << 20).await.unwrap().unwrap(), field.as_bytes());
    assert_eq!(read(1000).await.unwrap().unwrap(), &raw[..1000]);
    let bodiless = b"Subject: no body\r\n".to_vec();
    let uid = s
        .append(inbox, Spooled::from_vec(bodiless.clone()), vec![], 1)
        .await
        .unwrap();
    let head = stream::header_section(s.as_ref(), inbox, uid, bodiless.len() as u64, 1 << 20);
    assert_eq!(head.await.unwrap().unwrap(), bodiless);
    let gone = stream::header_section(s.as_ref(), inbox, 99, 10, 1 << 20);
    assert_eq!(gone.await.unwrap(), None);
}

/// A message read a piece at a time (IMAP FETCH and POP3 RETR of large
/// messages) is the message read whole, whatever the piece boundaries,
/// our prefix included.
async fn content_in_pieces<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap();
    let body: String = (0..2000).map(|i| format!("line {i}\r\n")).collect();
    let msg = NewMessage {
        data: Spooled::from_vec(format!("Subject: big\r\n\r\n{body}").into_bytes()),
        received_at: 1,
        deliveries: vec![delivery(a.id, "X-Trace: one\r\n")],
        queue: None,
    };
    s.store_message(msg).await.unwrap();
    let inbox = s.mailbox(a.id, "INBOX").await.unwrap().unwrap().id;
    let whole = s.message_content(inbox, 1).await.unwrap().unwrap();
    for piece in [1, 5, 14, 15, 4096, whole.len(), whole.len() + 9] {
        // Tiny pieces over the beginning only (prefix and header): a
        // backend over the network answers each in a round trip.
        let upto = if piece < 100 { 2_000 } else { whole.len() };
        let mut joined = Vec::new();
        while joined.len() < upto {
            let got = s
                .content_range(inbox, 1, joined.len() as u64, piece)
                .await
                .unwrap()
                .unwrap();
            assert!(!got.is_empty() && got.len() <= piece);
            joined.extend_from_slice(&got);
        }
        assert_eq!(joined, whole[..joined.len()], "pieces of {piece}");
        assert!(joined.len() >= upto);
    }
    let past = s.content_range(inbox, 1, whole.len() as u64 + 3, 10).await;
    assert_eq!(past.unwrap(), Some(vec![]));
    assert_eq!(s.content_range(inbox, 2, 0, 10).await.unwrap(), None);

    // A large message kept from its spool file (past any backend's piece
    // or memory size) comes back the same, whole and in pieces.
    let dir = tempfile::tempdir().unwrap();
    let spool = message::spool::Spool::in_dir(dir.path()).unwrap();
    let mut writer = spool.writer();
    let mut large = b"Subject: large\r\n\r\n".to_vec();
    large.extend((0..700_000u32).map(|i| b"abcdefghij\r\n"[(i % 12) as usize]));
    writer.write(&large).unwrap();
    let spooled = writer.finish().unwrap();
    assert!(spooled.is_spooled());
    let uid = s.append(inbox, spooled, vec![], 1).await.unwrap();
    assert_eq!(s.message_content(inbox, uid).await.unwrap().unwrap(), large);
    for piece in [100_000, 262_144, 300_001] {
        let mut joined = Vec::new();
        while joined.len() < large.len() {
            let got = s
                .content_range(inbox, uid, joined.len() as u64, piece)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.len(), piece.min(large.len() - joined.len()));
            joined.extend_from_slice(&got);
        }
        assert!(joined == large, "pieces of {piece}");
    }
}

/// RFC 8460 results: counted per domain, policy and failure; forgotten per
/// domain once reported.
async fn tls_results(s: Arc<dyn TlsResultStore>) {
    let r = |at, domain: &str, failure: Option<&str>| TlsResult {
        at,
        domain: domain.into(),
        policy: "p".into(),
        failure: failure.map(String::from),
    };
    s.record_tls_results(vec![
        r(1, "B.test", None),
        r(2, "b.test", None),
        r(3, "b.test", Some("f")),
        r(4, "c.test", None),
        r(50, "b.test", None),
    ]);
    // Not waited for: written soon after.
    for _ in 0..200 {
        let due = s.tls_results_before(100).await.unwrap();
        if due.iter().flat_map(|d| &d.rows).map(|r| r.2).sum::<u64>() == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let due = s.tls_results_before(10).await.unwrap();
    assert_eq!(
        due,
        [
            DomainTlsResults {
                domain: "b.test".into(),
                rows: vec![("p".into(), None, 2), ("p".into(), Some("f".into()), 1)],
            },
            DomainTlsResults {
                domain: "c.test".into(),
                rows: vec![("p".into(), None, 1)],
            },
        ]
    );
    s.delete_tls_results("b.test", 10).await.unwrap();
    let due = s.tls_results_before(100).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(
        due[0].rows,
        [("p".to_string(), None, 1)],
        "the later one stays"
    );
}

/// Events of two messages: found by address, Message-ID, SMTP id and queue
/// id, each message's events linked by its ids, in the order of its life;
/// old ones expired.
async fn delivery_history(s: Arc<dyn HistoryStore>) {
    let key = MessageKey {
        message: Some("m1".into()),
        queue_id: None,
    };
    let queued = MessageKey {
        message: Some("m1".into()),
        queue_id: Some(7),
    };
    let from_queue = MessageKey {
        message: None,
        queue_id: Some(7),
    };
    let mut accepted = HistoryEvent::of(
        &key,
        100,
        HistoryKind::Accepted,
        Some("a@x.test, b@y.test"),
        "ok",
    );
    accepted.sender = Some("Sender@Z.test".into());
    accepted.message_id = Some("<id-1@z.test>".into());
    let other = HistoryEvent::of(
        &MessageKey {
            message: Some("m2".into()),
            queue_id: None,
        },
        50,
        HistoryKind::Refused,
        Some("a@x.test"),
        "550 5.1.1 no such user",
    );
    // Recorded out of order, and within one second the stage orders them.
    s.record_history(vec![
        HistoryEvent::of(
            &from_queue,
            160,
            HistoryKind::Delivered,
            Some("b@y.test"),
            "250 ok",
        ),
        HistoryEvent::of(
            &from_queue,
            160,
            HistoryKind::Attempt,
            Some("b@y.test"),
            "mx ...",
        ),
        HistoryEvent::of(
            &queued,
            100,
            HistoryKind::Queued,
            Some("b@y.test"),
            "queued",
        ),
        HistoryEvent::of(
            &key,
            100,
            HistoryKind::Filed,
            Some("a@x.test"),
            "into INBOX",
        ),
        accepted,
        other,
    ]);
    // Not waited for: written soon after, all together.
    for _ in 0..200 {
        let found = s.history(HistoryQuery::Queue(7), 10).await.unwrap();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let kinds =
        |events: &[HistoryEvent]| events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>();
    let life = ["accepted", "filed", "queued", "attempt", "delivered"];
    let by_queue = s.history(HistoryQuery::Queue(7), 10).await.unwrap();
    assert_eq!(kinds(&by_queue), life);
    let by_id = s
        .history(HistoryQuery::MessageId("id-1@z.test".into()), 10)
        .await
        .unwrap();
    assert_eq!(by_id, by_queue);
    assert_eq!(by_id[0].message_id.as_deref(), Some("id-1@z.test"));
    assert_eq!(by_id[0].sender.as_deref(), Some("sender@z.test"));
    let by_message = s
        .history(HistoryQuery::Message("m1".into()), 10)
        .await
        .unwrap();
    assert_eq!(by_message, by_queue);
    // The address reaches both messages (the oldest first); the limit keeps the newest.
    let by_address = s
        .history(HistoryQuery::Address("A@x.test".into()), 10)
        .await
        .unwrap();
    assert_eq!(by_address.len(), 6);
    assert_eq!(by_address[0].kind, HistoryKind::Refused);
    let newest = s
        .history(HistoryQuery::Address("a@x.test".into()), 1)
        .await
        .unwrap();
    assert_eq!(kinds(&newest), life);
    assert!(
        s.history(HistoryQuery::Queue(8), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.expire_history(100).await.unwrap(), 1);
    assert_eq!(s.expire_history(1000).await.unwrap(), 5);
    assert!(
        s.history(HistoryQuery::Queue(7), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn evaluation(at: i64, domain: &str, policy: &str, row: &str) -> NewEvaluation {
    NewEvaluation {
        at,
        domain: domain.into(),
        rua: format!("mailto:r@{domain}"),
        policy: policy.into(),
        row: row.into(),
    }
}

async fn dmarc_reporting(s: Arc<dyn ReportStore>) {
    s.record_evaluations(vec![
        evaluation(100, "a.test", "p1", "pass"),
        evaluation(101, "a.test", "p1", "fail"),
        evaluation(102, "a.test", "p2", "pass"),
        evaluation(103, "b.test", "p", "pass"),
        evaluation(200, "a.test", "p3", "pass"),
    ])
    .await
    .unwrap();
    let due = s.evaluations_before(200).await.unwrap();
    assert_eq!(due.len(), 2);
    let a = &due[0];
    assert_eq!(
        (a.domain.as_str(), a.policy.as_str()),
        ("a.test", "p2"),
        "latest policy"
    );
    assert_eq!(
        a.rows,
        vec![("pass".to_string(), 2), ("fail".to_string(), 1)]
    );
    assert_eq!((a.first, a.last), (100, 102));
    s.delete_evaluations("a.test", 200).await.unwrap();
    let due = s.evaluations_before(201).await.unwrap();
    let names: Vec<_> = due
        .iter()
        .map(|d| (d.domain.as_str(), d.rows.len()))
        .collect();
    assert_eq!(
        names,
        [("a.test", 1), ("b.test", 1)],
        "later and other domains stay"
    );

    let report = ReceivedReport {
        id: 0,
        kind: ReportKind::Dmarc,
        received_at: 5,
        org: "google.com".into(),
        report_id: "r1".into(),
        domain: "a.test".into(),
        begin: 1,
        end: 2,
        messages: 10,
        failed: 1,
        document: b"{}".to_vec(),
    };
    let id = s
        .add_received_report(report.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.add_received_report(report.clone()).await.unwrap(),
        None,
        "sent twice"
    );
    let list = s.received_reports().await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].document.is_empty());
    let got = s.received_report(id).await.unwrap().unwrap();
    assert_eq!(
        got,
        ReceivedReport {
            id,
            ..report.clone()
        }
    );
    // A TLS report with the same organisation and id is another report.
    let tls = ReceivedReport {
        kind: ReportKind::Tls,
        ..report
    };
    let tls_id = s.add_received_report(tls.clone()).await.unwrap().unwrap();
    assert_eq!(s.add_received_report(tls.clone()).await.unwrap(), None);
    let got = s.received_report(tls_id).await.unwrap().unwrap();
    assert_eq!(got, ReceivedReport { id: tls_id, ..tls });
    assert_eq!(s.received_report(tls_id + 1).await.unwrap(), None);
}

async fn dkim_keys(s: Arc<dyn DirectoryStore>) {
    s.add_domain("a.test").await.unwrap();
    let key = |selector: &str, active_from| NewDkimKey {
        selector: selector.into(),
        algorithm: "ed25519-sha256".into(),
        private_key: vec![1, 2, 3],
        public_key: "AAAA".into(),
        active_from,
    };
    s.add_dkim_key("a.test", key("old", 10)).await.unwrap();
    s.add_dkim_key("a.test", key("new", 20)).await.unwrap();
    assert!(matches!(
        s.add_dkim_key("a.test", key("new", 30)).await,
        Err(StoreError::Duplicate(m)) if m.contains("new")
    ));
    assert!(matches!(
        s.add_dkim_key("nowhere.test", key("x", 1)).await,
        Err(StoreError::NotFound(_))
    ));
    let keys = s.dkim_keys("a.test").await.unwrap();
    let selectors: Vec<_> = keys.iter().map(|k| k.key.selector.as_str()).collect();
    assert_eq!(selectors, ["new", "old"], "newest first");
    assert_eq!(keys[0].key.private_key, [1, 2, 3]);
    assert!(
        !format!("{:?}", keys[0]).contains("[1, 2, 3]"),
        "no key material in Debug"
    );
    s.remove_domain("a.test").await.unwrap();
    s.add_domain("a.test").await.unwrap();
    assert!(
        s.dkim_keys("a.test").await.unwrap().is_empty(),
        "keys go with their domain"
    );
    // Settings: the first value stays.
    assert_eq!(s.setting_or_init("srs", vec![1]).await.unwrap(), [1]);
    assert_eq!(s.setting_or_init("srs", vec![2]).await.unwrap(), [1]);
}

async fn domains(s: Arc<dyn DirectoryStore>) {
    s.add_domain("a.test").await.unwrap();
    s.add_domain("b.test").await.unwrap();
    assert!(
        matches!(s.add_domain("a.test").await, Err(StoreError::Duplicate(m)) if m.contains("a.test"))
    );
    let names: Vec<_> = s
        .list_domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["a.test", "b.test"]);
    s.remove_domain("b.test").await.unwrap();
    assert!(matches!(
        s.remove_domain("b.test").await,
        Err(StoreError::NotFound(_))
    ));
    s.add_account("x@a.test", creds("x")).await.unwrap();
    assert!(
        matches!(s.remove_domain("a.test").await, Err(StoreError::InUse(m)) if m.contains("1 account"))
    );
}

async fn accounts<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    assert!(
        matches!(s.add_account("x@nowhere.test", creds("x")).await, Err(StoreError::NotFound(m)) if m.contains("nowhere.test"))
    );
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("1")).await.unwrap();
    assert!(
        matches!(s.add_account("alice@a.test", creds("2")).await, Err(StoreError::Duplicate(m)) if m.contains("alice@a.test"))
    );
    let c = s
        .account_credentials("alice@a.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.credentials, creds("1"));
    s.set_credentials("alice@a.test", creds("3")).await.unwrap();
    assert_eq!(
        s.account_credentials("alice@a.test")
            .await
            .unwrap()
            .unwrap()
            .credentials,
        creds("3")
    );
    assert!(matches!(
        s.set_credentials("bob@a.test", creds("3")).await,
        Err(StoreError::NotFound(_))
    ));
    // RFC 6154: every account has the special-use mailboxes.
    let boxes = s.mailboxes(a.id).await.unwrap();
    let mut names: Vec<_> = boxes.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    let mut validities: Vec<_> = boxes.iter().map(|m| m.uid_validity).collect();
    validities.dedup();
    assert_eq!(validities.len(), 6, "each mailbox has its own UIDVALIDITY");
    assert_eq!(s.list_accounts().await.unwrap().len(), 1);
    s.remove_account("alice@a.test").await.unwrap();
    assert!(s.list_accounts().await.unwrap().is_empty());
    assert!(
        s.account_credentials("alice@a.test")
            .await
            .unwrap()
            .is_none()
    );
}

async fn aliases_and_lookup(s: Arc<dyn DirectoryStore>) {
    s.add_domain("a.test").await.unwrap();
    s.add_account("alice@a.test", creds("a")).await.unwrap();
    s.add_alias("info@a.test", &["alice@a.test".into(), "bob@b.test".into()])
        .await
        .unwrap();
    s.add_alias("@a.test", &["alice@a.test".into()])
        .await
        .unwrap();
    assert!(matches!(
        s.add_alias("alice@a.test", &["x@a.test".into()]).await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        s.add_account("info@a.test", creds("i")).await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        s.add_alias("x@c.test", &["alice@a.test".into()]).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        matches!(s.lookup_address("alice@a.test").await.unwrap(), AddressKind::Account(a) if a.address == "alice@a.test")
    );
    assert_eq!(
        s.lookup_address("info@a.test").await.unwrap(),
        AddressKind::Alias(vec!["alice@a.test".into(), "bob@b.test".into()])
    );
    assert_eq!(
        s.lookup_address("@a.test").await.unwrap(),
        AddressKind::Alias(vec!["alice@a.test".into()])
    );
    assert_eq!(
        s.lookup_address("nobody@a.test").await.unwrap(),
        AddressKind::Unknown
    );
    assert_eq!(
        s.lookup_address("x@elsewhere.test").await.unwrap(),
        AddressKind::NotLocal
    );
    assert_eq!(
        s.aliases_targeting("alice@a.test").await.unwrap(),
        ["info@a.test"]
    );
    assert!(s.aliases_targeting("lice@a.test").await.unwrap().is_empty());
    assert_eq!(s.list_aliases().await.unwrap().len(), 2);
    s.remove_alias("info@a.test").await.unwrap();
    assert!(matches!(
        s.remove_alias("info@a.test").await,
        Err(StoreError::NotFound(_))
    ));
}

fn delivery(account: AccountId, prefix: &str) -> Delivery {
    Delivery {
        account,
        folder: Folder::Inbox,
        prefix: prefix.as_bytes().to_vec(),
        flags: vec![],
    }
}

async fn delivery_assigns_ascending_uids<S: MailStore + ?Sized + 'static>(s: Arc<S>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap();
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap();
    // Many concurrent deliveries share commits; every one gets its own UID.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let msg = NewMessage {
                data: Spooled::from_vec(format!("Subject: {i}\r\n\r\nbody\r\n").into_bytes()),
                received_at: 1000 + i,
                deliveries: vec![delivery(a.id, "X-For: alice\r\n"), delivery(b.id, "")],
                queue: None,
            };
            s.store_message(msg).await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().placed.len(), 2);
    }
    let inbox = s
        .mailboxes(a.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "INBOX")
        .unwrap();
    let msgs = s.messages(inbox.id).await.unwrap();
    let uids: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
    assert_eq!(uids, (1..=40).collect::<Vec<_>>());
    assert_eq!(inbox.uid_next, 41);
    assert!(msgs.windows(2).all(|w| w[0].modseq < w[1].modseq));
    let content = s.message_content(inbox.id, 1).await.unwrap().unwrap();
    assert!(content.starts_with(b"X-For: alice\r\nSubject: "));
    assert_eq!(msgs[0].size, content.len() as u64);
    // A message to a special-use folder, and one to a folder that does not exist (INBOX).
    let junk = NewMessage {
        data: Spooled::from_vec(b"Subject: spam\r\n\r\n".to_vec()),
        received_at: 1,
        deliveries: vec![
            Delivery {
                folder: Folder::SpecialUse("\\Junk".into()),
                ..delivery(a.id, "")
            },
            Delivery {
                folder: Folder::Named("Nope".into()),
                ..delivery(a.id, "")
            },
        ],
        queue: None,
    };
    let stored = s.store_message(junk).await.unwrap();
    assert_ne!(stored.placed[0].0, inbox.id);
    assert_eq!(stored.placed[1], (inbox.id, 41));
}

async fn queue_entries<S: MailStore + QueueStore + ?Sized + 'static>(s: Arc<S>) {
    let q = QueueInsert {
        sender: "alice@a.test".into(),
        recipients: vec![
            QueueRecipient {
                address: "x@b.test".into(),
                orcpt: Some("rfc822;x@b.test".into()),
                notify: Some("FAILURE".into()),
            },
            QueueRecipient {
                address: "y@c.test".into(),
                orcpt: None,
                notify: None,
            },
        ],
        envid: Some("ENV1".into()),
        ret: Some("HDRS".into()),
        smtputf8: false,
        eight_bit: true,
        options: Default::default(),
        submitter: None,
    };
    let stored = s
        .store_message(NewMessage {
            data: Spooled::from_vec(b"Subject: out\r\n\r\nx\r\n".to_vec()),
            received_at: 5,
            deliveries: vec![],
            queue: Some(q),
        })
        .await
        .unwrap();
    let list = s.queue_list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(Some(list[0].id), stored.queue_id);
    assert_eq!(list[0].sender, "alice@a.test");
    assert_eq!(list[0].size, 19);
    assert_eq!(
        list[0].recipients,
        [
            ("x@b.test".to_string(), "queued".to_string()),
            ("y@c.test".to_string(), "queued".to_string())
        ]
    );
    // A deleted message's id is never given again (the history links a
    // message's attempts by it).
    let first = stored.queue_id.unwrap();
    s.queue_delete(first).await.unwrap();
    let again = s
        .store_message(NewMessage {
            data: Spooled::from_vec(b"Subject: again\r\n\r\nx\r\n".to_vec()),
            received_at: 6,
            deliveries: vec![],
            queue: Some(to_x("alice@a.test")),
        })
        .await
        .unwrap();
    assert!(again.queue_id.unwrap() > first, "{again:?} reuses {first}");
}

/// RFC 6710: due messages are claimed highest MT-PRIORITY first; RFC 4865:
/// a held message is not due before its release; RFC 2852: the deadline
/// comes back with the job.
async fn queue_priorities_and_holds<S: MailStore + QueueStore + ?Sized + 'static>(s: Arc<S>) {
    let mut ids = Vec::new();
    for (priority, release_at) in [(-2, None), (0, None), (7, None), (9, Some(500))] {
        let mut q = to_x("alice@a.test");
        q.recipients[0].address = format!("p{priority}@b.test");
        q.options = QueueOptions {
            release_at,
            deliver_by: Some(DeliverBy {
                deadline: 1000,
                returns: priority > 0,
                trace: true,
            }),
            priority,
            require_tls: priority == 9,
        };
        let stored = s
            .store_message(NewMessage {
                data: Spooled::from_vec(b"Subject: p\r\n\r\nx\r\n".to_vec()),
                received_at: 100,
                deliveries: vec![],
                queue: Some(q),
            })
            .await
            .unwrap();
        ids.push(stored.queue_id.unwrap());
    }
    let first = s.queue_claim(Claim::Due(100), 100, 700, 1).await.unwrap();
    assert_eq!(first[0].id, ids[2], "priority 7 first; 9 is held");
    assert_eq!(first[0].options.priority, 7);
    assert!(!first[0].options.require_tls);
    assert_eq!(
        first[0].options.deliver_by,
        Some(DeliverBy {
            deadline: 1000,
            returns: true,
            trace: true
        })
    );
    let rest = s.queue_claim(Claim::Due(100), 100, 700, 10).await.unwrap();
    assert_eq!(
        rest.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[1], ids[0]],
        "then normal, then low"
    );
    assert!(
        s.queue_claim(Claim::Due(499), 499, 700, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let held = s.queue_claim(Claim::Due(500), 500, 900, 10).await.unwrap();
    assert_eq!(held[0].id, ids[3]);
    assert_eq!(held[0].options.release_at, Some(500));
    // RFC 8689: REQUIRETLS stays with the message.
    assert!(held[0].options.require_tls);
}

async fn queue_lifecycle<S: MailStore + QueueStore + ?Sized + 'static>(s: Arc<S>) {
    let q = QueueInsert {
        sender: "alice@a.test".into(),
        recipients: vec![
            QueueRecipient {
                address: "x@b.test".into(),
                orcpt: None,
                notify: None,
            },
            QueueRecipient {
                address: "y@c.test".into(),
                orcpt: Some("rfc822;y@c.test".into()),
                notify: Some("NEVER".into()),
            },
        ],
        envid: None,
        ret: None,
        smtputf8: false,
        eight_bit: false,
        options: Default::default(),
        submitter: None,
    };
    let id = s
        .store_message(NewMessage {
            data: Spooled::from_vec(b"Subject: q\r\n\r\nx\r\n".to_vec()),
            received_at: 100,
            deliveries: vec![],
            queue: Some(q),
        })
        .await
        .unwrap()
        .queue_id
        .unwrap();
    assert_eq!(s.queue_pending().await.unwrap(), vec![(id, 100)]);
    let jobs = s.queue_claim(Claim::Due(100), 100, 700, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].recipients.len(), 2);
    // Leased: a second runner gets nothing until the lease ends.
    assert!(
        s.queue_claim(Claim::Due(100), 100, 700, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let spool = message::spool::Spool::memory();
    let content = s.queue_content(id, &spool).await.unwrap().unwrap();
    assert_eq!(&content.read_all().unwrap()[..], b"Subject: q\r\n\r\nx\r\n");
    let (x, y) = (jobs[0].recipients[0].id, jobs[0].recipients[1].id);
    let attempt = Attempt {
        at: 100,
        recipients: "x@b.test y@c.test".into(),
        mx: Some("mx.b.test".into()),
        ip: Some("192.0.2.1".into()),
        tls: None,
        reply: "451 4.3.0 later".into(),
    };
    let outcome = |id, state| RecipientOutcome {
        id,
        state,
        status: "4.3.0".into(),
        reply: "451 4.3.0 later".into(),
        remote_mta: Some("mx.b.test".into()),
        warned: true,
    };
    let finished = s
        .queue_report(QueueReport {
            queue_id: id,
            attempts: vec![attempt],
            outcomes: vec![
                outcome(x, RecipientState::Deferred(200)),
                outcome(y, RecipientState::Failed),
            ],
            return_limit: 1 << 20,
        })
        .await
        .unwrap();
    assert!(finished.is_none(), "x is still queued");
    assert!(
        s.queue_claim(Claim::Due(150), 150, 700, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before 200"
    );
    let detail = s.queue_show(id).await.unwrap().unwrap();
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.recipients[0].2, 1);
    assert_eq!(s.queue_retry(Some(id), 150).await.unwrap(), 1);
    let jobs = s.queue_claim(Claim::Due(150), 150, 700, 10).await.unwrap();
    assert_eq!(jobs[0].recipients.len(), 1);
    assert!(
        jobs[0].recipients[0].warned,
        "a delay warning is remembered"
    );
    s.queue_release().await.unwrap();
    assert_eq!(
        s.queue_claim(Claim::Message(id), 150, 700, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let done = s
        .queue_report(QueueReport {
            queue_id: id,
            attempts: vec![],
            outcomes: vec![RecipientOutcome {
                id: x,
                state: RecipientState::Delivered,
                status: "2.0.0".into(),
                reply: "250 ok".into(),
                remote_mta: None,
                warned: false,
            }],
            return_limit: 1 << 20,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        done.content, b"Subject: q\r\n\r\nx\r\n",
        "y failed: the report needs the content"
    );
    assert_eq!(done.size, 17);
    assert_eq!(done.recipients.len(), 2);
    assert!(done.recipients[0].delivered && !done.recipients[1].delivered);
    assert_eq!(done.recipients[1].orcpt.as_deref(), Some("rfc822;y@c.test"));
    assert!(s.queue_list().await.unwrap().is_empty());
    assert!(matches!(
        s.queue_delete(id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A failed message leaves the queue with its content for the bounce:
/// past `return_limit`, only its first octets (the bounce returns the
/// header section), unless the sender asked RET=FULL (RFC 3461 §4.3).
async fn bounce_content_is_bounded<S: MailStore + QueueStore + ?Sized + 'static>(s: Arc<S>) {
    for (ret, want) in [
        (None, &b"Subject: q\r\n"[..]),
        (Some("FULL"), &b"Subject: q\r\n\r\nbody\r\n"[..]),
    ] {
        let id = s
            .store_message(NewMessage {
                data: Spooled::from_vec(b"Subject: q\r\n\r\nbody\r\n".to_vec()),
                received_at: 100,
                deliveries: vec![],
                queue: Some(QueueInsert {
                    sender: "alice@a.test".into(),
                    recipients: vec![QueueRecipient {
                        address: "x@b.test".into(),
                        orcpt: None,
                        notify: None,
                    }],
                    envid: None,
                    ret: ret.map(String::from),
                    smtputf8: false,
                    eight_bit: false,
                    options: Default::default(),
                    submitter: None,
                }),
            })
            .await
            .unwrap()
            .queue_id
            .unwrap();
        let jobs = s
            .queue_claim(Claim::Message(id), 100, 700, 10)
            .await
            .unwrap();
        let done = s
            .queue_report(QueueReport {
                queue_id: id,
                attempts: vec![],
                outcomes: vec![RecipientOutcome {
                    id: jobs[0].recipients[0].id,
                    state: RecipientState::Failed,
                    status: "5.1.1".into(),
                    reply: "550 5.1.1 no".into(),
                    remote_mta: None,
                    warned: false,
                }],
                return_limit: 12,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.content, want, "RET {ret:?}");
        assert_eq!(done.size, 20);
    }
}

async fn removing_an_account_frees_its_mail<S: MailStore + QueueStore + ?Sized + 'static>(
    s: Arc<S>,
) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap();
    let msg = NewMessage {
        data: Spooled::from_vec(b"x".to_vec()),
        received_at: 0,
        deliveries: vec![delivery(a.id, "")],
        queue: None,
    };
    let stored = s.store_message(msg).await.unwrap();
    s.remove_account("alice@a.test").await.unwrap();
    assert!(
        s.message_content(stored.placed[0].0, 1)
            .await
            .unwrap()
            .is_none()
    );
    // The address can be used again, with fresh mailboxes.
    let a2 = s.add_account("alice@a.test", creds("a")).await.unwrap();
    let inbox = s
        .mailboxes(a2.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.name == "INBOX")
        .unwrap();
    assert!(s.messages(inbox.id).await.unwrap().is_empty());
}

/// Migrations run from an empty file, and a second open finds the schema current.
#[tokio::test]
async fn migrations_from_empty_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_sqlite(&dir);
    s.add_domain("a.test").await.unwrap();
    drop(s);
    let s = open_sqlite(&dir);
    assert_eq!(s.list_domains().await.unwrap().len(), 1);
}

/// Two store handles on one file stand for the server and the admin CLI writing at
/// once: neither sees "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = open_sqlite(&dir);
    let cli = open_sqlite(&dir);
    server.add_domain("a.test").await.unwrap();
    let acct = server
        .add_account("alice@a.test", creds("a"))
        .await
        .unwrap();
    let deliveries = {
        let server = server.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let msg = NewMessage {
                    data: Spooled::from_vec(format!("m{i}").into_bytes()),
                    received_at: i,
                    deliveries: vec![delivery(acct.id, "")],
                    queue: None,
                };
                server.store_message(msg).await.unwrap();
            }
        })
    };
    for i in 0..100 {
        cli.add_account(&format!("u{i}@a.test"), creds("u"))
            .await
            .unwrap();
    }
    deliveries.await.unwrap();
    assert_eq!(cli.list_accounts().await.unwrap().len(), 101);
}

/// Group commit: a job that fails inside a shared commit is rolled back alone; the
/// others in the same batch still commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_does_not_spoil_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_sqlite(&dir);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        let name = if i % 2 == 0 {
            "dup.test".to_string()
        } else {
            format!("d{i}.test")
        };
        tasks.push(tokio::spawn(async move { s.add_domain(&name).await }));
    }
    let mut ok = 0;
    let mut dup = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Duplicate(_)) => dup += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, dup), (11, 9));
    assert_eq!(s.list_domains().await.unwrap().len(), 11);
}

/// A blob goes when the last mailbox entry or queued message pointing to it
/// goes (expunge, queue delete, account removal), and only then; the cleanup
/// touches only the blobs concerned, whatever the size of the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_freed_with_their_last_reference() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_sqlite(&dir);
    let blobs = || {
        let c = rusqlite::Connection::open(dir.path().join("tern.db")).unwrap();
        c.query_row("SELECT count(*) FROM blobs", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap();
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap();
    let queue = to_x("alice@a.test");
    // One blob shared by alice's INBOX and the queue.
    let stored = s
        .store_message(NewMessage {
            data: Spooled::from_vec(b"Subject: shared\r\n\r\nx\r\n".to_vec()),
            received_at: 0,
            deliveries: vec![delivery(a.id, "")],
            queue: Some(queue),
        })
        .await
        .unwrap();
    assert_eq!(blobs(), 1);
    let inbox = stored.placed[0].0;
    s.remove_messages(inbox, vec![1]).await.unwrap();
    assert_eq!(blobs(), 1, "the queue still needs it");
    s.queue_delete(stored.queue_id.unwrap()).await.unwrap();
    assert_eq!(blobs(), 0);

    // One blob in two accounts' INBOXes.
    let stored = s
        .store_message(NewMessage {
            data: Spooled::from_vec(b"Subject: both\r\n\r\ny\r\n".to_vec()),
            received_at: 0,
            deliveries: vec![delivery(a.id, ""), delivery(b.id, "")],
            queue: None,
        })
        .await
        .unwrap();
    assert_eq!(blobs(), 1);
    s.remove_account("alice@a.test").await.unwrap();
    assert_eq!(blobs(), 1, "bob still has it");
    let bob_inbox = stored.placed[1].0;
    s.remove_messages(bob_inbox, vec![1]).await.unwrap();
    assert_eq!(blobs(), 0);
}

async fn sieve_scripts<S: DirectoryStore + SieveStore + ?Sized>(s: Arc<S>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap().id;
    assert!(s.sieve_list(a).await.unwrap().is_empty());
    assert_eq!(s.sieve_active(a).await.unwrap(), None);
    s.sieve_put(a, "main", "keep;").await.unwrap();
    s.sieve_put(a, "vacation", "require \"vacation\"; vacation \"x\";")
        .await
        .unwrap();
    s.sieve_put(b, "main", "discard;").await.unwrap();
    assert!(matches!(
        s.sieve_activate(a, Some("nope")).await,
        Err(StoreError::NotFound(_))
    ));
    s.sieve_activate(a, Some("main")).await.unwrap();
    s.sieve_activate(a, Some("vacation")).await.unwrap();
    // One active script at most.
    let list = s.sieve_list(a).await.unwrap();
    assert_eq!(list.iter().filter(|x| x.active).count(), 1);
    assert_eq!(list[1].name, "vacation");
    assert!(list[1].active);
    assert_eq!(list[0].size, 5);
    assert_eq!(s.sieve_active(a).await.unwrap().unwrap().0, "vacation");
    assert_eq!(s.sieve_active(b).await.unwrap(), None);
    // Replacing keeps it active.
    s.sieve_put(a, "vacation", "keep;").await.unwrap();
    assert_eq!(
        s.sieve_active(a).await.unwrap(),
        Some(("vacation".into(), "keep;".into()))
    );
    assert!(matches!(
        s.sieve_delete(a, "vacation").await,
        Err(StoreError::InUse(_))
    ));
    assert!(matches!(
        s.sieve_rename(a, "main", "vacation").await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        s.sieve_rename(a, "nope", "other").await,
        Err(StoreError::NotFound(_))
    ));
    s.sieve_rename(a, "vacation", "away").await.unwrap();
    assert_eq!(s.sieve_active(a).await.unwrap().unwrap().0, "away");
    s.sieve_activate(a, None).await.unwrap();
    assert_eq!(s.sieve_active(a).await.unwrap(), None);
    s.sieve_delete(a, "away").await.unwrap();
    assert!(matches!(
        s.sieve_delete(a, "away").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        s.sieve_get(a, "main").await.unwrap().as_deref(),
        Some("keep;")
    );
    assert_eq!(
        s.sieve_get(b, "main").await.unwrap().as_deref(),
        Some("discard;")
    );
    // Scripts go with their account.
    s.remove_account("bob@a.test").await.unwrap();
    let b2 = s.add_account("bob@a.test", creds("b")).await.unwrap().id;
    assert!(s.sieve_list(b2).await.unwrap().is_empty());
}

async fn sieve_tracking<S: DirectoryStore + SieveStore + ?Sized>(s: Arc<S>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap().id;
    assert!(!s.sieve_seen(a, "id1", 100).await.unwrap());
    s.sieve_track(a, vec![("id1".into(), 200)], 100)
        .await
        .unwrap();
    assert!(s.sieve_seen(a, "id1", 150).await.unwrap());
    assert!(!s.sieve_seen(b, "id1", 150).await.unwrap());
    assert!(!s.sieve_seen(a, "id1", 200).await.unwrap());
    // A later expiry wins, an earlier one does not shorten it.
    s.sieve_track(a, vec![("id1".into(), 300)], 150)
        .await
        .unwrap();
    s.sieve_track(a, vec![("id1".into(), 250)], 150)
        .await
        .unwrap();
    assert!(s.sieve_seen(a, "id1", 299).await.unwrap());
    // Once per period: the vacation rule.
    assert!(s.sieve_track_once(a, "v", 1000, 100).await.unwrap());
    assert!(!s.sieve_track_once(a, "v", 1100, 200).await.unwrap());
    assert!(s.sieve_track_once(a, "v", 2000, 1000).await.unwrap());
    assert!(s.sieve_track_once(b, "v", 2000, 1000).await.unwrap());
}

async fn delivery_versions_and_created_folders<S: MailStore + QueueStore + ?Sized + 'static>(
    s: Arc<S>,
) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let first = NewMessage {
        data: Spooled::from_vec(b"Subject: one\r\n\r\nx\r\n".to_vec()),
        received_at: 1,
        deliveries: vec![Delivery {
            account: a,
            folder: Folder::Create("Projects/New".into()),
            prefix: vec![],
            flags: vec!["\\Seen".into()],
        }],
        queue: None,
    };
    let second = NewMessage {
        data: Spooled::from_vec(b"X-Edited: yes\r\nSubject: one\r\n\r\nx\r\n".to_vec()),
        received_at: 1,
        deliveries: vec![
            Delivery {
                account: a,
                folder: Folder::Named("Nope".into()),
                prefix: vec![],
                flags: vec![],
            },
            Delivery {
                account: a,
                folder: Folder::Create("Projects/New".into()),
                prefix: vec![],
                flags: vec![],
            },
        ],
        queue: None,
    };
    let stored = s.store_messages(vec![first, second]).await.unwrap();
    assert_eq!(stored.len(), 2);
    let created = s.mailbox(a, "Projects/New").await.unwrap().unwrap();
    let inbox = s.mailbox(a, "INBOX").await.unwrap().unwrap();
    assert_eq!(stored[0].placed, vec![(created.id, 1)]);
    // A named folder that does not exist is INBOX.
    assert_eq!(stored[1].placed, vec![(inbox.id, 1), (created.id, 2)]);
    let edited = s.message_content(created.id, 2).await.unwrap().unwrap();
    assert!(edited.starts_with(b"X-Edited: yes"));
    assert_eq!(
        s.messages(created.id).await.unwrap()[0].flags,
        vec!["\\Seen".to_string()]
    );
}

async fn search_index(s: Arc<dyn Store>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let inbox = s.mailbox(a, "INBOX").await.unwrap().unwrap().id;
    let msgs = [
        "From: Bob <bob@b.test>\r\nTo: alice@a.test\r\nSubject: Quarterly Figures\r\nDate: Tue, 01 Dec 2026 23:30:00 -0800\r\nMessage-ID: <q1@b.test>\r\n\r\nThe budget for the caf\u{e9} is fine.\r\n",
        "From: =?UTF-8?Q?Ren=C3=A9e?= <renee@e.test>\r\nTo: alice@a.test\r\nCc: bob@b.test\r\nSubject: Re: Quarterly figures\r\nMessage-ID: <q2@e.test>\r\nIn-Reply-To: <q1@b.test>\r\n\r\nAgreed.\r\n",
        "From: carol@c.test\r\nSubject: lunch\r\nReferences: <zz@nowhere> <q2@e.test>\r\n\r\nok\r\n",
    ];
    for m in msgs {
        s.append(inbox, Spooled::from_vec(m.as_bytes().to_vec()), vec![], 0)
            .await
            .unwrap();
    }
    let find = |f, n: &'static str| {
        let s = s.clone();
        async move { s.search_text(inbox, f, n).await.unwrap() }
    };
    assert_eq!(find(TextField::Subject, "FIGURES").await, vec![1, 2]);
    assert_eq!(find(TextField::From, "renée").await, vec![2]);
    assert_eq!(find(TextField::From, "RENÉE").await, vec![2]);
    assert_eq!(find(TextField::Cc, "bob@").await, vec![2]);
    assert_eq!(find(TextField::Body, "café is").await, vec![1]);
    assert_eq!(find(TextField::Body, "ok").await, vec![3]);
    assert_eq!(find(TextField::Text, "lunch").await, vec![3]);
    assert_eq!(find(TextField::Text, "bob").await, vec![1, 2]);
    assert_eq!(
        find(TextField::Body, "nothing like it").await,
        Vec::<u32>::new()
    );
    assert_eq!(find(TextField::Subject, "").await, vec![1, 2, 3]);
    assert_eq!(find(TextField::Subject, "\"q").await, Vec::<u32>::new());
    // GLOB's own characters are taken literally; Unicode case folds.
    assert_eq!(find(TextField::Body, "caf*").await, Vec::<u32>::new());
    assert_eq!(find(TextField::Body, "th? budget").await, Vec::<u32>::new());
    assert_eq!(find(TextField::Body, "CAFÉ").await, vec![1]);
    assert_eq!(find(TextField::Text, "RENÉE").await, vec![2]);
    let rows = s.index_rows(inbox, 0).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(s.index_rows(inbox, 2).await.unwrap().len(), 1);
    assert_eq!(rows[0].base_subject, "QUARTERLY FIGURES");
    assert_eq!(rows[1].base_subject, "QUARTERLY FIGURES");
    assert!(rows[1].reply);
    assert_eq!(
        rows[0].sent_day,
        Some(1_796_196_600i64.div_euclid(86_400) - 1)
    );
    assert_eq!(rows[1].in_reply_to, vec!["q1@b.test".to_string()]);
    // One conversation: the reply and the message referring to it.
    assert_eq!(rows[1].thread_id, rows[0].thread_id);
    assert_eq!(rows[2].thread_id, rows[0].thread_id);
    assert_eq!(rows[0].from_key, "BOB");
    // A copy shares the content and its index; expunging everything drops it.
    let archive = s.mailbox(a, "Archive").await.unwrap().unwrap().id;
    s.copy_messages(inbox, vec![1], archive, false)
        .await
        .unwrap();
    let copied = s.index_rows(archive, 0).await.unwrap();
    assert_eq!(copied[0].email_id, rows[0].email_id);
    assert_eq!(
        s.search_text(archive, TextField::Subject, "figures")
            .await
            .unwrap(),
        vec![1]
    );
    s.remove_messages(inbox, vec![1, 2, 3]).await.unwrap();
    s.remove_messages(archive, vec![1]).await.unwrap();
    assert!(
        s.search_text(inbox, TextField::Text, "figures")
            .await
            .unwrap()
            .is_empty()
    );
}

/// The changes since a state, as (object, change) pairs.
async fn changes(
    s: &Arc<dyn Store>,
    a: AccountId,
    kind: DataType,
    since: u64,
) -> Vec<(i64, Change)> {
    s.changes_after(a, kind, since, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.object, r.change))
        .collect()
}

/// Every path that changes an account's mail writes the change log
/// (JMAP /changes): delivery, flags, copy, move, expunge, mailbox
/// create / rename / delete; states only go up; another account's
/// changes are not ours.
async fn change_log(s: Arc<dyn Store>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap().id;
    let inbox = s.mailbox(a, "INBOX").await.unwrap().unwrap();
    let start = s.change_state(a, DataType::Email).await.unwrap();
    let mailboxes_start = s.change_state(a, DataType::Mailbox).await.unwrap();
    let stored = s
        .store_message(NewMessage {
            data: Spooled::from_vec(
                b"Message-ID: <m1@a.test>\r\nSubject: one\r\n\r\nhi\r\n".to_vec(),
            ),
            received_at: 1,
            deliveries: vec![delivery(a, ""), delivery(b, "")],
            queue: None,
        })
        .await
        .unwrap();
    let uid = stored.placed[0].1;
    let email = s.entries(inbox.id, vec![uid]).await.unwrap()[0].email_id;
    let after_delivery = s.change_state(a, DataType::Email).await.unwrap();
    assert!(after_delivery > start);
    assert_eq!(
        changes(&s, a, DataType::Email, start).await,
        vec![(email, Change::Created)]
    );
    let thread = s.index_rows(inbox.id, 0).await.unwrap()[0].thread_id;
    assert_eq!(
        changes(&s, a, DataType::Thread, 0).await,
        vec![(thread, Change::Created)]
    );
    assert_eq!(
        changes(&s, a, DataType::Mailbox, mailboxes_start).await,
        vec![(inbox.uid_validity as i64, Change::Counts)]
    );
    // Flags: the email changes; \Seen changes the mailbox's counts too.
    s.set_flags(inbox.id, vec![uid], FlagOp::Add, vec!["$Work".into()], None)
        .await
        .unwrap();
    assert_eq!(
        changes(&s, a, DataType::Email, after_delivery).await,
        vec![(email, Change::Updated)]
    );
    let before_seen = s.change_state(a, DataType::Mailbox).await.unwrap();
    s.set_flags(
        inbox.id,
        vec![uid],
        FlagOp::Add,
        vec!["\\Seen".into()],
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        changes(&s, a, DataType::Mailbox, before_seen).await,
        vec![(inbox.uid_validity as i64, Change::Counts)]
    );
    // A new mailbox; a copy into it updates the email (no second email).
    let before_copy = s.change_state(a, DataType::Email).await.unwrap();
    let work = s.create_mailbox(a, "Work").await.unwrap();
    let copied = s
        .copy_messages(inbox.id, vec![uid], work.id, false)
        .await
        .unwrap();
    assert_eq!(
        changes(&s, a, DataType::Email, before_copy).await,
        vec![(email, Change::Updated)]
    );
    // Removing one copy updates it; removing the last destroys it.
    let before_remove = s.change_state(a, DataType::Email).await.unwrap();
    s.remove_messages(inbox.id, vec![uid]).await.unwrap();
    s.remove_messages(work.id, vec![copied[0].1]).await.unwrap();
    assert_eq!(
        changes(&s, a, DataType::Email, before_remove).await,
        vec![(email, Change::Updated), (email, Change::Destroyed)]
    );
    assert_eq!(
        changes(&s, a, DataType::Thread, before_remove).await.last(),
        Some(&(thread, Change::Destroyed))
    );
    // Mailboxes: renamed, then deleted with a message in it.
    let before_rename = s.change_state(a, DataType::Mailbox).await.unwrap();
    s.rename_mailbox(a, "Work", "Jobs").await.unwrap();
    assert_eq!(
        changes(&s, a, DataType::Mailbox, before_rename).await,
        vec![(work.uid_validity as i64, Change::Updated)]
    );
    let jobs = s.mailbox(a, "Jobs").await.unwrap().unwrap();
    s.append(
        jobs.id,
        Spooled::from_vec(b"Subject: two\r\n\r\n".to_vec()),
        vec![],
        0,
    )
    .await
    .unwrap();
    let before_delete = s.change_state(a, DataType::Email).await.unwrap();
    s.delete_mailbox(a, "Jobs").await.unwrap();
    let gone = changes(&s, a, DataType::Email, before_delete).await;
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].1, Change::Destroyed);
    assert_eq!(
        changes(&s, a, DataType::Mailbox, before_delete)
            .await
            .last(),
        Some(&(jobs.uid_validity as i64, Change::Destroyed))
    );
    // Bob's delivery was logged for Bob only.
    assert_eq!(changes(&s, b, DataType::Email, 0).await.len(), 1);
    assert!(changes(&s, a, DataType::Email, 0).await.len() >= 5);
    assert_eq!(
        s.changes_after(a, DataType::Email, 0, 2)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// JMAP submissions: kept per account, newest first, removed one by one,
/// gone with their account.
async fn submissions<S: MailStore + QueueStore + SubmissionStore + ?Sized + 'static>(s: Arc<S>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap().id;
    let one = |account, at| Submission {
        id: 0,
        account,
        smtp_id: format!("smtp{at}"),
        email_id: 7,
        thread_id: 7,
        identity: "alice@a.test".into(),
        envelope: "{}".into(),
        send_at: at,
        queue_id: None,
        canceled: false,
    };
    let first = s.add_submission(one(a, 100)).await.unwrap();
    let second = s.add_submission(one(a, 200)).await.unwrap();
    s.add_submission(one(b, 150)).await.unwrap();
    let kept = s.submissions(a).await.unwrap();
    assert_eq!(
        kept.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![second, first]
    );
    assert_eq!(kept[1].smtp_id, "smtp100");
    assert!(
        !s.remove_submission(b, first).await.unwrap(),
        "not Bob's to remove"
    );
    assert!(s.remove_submission(a, first).await.unwrap());
    assert_eq!(s.submissions(a).await.unwrap().len(), 1);
    s.remove_account("alice@a.test").await.unwrap();
    assert_eq!(s.submissions(a).await.unwrap().len(), 0);
    assert_eq!(s.submissions(b).await.unwrap().len(), 1);
}

/// A held submission (FUTURERELEASE) is canceled with its queue entry
/// before its release, once; not after its release, not once a delivery
/// of it is under way, and not by another account.
async fn submissions_canceled_while_held<
    S: MailStore + QueueStore + SubmissionStore + ?Sized + 'static,
>(
    s: Arc<S>,
) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap().id;
    let held = |release: i64| {
        let mut q = to_x("alice@a.test");
        q.options = QueueOptions {
            release_at: Some(release),
            ..QueueOptions::default()
        };
        NewMessage {
            data: Spooled::from_vec(b"Subject: later\r\n\r\nx\r\n".to_vec()),
            received_at: 100,
            deliveries: vec![],
            queue: Some(q),
        }
    };
    let mut ids = Vec::new();
    for release in [500, 500, 150] {
        let queue_id = s.store_message(held(release)).await.unwrap().queue_id;
        let n = s
            .add_submission(Submission {
                id: 0,
                account: a,
                smtp_id: format!("q{release}"),
                email_id: 1,
                thread_id: 1,
                identity: "alice@a.test".into(),
                envelope: "{}".into(),
                send_at: release,
                queue_id,
                canceled: false,
            })
            .await
            .unwrap();
        ids.push((n, queue_id.unwrap()));
    }
    assert_eq!(s.queue_list().await.unwrap().len(), 3);
    assert!(
        !s.cancel_submission(b, ids[0].0, 100).await.unwrap(),
        "Bob's?"
    );
    assert!(s.cancel_submission(a, ids[0].0, 100).await.unwrap());
    assert!(
        !s.cancel_submission(a, ids[0].0, 100).await.unwrap(),
        "twice"
    );
    let left: Vec<i64> = s.queue_list().await.unwrap().iter().map(|q| q.id).collect();
    assert!(!left.contains(&ids[0].1), "{left:?}");
    let kept = s.submissions(a).await.unwrap();
    assert!(kept.iter().find(|k| k.id == ids[0].0).unwrap().canceled);
    // Released already (150 < 200): too late.
    assert!(!s.cancel_submission(a, ids[2].0, 200).await.unwrap());
    // Claimed by a delivery run (at its release): too late as well.
    let jobs = s
        .queue_claim(Claim::Message(ids[1].1), 100, 700, 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(!s.cancel_submission(a, ids[1].0, 101).await.unwrap());
    assert_eq!(s.queue_list().await.unwrap().len(), 2);
}

/// Bearer tokens: kept as digests under a name unique per account, found
/// by digest, revoked by name, gone with their account.
async fn tokens<S: DirectoryStore + TokenStore + ?Sized>(s: Arc<S>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap();
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap();
    s.add_token(a.id, "phone", [1; 32], 10).await.unwrap();
    s.add_token(b.id, "phone", [2; 32], 11).await.unwrap();
    assert!(matches!(
        s.add_token(a.id, "phone", [3; 32], 12).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(s.token_account([1; 32]).await.unwrap(), Some(a.clone()));
    assert_eq!(s.token_account([2; 32]).await.unwrap().unwrap().id, b.id);
    assert_eq!(s.token_account([9; 32]).await.unwrap(), None);
    assert_eq!(
        s.tokens(a.id).await.unwrap(),
        vec![TokenInfo {
            name: "phone".into(),
            created: 10
        }]
    );
    assert!(!s.remove_token(a.id, "laptop").await.unwrap());
    assert!(s.remove_token(a.id, "phone").await.unwrap());
    assert_eq!(s.token_account([1; 32]).await.unwrap(), None);
    s.remove_account("bob@a.test").await.unwrap();
    assert_eq!(s.token_account([2; 32]).await.unwrap(), None);
}

/// JMAP push subscriptions: kept per account; active once verified and
/// until they expire; updated and removed by their own account only;
/// expired ones forgotten; gone with their account.
async fn push_subscriptions<S: DirectoryStore + PushStore + ?Sized>(s: Arc<S>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap().id;
    let one = |account, device: &str, expires| PushSubscription {
        id: 0,
        account,
        device_client_id: device.into(),
        url: format!("https://push.test/{device}"),
        keys: (device == "phone").then(|| ("BPub".to_string(), "auth".to_string())),
        verification_code: format!("code-{device}"),
        verified: false,
        expires,
        types: (device == "phone").then(|| vec!["Email".to_string(), "Mailbox".to_string()]),
    };
    let phone = s
        .add_push_subscription(one(a, "phone", 1000))
        .await
        .unwrap();
    let laptop = s
        .add_push_subscription(one(a, "laptop", 200))
        .await
        .unwrap();
    let bobs = s
        .add_push_subscription(one(b, "tablet", 1000))
        .await
        .unwrap();
    let mine = s.push_subscriptions(a).await.unwrap();
    assert_eq!(
        mine.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![phone, laptop]
    );
    assert_eq!(mine[0].keys, Some(("BPub".into(), "auth".into())));
    assert_eq!(
        mine[0].types.as_deref(),
        Some(&["Email".to_string(), "Mailbox".to_string()][..])
    );
    assert_eq!(mine[1].types, None);
    assert!(
        s.active_push_subscriptions(100).await.unwrap().is_empty(),
        "none verified"
    );
    let mut verified = mine[0].clone();
    verified.verified = true;
    verified.types = None;
    assert!(s.update_push_subscription(&verified).await.unwrap());
    let mut laptop_v = mine[1].clone();
    laptop_v.verified = true;
    assert!(s.update_push_subscription(&laptop_v).await.unwrap());
    let mut not_hers = verified.clone();
    not_hers.account = b;
    assert!(!s.update_push_subscription(&not_hers).await.unwrap());
    let active = s.active_push_subscriptions(300).await.unwrap();
    assert_eq!(
        active.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![phone],
        "laptop expired"
    );
    assert_eq!(active[0].types, None);
    assert!(!s.remove_push_subscription(b, phone).await.unwrap());
    assert_eq!(s.remove_expired_push_subscriptions(300).await.unwrap(), 1);
    assert_eq!(s.push_subscriptions(a).await.unwrap().len(), 1);
    s.remove_account("alice@a.test").await.unwrap();
    assert!(s.push_subscriptions(a).await.unwrap().is_empty());
    assert!(s.remove_push_subscription(b, bobs).await.unwrap());
}

/// The change log pruned to each account's newest rows: the states stay
/// (each type's newest row is kept, so they never go back), the floor
/// says from where changes are still known, an account under the limit
/// keeps everything, a removed account's rows go.
async fn change_log_pruned(s: Arc<dyn Store>) {
    s.add_domain("a.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let b = s.add_account("bob@a.test", creds("b")).await.unwrap().id;
    let c = s.add_account("carol@a.test", creds("c")).await.unwrap().id;
    let inbox = s.mailbox(a, "INBOX").await.unwrap().unwrap();
    s.create_mailbox(a, "Old").await.unwrap();
    let mut to = vec![a; 30];
    to.extend([b, c]);
    for (n, account) in to.into_iter().enumerate() {
        s.store_message(NewMessage {
            data: Spooled::from_vec(format!("Subject: {n}\r\n\r\nhi\r\n").into_bytes()),
            received_at: n as i64,
            deliveries: vec![delivery(account, "")],
            queue: None,
        })
        .await
        .unwrap();
    }
    let uids: Vec<u32> = s
        .messages(inbox.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    s.set_flags(
        inbox.id,
        uids[..1].to_vec(),
        FlagOp::Add,
        vec!["$Work".into()],
        None,
    )
    .await
    .unwrap();
    let states = |acct| {
        let s = s.clone();
        async move {
            let mut out = Vec::new();
            for kind in [DataType::Mailbox, DataType::Email, DataType::Thread] {
                out.push(s.change_state(acct, kind).await.unwrap());
            }
            out
        }
    };
    let before = states(a).await;
    let everything = s.changes_after(a, DataType::Email, 0, 1000).await.unwrap();
    assert_eq!(s.change_floor(a).await.unwrap(), 0);
    s.remove_account("carol@a.test").await.unwrap();
    let pruned = s.prune_changes(20).await.unwrap();
    assert!(pruned >= 10, "{pruned}");
    assert_eq!(states(a).await, before, "states never go back");
    let floor = s.change_floor(a).await.unwrap();
    assert!(floor > 0);
    let kept = s
        .changes_after(a, DataType::Email, floor, 1000)
        .await
        .unwrap();
    assert_eq!(
        kept,
        everything
            .iter()
            .filter(|r| r.seq > floor)
            .copied()
            .collect::<Vec<_>>(),
        "from the floor on, nothing was lost"
    );
    assert_eq!(
        s.change_floor(b).await.unwrap(),
        0,
        "Bob is under the limit"
    );
    assert!(
        !s.changes_after(b, DataType::Email, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.changes_after(c, DataType::Email, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A later change is above every state given before.
    s.set_flags(
        inbox.id,
        uids[..1].to_vec(),
        FlagOp::Add,
        vec!["$Later".into()],
        None,
    )
    .await
    .unwrap();
    assert!(s.change_state(a, DataType::Email).await.unwrap() > before[1]);
}

/// Published keys: one of each kind per account, replaced by a new one,
/// listed per domain (not another domain's, nor a domain that only ends
/// the same way), withdrawn, gone with their account.
async fn public_keys<S: DirectoryStore + KeyStore + ?Sized>(s: Arc<S>) {
    use store::{KeyKind, PublicKey};
    s.add_domain("a.test").await.unwrap();
    s.add_domain("ba.test").await.unwrap();
    let a = s.add_account("alice@a.test", creds("a")).await.unwrap().id;
    let b = s.add_account("bob@ba.test", creds("b")).await.unwrap().id;
    let key = |kind, data: &[u8], at| PublicKey {
        kind,
        data: data.to_vec(),
        fingerprint: format!("fp{at}"),
        created: at,
    };
    s.put_public_key(a, key(KeyKind::OpenPgp, b"old", 1))
        .await
        .unwrap();
    s.put_public_key(a, key(KeyKind::OpenPgp, b"new", 2))
        .await
        .unwrap();
    s.put_public_key(a, key(KeyKind::Smime, b"cert", 3))
        .await
        .unwrap();
    s.put_public_key(b, key(KeyKind::OpenPgp, b"bob", 4))
        .await
        .unwrap();
    assert_eq!(
        s.public_keys(a).await.unwrap(),
        vec![
            key(KeyKind::OpenPgp, b"new", 2),
            key(KeyKind::Smime, b"cert", 3)
        ]
    );
    assert_eq!(
        s.domain_public_keys("A.test", KeyKind::OpenPgp)
            .await
            .unwrap(),
        vec![("alice@a.test".to_string(), key(KeyKind::OpenPgp, b"new", 2))]
    );
    assert_eq!(
        s.domain_public_keys("ba.test", KeyKind::Smime)
            .await
            .unwrap(),
        vec![]
    );
    assert!(!s.encrypts_at_rest(a).await.unwrap());
    s.set_encrypt_at_rest(a, true).await.unwrap();
    assert!(s.encrypts_at_rest(a).await.unwrap());
    assert!(!s.encrypts_at_rest(b).await.unwrap());
    s.set_encrypt_at_rest(a, false).await.unwrap();
    assert!(!s.encrypts_at_rest(a).await.unwrap());
    assert!(s.remove_public_key(a, KeyKind::Smime).await.unwrap());
    assert!(!s.remove_public_key(a, KeyKind::Smime).await.unwrap());
    s.remove_account("bob@ba.test").await.unwrap();
    assert_eq!(
        s.domain_public_keys("ba.test", KeyKind::OpenPgp)
            .await
            .unwrap(),
        vec![]
    );
}
