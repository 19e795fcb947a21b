//! The standard test world: domain a.test on host mx.a.test, two accounts and a
//! few aliases. Transcripts rely on it through the variables of [`vars`].

use std::collections::HashMap;
use std::sync::Arc;

use store::{AddressKind, Store};

use crate::server::TernServer;
use crate::tcp::{BoxFuture, Probe};

pub const HOST: &str = "mx.a.test";
pub const DOMAIN: &str = "a.test";
pub const ACCOUNTS: [(&str, &str); 2] = [("alice@a.test", "alice-pw"), ("bob@a.test", "bob-pw")];
/// An account with a quota of one message and 2 KiB (RFC 9208 tests).
pub const QUOTA_ACCOUNT: (&str, &str) = ("full@a.test", "full-pw");
pub const QUOTA_MESSAGES: u64 = 1;
pub const QUOTA_STORAGE: u64 = 2048;
pub const ALIASES: [(&str, &str); 6] = [
    ("postmaster@a.test", "alice@a.test"),
    ("team@a.test", "alice@a.test,bob@a.test"),
    ("info@a.test", "alice@a.test"),
    ("loop1@a.test", "loop2@a.test"),
    ("loop2@a.test", "loop1@a.test"),
    ("fwd@a.test", "carol@far.test"),
];

/// The `${...}` variables of the SMTP transcripts.
pub fn vars() -> HashMap<String, String> {
    let mut v = HashMap::new();
    v.insert("HOST".into(), HOST.into());
    v.insert(
        "PLAIN_ALICE".into(),
        crate::sasl_plain("alice@a.test", "alice-pw"),
    );
    v.insert(
        "PLAIN_ALICE_WRONG".into(),
        crate::sasl_plain("alice@a.test", "wrong"),
    );
    v.insert(
        "PLAIN_NOBODY".into(),
        crate::sasl_plain("nobody@a.test", "x"),
    );
    v.insert("B64_ALICE".into(), crate::b64("alice@a.test"));
    v.insert("B64_ALICE_PW".into(), crate::b64("alice-pw"));
    v
}

/// A store holding the world in a temporary directory (the caller keeps
/// it), and an authenticator on it that does not slow failures down: what
/// an in-memory session runs on.
pub async fn world() -> (tempfile::TempDir, Arc<dyn Store>, Arc<auth::Authenticator>) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&store::Backend::Sqlite(dir.path().into())).unwrap();
    populate_store(&store).await;
    let throttle = auth::ThrottleConfig {
        failure_delay: std::time::Duration::ZERO,
        ..Default::default()
    };
    let auth = Arc::new(auth::Authenticator::new(store.clone(), throttle));
    (dir, store, auth)
}

/// Create the world in a store directly (in-memory transcript runs).
pub async fn populate_store(store: &Arc<dyn Store>) {
    store.add_domain(DOMAIN).await.unwrap();
    for (address, password) in ACCOUNTS {
        store
            .add_account(address, cached_credentials(password))
            .await
            .unwrap();
    }
    for (alias, targets) in ALIASES {
        let targets: Vec<String> = targets.split(',').map(String::from).collect();
        store.add_alias(alias, &targets).await.unwrap();
    }
    let (address, password) = QUOTA_ACCOUNT;
    store
        .add_account(address, cached_credentials(password))
        .await
        .unwrap();
    let quota = store::Quota {
        storage: Some(QUOTA_STORAGE),
        messages: Some(QUOTA_MESSAGES),
    };
    store.set_quota(address, quota).await.unwrap();
}

/// Argon2 is slow on purpose: derive each test password once per process.
fn cached_credentials(password: &str) -> store::Credentials {
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, store::Credentials>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap();
    map.entry(password.to_string())
        .or_insert_with(|| auth::derive(password))
        .clone()
}

/// Create the world through the admin CLI of a running server.
pub fn populate_cli(server: &TernServer) {
    server.admin_ok(&["domain", "add", DOMAIN]);
    for (address, password) in ACCOUNTS {
        server.admin_ok(&["account", "add", address, "--password", password]);
    }
    for (alias, targets) in ALIASES {
        server.admin_ok(&["alias", "add", alias, targets]);
    }
    let (address, password) = QUOTA_ACCOUNT;
    server.admin_ok(&["account", "add", address, "--password", password]);
    let (messages, storage) = (QUOTA_MESSAGES.to_string(), QUOTA_STORAGE.to_string());
    server.admin_ok(&[
        "account",
        "quota",
        address,
        "--messages",
        &messages,
        "--storage",
        &storage,
    ]);
}

/// How many messages an account's INBOX holds.
pub async fn inbox_count(store: &Arc<dyn Store>, address: &str) -> Result<usize, String> {
    Ok(inbox(store, address).await?.len())
}

/// The messages of an account's INBOX, oldest first.
pub async fn inbox(store: &Arc<dyn Store>, address: &str) -> Result<Vec<Vec<u8>>, String> {
    mailbox(store, address, "INBOX").await
}

/// The messages of one of an account's mailboxes, oldest first.
pub async fn mailbox(
    store: &Arc<dyn Store>,
    address: &str,
    name: &str,
) -> Result<Vec<Vec<u8>>, String> {
    let AddressKind::Account(account) = store
        .lookup_address(address)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Err(format!("{address} is not an account"));
    };
    let boxes = store
        .mailboxes(account.id)
        .await
        .map_err(|e| e.to_string())?;
    let inbox = boxes
        .into_iter()
        .find(|m| m.name == name)
        .ok_or(format!("no mailbox {name}"))?;
    let mut out = Vec::new();
    for m in store.messages(inbox.id).await.map_err(|e| e.to_string())? {
        out.push(
            store
                .message_content(inbox.id, m.uid)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default(),
        );
    }
    Ok(out)
}

/// Looks into a store for `!inbox` and `!queue`.
pub struct StoreProbe(pub Arc<dyn Store>);

impl Probe for StoreProbe {
    fn inbox(&self, address: &str) -> BoxFuture<'_, Result<usize, String>> {
        let address = address.to_string();
        Box::pin(async move { inbox_count(&self.0, &address).await })
    }

    fn queue(&self) -> BoxFuture<'_, Result<usize, String>> {
        Box::pin(async move {
            self.0
                .queue_list()
                .await
                .map(|q| q.len())
                .map_err(|e| e.to_string())
        })
    }
}

/// Messages put into alice's INBOX for transcripts with `@seed messages`.
pub const SEED: [&str; 3] = [
    "From: bob@b.test\r\nSubject: one\r\n\r\nfirst\r\n.dot line\r\n",
    "From: carol@c.test\r\nSubject: two\r\n\r\nl1\r\nl2\r\nl3\r\n",
    "Subject: three\r\n\r\nx\r\n",
];

/// Append [`SEED`] to alice's INBOX.
pub async fn seed_messages(store: &Arc<dyn Store>) {
    let AddressKind::Account(alice) = store.lookup_address("alice@a.test").await.unwrap() else {
        panic!("no alice")
    };
    let inbox = store.mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    for m in SEED {
        store
            .append(
                inbox.id,
                store::Spooled::from_vec(m.as_bytes().to_vec()),
                vec![],
                1_795_000_000,
            )
            .await
            .unwrap();
    }
}

/// The `${...}` variables of every transcript: [`vars`] plus the seed sizes.
pub fn all_vars() -> HashMap<String, String> {
    let mut v = vars();
    for (i, m) in SEED.iter().enumerate() {
        v.insert(format!("SEED{}_SIZE", i + 1), m.len().to_string());
    }
    v.insert(
        "SEED_TOTAL".into(),
        SEED.iter().map(|m| m.len()).sum::<usize>().to_string(),
    );
    v.insert(
        "SEED_TOTAL_MINUS_1".into(),
        SEED[1..].iter().map(|m| m.len()).sum::<usize>().to_string(),
    );
    v
}
